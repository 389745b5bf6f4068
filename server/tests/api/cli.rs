//! The command-line client end to end: a real server process, and a drill driven with `roundtrip …`
//! commands alone, from creating the group to downloading the evidence report; refusals give the exit
//! codes a pipeline acts on.

use crate::crash::{Client, free_port, serve};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `roundtrip <args>` against the server on `port` with `token`.
fn roundtrip(port: u16, token: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_roundtrip"));
    c.args(args).env("ROUNDTRIP_SERVER", format!("http://127.0.0.1:{port}")).env_remove("ROUNDTRIP_TOKEN");
    if let Some(t) = token {
        c.env("ROUNDTRIP_TOKEN", t);
    }
    c.output().expect("the roundtrip binary runs")
}

/// Runs a command that must succeed and print JSON.
fn ok_json(port: u16, token: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let out = roundtrip(port, Some(token), &all);
    assert!(
        out.status.success(),
        "roundtrip {args:?}: {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drill_is_driven_with_the_command_line_alone_and_its_report_downloaded() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = serve(dir.path(), port);
    let admin = Client::connect(port).await;
    let token = admin.post("/api/v1/tokens", &json!({ "name": "pipeline", "role": "operator" })).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_token = admin.post("/api/v1/tokens", &json!({ "name": "cli-admin", "role": "admin" })).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_token = move || admin_token.clone();
    let operator = token.clone();
    let run = move |args: &'static [&'static str]| {
        let token = token.clone();
        tokio::task::spawn_blocking(move || ok_json(port, &token, args))
    };

    let group = run(&[
        "groups",
        "create",
        "--name",
        "Billing",
        "--primary",
        "111111111111/us-east-1",
        "--dr",
        "222222222222/us-west-2",
        "--tag",
        "app=billing",
    ])
    .await
    .unwrap();
    assert_eq!(group["name"], "Billing");
    let matched = run(&["match", "Billing", "--accept"]).await.unwrap();
    let accepted = matched["accepted"]["accepted"].as_array().unwrap().len();
    assert!(accepted > 0, "{matched}");
    let dry = run(&["configure", "Billing", "--dry-run"]).await.unwrap();
    assert_eq!((dry["dry_run"].as_bool(), dry["writes"].as_u64()), (Some(true), Some(0)), "{dry}");
    assert_eq!(dry["counts"]["would_change"].as_u64(), Some(accepted as u64), "{dry}");
    let done = run(&["configure", "Billing"]).await.unwrap();
    assert_eq!(done["counts"]["applied"].as_u64(), Some(accepted as u64), "{done}");
    let readiness = run(&["readiness", "Billing", "--evaluate"]).await.unwrap();
    assert_ne!(readiness["readiness"]["verdict"], "blocked", "{readiness}");
    let plan = run(&["plans", "create", "--name", "Billing DR", "--group", "Billing"]).await.unwrap();
    assert_eq!(plan["name"], "Billing DR");
    let groups = run(&["groups", "list"]).await.unwrap();
    assert_eq!(groups["protection_groups"][0]["pairs"].as_u64(), Some(accepted as u64));

    // The drill, followed to its end: one JSON document, the final status.
    let status =
        run(&["failover", "--plan", "Billing DR", "--drill", "--acknowledge-warnings", "--wait"]).await.unwrap();
    assert_eq!(
        (status["phase"].as_str(), status["progress_percent"].as_u64()),
        (Some("succeeded"), Some(100)),
        "{status}"
    );
    assert!(status["rto_ms"].as_i64().unwrap() > 0);
    let list = run(&["status"]).await.unwrap();
    let id = list["executions"][0]["id"].as_str().unwrap().to_owned();

    // Text for people, then the report as a file.
    let (t, i) = (admin_token(), id.clone());
    let out = tokio::task::spawn_blocking(move || roundtrip(port, Some(&t), &["status", &i])).await.unwrap();
    assert!(out.status.success() && text(&out).contains("succeeded — 100%"), "{}", text(&out));
    let file = dir.path().join("report.html");
    let (t, i, f) = (admin_token(), id.clone(), file.clone());
    let out =
        tokio::task::spawn_blocking(move || roundtrip(port, Some(&t), &["report", &i, "--out", f.to_str().unwrap()]))
            .await
            .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let html = std::fs::read_to_string(&file).unwrap();
    // (Whether the RTO target was met depends on how busy the machine is: the server's virtual time runs
    // 600 times faster than its runner polls.)
    assert!(html.contains("Drill of Billing DR — evidence report") && html.contains("Outcome: succeeded"), "{html}");
    report_json_matches(port, &admin_token(), &id, dir.path()).await;

    // Exit codes a pipeline can act on.
    let (t, t2) = (admin_token(), operator.clone());
    let out = tokio::task::spawn_blocking(move || {
        roundtrip(port, Some(&t), &["status", "exec-0000000000000000", "--output", "json"])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "EXECUTION_NOT_FOUND");
    let out = tokio::task::spawn_blocking(move || roundtrip(port, None, &["groups", "list"])).await.unwrap();
    assert_eq!(out.status.code(), Some(6), "no token: {}", text(&out));
    assert!(text(&out).contains("ROUNDTRIP_TOKEN"));
    // A recovery waits for a second person: its requester (the admin who owns both tokens) cannot approve.
    let rec = tokio::task::spawn_blocking(move || {
        ok_json(port, &t2, &["failover", "--plan", "Billing DR", "--acknowledge-warnings"])
    })
    .await
    .unwrap();
    assert_eq!(rec["state"]["phase"], "awaiting_approval");
    let (t, rid) = (admin_token(), rec["id"].as_str().unwrap().to_owned());
    let out = tokio::task::spawn_blocking(move || {
        roundtrip(port, Some(&t), &["approve", &rid, "--comment", "go", "--output", "json"])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "SELF_APPROVAL");
    let viewer = admin.post("/api/v1/tokens", &json!({ "name": "viewer", "role": "viewer" })).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = tokio::task::spawn_blocking(move || {
        roundtrip(port, Some(&viewer), &["failover", "--plan", "Billing DR", "--drill", "--output", "json"])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "FORBIDDEN");
    let out = tokio::task::spawn_blocking(move || roundtrip(port, Some("rt_nonsense"), &["status"])).await.unwrap();
    assert_eq!(out.status.code(), Some(6));
    let out = roundtrip(port, None, &["--server", "ftp://x", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let _ = server.kill();
    let _ = server.wait();
}

/// `report --format json` writes the same report the API serves.
async fn report_json_matches(port: u16, token: &str, id: &str, dir: &Path) {
    let file = dir.join("report.json");
    let (t, i, f) = (token.to_owned(), id.to_owned(), file.clone());
    let out = tokio::task::spawn_blocking(move || {
        roundtrip(port, Some(&t), &["report", &i, "--format", "json", "--out", f.to_str().unwrap(), "--output", "json"])
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let written: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(written["file"], file.to_str().unwrap());
    let report: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!((report["execution_id"].as_str(), report["outcome"].as_str()), (Some(id), Some("succeeded")));
    assert!(report["rto"]["achieved_ms"].as_i64().unwrap() > 0, "{}", report["rto"]);
}
