//! Commands that run and follow executions: failover, decisions, status, failback and the evidence report.

use super::client::{Client, ClientError};
use super::output::{Out, Progress, s};
use super::{FailbackArgs, FailoverArgs, ReportFormat, text};
use domain::execution::{ExecutionStatus, Phase};
use serde_json::{Value, json};
use std::io::Write;
use std::time::Duration;

/// `failover`: a drill or a recovery of a plan, followed with `--wait`.
pub(super) async fn failover(c: &Client, out: &Out, a: FailoverArgs) -> Result<(), ClientError> {
    let plan_id = c.plan_id(&a.plan).await?;
    let body = json!({
        "plan_id": plan_id,
        "mode": if a.drill { "drill" } else { "recovery" },
        "kind": if a.planned { "planned" } else { "disaster" },
        "acknowledge_warnings": a.acknowledge_warnings,
    });
    let v = c.post("/api/v1/executions/allow-launching/failover", &body).await?;
    started(out, &v, a.wait);
    if a.wait {
        follow(c, out, s(&v["id"]), a.timeout_minutes).await?;
    }
    Ok(())
}

/// `status` without an id: every execution.
pub(super) async fn status_all(c: &Client, out: &Out) -> Result<(), ClientError> {
    let v = c.get("/api/v1/executions").await?;
    out.value(&v, |v| {
        let mut t = format!("{:<22} {:<9} {:<18} {:<24} {}\n", "ID", "MODE", "PHASE", "PLAN", "REQUESTED BY");
        for e in v["executions"].as_array().into_iter().flatten() {
            t.push_str(&format!(
                "{:<22} {:<9} {:<18} {:<24} {}\n",
                s(&e["id"]),
                s(&e["state"]["mode"]),
                s(&e["state"]["phase"]),
                s(&e["plan_name"]),
                s(&e["state"]["requested_by"])
            ));
        }
        t
    });
    Ok(())
}

/// `status <id>`: one execution's progress (an error exit when it ended without success).
pub(super) async fn status(c: &Client, out: &Out, id: &str) -> Result<(), ClientError> {
    let v = c.get(&format!("/api/v1/executions/{id}/allow-launching/status")).await?;
    out.value(&v, |v| serde_json::from_value::<ExecutionStatus>(v.clone()).map(|st| describe(&st)).unwrap_or_default());
    ended(&v)
}

/// `failback`: the dry run, or the request, followed with `--wait`.
pub(super) async fn failback(c: &Client, out: &Out, a: FailbackArgs) -> Result<(), ClientError> {
    let body = json!({
        "execution_id": a.execution_id, "stop_originals": a.stop_originals, "tag_originals": a.tag_originals,
        "leave_behind": a.leave_behind, "ready_only": a.ready_only,
    });
    if a.dry_run {
        let v = c.post("/api/v1/executions/allow-launching/failback?a.dry_run=true", &body).await?;
        out.value(&v, text::failback_preview);
        if v["ready"] != true {
            return Err(ClientError::Incomplete {
                code: "NOT_READY".into(),
                message: "failback prerequisites are not met".into(),
            });
        }
        return Ok(());
    }
    let v = c.post("/api/v1/executions/allow-launching/failback", &body).await?;
    started(out, &v, a.wait);
    if a.wait {
        follow(c, out, s(&v["id"]), a.timeout_minutes).await?;
    }

    Ok(())
}

/// `report`: an execution's evidence report, to a file or standard output.
pub(super) async fn report(
    c: &Client,
    out: &Out,
    execution_id: &str,
    format: ReportFormat,
    file: Option<std::path::PathBuf>,
) -> Result<(), ClientError> {
    let f = if format == ReportFormat::Html { "html" } else { "json" };
    let r = c.send(reqwest::Method::GET, &format!("/api/v1/executions/{execution_id}/report?format={f}"), None).await?;
    let body =
        r.bytes().await.map_err(|e| ClientError::Unreachable { server: c.base.clone(), reason: e.to_string() })?;
    match file {
        Some(path) => {
            std::fs::write(&path, &body)?;
            let v = json!({ "execution_id": execution_id, "format": f, "file": path.display().to_string(), "bytes": body.len() });
            out.value(&v, |_| {
                format!("evidence report of {execution_id} written to {} ({} bytes)", path.display(), body.len())
            });
        }
        None => std::io::stdout().write_all(&body)?,
    }

    Ok(())
}

