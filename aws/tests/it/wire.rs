//! The unchanged AWS adapter against the simulated estate over the AWS wire protocols.

use crate::person;
use aws::iam::{Principal as IamPrincipal, actions};
use aws::{AwsAccount, AwsCloud, AwsSettings, Clients};
use domain::auth::Role;
use domain::estate::{AccountRegion, InstanceState};
use domain::execution::{Decision, FailoverKind, Limits, Mode, Phase, ProofVerdict, StartExecution, StartFailback};
use domain::ids::{AccountId, Region, SourceServerId};
use engine::Services;
use engine::cloud::{Cloud, CloudError};
use engine::executions::Step;
use engine::store::memory::MemoryStore;
use sim::generate::{GenerateOptions, generate};
use sim::wire::Wire;
use sim::{SimClock, Simulator};
use std::collections::BTreeSet;
use std::sync::Arc;

const PRIMARY: &str = "111111111111";
const DR: &str = "222222222222";
const EXTERNAL_ID: &str = "roundtrip-test";

struct Estate {
    /// The wire endpoint.
    endpoint: String,
    sim: Arc<Simulator>,
    clock: Arc<SimClock>,
    wire: Arc<Wire>,
    cloud: Arc<AwsCloud>,
}

fn at(account: &str, region: &str) -> AccountRegion {
    AccountRegion { account_id: AccountId::parse(account).unwrap(), region: Region::parse(region).unwrap() }
}

/// A generated estate served on 127.0.0.1, and the AWS adapter pointed at it, reaching both accounts
/// through roles from a management account outside the estate.
async fn estate(servers: usize, max_attempts: u32) -> Estate {
    let clock = Arc::new(SimClock::manual(1_800_000_000_000));
    let sim = Arc::new(Simulator::new(generate(GenerateOptions { servers, seed: 11, problems: false }), clock.clone()));
    let wire = Wire::with_external_id(sim.clone(), AccountId::parse("999999999999").unwrap(), Some(EXTERNAL_ID.into()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, sim::wire::router(wire.clone())).into_future());
    let regions = vec![Region::parse("us-east-1").unwrap(), Region::parse("us-west-2").unwrap()];
    let account = |id: &str, name: &str| AwsAccount {
        account_id: AccountId::parse(id).unwrap(),
        name: name.into(),
        role_arn: Some(format!("arn:aws:iam::{id}:role/RoundtripAccess")),
        external_id: Some(if id == "333333333333" { "a-wrong-external-id".into() } else { EXTERNAL_ID.into() }),
        regions: regions.clone(),
    };
    let settings = AwsSettings {
        // The third account is configured with the wrong External ID: its AssumeRole is refused.
        accounts: vec![account(PRIMARY, "production"), account(DR, "recovery"), account("333333333333", "stranger")],
        endpoint_url: Some(format!("http://{addr}")),
        max_attempts,
        initial_backoff_ms: 5,
        drs_requests_per_second: 10_000.0,
        drs_burst: 10_000,
        ..AwsSettings::default()
    };
    let creds = aws_credential_types::Credentials::new("AKIDMANAGEMENT", "secret", None, None, "test");
    let clients = Arc::new(Clients::with_credentials(settings, Some(creds)).await.unwrap());
    Estate { endpoint: format!("http://{addr}"), sim, clock, wire, cloud: Arc::new(AwsCloud::new(clients)) }
}

