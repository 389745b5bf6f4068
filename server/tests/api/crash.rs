//! The crash test: the real `roundtrip` binary runs a drill, is killed with SIGKILL in the middle of a
//! wave, and is started again on the same data folder. The execution must finish, and every server must
//! have been launched exactly once (the simulated world, which persists in the data folder like AWS would,
//! counts the jobs each server took part in).

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "crash-test-passphrase";

/// A server process on `port` over `data`: virtual time 600× real, a runner pass every 200 ms, leases
/// that expire 2 s after the last renewal.
pub fn serve(data: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_roundtrip"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--speed", "600"])
        .arg("--data-dir")
        .arg(data)
        .env("ROUNDTRIP_ADMIN_PASSWORD", PASSWORD)
        .env("ROUNDTRIP_RUNNER_INTERVAL_MS", "200")
        .env("ROUNDTRIP_LEASE_MS", "2000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the roundtrip binary starts")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A signed-in REST client of a server process.
pub struct Client {
    http: reqwest::Client,
    base: String,
    csrf: String,
}

impl Client {
    /// Waits for the server to answer, then signs in as the admin.
    pub async fn connect(port: u16) -> Self {
        Self::sign_in(port, "admin", PASSWORD).await
    }

    /// Waits for the server to answer, then signs in as `username`.
    pub async fn sign_in(port: u16, username: &str, password: &str) -> Self {
        let http = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(120);
        while http.get(format!("{base}/api/v1/health")).send().await.is_err() {
            assert!(Instant::now() < deadline, "the server never answered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = http
            .post(format!("{base}/api/v1/session"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let csrf = r.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_owned();
        Self { http, base, csrf }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    pub async fn get(&self, path: &str) -> Value {
        self.http.get(format!("{}{path}", self.base)).send().await.unwrap().json().await.unwrap()
    }
}

/// A protection group of the billing servers, its ready pairs accepted and configured, and a plan of it;
/// returns the plan id.
pub async fn billing_plan(c: &Client) -> String {
    let group = c
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
    let g = group["id"].as_str().unwrap();
    let report = c.post("/api/v1/drs/instances/match", &json!({ "protection_group_id": g })).await;
    let pairs: Vec<Value> = report["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "ready")
        .map(|p| json!({ "source_server_id": p["source_server_id"], "standby_instance_id": p["standby_instance_id"] }))
        .collect();
    assert!(!pairs.is_empty(), "{report}");
    c.post(&format!("/api/v1/protection-groups/{g}/instance-pairs"), &json!({ "pairs": pairs })).await;
    c.post(&format!("/api/v1/protection-groups/{g}/configure-allow-launching"), &json!({})).await;
    let plan = c.post("/api/v1/recovery-plans", &json!({ "name": "Billing", "protection_group_ids": [g] })).await;
    plan["id"].as_str().unwrap().to_owned()
}

/// How many DRS jobs each source server took part in, from the simulated world's state file.
fn launches(data: &Path) -> HashMap<String, usize> {
    let saved: Value = serde_json::from_slice(&std::fs::read(data.join("sim-state.json")).unwrap()).unwrap();
    let mut n = HashMap::new();
    for job in saved["world"]["launch_jobs"].as_array().unwrap() {
        for s in job["job"]["servers"].as_array().unwrap() {
            *n.entry(s["source_server_id"].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    n
}

#[tokio::test]
async fn a_server_killed_mid_wave_resumes_the_execution_and_launches_nothing_twice() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut first = serve(data.path(), port);
    let c = Client::connect(port).await;
    let plan = billing_plan(&c).await;
    let exec = c
        .post(
            "/api/v1/executions/allow-launching/failover",
            &json!({ "plan_id": plan, "mode": "drill", "acknowledge_warnings": true }),
        )
        .await;
    let id = exec["id"].as_str().unwrap().to_owned();
    let servers: usize =
        exec["state"]["waves"].as_array().unwrap().iter().map(|w| w["servers"].as_array().unwrap().len()).sum();

    // Kill it while the second wave's servers are in flight: jobs started, not all launched.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let e = c.get(&format!("/api/v1/executions/{id}")).await;
        let wave = &e["state"]["waves"][1]["servers"];
        let in_flight =
            wave.as_array().is_some_and(|s| s.iter().any(|r| r["state"] == "launching" || r["state"] == "starting"));
        if e["state"]["current_wave"] == 1 && in_flight {
            break;
        }
        assert!(Instant::now() < deadline, "the second wave never started: {e}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().unwrap(); // SIGKILL: no shutdown, no final save
    first.wait().unwrap();
    let before = launches(data.path());
    assert!(!before.is_empty() && before.len() < servers, "killed mid-way: {before:?}");

    let mut second = serve(data.path(), port);
    let c = Client::connect(port).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let e = c.get(&format!("/api/v1/executions/{id}")).await;
        if e["state"]["ended_at"].is_i64() {
            break e;
        }
        assert!(Instant::now() < deadline, "the execution never finished after the restart: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(done["state"]["phase"], "succeeded", "{done}");
    let after = launches(data.path());
    assert_eq!(after.len(), servers, "every server launched: {after:?}");
    assert!(after.values().all(|n| *n == 1), "a server launched twice: {after:?}");
}
