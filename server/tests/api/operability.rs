//! Operability: the Prometheus scrape after a failover, webhook delivery with retries, and the evidence
//! report of a drill that lost a server.

use crate::executions::{billing_plan, drive};
use crate::helpers::{TestApp, client_with_token, code, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The value of the one sample of `metric` whose labels contain every one of `labels`.
fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) || l.starts_with(&format!("{metric} ")))
        .find(|l| labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A disaster failover of the billing plan, approved by a second person, driven to its end.
async fn approved_failover(app: &TestApp) -> String {
    let plan = billing_plan(app).await;
    let (status, exec) = app
        .post(
            "/api/v1/executions/allow-launching/failover",
            &json!({ "plan_id": plan, "mode": "recovery", "acknowledge_warnings": true }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{exec}");
    let id = exec["id"].as_str().unwrap().to_owned();
    app.simulator.clock().advance(90_000);
    assert_eq!(app.approve_as_bob(&id, "region down").await, StatusCode::OK);
    id
}

#[tokio::test]
async fn a_prometheus_scrape_after_a_simulated_failover_shows_its_rto() {
    let app = spawn_app().await;
    let id = approved_failover(&app).await;
    let progress = drive(&app, &id).await;
    assert_eq!(progress["phase"], "succeeded", "{progress}");
    let verified: u64 = progress["waves"].as_array().unwrap().iter().map(|w| w["verified"].as_u64().unwrap()).sum();
    // Without a token: refused; with any role's token: the text format.
    let r = app.anonymous.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let viewer = client_with_token(&app.token_for("vic", "viewer").await);
    let r = viewer.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    let exec = format!("execution_id=\"{id}\"");
    let rto = sample(&text, "roundtrip_execution_rto_seconds", &[&exec, "plan=\"Billing\"", "mode=\"recovery\""])
        .unwrap_or_else(|| panic!("no RTO of {id} in\n{text}"));
    #[allow(clippy::cast_precision_loss)]
    let expected = progress["rto_ms"].as_i64().unwrap() as f64 / 1000.0;
    assert!((rto - expected).abs() < 1e-9, "{rto} vs {expected}");
    assert_eq!(sample(&text, "roundtrip_execution_rto_target_seconds", &[&exec]), Some(1800.0));
    assert!(sample(&text, "roundtrip_wave_rto_seconds", &[&exec]).is_some(), "{text}");
    assert_eq!(sample(&text, "roundtrip_executions", &["state=\"succeeded\"", "mode=\"recovery\""]), Some(1.0));
    #[allow(clippy::cast_precision_loss)]
    let verified = verified as f64;
    assert_eq!(
        sample(&text, "roundtrip_execution_servers", &["result=\"verified\"", "mode=\"recovery\""]),
        Some(verified)
    );
    assert_eq!(
        sample(&text, "roundtrip_execution_servers", &["result=\"launched\"", "mode=\"recovery\""]),
        Some(verified)
    );
    assert_eq!(sample(&text, "roundtrip_execution_servers", &["result=\"failed\"", "mode=\"recovery\""]), Some(0.0));
    // Approved 90 s after the request.
    assert_eq!(sample(&text, "roundtrip_approval_wait_seconds_count", &[]), Some(1.0));
    // (The simulated clock also runs on its own while the test runs.)
    let wait = sample(&text, "roundtrip_approval_wait_seconds_sum", &[]).unwrap();
    assert!((90.0..120.0).contains(&wait), "{wait}");
    assert!(
        sample(&text, "roundtrip_cloud_api_calls_total", &["operation=\"StartRecovery\"", "outcome=\"ok\""]).unwrap()
            >= 1.0
    );
    assert!(sample(&text, "roundtrip_cloud_api_calls_total", &["operation=\"DescribeJobs\""]).unwrap() >= 1.0);
    assert!(sample(&text, "roundtrip_readiness_verdict", &["group=\"Billing\""]).is_some(), "{text}");
    assert!(
        sample(&text, "roundtrip_replication_lag_servers", &["group=\"Billing\"", "le=\"+Inf\""]).unwrap() >= verified
    );
    let approve = "route=\"/api/v1/executions/{execution_id}/approve\"";
    assert_eq!(sample(&text, "roundtrip_http_request_duration_seconds_count", &[approve, "status=\"200\""]), Some(1.0));
    // The unauthenticated listener of `metrics_listen` serves the same text.
    use tower::ServiceExt;
    let r = server::metrics_router(app.services.clone())
        .oneshot(axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains(&format!("roundtrip_execution_rto_seconds{{{exec}")));
}

/// A webhook receiver on 127.0.0.1 that answers 500 to its first `failures` requests, then 200; it keeps
/// every request (accepted or not) in order.
struct Receiver {
    url: String,
    requests: Arc<Mutex<Vec<(StatusCode, axum::http::HeaderMap, Value)>>>,
}

async fn receiver(failures: usize) -> Receiver {
    let requests: Arc<Mutex<Vec<(StatusCode, axum::http::HeaderMap, Value)>>> = Arc::default();
    let seen = requests.clone();
    let app = axum::Router::new().route(
        "/hook/secret-path",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                let mut r = seen.lock().unwrap();
                let status = if r.len() < failures { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
                let mut h = headers.clone();
                h.insert("x-test-raw-body", axum::http::HeaderValue::from_bytes(&body).unwrap());
                r.push((status, h, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                status
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook/secret-path", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    Receiver { url, requests }
}

#[tokio::test]
async fn a_webhook_that_fails_twice_then_accepts_receives_every_notice_once_in_order() {
    let app = spawn_app_with(|s| {
        s.notifications.initial_backoff_ms = 20;
        s.notifications.max_attempts = 5;
    })
    .await;
    let plan = billing_plan(&app).await;
    let rx = receiver(2).await;
    let secret = "a signing secret of some length";
    let (status, hook) = app.post("/api/v1/webhooks", &json!({ "name": "ops", "url": rx.url, "secret": secret })).await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    // Operators see it, but never its URL path or secret.
    let viewer = client_with_token(&app.token_for("vic", "viewer").await);
    let listed = viewer.get(app.url("/api/v1/webhooks")).send().await.unwrap().text().await.unwrap();
    assert!(listed.contains("\"ops\"") && !listed.contains("secret-path") && !listed.contains(secret), "{listed}");
    let r = viewer.post(app.url("/api/v1/webhooks")).json(&json!({ "name": "x", "url": rx.url })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "only admins add webhooks");

    let (_, exec) = app
        .post(
            "/api/v1/executions/allow-launching/failover",
            &json!({ "plan_id": plan, "mode": "drill", "acknowledge_warnings": true }),
        )
        .await;
    let id = exec["id"].as_str().unwrap().to_owned();
    let progress = drive(&app, &id).await;
    assert_eq!(progress["phase"], "succeeded", "{progress}");
    let waves = progress["waves"].as_array().unwrap().len();
    // One notice requested, two per wave, one at the end: wait until all are in (delivery runs on its own).
    let expected = 2 + 2 * waves;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let accepted = rx.requests.lock().unwrap().iter().filter(|r| r.0 == StatusCode::OK).count();
        if accepted >= expected {
            break;
        }
        assert!(Instant::now() < deadline, "only {accepted} of {expected} notices arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let requests = rx.requests.lock().unwrap().clone();
    // The first notice failed twice and was then delivered: the same notice three times, nothing else
    // in between.
    let ids: Vec<String> = requests.iter().map(|r| r.2["id"].as_str().unwrap().to_owned()).collect();
    let first = format!("{id}:execution_requested");
    assert_eq!(ids[..3], [first.clone(), first.clone(), first.clone()]);
    assert_eq!(requests[0].0, StatusCode::INTERNAL_SERVER_ERROR);
    let accepted: Vec<&Value> = requests.iter().filter(|r| r.0 == StatusCode::OK).map(|r| &r.2).collect();
    let kinds: Vec<&str> = accepted.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    let mut want = vec!["execution_requested"];
    for _ in 0..waves {
        want.extend(["wave_started", "wave_finished"]);
    }
    want.push("execution_finished");
    assert_eq!(kinds, want, "delivered once each, in the order they happened");
    let mut unique: Vec<&str> = accepted.iter().map(|n| n["id"].as_str().unwrap()).collect();
    unique.dedup();
    assert_eq!(unique.len(), accepted.len());
    assert_eq!(accepted.last().unwrap()["details"]["outcome"], "succeeded");
    assert_eq!(accepted.last().unwrap()["details"]["rto_ms"], progress["rto_ms"]);
    // Every body is signed with the secret.
    for (_, h, _) in &requests {
        let raw = h["x-test-raw-body"].as_bytes();
        let mac = engine::audit::hex(&engine::notify::hmac_sha256(secret.as_bytes(), raw));
        assert_eq!(h["x-roundtrip-signature"].to_str().unwrap(), format!("sha256={mac}"));
    }
    // The console shows the two failures.
    let (_, list) = app.get("/api/v1/webhooks").await;
    let st = &list["webhooks"][0]["status"];
    assert_eq!((st["delivered"].as_u64(), st["failed_attempts"].as_u64()), (Some(expected as u64), Some(2)), "{st}");
    let failures = st["recent_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2);
    assert!(failures.iter().all(|f| f["error"] == "the receiver answered HTTP 500" && f["gave_up"] == false), "{st}");
    assert_eq!(failures[1]["attempt"], 1);
}

#[tokio::test]
async fn a_webhook_that_never_accepts_is_given_up_on_and_shown_failing() {
    let app = spawn_app_with(|s| {
        s.notifications.initial_backoff_ms = 10;
        s.notifications.max_attempts = 3;
    })
    .await;
    let rx = receiver(usize::MAX).await;
    let (_, hook) = app.post("/api/v1/webhooks", &json!({ "name": "down", "url": rx.url, "format": "slack" })).await;
    let id = hook["id"].as_str().unwrap();
    let (status, _) = app.post(&format!("/api/v1/webhooks/{id}/test"), &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(20);
    let st = loop {
        let (_, list) = app.get("/api/v1/webhooks").await;
        let st = list["webhooks"][0]["status"].clone();
        if st["undelivered"] == 1 {
            break st;
        }
        assert!(Instant::now() < deadline, "never gave up: {st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((st["failed_attempts"].as_u64(), st["delivered"].as_u64()), (Some(3), Some(0)));
    assert_eq!(st["recent_failures"][0]["gave_up"], true);
    // Slack-compatible body.
    let body = rx.requests.lock().unwrap()[0].2.clone();
    assert!(body["text"].as_str().unwrap().contains("Test notice") && body["blocks"].is_array(), "{body}");
    // Deleting it: audited; an unknown one is a 404.
    assert_eq!(app.delete(&format!("/api/v1/webhooks/{id}")).await.0, StatusCode::NO_CONTENT);
    let (status, body) = app.delete(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "WEBHOOK_NOT_FOUND"));
    let (status, body) = app.post("/api/v1/webhooks", &json!({ "name": "bad", "url": "ftp://x/y" })).await;
    assert_eq!(
        (status, body["error"]["details"]["fields"][0]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_URL"))
    );
}

#[tokio::test]
async fn the_evidence_report_of_a_drill_with_a_failed_server_says_what_failed_and_how_it_was_handled() {
    let app = spawn_app().await;
    let plan = billing_plan(&app).await;
    let (_, pairs) = app.get("/api/v1/recovery-plans").await;
    assert_eq!(pairs["recovery_plans"][0]["id"], plan.as_str());
    let (_, exec) = app
        .post(
            "/api/v1/executions/allow-launching/failover",
            &json!({ "plan_id": plan, "mode": "drill", "acknowledge_warnings": true }),
        )
        .await;
    let id = exec["id"].as_str().unwrap().to_owned();
    let victim = exec["state"]["waves"][0]["servers"][0].clone();
    let victim_id = domain::ids::SourceServerId::parse(victim["source_server_id"].as_str().unwrap()).unwrap();
    app.simulator.set_fault(
        &victim_id,
        Some(sim::world::Fault::LaunchFails { message: "disk <boom> & gone (injected)".into() }),
    );
    let progress = drive(&app, &id).await;
    assert_eq!(progress["phase"], "failed", "{progress}");

    let (status, r) = app.get(&format!("/api/v1/executions/{id}/report")).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(
        (r["execution_id"].as_str(), r["mode"].as_str(), r["outcome"].as_str()),
        (Some(id.as_str()), Some("drill"), Some("failed"))
    );
    assert_eq!((r["requested_by"].as_str(), r["failed"].as_u64()), (Some("admin"), Some(1)));
    assert_eq!(r["rto"]["met"], false);
    assert!(r["rto"]["achieved_ms"].is_null(), "{}", r["rto"]);
    let ra = &r["readiness_at_start"];
    assert_eq!(ra["pairs"].as_u64(), r["servers"].as_u64(), "{ra}");
    assert_eq!(r["acknowledged_warnings"], true);
    let server = r["waves"][0]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source_server_id"] == victim["source_server_id"])
        .unwrap();
    assert_eq!(server["state"], "failed");
    assert!(server["error"].as_str().unwrap().contains("injected"), "{server}");
    let errors = r["errors"].as_array().unwrap();
    let e = errors
        .iter()
        .find(|e| e["subject"].as_str().unwrap().contains(victim["source_server_id"].as_str().unwrap()))
        .unwrap();
    assert!(
        e["message"].as_str().unwrap().contains("disk <boom>")
            && e["handling"].as_str().unwrap().contains("later waves"),
        "{e}"
    );
    let audit = &r["audit"];
    assert!(audit["chain_intact"] == true && audit["entries"].as_u64().unwrap() >= 3, "{audit}");
    assert!(
        audit["first_seq"].as_u64() < audit["last_seq"].as_u64() && audit["first_hash"].as_str().unwrap().len() == 64
    );
    assert!(audit["aws_mutations"].as_u64().unwrap() >= 1, "the StartRecovery calls are covered: {audit}");
    assert!(r["timeline"].as_array().unwrap().iter().any(|l| l["failure"] == true));

    // The printable page: self-contained, escaped, and says the same.
    let resp = app
        .client
        .get(app.url(&format!("/api/v1/executions/{id}/report?format=html&download=true")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.starts_with("default-src 'none'; style-src 'unsafe-inline'"), "{csp}");
    assert!(resp.headers()["content-disposition"].to_str().unwrap().contains(&format!("roundtrip-report-{id}.html")));
    let html = resp.text().await.unwrap();
    assert!(html.contains("Drill of Billing — evidence report") && html.contains("RTO not achieved"), "{html}");
    assert!(html.contains("disk &lt;boom&gt; &amp; gone (injected)") && !html.contains("<boom>"));
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
    assert!(html.contains(audit["last_hash"].as_str().unwrap()));

    // The drill history lists it as missed; recoveries are filtered out; bad input is a 400.
    let (_, h) = app.get("/api/v1/reports?mode=drill").await;
    assert_eq!(h["reports"][0]["execution_id"], id.as_str());
    assert_eq!((h["reports"][0]["met_target"].as_bool(), h["reports"][0]["failed"].as_u64()), (Some(false), Some(1)));
    let (_, h) = app.get("/api/v1/reports?mode=recovery").await;
    assert_eq!(h["reports"].as_array().unwrap().len(), 0);
    let (status, _) = app.get(&format!("/api/v1/executions/{id}/report?format=pdf")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = app.get("/api/v1/executions/exec-0000000000000000/report").await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "EXECUTION_NOT_FOUND"));
}

#[tokio::test]
async fn a_receiver_that_drops_the_connection_is_reported_without_the_secret_url() {
    let app = spawn_app_with(|s| {
        s.notifications.initial_backoff_ms = 10;
        s.notifications.max_attempts = 2;
    })
    .await;
    // Accepts each connection and closes it at once, without an answer.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/services/T0/B0/the-secret-path", l.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = l.accept().await {
            drop(socket);
        }
    });
    let (_, hook) = app.post("/api/v1/webhooks", &json!({ "name": "dropper", "url": url })).await;
    let id = hook["id"].as_str().unwrap();
    assert_eq!(app.post(&format!("/api/v1/webhooks/{id}/test"), &json!({})).await.0, StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = app.client.get(app.url("/api/v1/webhooks")).send().await.unwrap().text().await.unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        if v["webhooks"][0]["status"]["undelivered"] == 1 {
            break text;
        }
        assert!(Instant::now() < deadline, "never gave up: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(text.contains("the request failed") && !text.contains("the-secret-path"), "{text}");
}