#[tokio::test]
async fn every_read_through_the_wire_returns_what_the_simulator_holds() {
    let e = estate(40, 1).await;
    for here in [at(PRIMARY, "us-east-1"), at(DR, "us-west-2"), at(DR, "us-east-1")] {
        let mut direct = e.sim.describe_instances(&here).await.unwrap();
        let mut wired = e.cloud.describe_instances(&here).await.unwrap();
        direct.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        wired.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        assert_eq!(wired, direct, "instances in {here:?}");
        assert_eq!(e.cloud.describe_subnets(&here).await.unwrap(), e.sim.describe_subnets(&here).await.unwrap());
        let groups = e.cloud.describe_security_groups(&here).await.unwrap();
        for (w, d) in groups.iter().zip(e.sim.describe_security_groups(&here).await.unwrap()) {
            assert_eq!((&w.group_id, &w.vpc_id), (&d.group_id, &d.vpc_id));
            for port in [443, 1500, 22] {
                assert_eq!(w.allows_tcp_out(port), d.allows_tcp_out(port), "{} port {port}", d.group_id);
            }
        }
        let mut profiles = e.cloud.describe_instance_profiles(&here).await.unwrap();
        let mut expected = e.sim.describe_instance_profiles(&here).await.unwrap();
        profiles.sort_by(|a, b| a.name.cmp(&b.name));
        expected.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(profiles, expected);
    }
    let dr = at(DR, "us-west-2");
    let mut direct = e.sim.describe_source_servers(&dr).await.unwrap();
    assert_eq!(direct.len(), 40);
    // DRS does not report a source's boot mode; everything else comes through.
    for s in &mut direct {
        s.boot_mode = None;
    }
    let mut wired = e.cloud.describe_source_servers(&dr).await.unwrap();
    direct.sort_by(|a, b| a.source_server_id.cmp(&b.source_server_id));
    wired.sort_by(|a, b| a.source_server_id.cmp(&b.source_server_id));
    assert_eq!(wired, direct);
    // By id: the ones asked for that exist, through the filters (and volumes by attachment).
    let ids: Vec<_> = direct.iter().step_by(7).map(|s| s.source_server_id.clone()).collect();
    let mut by_id = e.cloud.describe_source_servers_by_id(&dr, &ids).await.unwrap();
    by_id.sort_by(|a, b| a.source_server_id.cmp(&b.source_server_id));
    assert_eq!(by_id, direct.iter().step_by(7).cloned().collect::<Vec<_>>());
    let primary = at(PRIMARY, "us-east-1");
    let all = e.sim.describe_instances(&primary).await.unwrap();
    let mut asked: Vec<_> = all.iter().step_by(5).map(|i| i.instance_id.clone()).collect();
    asked.push("i-0000000000000dead".parse().unwrap());
    let mut wired_instances = e.cloud.describe_instances_by_id(&primary, &asked).await.unwrap();
    let mut instances = e.sim.describe_instances_by_id(&primary, &asked).await.unwrap();
    wired_instances.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    instances.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    assert_eq!(instances.len(), asked.len() - 1);
    assert!(instances.iter().all(|i| !i.volumes.is_empty()));
    assert_eq!(wired_instances, instances);
    for s in direct.iter().take(5) {
        assert_eq!(
            e.cloud.get_launch_configuration(&dr, &s.source_server_id).await.unwrap(),
            e.sim.get_launch_configuration(&dr, &s.source_server_id).await.unwrap()
        );
    }
    assert_eq!(e.cloud.quotas(&dr).await.unwrap(), domain::readiness::Quotas::default());
    assert!(e.cloud.drs_initialized(&dr).await.unwrap());
}

