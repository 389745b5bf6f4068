//! Executions through the API: a drill of a configured group's plan runs to verified servers; a recovery
//! needs a second person; the requester cannot approve; a viewer cannot start one.

use crate::helpers::{TestApp, client_with_token, code, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A plan over the billing application, paired and configured.
pub async fn billing_plan(app: &TestApp) -> String {
    let (_, g) = app
        .post(
            "/api/v1/protection-groups",
            &json!({
                "name": "Billing",
                "primary": { "account_id": "111111111111", "region": "us-east-1" },
                "dr": { "account_id": "222222222222", "region": "us-west-2" },
                "selection": { "kind": "tags", "tags": { "app": "billing" } }
            }),
        )
        .await;
    let id = g["id"].as_str().unwrap().to_owned();
    let report = app.match_group(&id).await;
    assert_eq!(app.accept_ready(&id, &report).await.0, StatusCode::CREATED);
    assert_eq!(
        app.post(&format!("/api/v1/protection-groups/{id}/configure-allow-launching"), &json!({})).await.0,
        StatusCode::OK
    );
    let (status, plan) =
        app.post("/api/v1/recovery-plans", &json!({ "name": "Billing", "protection_group_ids": [id] })).await;
    assert_eq!(status, StatusCode::CREATED, "{plan}");
    plan["id"].as_str().unwrap().to_owned()
}

/// Steps the runner as the background loop would, moving the simulated clock 30 s a step.
pub async fn drive(app: &TestApp, id: &str) -> Value {
    for _ in 0..200 {
        let step = app.services.advance_execution(id, "test-runner", &Default::default()).await.unwrap();
        if step == engine::executions::Step::Done {
            break;
        }
        app.simulator.clock().advance(30_000);
    }
    app.get(&format!("/api/v1/executions/{id}/allow-launching/status")).await.1
}

#[tokio::test]
async fn a_drill_runs_every_wave_to_verified_servers_and_reports_its_rto() {
    let app = spawn_app().await;
    let plan = billing_plan(&app).await;
    let (status, exec) = app
        .post(
            "/api/v1/executions/allow-launching/failover",
            &json!({ "plan_id": plan, "mode": "drill", "acknowledge_warnings": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{exec}");
    let id = exec["id"].as_str().unwrap();
    let progress = drive(&app, id).await;
    assert_eq!(progress["phase"], "succeeded", "{progress}");
    assert_eq!(progress["progress_percent"], 100);
    let rto = progress["rto_ms"].as_i64().unwrap();
    assert!(rto > 0 && rto <= progress["rto_target_ms"].as_i64().unwrap(), "{progress}");
    assert!(progress["waves"].as_array().unwrap().iter().all(|w| w["verified"] == w["servers"]));
    // The drill returned its standbys to standby, so the plan runs again; DRS's swapped-out volumes are listed.
    let (status, again) = app
        .post(
            "/api/v1/executions/allow-launching/failover",
            &json!({ "plan_id": plan, "mode": "drill", "acknowledge_warnings": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    let (status, volumes) = app.get("/api/v1/swapped-volumes").await;
    assert_eq!(status, StatusCode::OK);
    let volumes = volumes["volumes"].as_array().unwrap();
    assert!(!volumes.is_empty() && volumes.iter().all(|v| v["deletable"] == false), "{volumes:?}");
    // Deleted only once the retention rule allows it, and recorded.
    let first = volumes[0]["volume"]["volume_id"].as_str().unwrap().to_owned();
    let (status, body) = app.delete(&format!("/api/v1/swapped-volumes/{first}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["fields"][0]["code"], "RETENTION_NOT_OVER", "{body}");
    app.simulator.clock().advance(15 * 24 * 3_600_000);
    let (status, _) = app.delete(&format!("/api/v1/swapped-volumes/{first}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, after) = app.get("/api/v1/swapped-volumes").await;
    assert!(after["volumes"].as_array().unwrap().iter().all(|v| v["volume"]["volume_id"] != first.as_str()));
    let (_, audit) = app.get("/api/v1/audit?action=aws.ec2.DeleteVolume").await;
    assert_eq!(audit["entries"][0]["target"], first.as_str());
}

#[tokio::test]
async fn the_event_stream_follows_an_execution_until_it_ends() {
    let app = spawn_app().await;
    let plan = billing_plan(&app).await;
    let (_, exec) = app
        .post(
            "/api/v1/executions/allow-launching/failover",
            &json!({ "plan_id": plan, "mode": "drill", "acknowledge_warnings": true }),
        )
        .await;
    let id = exec["id"].as_str().unwrap().to_owned();
    let mut stream = app.client.get(app.url(&format!("/api/v1/executions/{id}/events"))).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let runner = {
        let (services, clock, id) = (app.services.clone(), app.simulator.clock(), id.clone());
        tokio::spawn(async move {
            for _ in 0..200 {
                let step = services.advance_execution(&id, "test-runner", &Default::default()).await.unwrap();
                if step == engine::executions::Step::Done {
                    break;
                }
                clock.advance(30_000);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
    };
    let mut text = String::new();
    let read = async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read).await.expect("the stream ends with the execution");
    runner.await.unwrap();
    let phases: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).unwrap()["status"]["phase"].as_str().unwrap().to_owned())
        .collect();
    assert!(text.contains("event: execution"), "{text}");
    assert!(phases.len() >= 2 && phases[0] == "running", "{phases:?}");
    assert_eq!(phases.last().map(String::as_str), Some("succeeded"), "{phases:?}");
    let (status, body) = app.get("/api/v1/executions/exec-0000000000000000/events").await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "EXECUTION_NOT_FOUND"));
}

#[tokio::test]
async fn a_recovery_needs_a_comment_and_a_second_person() {
    let app = spawn_app().await;
    let plan = billing_plan(&app).await;
    let viewer = client_with_token(&app.token_for("vic", "viewer").await);
    let r = viewer
        .post(app.url("/api/v1/executions/allow-launching/failover"))
        .json(&json!({ "plan_id": plan, "mode": "recovery" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (status, exec) = app
        .post(
            "/api/v1/executions/allow-launching/failover",
            &json!({ "plan_id": plan, "mode": "recovery", "acknowledge_warnings": true }),
        )
        .await;
    assert_eq!((status, exec["state"]["phase"].as_str()), (StatusCode::CREATED, Some("awaiting_approval")));
    let id = exec["id"].as_str().unwrap();
    let path = format!("/api/v1/executions/{id}/approve");
    let (status, body) = app.post(&path, &json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "VALIDATION_FAILED"), "a comment is required");
    let (status, body) = app.post(&path, &json!({ "comment": "looks fine" })).await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "SELF_APPROVAL"), "the requester (admin) cannot approve");
    let bob = client_with_token(&app.token_for("bob", "approver").await);
    let r = bob.post(app.url(&path)).json(&json!({ "comment": "region down, go" })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let progress = drive(&app, id).await;
    assert_eq!(progress["phase"], "succeeded", "{progress}");
    let (_, audit) = app.get("/api/v1/audit?action=execution.approve").await;
    assert_eq!(audit["entries"][0]["details"]["comment"], "region down, go");
    let (status, body) = app.get("/api/v1/executions/exec-0000000000000000").await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "EXECUTION_NOT_FOUND"));
}

#[tokio::test]
async fn a_decision_on_a_request_that_no_longer_waits_for_it_is_refused_and_never_audited_as_done() {
    let app = spawn_app().await;
    let plan = billing_plan(&app).await;
    let bob = client_with_token(&app.token_for("bob", "approver").await);
    let decide = |id: &str, what: &str| {
        let (bob, url) = (bob.clone(), app.url(&format!("/api/v1/executions/{id}/{what}")));
        async move {
            let r = bob.post(url).json(&json!({ "comment": "decided" })).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or_default())
        }
    };
    let request = || async {
        let (status, exec) = app
            .post(
                "/api/v1/executions/allow-launching/failover",
                &json!({ "plan_id": plan, "mode": "recovery", "acknowledge_warnings": true }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{exec}");
        exec["id"].as_str().unwrap().to_owned()
    };
    let refused_audit = |id: String| {
        let app = &app;
        async move {
            let (_, audit) = app.get(&format!("/api/v1/audit?target={id}&action=execution.")).await;
            audit["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["action"].clone(), e["outcome"].clone()))
                .collect::<Vec<_>>()
        }
    };

    // Rejected, then approved: refused with the phase, and the approval is audited as refused.
    let rejected = request().await;
    assert_eq!(decide(&rejected, "reject").await.0, StatusCode::OK);
    let (status, body) = decide(&rejected, "approve").await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "NOT_AWAITING_APPROVAL"), "{body}");
    assert_eq!(body["error"]["details"]["phase"], "rejected", "{body}");
    let (status, body) = decide(&rejected, "reject").await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "NOT_AWAITING_APPROVAL"), "{body}");
    let (_, e) = app.get(&format!("/api/v1/executions/{rejected}")).await;
    assert_eq!((e["state"]["phase"].as_str(), &e["state"]["approved_by"]), (Some("rejected"), &Value::Null));
    let entries = refused_audit(rejected.clone()).await;
    assert!(entries.contains(&(json!("execution.approve"), json!("refused"))), "{entries:?}");
    assert!(!entries.contains(&(json!("execution.approve"), json!("ok"))), "{entries:?}");
    let (status, body) = app.post(&format!("/api/v1/executions/{rejected}/cancel"), &json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "EXECUTION_ENDED"), "{body}");

    // Expired: past its deadline the request is refused even before the runner has marked it.
    let expired = request().await;
    app.simulator.clock().advance(61 * 60_000);
    let (status, body) = decide(&expired, "approve").await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "NOT_AWAITING_APPROVAL"), "{body}");
    assert_eq!(body["error"]["details"]["phase"], "expired");
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"), "{body}");
    let (_, e) = app.get(&format!("/api/v1/executions/{expired}")).await;
    assert!(e["state"]["started_at"].is_null(), "nothing started: {e}");
    drive(&app, &expired).await;
    let (_, e) = app.get(&format!("/api/v1/executions/{expired}")).await;
    assert_eq!(e["state"]["phase"], "expired");

    // Approved and running: a second approval, or a gate release without a gate, is refused.
    let started = request().await;
    assert_eq!(decide(&started, "approve").await.0, StatusCode::OK);
    let (status, body) = decide(&started, "approve").await;
    assert_eq!(
        (status, code(&body), &body["error"]["details"]["phase"]),
        (StatusCode::CONFLICT, "NOT_AWAITING_APPROVAL", &json!("running")),
        "{body}"
    );
    let (status, body) = decide(&started, "resume").await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "NOT_AWAITING_GATE"), "{body}");
    let approvals = refused_audit(started.clone()).await;
    assert_eq!(
        approvals.iter().filter(|(a, o)| a == "execution.approve" && o == "ok").count(),
        1,
        "one approval took effect: {approvals:?}"
    );
}

#[tokio::test]
async fn an_executions_stakeholder_page_shows_progress_and_nothing_internal() {
    let app = spawn_app().await;
    let plan = billing_plan(&app).await;
    let (status, body) = app
        .post(
            "/api/v1/share-links",
            &json!({ "name": "Bridge", "scope": { "kind": "execution", "execution_id": "exec-0000000000000000" } }),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "VALIDATION_FAILED"), "no such execution");
    let (_, exec) = app
        .post(
            "/api/v1/executions/allow-launching/failover",
            &json!({ "plan_id": plan, "mode": "recovery", "kind": "planned", "acknowledge_warnings": true }),
        )
        .await;
    let id = exec["id"].as_str().unwrap().to_owned();
    let (status, link) = app
        .post(
            "/api/v1/share-links",
            &json!({ "name": "Billing failover", "message": "Migration tonight", "scope": { "kind": "execution", "execution_id": id } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert_eq!(app.approve_as_bob(&id, "go").await, StatusCode::OK);
    drive(&app, &id).await;

    let token = link["token"].as_str().unwrap();
    let status_json: Value =
        app.anonymous.get(app.url(&format!("/api/v1/share/{token}"))).send().await.unwrap().json().await.unwrap();
    let x = &status_json["execution"];
    assert_eq!(
        (x["plan"].as_str(), x["phase"].as_str(), x["drill"].as_bool()),
        (Some("Billing"), Some("succeeded"), Some(false))
    );
    assert_eq!(x["progress_percent"], 100);
    assert!(x["waves"].as_array().unwrap().iter().all(|w| w["verified"] == w["servers"]));
    let html = app.anonymous.get(app.url(link["path"].as_str().unwrap())).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Failover: Billing") && html.contains("Migration tonight"), "{html}");
    for text in [html.as_str(), &status_json.to_string()] {
        assert_eq!(crate::security::leaks(text), Vec::<String>::new());
        assert!(!text.contains("admin") && !text.contains("bob"), "no user names");
    }
}

#[tokio::test]
async fn a_recovery_fails_back_through_the_api_with_a_round_trip_proof() {
    let app = spawn_app().await;
    let plan = billing_plan(&app).await;
    let approve = |id: String| {
        let app = &app;
        async move { app.approve_as_bob(&id, "go").await }
    };
    let (_, exec) = app
        .post(
            "/api/v1/executions/allow-launching/failover",
            &json!({ "plan_id": plan, "mode": "recovery", "acknowledge_warnings": true }),
        )
        .await;
    let recovery = exec["id"].as_str().unwrap().to_owned();
    assert_eq!(approve(recovery.clone()).await, StatusCode::OK);
    drive(&app, &recovery).await;

    let (status, report) = app
        .post("/api/v1/executions/allow-launching/failback?dry_run=true", &json!({ "execution_id": recovery }))
        .await;
    assert_eq!((status, &report["ready"]), (StatusCode::OK, &json!(false)), "{report}");
    assert!(report["problems"].as_array().unwrap().iter().any(|p| p["code"] == "ORIGINAL_NOT_STOPPED"));
    let (_, report) = app
        .post(
            "/api/v1/executions/allow-launching/failback?dry_run=true",
            &json!({ "execution_id": recovery, "stop_originals": true, "tag_originals": true }),
        )
        .await;
    assert_eq!(report["ready"], true, "{report}");
    assert!(!report["going"].as_array().unwrap().is_empty() && report["staying"] == json!([]), "{report}");
    let (status, body) =
        app.post("/api/v1/executions/allow-launching/failback", &json!({ "execution_id": recovery })).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "VALIDATION_FAILED"));
    let codes: Vec<&str> =
        body["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"ORIGINAL_NOT_STOPPED"), "{codes:?}");
    let (status, back) = app
        .post(
            "/api/v1/executions/allow-launching/failback",
            &json!({ "execution_id": recovery, "stop_originals": true, "tag_originals": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{back}");
    assert_eq!(back["state"]["mode"], "failback");
    let id = back["id"].as_str().unwrap().to_owned();
    assert_eq!(approve(id.clone()).await, StatusCode::OK);
    let limits = domain::execution::Limits::default();
    let step = || app.services.advance_execution(&id, "test-runner", &limits);
    // Home, then abandon the re-arm halfway, and ask for it again.
    for _ in 0..600 {
        step().await.unwrap();
        let (_, e) = app.get(&format!("/api/v1/executions/{id}")).await;
        if e["state"]["phase"] == "cleaning_up" {
            break;
        }
        app.simulator.clock().advance(30_000);
    }
    let (status, _) = app.post(&format!("/api/v1/executions/{id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, e) = app.get(&format!("/api/v1/executions/{id}")).await;
    assert_eq!(e["state"]["phase"], "succeeded", "abandoned: it ends with its outcome");
    let (status, e) = app.post(&format!("/api/v1/executions/{id}/re-arm"), &json!({})).await;
    assert_eq!((status, e["state"]["phase"].as_str()), (StatusCode::OK, Some("cleaning_up")), "{e}");
    for _ in 0..600 {
        if step().await.unwrap() == engine::executions::Step::Done {
            break;
        }
        app.simulator.clock().advance(30_000);
    }
    let (_, e) = app.get(&format!("/api/v1/executions/{id}")).await;
    assert_eq!(e["state"]["phase"], "succeeded");
    let servers: Vec<&Value> =
        e["state"]["waves"].as_array().unwrap().iter().flat_map(|w| w["servers"].as_array().unwrap()).collect();
    assert!(servers.iter().all(|s| s["cleaned_at"].is_i64()), "{e}");
    let (status, body) = app.post(&format!("/api/v1/executions/{id}/re-arm"), &json!({})).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "VALIDATION_FAILED"), "nothing left to re-arm");
    let (status, proof) = app.get(&format!("/api/v1/executions/{id}/round-trip-proof")).await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let rows = proof["servers"].as_array().unwrap();
    assert!(!rows.is_empty() && rows.iter().all(|r| r["verdict"] == "identical"), "{proof}");
    assert!(
        rows.iter().all(|r| r["after_failback"] == r["before_failover"] && r["after_failover"] != r["before_failover"])
    );
    let (status, body) = app.get(&format!("/api/v1/executions/{recovery}/round-trip-proof")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "VALIDATION_FAILED"),
        "a recovery has no proof of its own"
    );
}