/// Prints a new execution (on stderr when it will be followed, so `--output json` prints one document).
fn started(out: &Out, v: &Value, wait: bool) {
    let text = format!(
        "{} {} of {} requested: {}{}",
        s(&v["state"]["mode"]),
        s(&v["id"]),
        s(&v["plan_name"]),
        s(&v["state"]["phase"]),
        if v["state"]["phase"] == "awaiting_approval" {
            " (a second person approves: roundtrip approve <id> --comment …)"
        } else {
            ""
        }
    );
    if wait {
        if !out.json {
            eprintln!("{text}");
        }
    } else {
        out.value(v, |_| text);
    }
}

pub(super) async fn decide(c: &Client, out: &Out, id: &str, what: &str, comment: &str) -> Result<(), ClientError> {
    let v = c.post(&format!("/api/v1/executions/{id}/{what}"), &json!({ "comment": comment })).await?;
    out.value(&v, |v| format!("{id}: {what} recorded; now {}", s(&v["state"]["phase"])));
    Ok(())
}

fn phase_of(v: &Value) -> Option<Phase> {
    serde_json::from_value(v["phase"].clone()).ok()
}

/// The error for an ended execution that did not succeed.
fn ended(v: &Value) -> Result<(), ClientError> {
    match phase_of(v) {
        Some(Phase::Failed) => Err(ClientError::Ended("failed")),
        Some(p @ (Phase::Cancelled | Phase::Rejected | Phase::Expired)) => {
            Err(ClientError::Ended(domain::execution::phase_word(p)))
        }
        _ => Ok(()),
    }
}

/// One paragraph for people.
pub fn describe(st: &ExecutionStatus) -> String {
    let mut t = format!("{} — {}%", domain::execution::phase_word(st.phase), st.progress_percent);
    if let Some(e) = st.elapsed_ms {
        t.push_str(&format!(", elapsed {}", domain::time::format_duration_ms(e)));
    }
    match st.rto_ms {
        Some(r) => t.push_str(&format!(
            ", RTO {} (target {})",
            domain::time::format_duration_ms(r),
            domain::time::format_duration_ms(st.rto_target_ms)
        )),
        None => t.push_str(&format!(", RTO target {}", domain::time::format_duration_ms(st.rto_target_ms))),
    }
    t.push('\n');
    for w in &st.waves {
        t.push_str(&format!(
            "  {:<20} {:<10} {}/{} verified, {} failed{}\n",
            w.name,
            format!("{:?}", w.state).to_lowercase(),
            w.verified,
            w.servers,
            w.failed,
            w.rto_ms.map_or_else(String::new, |r| format!(", RTO {}", domain::time::format_duration_ms(r)))
        ));
    }
    t
}

/// Polls an execution's progress until it ends, drawing a progress bar on standard error.
pub(super) async fn follow(c: &Client, out: &Out, id: &str, timeout_minutes: u64) -> Result<(), ClientError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(timeout_minutes.saturating_mul(60));
    let bar = Progress::new(out.json, id);
    loop {
        let v = match c.get(&format!("/api/v1/executions/{id}/allow-launching/status")).await {
            Ok(v) => v,
            // A restart or a proxy hiccup during a long failover is not its end: keep trying until the deadline.
            Err(e @ ClientError::Unreachable { .. }) => {
                if std::time::Instant::now() > deadline {
                    bar.finish();
                    return Err(e);
                }
                bar.draw(0, &format!("server unreachable, retrying: {e}"));
                tokio::time::sleep(Duration::from_secs(3)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let st: ExecutionStatus = serde_json::from_value(v.clone()).map_err(|e| ClientError::Unreachable {
            server: c.base.clone(),
            reason: format!("unexpected status: {e}"),
        })?;
        let wave = st.waves.iter().find(|w| format!("{:?}", w.state) == "Running").map_or("", |w| w.name.as_str());
        bar.draw(st.progress_percent, &format!("{} {wave}", domain::execution::phase_word(st.phase)));
        if st.phase.is_terminal() {
            bar.finish();
            out.value(&v, |_| describe(&st));
            return ended(&v);
        }
        if std::time::Instant::now() > deadline {
            bar.finish();
            return Err(ClientError::TimedOut(timeout_minutes));
        }
        tokio::time::sleep(Duration::from_millis(if st.phase == Phase::AwaitingApproval { 3000 } else { 1000 })).await;
    }
}