#[tokio::test]
async fn drs_failures_arrive_as_the_domain_errors_the_engine_handles() {
    let e = estate(3, 1).await;
    let dr = at(DR, "us-west-2");
    let unknown = SourceServerId::parse("s-0fffffffffffffff0").unwrap();
    let err = e.cloud.get_launch_configuration(&dr, &unknown).await.unwrap_err();
    assert!(matches!(err, CloudError::NotFound { .. }), "{err:?}");
    let servers: Vec<SourceServerId> =
        e.sim.describe_source_servers(&dr).await.unwrap().into_iter().map(|s| s.source_server_id).collect();
    let job = e.cloud.start_recovery(&dr, &servers[..1], true).await.unwrap();
    assert!(job.is_drill && job.servers.len() == 1);
    let err = e.cloud.start_recovery(&dr, &servers[..1], true).await.unwrap_err();
    assert!(matches!(&err, CloudError::Conflict { .. }), "a server already in a job: {err:?}");
    let many: Vec<SourceServerId> = (0..101).map(|i| SourceServerId::parse(&format!("s-{i:017x}")).unwrap()).collect();
    let err = e.cloud.start_recovery(&dr, &many, false).await.unwrap_err();
    assert!(matches!(&err, CloudError::QuotaExceeded { .. }), "101 servers in one job (HTTP 402): {err:?}");
    e.sim.set_drs_rate_limit(Some(0.001), 1);
    let _ = e.cloud.describe_jobs(&dr, &[]).await;
    let err = e.cloud.describe_jobs(&dr, &[]).await.unwrap_err();
    assert!(matches!(err, CloudError::Throttled { retry_after_ms } if retry_after_ms >= 1000), "{err:?}");
    e.sim.set_drs_rate_limit(None, 1);
    let not_configured = at("444444444444", "us-west-2");
    assert!(matches!(e.cloud.describe_instances(&not_configured).await, Err(CloudError::AccessDenied { .. })));
    let refused = at("333333333333", "us-west-2");
    let err = e.cloud.describe_instances(&refused).await.unwrap_err();
    assert!(
        matches!(&err, CloudError::AccessDenied { message } if message.starts_with("missing permission sts:AssumeRole")),
        "{err:?}"
    );
}

#[tokio::test]
async fn test_access_reports_each_read_per_account_and_region_and_what_is_missing() {
    let e = estate(3, 1).await;
    let report = engine::access::check_access(e.cloud.as_ref()).await;
    let ok = |account: &str| report.iter().filter(|l| l.account_id == account).all(|l| l.ok);
    assert!(ok(PRIMARY) && ok(DR), "{report:#?}");
    let stranger: Vec<_> = report.iter().filter(|l| l.account_id == "333333333333").collect();
    assert_eq!(stranger.len(), 2, "one line per region when the role itself is refused: {stranger:#?}");
    assert!(stranger.iter().all(|l| !l.ok && l.detail.contains("sts:AssumeRole")), "{stranger:#?}");
    let actions: BTreeSet<&str> = report.iter().filter(|l| l.account_id == DR).map(|l| l.action.as_str()).collect();
    assert!(actions.contains("drs:DescribeSourceServers") && actions.contains("iam:ListInstanceProfiles"));
}

#[tokio::test]
async fn the_sdk_retries_throttling_until_it_passes() {
    let e = estate(3, 8).await;
    let dr = at(DR, "us-west-2");
    // One call per 5 ms, none saved up: of four quick calls some are throttled, and the SDK's retries
    // (up to 8 attempts, jittered backoff from 5 ms) get every one through.
    e.sim.set_drs_rate_limit(Some(200.0), 1);
    for _ in 0..4 {
        e.cloud.describe_jobs(&dr, &[]).await.unwrap();
    }
    let calls = e.wire.calls().iter().filter(|c| c.action == "drs:DescribeJobs").count();
    assert!(calls > 4, "throttled calls were retried: {calls} requests for 4 calls");
    // The metrics see what the SDK retried on its own: every request it sent, and the throttled ones.
    let seen = e.cloud.transport_attempts().unwrap();
    assert!(seen.attempts > seen.calls && seen.throttled >= 1, "{seen:?}");
    assert_eq!(seen.attempts - seen.calls, seen.throttled, "only throttling was retried: {seen:?}");
}

async fn run_to_end(services: &Services, clock: &SimClock, id: &str) {
    for _ in 0..2000 {
        if services.advance_execution(id, "runner-1", &Limits::default()).await.unwrap() == Step::Done {
            return;
        }
        clock.advance(30_000);
    }
    panic!("{id} did not end");
}

