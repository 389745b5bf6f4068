//! The AWS adapters against moto (pinned, started on 127.0.0.1 by `scripts/test.sh`): the DynamoDB store
//! through the store conformance suite and a runner's lease, and EC2 discovery and writes across two
//! accounts (reached by AssumeRole) and two regions. Each test works in accounts or a table of its own, so
//! the tests share one moto.

use aws::{AwsAccount, AwsCloud, AwsSettings, Clients, DynamoStore};
use domain::estate::{AccountRegion, InstanceState};
use domain::execution::{FailoverKind, Limits, Mode, Phase, StartExecution};
use domain::ids::{AccountId, InstanceId, Region};
use engine::Services;
use engine::cloud::Cloud;
use engine::executions::Step;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// moto's address; the test command starts it. Without it these tests fail rather than pass unseen.
fn endpoint() -> String {
    std::env::var("ROUNDTRIP_MOTO_ENDPOINT")
        .expect("ROUNDTRIP_MOTO_ENDPOINT is not set: run scripts/test.sh, which starts moto on 127.0.0.1")
}

/// A 12-digit account id no other test uses.
fn fresh_account() -> String {
    static N: AtomicU32 = AtomicU32::new(1);
    format!("{:04}{:08}", std::process::id() % 10_000, N.fetch_add(1, Ordering::SeqCst))
}

fn settings(accounts: &[&str]) -> AwsSettings {
    let regions = vec![Region::parse("us-east-1").unwrap(), Region::parse("us-west-2").unwrap()];
    AwsSettings {
        accounts: accounts
            .iter()
            .map(|a| AwsAccount {
                account_id: AccountId::parse(a).unwrap(),
                name: format!("account {a}"),
                role_arn: Some(format!("arn:aws:iam::{a}:role/RoundtripAccess")),
                external_id: Some("moto-test".into()),
                regions: regions.clone(),
            })
            .collect(),
        endpoint_url: Some(endpoint()),
        dynamodb_table: format!("roundtrip-{}", fresh_account()),
        initial_backoff_ms: 10,
        ..AwsSettings::default()
    }
}

fn creds() -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new("testing", "testing", None, None, "moto")
}

async fn store() -> DynamoStore {
    let s = settings(&[&fresh_account()]);
    let store = DynamoStore::open(&s).await.unwrap();
    assert!(store.init().await.unwrap(), "a new table");
    assert!(!store.init().await.unwrap(), "init is idempotent");
    store
}

fn at(account: &str, region: &str) -> AccountRegion {
    AccountRegion { account_id: AccountId::parse(account).unwrap(), region: Region::parse(region).unwrap() }
}

/// Launches `n` instances named `name-<i>` in `at` through the adapter's own clients (moto accepts any AMI).
async fn launch(clients: &Clients, at: &AccountRegion, name: &str, n: usize, standby: bool) -> Vec<String> {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let c = clients.get(&at.account_id, &at.region).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let mut tags = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .tags(Tag::builder().key("Name").value(format!("{name}-{i}")).build());
        if standby {
            tags = tags.tags(Tag::builder().key("AWSDRS").value("AllowLaunchingIntoThisInstance").build());
        }
        let out = c
            .ec2
            .run_instances()
            .image_id("ami-12345678")
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .tag_specifications(tags.build())
            .send()
            .await
            .unwrap();
        ids.extend(out.instances().iter().filter_map(|i| i.instance_id().map(str::to_owned)));
    }
    ids
}

#[tokio::test]
async fn the_dynamodb_store_passes_the_store_conformance_suite() {
    engine::store::conformance::run_all(&store().await).await;
}

