//! The unchanged production binary with cloud `aws`: against `roundtrip sim serve` (the simulated estate
//! over the AWS protocols) it runs a failover and a failback; and two server processes sharing one
//! DynamoDB table (moto) and one `sim serve` hand an execution over when one of them is killed, without a
//! second job for any server.

use crate::crash::{Client, PASSWORD, billing_plan, free_port};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the process when dropped, so a failing test leaves nothing behind.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sim_serve(data: &Path, port: u16) -> Process {
    Process(
        Command::new(env!("CARGO_BIN_EXE_roundtrip"))
            .args(["sim", "serve", "--listen", &format!("127.0.0.1:{port}"), "--speed", "600"])
            .args(["--external-id", "binary-test-external-id"])
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sim serve starts"),
    )
}

/// The environment of `roundtrip` with cloud `aws` at the simulated estate: both accounts through roles
/// with an External ID, credentials from the environment as in production.
fn aws_env(sim_port: u16) -> Vec<(String, String)> {
    let role = |id: &str, name: &str| {
        json!({ "account_id": id, "name": name, "role_arn": format!("arn:aws:iam::{id}:role/RoundtripAccess"),
                "external_id": "binary-test-external-id", "regions": ["us-east-1", "us-west-2"] })
    };
    let accounts = json!([role("111111111111", "production"), role("222222222222", "recovery")]);
    [
        ("ROUNDTRIP_CLOUD", "aws".to_owned()),
        ("ROUNDTRIP_AWS_ENDPOINT_URL", format!("http://127.0.0.1:{sim_port}")),
        ("ROUNDTRIP_AWS_ACCOUNTS", accounts.to_string()),
        ("ROUNDTRIP_AWS_INITIAL_BACKOFF_MS", "50".to_owned()),
        ("ROUNDTRIP_ADMIN_PASSWORD", PASSWORD.to_owned()),
        ("ROUNDTRIP_RUNNER_INTERVAL_MS", "200".to_owned()),
        // `sim serve` runs its virtual time faster than the server's wall clock.
        ("ROUNDTRIP_MIN_LAUNCH_MS", "0".to_owned()),
        ("ROUNDTRIP_MIN_REVERSE_SYNC_MS", "0".to_owned()),
        ("ROUNDTRIP_LEASE_MS", "2000".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// `roundtrip serve` on `port` over `data`, with `extra` variables.
fn serve_aws(sim_port: u16, data: &Path, port: u16, extra: &[(String, String)]) -> Process {
    Process(
        Command::new(env!("CARGO_BIN_EXE_roundtrip"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data)
            .env_remove("AWS_PROFILE")
            .envs(aws_env(sim_port))
            .envs(extra.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the roundtrip binary starts"),
    )
}

async fn ended(c: &Client, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let e = c.get(&format!("/api/v1/executions/{id}")).await;
        if e["state"]["ended_at"].is_i64() {
            return e;
        }
        assert!(Instant::now() < deadline, "{id} did not end: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A second person, an approver, signed in.
async fn approver(admin: &Client, port: u16) -> Client {
    admin
        .post(
            "/api/v1/users",
            &json!({ "username": "bob", "role": "approver", "password": "an approver one-time pass" }),
        )
        .await;
    let first = Client::sign_in(port, "bob", "an approver one-time pass").await;
    first
        .post(
            "/api/v1/session/password",
            &json!({ "current_password": "an approver one-time pass", "new_password": "an approver's own passphrase" }),
        )
        .await;
    Client::sign_in(port, "bob", "an approver's own passphrase").await
}

/// DRS `DescribeJobs` straight from the simulated estate, as the DR account: servers → jobs they were in.
async fn jobs_per_server(sim_port: u16) -> HashMap<String, usize> {
    let auth = "AWS4-HMAC-SHA256 Credential=ASIA2222222222220000/20261127/us-west-2/drs/aws4_request, SignedHeaders=host, Signature=0";
    let r: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{sim_port}/DescribeJobs"))
        .header("authorization", auth)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut n = HashMap::new();
    for j in r["items"].as_array().unwrap() {
        for s in j["participatingServers"].as_array().unwrap() {
            *n.entry(s["sourceServerID"].as_str().unwrap().to_owned()).or_default() += 1;
        }
    }
    n
}

#[tokio::test]
async fn the_production_binary_on_cloud_aws_fails_over_and_back_against_sim_serve() {
    let dir = tempfile::tempdir().unwrap();
    let (sim_port, port) = (free_port(), free_port());
    let _sim = sim_serve(&dir.path().join("sim"), sim_port);
    let _server = serve_aws(sim_port, &dir.path().join("server"), port, &[]);
    let admin = Client::connect(port).await;
    let overview = admin.get("/api/v1/estate").await;
    assert_eq!(overview["cloud"], "aws", "{overview}");
    let plan = billing_plan(&admin).await;
    let bob = approver(&admin, port).await;

    let recovery = admin
        .post(
            "/api/v1/executions/allow-launching/failover",
            &json!({ "plan_id": plan, "mode": "recovery", "kind": "disaster", "acknowledge_warnings": true }),
        )
        .await;
    let id = recovery["id"].as_str().unwrap().to_owned();
    bob.post(&format!("/api/v1/executions/{id}/approve"), &json!({ "comment": "region down" })).await;
    let done = ended(&admin, &id, Duration::from_secs(180)).await;
    assert_eq!(done["state"]["phase"], "succeeded", "{done}");

    let back = admin
        .post(
            "/api/v1/executions/allow-launching/failback",
            &json!({ "execution_id": id, "stop_originals": true, "tag_originals": true }),
        )
        .await;
    let back_id = back["id"].as_str().unwrap().to_owned();
    bob.post(&format!("/api/v1/executions/{back_id}/approve"), &json!({ "comment": "home" })).await;
    let done = ended(&admin, &back_id, Duration::from_secs(300)).await;
    assert_eq!(done["state"]["phase"], "succeeded", "{done}");
    let proof = admin.get(&format!("/api/v1/executions/{back_id}/round-trip-proof")).await;
    let rows = proof["servers"].as_array().unwrap();
    assert!(!rows.is_empty() && rows.iter().all(|r| r["verdict"] == "identical"), "{proof}");
    assert!(rows.iter().all(|r| r["after_failback"] == r["before_failover"]), "{proof}");
}

#[tokio::test]
async fn two_servers_on_one_dynamodb_hand_a_killed_servers_execution_over_without_a_second_job() {
    let moto = std::env::var("ROUNDTRIP_MOTO_ENDPOINT")
        .expect("ROUNDTRIP_MOTO_ENDPOINT is not set: run scripts/test.sh, which starts moto on 127.0.0.1");
    let dir = tempfile::tempdir().unwrap();
    let sim_port = free_port();
    let _sim = sim_serve(&dir.path().join("sim"), sim_port);
    let table = format!("roundtrip-binary-{}", std::process::id());
    let dynamodb: Vec<(String, String)> = [
        ("ROUNDTRIP_STORE", "dynamodb"),
        ("ROUNDTRIP_AWS_DYNAMODB_TABLE", table.as_str()),
        ("ROUNDTRIP_AWS_DYNAMODB_ENDPOINT_URL", moto.as_str()),
        ("ROUNDTRIP_AWS_HOME_REGION", "us-east-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let init = Command::new(env!("CARGO_BIN_EXE_roundtrip"))
        .args(["aws", "init"])
        .envs(aws_env(sim_port))
        .envs(dynamodb.iter().cloned())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(init.success(), "aws init created the table");

    let (port_a, port_b) = (free_port(), free_port());
    let mut a = serve_aws(sim_port, &dir.path().join("a"), port_a, &dynamodb);
    let admin = Client::connect(port_a).await;
    let plan = billing_plan(&admin).await;
    let _b = serve_aws(sim_port, &dir.path().join("b"), port_b, &dynamodb);
    let on_b = Client::connect(port_b).await;

    let drill = admin
        .post(
            "/api/v1/executions/allow-launching/failover",
            &json!({ "plan_id": plan, "mode": "drill", "acknowledge_warnings": true }),
        )
        .await;
    let id = drill["id"].as_str().unwrap().to_owned();
    let servers: usize =
        drill["state"]["waves"].as_array().unwrap().iter().map(|w| w["servers"].as_array().unwrap().len()).sum();
    // Kill A once a job has started (B sees the same record, through DynamoDB).
    let deadline = Instant::now() + Duration::from_secs(60);
    while jobs_per_server(sim_port).await.is_empty() {
        assert!(Instant::now() < deadline, "no job started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    let done = ended(&on_b, &id, Duration::from_secs(180)).await;
    assert_eq!(done["state"]["phase"], "succeeded", "{done}");
    let jobs = jobs_per_server(sim_port).await;
    assert_eq!(jobs.len(), servers, "every server launched: {jobs:?}");
    assert!(jobs.values().all(|n| *n == 1), "a server launched twice: {jobs:?}");
}

#[tokio::test]
async fn the_production_binary_discovers_two_accounts_in_two_regions_on_moto_and_keeps_its_state_in_dynamodb() {
    let moto = std::env::var("ROUNDTRIP_MOTO_ENDPOINT")
        .expect("ROUNDTRIP_MOTO_ENDPOINT is not set: run scripts/test.sh, which starts moto on 127.0.0.1");
    // EC2 on moto in two accounts (the only test that uses these account ids on moto). moto has no DRS:
    // the overview reports DRS unreachable in each slice and still counts the instances.
    let settings = aws::AwsSettings {
        accounts: ["111111111111", "222222222222"]
            .iter()
            .map(|a| aws::AwsAccount {
                account_id: domain::ids::AccountId::parse(a).unwrap(),
                name: (*a).into(),
                role_arn: Some(format!("arn:aws:iam::{a}:role/RoundtripAccess")),
                external_id: None,
                regions: vec![
                    domain::ids::Region::parse("us-east-1").unwrap(),
                    domain::ids::Region::parse("us-west-2").unwrap(),
                ],
            })
            .collect(),
        endpoint_url: Some(moto.clone()),
        ..aws::AwsSettings::default()
    };
    let creds = aws::aws_credential_types::Credentials::new("testing", "testing", None, None, "test");
    let clients = aws::Clients::with_credentials(settings, Some(creds)).await.unwrap();
    for (account, region, n) in [("111111111111", "us-east-1", 3), ("222222222222", "us-west-2", 2)] {
        let c = clients
            .get(&domain::ids::AccountId::parse(account).unwrap(), &domain::ids::Region::parse(region).unwrap())
            .await
            .unwrap();
        c.ec2
            .run_instances()
            .image_id("ami-12345678")
            .instance_type(aws::aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(n)
            .max_count(n)
            .send()
            .await
            .unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let (sim_port, port) = (free_port(), free_port());
    let table = format!("roundtrip-discovery-{}", std::process::id());
    let extra: Vec<(String, String)> = [
        ("ROUNDTRIP_AWS_ENDPOINT_URL", moto.clone()),
        ("ROUNDTRIP_STORE", "dynamodb".to_owned()),
        ("ROUNDTRIP_AWS_DYNAMODB_TABLE", table.clone()),
        ("ROUNDTRIP_AWS_HOME_REGION", "us-east-1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let init = Command::new(env!("CARGO_BIN_EXE_roundtrip"))
        .args(["aws", "init"])
        .envs(aws_env(sim_port))
        .envs(extra.iter().cloned())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(init.success());
    let mut server = serve_aws(sim_port, &dir.path().join("one"), port, &extra);
    let admin = Client::connect(port).await;
    let estate = admin.get("/api/v1/estate").await;
    let instances = |account: &str, region: &str| {
        estate["slices"]
            .as_array()
            .unwrap_or_else(|| panic!("{estate}"))
            .iter()
            .find(|s| s["account_id"] == account && s["region"] == region)
            .map_or(0, |s| s["instances"].as_u64().unwrap())
    };
    assert!(instances("111111111111", "us-east-1") >= 3, "{estate}");
    assert!(instances("222222222222", "us-west-2") >= 2, "{estate}");
    assert_eq!(instances("111111111111", "us-west-2"), 0, "regions apart on moto: {estate}");
    let slices = estate["slices"].as_array().unwrap();
    assert_eq!(slices.len(), 4, "two accounts × two regions: {estate}");
    assert!(slices.iter().all(|s| s["unreachable"].to_string().contains("DRS")), "moto has no DRS: {estate}");

    // Its state is in DynamoDB: a group made here is there after a restart on an empty data folder.
    admin
        .post(
            "/api/v1/protection-groups",
            &json!({
                "name": "Kept in DynamoDB",
                "primary": { "account_id": "111111111111", "region": "us-east-1" },
                "dr": { "account_id": "222222222222", "region": "us-west-2" },
                "selection": { "kind": "tags", "tags": { "app": "billing" } }
            }),
        )
        .await;
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    let _again = serve_aws(sim_port, &dir.path().join("two"), port, &extra);
    let admin = Client::connect(port).await;
    let groups = admin.get("/api/v1/protection-groups").await;
    assert!(groups.to_string().contains("Kept in DynamoDB"), "{groups}");
}