#[tokio::test]
async fn a_round_trip_through_the_aws_adapter_keeps_ids_and_ips_and_calls_exactly_the_listed_actions() {
    let e = estate(12, 3).await;
    let services = Services::new(e.cloud.clone(), Arc::new(MemoryStore::default()), e.clock.clone());
    let (alice, bob) = (person("alice", Role::Operator), person("bob", Role::Approver));
    let (group, plan) = crate::ready_plan(&services, &at(PRIMARY, "us-east-1"), &at(DR, "us-west-2"), 12).await;
    let origin = group.primary.clone();
    let originals_before = e.sim.describe_instances(&origin).await.unwrap();

    // A drill first (it cleans up after itself), then a planned failover and the failback.
    let drill = StartExecution {
        plan_id: plan.id.clone(),
        mode: Mode::Drill,
        kind: FailoverKind::Disaster,
        acknowledge_warnings: true,
    };
    let drill = services.start_execution(&alice, &drill).await.unwrap();
    run_to_end(&services, &e.clock, &drill.id).await;
    assert_eq!(services.get_execution(&drill.id).await.unwrap().state.phase, Phase::Succeeded);

    let start = StartExecution {
        plan_id: plan.id.clone(),
        mode: Mode::Recovery,
        kind: FailoverKind::Planned,
        acknowledge_warnings: true,
    };
    let recovery = services.start_execution(&alice, &start).await.unwrap();
    services.decide_execution(&bob, &recovery.id, Decision::Approve, "planned move").await.unwrap();
    run_to_end(&services, &e.clock, &recovery.id).await;
    assert_eq!(services.get_execution(&recovery.id).await.unwrap().state.phase, Phase::Succeeded);

    let req = StartFailback {
        execution_id: recovery.id.clone(),
        stop_originals: true,
        tag_originals: true,
        terminate_standbys_confirmation: None,
        ..Default::default()
    };
    let back = services.start_failback(&alice, &req).await.unwrap();
    services.decide_execution(&bob, &back.id, Decision::Approve, "home").await.unwrap();
    run_to_end(&services, &e.clock, &back.id).await;
    assert_eq!(services.get_execution(&back.id).await.unwrap().state.phase, Phase::Succeeded);
    let proof = services.round_trip_proof(&back.id).await.unwrap();
    assert_eq!(proof.len(), 12);
    for row in &proof {
        assert_eq!(row.verdict, ProofVerdict::Identical, "{row:?}");
        let before = originals_before.iter().find(|i| i.instance_id == row.before_failover.instance_id).unwrap();
        assert_eq!(before.private_ip, row.before_failover.private_ip);
    }

    // The calls no execution made here: a job's log, an admin's termination, a restart, a volume deletion.
    let dr = group.dr.clone();
    let jobs = e.cloud.describe_jobs(&dr, &[]).await.unwrap();
    let log = e.cloud.describe_job_log_items(&dr, &jobs[0].job_id).await.unwrap();
    assert!(log.iter().any(|l| l.event == "JOB_START"), "{log:?}");
    let standby =
        engine::repo::list_pairs(&*services.store, Some(&group.id)).await.unwrap()[0].standby_instance_id.clone();
    e.cloud.start_instances(&dr, std::slice::from_ref(&standby)).await.unwrap();
    e.cloud.terminate_instances(&dr, std::slice::from_ref(&standby)).await.unwrap();
    let states = e.sim.describe_instances(&dr).await.unwrap();
    assert_eq!(states.iter().find(|i| i.instance_id == standby).unwrap().state, InstanceState::Terminated);
    let volume = e.cloud.describe_available_volumes(&dr).await.unwrap();
    assert!(!volume.is_empty(), "launches into standbys left their original volumes");
    assert!(volume.iter().all(|v| v.last_instance_id.is_none()), "EC2 does not say which instance a volume left");
    e.cloud.delete_volume(&dr, &volume[0].volume_id).await.unwrap();

    let seen: BTreeSet<String> = e.wire.actions();
    let mut listed: BTreeSet<String> = actions(IamPrincipal::AccountRole).into_iter().map(str::to_owned).collect();
    listed.insert("sts:AssumeRole".into());
    assert_eq!(seen, listed, "the IAM table lists exactly the actions the adapter called");

    // Every role session names the execution it worked for, or the console.
    let sessions: BTreeSet<String> = e.wire.calls().into_iter().filter_map(|c| c.session).collect();
    for id in [&drill.id, &recovery.id, &back.id] {
        assert!(sessions.contains(&format!("roundtrip-{id}")), "{id} not in {sessions:?}");
    }
    assert!(sessions.contains("roundtrip-console"));
}