#[tokio::test]
async fn a_transaction_over_the_item_limit_or_the_action_limit_is_refused_whole() {
    use engine::store::{Expect, Store, WriteOp};
    let store = store().await;
    // Text that does not deflate (pseudo-random hex), larger than an item once deflated.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: String = (0..3 * aws::dynamo::MAX_VALUE_BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit(u32::try_from(x % 16).unwrap(), 16).unwrap()
        })
        .collect();
    let big = serde_json::json!(noise);
    let ops = vec![
        WriteOp::Put {
            table: "t".into(),
            key: "small".into(),
            value: serde_json::json!(1).into(),
            expect: Expect::Absent,
        },
        WriteOp::Put { table: "t".into(), key: "big".into(), value: big.into(), expect: Expect::Absent },
    ];
    assert!(store.transact(ops).await.is_err());
    assert!(store.get("t", "small").await.unwrap().is_none(), "nothing of a refused transaction is written");
    let many = (0..101)
        .map(|i| WriteOp::Put {
            table: "t".into(),
            key: format!("k{i}"),
            value: serde_json::json!(i).into(),
            expect: Expect::Any,
        })
        .collect();
    assert!(store.transact(many).await.is_err());
    assert!(store.list("t", "").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_record_of_a_megabyte_of_json_is_stored_deflated_and_read_back_whole() {
    use engine::store::{Expect, Store, WriteOp};
    let store = store().await;
    // The shape of a large readiness record: many similar rows.
    let rows: Vec<serde_json::Value> = (0..10_000)
        .map(|i| serde_json::json!({ "pair_id": format!("pair-{i:017x}"), "check": "standby.stopped", "passed": i % 7 != 0,
                                     "message": "the standby is stopped and tagged AWSDRS=AllowLaunchingIntoThisInstance" }))
        .collect();
    let value = serde_json::json!({ "rows": rows });
    assert!(value.to_string().len() > 1024 * 1024);
    let put =
        |v: serde_json::Value, expect| WriteOp::Put { table: "r".into(), key: "big".into(), value: v.into(), expect };
    assert_eq!(store.transact(vec![put(value.clone(), Expect::Absent)]).await.unwrap(), [1]);
    assert_eq!(store.get("r", "big").await.unwrap().unwrap().value, value);
    // Back to a small value: stored plain again, and the old deflated copy is gone.
    store.transact(vec![put(serde_json::json!({ "small": true }), Expect::Version(1))]).await.unwrap();
    let r = store.get("r", "big").await.unwrap().unwrap();
    assert_eq!((r.version, r.value.to_value()), (2, serde_json::json!({ "small": true })));
    assert_eq!(store.list("r", "").await.unwrap().len(), 1);
}

#[tokio::test]
async fn discovery_reads_two_accounts_in_two_regions_each_apart() {
    let (a, b) = (fresh_account(), fresh_account());
    let clients = Arc::new(Clients::with_credentials(settings(&[&a, &b]), Some(creds())).await.unwrap());
    launch(&clients, &at(&a, "us-east-1"), "web", 3, false).await;
    launch(&clients, &at(&b, "us-west-2"), "web", 2, true).await;
    let cloud = AwsCloud::new(clients);
    let found = |acct: String, region: &'static str| {
        let cloud = &cloud;
        async move { cloud.describe_instances(&at(&acct, region)).await.unwrap() }
    };
    let a_east = found(a.clone(), "us-east-1").await;
    assert_eq!(a_east.len(), 3);
    // By id (an instance-id filter, so an unknown id is left out rather than failing the call).
    let asked = [a_east[1].instance_id.clone(), "i-0000000000000dead".parse().unwrap()];
    let by_id = cloud.describe_instances_by_id(&at(&a, "us-east-1"), &asked).await.unwrap();
    assert_eq!(by_id, vec![a_east[1].clone()]);
    assert!(a_east.iter().all(|i| i.name().is_some_and(|n| n.starts_with("web-")) && !i.has_exact_awsdrs_tag()));
    assert!(found(a.clone(), "us-west-2").await.is_empty(), "regions are apart");
    let b_west = found(b.clone(), "us-west-2").await;
    assert_eq!(b_west.len(), 2);
    assert!(b_west.iter().all(|i| i.has_exact_awsdrs_tag() && i.account_id.as_str() == b));
    assert!(found(b.clone(), "us-east-1").await.is_empty(), "accounts are apart");
    assert!(!cloud.describe_subnets(&at(&a, "us-east-1")).await.unwrap().is_empty(), "the default VPC's subnets");
    assert_eq!(cloud.list_account_regions().await.unwrap().len(), 4);
}

