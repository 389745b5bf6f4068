//! Commands that prepare a recovery: protection groups, recovery plans, instance matching, the launch-into
//! configuration and readiness.

use super::client::{Client, ClientError, account_region};
use super::output::{Out, Progress, s};
use super::text;
use serde_json::{Value, json};

/// `groups list`.
pub(super) async fn groups_list(c: &Client, out: &Out) -> Result<(), ClientError> {
    let v = c.get("/api/v1/protection-groups").await?;
    out.value(&v, text::groups_table);
    Ok(())
}

/// `groups create`.
pub(super) async fn groups_create(
    c: &Client,
    out: &Out,
    name: String,
    primary: String,
    dr: String,
    tags: Vec<String>,
) -> Result<(), ClientError> {
    let mut selection = json!({ "kind": "all" });
    if !tags.is_empty() {
        let mut m = serde_json::Map::new();
        for t in &tags {
            let (k, v) =
                t.split_once('=').ok_or_else(|| ClientError::Usage(format!("--tag {t:?} is not key=value")))?;
            m.insert(k.to_owned(), v.into());
        }
        selection = json!({ "kind": "tags", "tags": m });
    }
    let body = json!({ "name": name, "primary": account_region(&primary, "--primary")?,
                           "dr": account_region(&dr, "--dr")?, "selection": selection });
    let v = c.post("/api/v1/protection-groups", &body).await?;
    out.value(&v, |v| format!("created protection group {} ({})", s(&v["name"]), s(&v["id"])));
    Ok(())
}

/// `plans list`.
pub(super) async fn plans_list(c: &Client, out: &Out) -> Result<(), ClientError> {
    let v = c.get("/api/v1/recovery-plans").await?;
    out.value(&v, text::plans_table);
    Ok(())
}

/// `plans create`.
pub(super) async fn plans_create(
    c: &Client,
    out: &Out,
    name: String,
    groups: Vec<String>,
    rto_target_minutes: Option<u32>,
) -> Result<(), ClientError> {
    let mut ids = Vec::new();
    for g in &groups {
        ids.push(c.group_id(g).await?);
    }
    let mut body = json!({ "name": name, "protection_group_ids": ids });
    if let Some(m) = rto_target_minutes {
        body["rto_target_minutes"] = m.into();
    }
    let v = c.post("/api/v1/recovery-plans", &body).await?;
    out.value(&v, |v| {
        format!(
            "created recovery plan {} ({}): {} waves, RTO target {} min",
            s(&v["name"]),
            s(&v["id"]),
            v["waves"].as_array().map_or(0, Vec::len),
            v["rto_target_minutes"]
        )
    });
    Ok(())
}

/// `match`: the report, and with `accept` every ready pair accepted.
pub(super) async fn match_group(c: &Client, out: &Out, group: &str, accept: bool) -> Result<(), ClientError> {
    let id = c.group_id(group).await?;
    let report = c.post("/api/v1/drs/instances/match", &json!({ "protection_group_id": id })).await?;
    let pairs: Vec<&Value> = report["pairs"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    let ready: Vec<Value> = pairs
        .iter()
        .filter(|p| p["status"] == "ready")
        .map(|p| json!({ "source_server_id": p["source_server_id"], "standby_instance_id": p["standby_instance_id"] }))
        .collect();
    let accepted = if accept && !ready.is_empty() {
        Some(c.post(&format!("/api/v1/protection-groups/{id}/instance-pairs"), &json!({ "pairs": ready })).await?)
    } else {
        None
    };
    let v = json!({ "report": report, "accepted": accepted });
    out.value(&v, |_| text::match_summary(&report, accepted.as_ref(), accept));
    Ok(())
}

/// `configure`: the launch-into configuration, or its dry run.
pub(super) async fn configure(c: &Client, out: &Out, group: &str, dry_run: bool) -> Result<(), ClientError> {
    let id = c.group_id(group).await?;
    let bar = Progress::new(out.json, "configuring launch into instance");
    bar.draw(0, "");
    let v = c
        .post(&format!("/api/v1/protection-groups/{id}/configure-allow-launching"), &json!({ "dry_run": dry_run }))
        .await?;
    bar.finish();
    let failed =
        ["failed", "refused", "rolled_back"].iter().map(|k| v["counts"][*k].as_u64().unwrap_or(0)).sum::<u64>();
    out.value(&v, |v| {
        let counts: Vec<String> = v["counts"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, n)| format!("{n} {}", k.replace('_', " ")))
            .collect();
        let mut t = format!(
            "{} servers{}: {}; {} DRS writes\n",
            v["results"].as_array().map_or(0, Vec::len),
            if dry_run { " (dry run)" } else { "" },
            counts.join(", "),
            v["writes"]
        );
        for r in v["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| !r["reasons"].as_array().is_none_or(Vec::is_empty))
            .take(50)
        {
            let why: Vec<&str> =
                r["reasons"].as_array().into_iter().flatten().filter_map(|x| x["message"].as_str()).collect();
            t.push_str(&format!("  {} {}: {}\n", s(&r["status"]), s(&r["source_name"]), why.join("; ")));
        }
        t
    });
    if failed > 0 {
        return Err(ClientError::Incomplete {
            code: "CONFIGURE_FAILED".into(),
            message: format!("{failed} launch configurations were refused or could not be written"),
        });
    }
    Ok(())
}

/// `readiness`: the last verdict, or a new one with `evaluate`.
pub(super) async fn readiness(c: &Client, out: &Out, group: &str, evaluate: bool) -> Result<(), ClientError> {
    let id = c.group_id(group).await?;
    let path = format!("/api/v1/protection-groups/{id}/readiness");
    let v = if evaluate { c.post(&path, &json!({})).await? } else { c.get(&path).await? };
    let r = &v["readiness"];
    out.value(&v, |_| {
        let mut t = format!(
            "{} (score {}): {} ready, {} with warnings, {} blocked\n",
            s(&r["verdict"]),
            r["score"],
            r["ready_pairs"],
            r["warning_pairs"],
            r["blocked_pairs"]
        );
        for f in r["failing"].as_array().into_iter().flatten().take(10) {
            t.push_str(&format!("  {} ({} pairs)\n", s(&f[0]), f[1]));
        }
        t
    });
    if r["verdict"] == "blocked" {
        return Err(ClientError::Blocked);
    }
    Ok(())
}