#[tokio::test]
async fn an_account_registered_in_the_console_is_reached_at_once_and_after_a_restart_its_external_id_unseen() {
    let e = estate(3, 1).await;
    // A second server whose settings name only the DR account.
    let settings = AwsSettings {
        accounts: vec![AwsAccount {
            account_id: AccountId::parse(DR).unwrap(),
            name: "recovery".into(),
            role_arn: Some(format!("arn:aws:iam::{DR}:role/RoundtripAccess")),
            external_id: Some(EXTERNAL_ID.into()),
            regions: vec![Region::parse("us-west-2").unwrap()],
        }],
        endpoint_url: Some(e.endpoint.clone()),
        max_attempts: 1,
        ..AwsSettings::default()
    };
    let creds = aws_credential_types::Credentials::new("AKIDMANAGEMENT", "secret", None, None, "test");
    let clients = Arc::new(Clients::with_credentials(settings.clone(), Some(creds.clone())).await.unwrap());
    let store = Arc::new(MemoryStore::default());
    let services = Services::new(Arc::new(AwsCloud::new(clients)), store.clone(), e.clock.clone());
    let primary = at(PRIMARY, "us-east-1");
    assert!(matches!(services.cloud.describe_instances(&primary).await, Err(CloudError::AccessDenied { .. })));

    let admin = person("admin", Role::Admin);
    let input = domain::estate::CloudAccountInput {
        account_id: PRIMARY.into(),
        name: "production".into(),
        role_arn: format!("arn:aws:iam::{PRIMARY}:role/RoundtripAccess"),
        external_id: EXTERNAL_ID.into(),
        regions: vec!["us-east-1".into()],
    };
    services.save_cloud_account(&admin, &input).await.unwrap();
    assert!(!services.cloud.describe_instances(&primary).await.unwrap().is_empty(), "reached at once");
    let listed = serde_json::to_string(&services.list_cloud_accounts().await.unwrap()).unwrap();
    assert!(listed.contains("\"external_id_set\":true") && !listed.contains(EXTERNAL_ID), "{listed}");
    let clash = domain::estate::CloudAccountInput {
        account_id: DR.into(),
        role_arn: format!("arn:aws:iam::{DR}:role/RoundtripAccess"),
        ..input.clone()
    };
    let err = services.save_cloud_account(&admin, &clash).await.unwrap_err();
    assert!(format!("{err:?}").contains("ACCOUNT_CONFIGURED"), "{err:?}");

    // A restart: the registered account comes back from the store.
    let clients = Arc::new(Clients::with_credentials(settings, Some(creds)).await.unwrap());
    let again = Services::new(Arc::new(AwsCloud::new(clients)), store, e.clock.clone());
    assert!(matches!(again.cloud.describe_instances(&primary).await, Err(CloudError::AccessDenied { .. })));
    assert_eq!(again.load_registered_cloud_accounts().await.unwrap(), 1);
    assert!(!again.cloud.describe_instances(&primary).await.unwrap().is_empty());
    // Removed: unreachable again.
    again.delete_cloud_account(&admin, PRIMARY).await.unwrap();
    assert!(matches!(again.cloud.describe_instances(&primary).await, Err(CloudError::AccessDenied { .. })));
}