#[tokio::test]
async fn stop_start_tag_and_terminate_go_through_the_adapter() {
    let a = fresh_account();
    let clients = Arc::new(Clients::with_credentials(settings(&[&a]), Some(creds())).await.unwrap());
    let here = at(&a, "us-east-1");
    let ids: Vec<InstanceId> =
        launch(&clients, &here, "db", 2, false).await.iter().map(|i| InstanceId::parse(i).unwrap()).collect();
    let cloud = AwsCloud::new(clients);
    let state = |id: &InstanceId| {
        let (cloud, here, id) = (&cloud, &here, id.clone());
        async move { cloud.describe_instances(here).await.unwrap().into_iter().find(|i| i.instance_id == id) }
    };
    cloud.stop_instances(&here, &ids).await.unwrap();
    assert_eq!(state(&ids[0]).await.unwrap().state, InstanceState::Stopped);
    cloud.create_tags(&here, &ids[0], "AWSDRS", "AllowLaunchingIntoThisInstance").await.unwrap();
    assert!(state(&ids[0]).await.unwrap().has_exact_awsdrs_tag());
    assert!(!state(&ids[1]).await.unwrap().has_exact_awsdrs_tag());
    cloud.start_instances(&here, &ids[..1]).await.unwrap();
    assert_eq!(state(&ids[0]).await.unwrap().state, InstanceState::Running);
    cloud.terminate_instances(&here, &ids[1..]).await.unwrap();
    assert!(state(&ids[1]).await.is_none_or(|i| i.state == InstanceState::Terminated));
    let missing = InstanceId::parse("i-0123456789abcdef0").unwrap();
    let err = cloud.stop_instances(&here, &[missing]).await.unwrap_err();
    assert!(matches!(err, engine::cloud::CloudError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_second_runner_takes_an_execution_over_from_dynamodb_once_the_lease_expires() {
    let clock = Arc::new(sim::SimClock::manual(1_800_000_000_000));
    let scenario = sim::generate::generate(sim::generate::GenerateOptions { servers: 6, seed: 5, problems: false });
    let simulator = Arc::new(sim::Simulator::new(scenario, clock.clone()));
    let store: Arc<dyn engine::store::Store> = Arc::new(store().await);
    // Leases run on the wall clock: here the same manual clock, so the test can let one expire.
    let process = |store: Arc<dyn engine::store::Store>| {
        Services::with(simulator.clone(), store, clock.clone(), clock.clone(), engine::auth::AuthSettings::default())
    };
    let services = process(store.clone());
    let (primary, dr) = (at("111111111111", "us-east-1"), at("222222222222", "us-west-2"));
    let (_, plan) = crate::ready_plan(&services, &primary, &dr, 6).await;
    let alice = crate::person("alice", domain::auth::Role::Operator);
    let start = StartExecution {
        plan_id: plan.id,
        mode: Mode::Drill,
        kind: FailoverKind::Disaster,
        acknowledge_warnings: true,
    };
    let e = services.start_execution(&alice, &start).await.unwrap();
    // A second process: its own services on the same table and the same estate.
    let other = process(store);
    let limits = Limits::default();
    assert_ne!(services.advance_execution(&e.id, "runner-a", &limits).await.unwrap(), Step::Leased);
    assert_eq!(other.advance_execution(&e.id, "runner-b", &limits).await.unwrap(), Step::Leased);
    // Runner A dies; once its lease has run out, B drives the drill to the end.
    clock.advance(services.settings.lease_ms + 1);
    let mut done = false;
    for _ in 0..500 {
        if other.advance_execution(&e.id, "runner-b", &limits).await.unwrap() == Step::Done {
            done = true;
            break;
        }
        clock.advance(30_000);
    }
    let rec = other.get_execution(&e.id).await.unwrap();
    assert!(done, "{:?} {:?}", rec.state.phase, rec.log.iter().rev().take(5).collect::<Vec<_>>());
    assert_eq!(other.get_execution(&e.id).await.unwrap().state.phase, Phase::Succeeded);
    let jobs = simulator.describe_jobs(&dr, &[]).await.unwrap();
    let mut launched: Vec<_> = jobs.iter().flat_map(|j| j.servers.iter().map(|s| s.source_server_id.clone())).collect();
    assert_eq!(launched.len(), 6, "one job per wave, whichever runner drove it: {jobs:?}");
    launched.sort();
    launched.dedup();
    assert_eq!(launched.len(), 6, "every server launched exactly once");
}
