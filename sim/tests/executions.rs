//! The execution runner (engine) on the simulated estate with a manual clock: drills, approvals, faults,
//! a crash between claim and record, and two requests racing for one plan.

use domain::auth::{AuthMethod, Principal, Role};
use domain::estate::InstanceState;
use domain::execution::{FailoverKind, Limits, Mode, Phase, ServerState};
use engine::Services;
use engine::clock::Clock;
use engine::executions::{Decision, StartExecution, Step};
use engine::store::memory::MemoryStore;
use sim::world::Fault;
use sim::{DEFAULT_SCENARIO, Scenario, SimClock, Simulator};
use std::collections::HashMap;
use std::sync::Arc;

fn person(name: &str, role: Role) -> Principal {
    Principal { subject: name.into(), role, method: AuthMethod::Oidc, token: None, must_change_password: false }
}

struct Estate {
    services: Services,
    sim: Arc<Simulator>,
    clock: Arc<SimClock>,
    plan_id: String,
}

/// The billing application paired, configured and in a plan (waves from its dr:wave tags).
async fn estate() -> Estate {
    estate_with(|_| {}).await
}

/// As [`estate`], with the simulated estate changed by `prepare` before the engine is wired to it.
async fn estate_with(prepare: impl FnOnce(&Simulator)) -> Estate {
    let clock = Arc::new(SimClock::manual(1_800_000_000_000));
    let sim = Arc::new(Simulator::new(Scenario::from_toml(DEFAULT_SCENARIO).unwrap(), clock.clone()));
    prepare(&sim);
    let services = Services::new(sim.clone(), Arc::new(MemoryStore::default()), clock.clone());
    let alice = person("alice", Role::Operator);
    let input = serde_json::from_value(serde_json::json!({
        "name": "Billing",
        "primary": { "account_id": "111111111111", "region": "us-east-1" },
        "dr": { "account_id": "222222222222", "region": "us-west-2" },
        "selection": { "kind": "tags", "tags": { "app": "billing" } }
    }))
    .unwrap();
    let group = services.create_group(&alice, &input).await.unwrap();
    let m = services.match_group(&group.id).await.unwrap();
    let requests: Vec<_> = m
        .report
        .pairs
        .iter()
        .filter(|p| p.status == domain::matching::PairStatus::Ready)
        .map(|p| domain::group::PairRequest {
            source_server_id: p.source_server_id.clone(),
            standby_instance_id: p.standby_instance_id.clone(),
        })
        .collect();
    services.accept_pairs(&group.id, &requests, &alice).await.unwrap();
    let req = engine::launch::ConfigureRequest { dry_run: false, pair_ids: None };
    services.configure_launch_into(&group.id, &req, &alice).await.unwrap();
    let plan = domain::plan::RecoveryPlanInput {
        name: "Billing".into(),
        description: String::new(),
        protection_group_ids: vec![group.id.clone()],
        waves: None,
        rto_target_minutes: 30,
    };
    let plan = services.create_plan(&alice, &plan).await.unwrap();
    Estate { services, sim, clock, plan_id: plan.id }
}

fn starting(plan_id: &str, mode: Mode) -> StartExecution {
    StartExecution { plan_id: plan_id.into(), mode, kind: FailoverKind::Disaster, acknowledge_warnings: true }
}

/// A disaster recovery of the plan, requested by alice, approved by bob and run to its end.
async fn recovered(e: &Estate) -> engine::executions::ExecutionRecord {
    let start = starting(&e.plan_id, Mode::Recovery);
    let exec = e.services.start_execution(&person("alice", Role::Operator), &start).await.unwrap();
    e.services.decide_execution(&person("bob", Role::Approver), &exec.id, Decision::Approve, "go").await.unwrap();
    run(e, &exec.id).await;
    e.services.get_execution(&exec.id).await.unwrap()
}

/// Steps the runner every 30 virtual seconds until the execution ends (or 200 steps).
async fn run(e: &Estate, id: &str) -> usize {
    for i in 0..200 {
        match e.services.advance_execution(id, "runner-1", &Limits::default()).await.unwrap() {
            Step::Done => return i,
            _ => e.clock.advance(30_000),
        }
    }
    panic!("the execution did not end: {:#?}", e.services.get_execution(id).await.unwrap().state);
}

/// How many jobs each source server was part of.
fn launches(sim: &Simulator) -> HashMap<String, usize> {
    sim.with_world(|w| {
        let mut n = HashMap::new();
        for j in &w.launch_jobs {
            for s in &j.job.servers {
                *n.entry(s.source_server_id.to_string()).or_default() += 1;
            }
        }
        n
    })
}

#[tokio::test]
async fn a_drill_launches_every_server_once_into_its_standby_and_verifies_it() {
    let e = estate().await;
    let start = starting(&e.plan_id, Mode::Drill);
    let exec = e.services.start_execution(&person("alice", Role::Operator), &start).await.unwrap();
    let servers: usize = exec.state.waves.iter().map(|w| w.servers.len()).sum();
    assert!(servers >= 3 && exec.state.waves.len() >= 2, "{servers} servers in {} waves", exec.state.waves.len());
    run(&e, &exec.id).await;
    let done = e.services.get_execution(&exec.id).await.unwrap();
    assert_eq!(done.state.phase, Phase::Succeeded, "{:#?}", done.state.waves);
    assert!(done.state.waves.iter().flat_map(|w| w.servers.iter()).all(|s| s.state == ServerState::Verified));
    let counts = launches(&e.sim);
    assert_eq!(counts.len(), servers);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    // Waves ran in order: each started after the one before ended.
    for pair in done.state.waves.windows(2) {
        assert!(pair[1].started_at.unwrap() >= pair[0].ended_at.unwrap());
    }
}

#[tokio::test]
async fn a_recovery_waits_for_a_second_person_and_the_requester_cannot_approve() {
    let e = estate().await;
    let start = starting(&e.plan_id, Mode::Recovery);
    let exec = e.services.start_execution(&person("alice", Role::Admin), &start).await.unwrap();
    assert_eq!(e.services.advance_execution(&exec.id, "runner-1", &Limits::default()).await.unwrap(), Step::Idle);
    assert!(launches(&e.sim).is_empty(), "nothing launches before approval");
    let own = e
        .services
        .decide_execution(&person("alice", Role::Admin), &exec.id, Decision::Approve, "go")
        .await
        .unwrap_err();
    assert_eq!(own.code(), domain::ErrorCode::SelfApproval);
    e.services.decide_execution(&person("bob", Role::Approver), &exec.id, Decision::Approve, "go").await.unwrap();
    run(&e, &exec.id).await;
    assert_eq!(e.services.get_execution(&exec.id).await.unwrap().state.phase, Phase::Succeeded);
}

#[tokio::test]
async fn a_standby_that_comes_up_with_another_ip_fails_verification_with_the_reason() {
    let e = estate().await;
    let start = starting(&e.plan_id, Mode::Drill);
    let exec = e.services.start_execution(&person("alice", Role::Operator), &start).await.unwrap();
    let victim = exec.state.waves[0].servers[0].source_server_id.clone();
    e.sim.set_fault(&victim, Some(Fault::ComesUpWithIp { ip: "10.1.63.250".parse().unwrap() }));
    run(&e, &exec.id).await;
    let done = e.services.get_execution(&exec.id).await.unwrap();
    assert_eq!(done.state.phase, Phase::Failed);
    let s = &done.state.waves[0].servers[0];
    assert_eq!(s.state, ServerState::Failed);
    assert!(s.error.as_deref().unwrap().contains("came up with private IP 10.1.63.250"), "{:?}", s.error);
}

#[tokio::test]
async fn a_crash_between_claim_and_record_is_reconciled_without_a_second_job() {
    let e = estate().await;
    let start = starting(&e.plan_id, Mode::Drill);
    let exec = e.services.start_execution(&person("alice", Role::Operator), &start).await.unwrap();
    // What a runner does before it dies: the claim is written, StartRecovery reaches DRS, the job id is lost.
    let wave0: Vec<_> = exec.state.waves[0].servers.iter().map(|s| s.source_server_id.clone()).collect();
    let mut claimed = exec.clone();
    claimed.state = domain::execution::on_event(
        claimed.state,
        domain::execution::Event::BatchClaimed { servers: wave0.clone(), at: e.clock.now_millis() },
    )
    .unwrap();
    e.services
        .store
        .transact(vec![engine::store::WriteOp::Put {
            table: engine::executions::EXECUTIONS.into(),
            key: exec.id.clone(),
            value: engine::store::Json::encode(&claimed),
            expect: engine::store::Expect::Version(exec.version),
        }])
        .await
        .unwrap();
    use engine::cloud::Cloud;
    e.sim.start_recovery(&exec.dr, &wave0, true).await.unwrap();
    // A new process picks it up.
    run(&e, &exec.id).await;
    assert_eq!(e.services.get_execution(&exec.id).await.unwrap().state.phase, Phase::Succeeded);
    assert!(launches(&e.sim).values().all(|n| *n == 1), "{:?}", launches(&e.sim));
}

#[tokio::test]
async fn two_requests_for_one_plan_make_one_execution_and_a_lease_keeps_a_second_runner_out() {
    let e = estate().await;
    let start = starting(&e.plan_id, Mode::Drill);
    let alice = person("alice", Role::Operator);
    let (a, b) = tokio::join!(e.services.start_execution(&alice, &start), e.services.start_execution(&alice, &start));
    assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} {b:?}");
    let id = a.or(b).unwrap().id;
    assert_eq!(e.services.list_executions().await.unwrap().len(), 1);
    assert_ne!(e.services.advance_execution(&id, "runner-1", &Limits::default()).await.unwrap(), Step::Leased);
    assert_eq!(e.services.advance_execution(&id, "runner-2", &Limits::default()).await.unwrap(), Step::Leased);
}

#[tokio::test]
async fn a_plan_naming_a_pair_that_is_gone_does_not_start() {
    let e = estate().await;
    let plan = e.services.get_plan(&e.plan_id).await.unwrap();
    let gone = plan.waves[0].pair_ids[0].clone();
    // Behind the services' back (they refuse to delete a pair a plan uses).
    let key = e
        .services
        .store
        .list(engine::repo::INSTANCE_PAIRS, "")
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.key.ends_with(gone.as_str()))
        .unwrap()
        .key;
    e.services
        .store
        .transact(vec![engine::store::WriteOp::Delete {
            table: engine::repo::INSTANCE_PAIRS.into(),
            key,
            expect: engine::store::Expect::Any,
        }])
        .await
        .unwrap();
    let start = starting(&e.plan_id, Mode::Drill);
    let err = e.services.start_execution(&person("alice", Role::Operator), &start).await.unwrap_err();
    let engine::ServiceError::Invalid(fields) = err else { panic!("{err:?}") };
    assert!(fields.iter().any(|f| f.code == "PAIR_GONE" && f.field == gone.as_str()), "{fields:?}");
}

#[tokio::test]
async fn a_drill_returns_its_standbys_to_standby_so_a_second_drill_runs_and_keeps_them() {
    use engine::cloud::Cloud;
    let e = estate().await;
    let alice = person("alice", Role::Operator);
    let first = e.services.start_execution(&alice, &starting(&e.plan_id, Mode::Drill)).await.unwrap();
    run(&e, &first.id).await;
    let done = e.services.get_execution(&first.id).await.unwrap();
    assert_eq!(done.state.phase, Phase::Succeeded);
    let runs: Vec<_> = done.state.waves.iter().flat_map(|w| w.servers.iter().cloned()).collect();
    assert!(runs.iter().all(|r| r.cleaned_at.is_some() && r.recovery_point.is_some()));
    let instances = e.sim.describe_instances(&done.dr).await.unwrap();
    for r in &runs {
        let i = instances.iter().find(|i| i.instance_id == r.standby_instance_id).unwrap();
        assert_eq!((i.state, i.private_ip), (InstanceState::Stopped, r.expected_ip), "{}", i.instance_id);
        assert_eq!(i.tags.get("AWSDRS").map(String::as_str), Some("AllowLaunchingIntoThisInstance"));
    }
    assert!(e.sim.describe_recovery_instances(&done.dr, &[]).await.unwrap().is_empty(), "DRS forgot them");
    // DRS swapped each standby's volumes; the old ones are kept, attached to nothing.
    let swapped = e.sim.describe_available_volumes(&done.dr).await.unwrap();
    assert!(swapped.len() >= runs.len(), "{} volumes for {} servers", swapped.len(), runs.len());
    assert!(e.sim.with_world(|w| w.calls_of("drs:TerminateRecoveryInstances").is_empty()));

    // The standbys survive a second drill: DRS had nothing left to delete as "the previous recovery instance".
    let second = e.services.start_execution(&alice, &starting(&e.plan_id, Mode::Drill)).await.unwrap();
    run(&e, &second.id).await;
    assert_eq!(e.services.get_execution(&second.id).await.unwrap().state.phase, Phase::Succeeded);
    let instances = e.sim.describe_instances(&done.dr).await.unwrap();
    assert!(runs.iter().all(|r| {
        instances.iter().any(|i| i.instance_id == r.standby_instance_id && i.state == InstanceState::Stopped)
    }));
    assert!(launches(&e.sim).values().all(|n| *n == 2), "{:?}", launches(&e.sim));
}

#[tokio::test]
async fn a_planned_failover_stops_each_source_and_launches_only_after_replication_drained() {
    use engine::cloud::Cloud;
    let e = estate().await;
    let req = StartExecution { kind: FailoverKind::Planned, ..starting(&e.plan_id, Mode::Recovery) };
    let exec = e.services.start_execution(&person("alice", Role::Operator), &req).await.unwrap();
    e.services
        .decide_execution(&person("bob", Role::Approver), &exec.id, Decision::Approve, "migration")
        .await
        .unwrap();
    run(&e, &exec.id).await;
    let done = e.services.get_execution(&exec.id).await.unwrap();
    assert_eq!((done.state.phase, done.state.kind), (Phase::Succeeded, FailoverKind::Planned));
    let runs: Vec<_> = done.state.waves.iter().flat_map(|w| w.servers.iter().cloned()).collect();
    let origin = runs[0].origin.clone().unwrap();
    let sources = e.sim.describe_instances(&origin).await.unwrap();
    let (stopped_at, jobs) = e.sim.with_world(|w| (w.stopped_at.clone(), w.launch_jobs.clone()));
    for r in &runs {
        let src = r.source_instance_id.clone().unwrap();
        assert_eq!(sources.iter().find(|i| i.instance_id == src).unwrap().state, InstanceState::Stopped);
        let job = jobs.iter().find(|j| j.job.servers.iter().any(|s| s.source_server_id == r.source_server_id)).unwrap();
        assert!(
            job.job.created_at >= stopped_at[&src] + sim::ec2::DRAIN_MS,
            "{} launched before its last data was replicated",
            r.source_server_id
        );
        assert!(r.drained_at.is_some() && r.cleaned_at.is_none(), "a recovery keeps its recovery instances");
    }
    let audit = e.services.audit.query(&Default::default()).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "aws.ec2.StopInstances"), "the source stops are in the audit trail");
    assert!(audit.iter().any(|a| a.action == "aws.drs.StartRecovery"));
}

#[tokio::test]
async fn a_drill_and_a_recovery_cannot_run_on_overlapping_servers() {
    let e = estate().await;
    let alice = person("alice", Role::Operator);
    let plan = e.services.get_plan(&e.plan_id).await.unwrap();
    let other = domain::plan::RecoveryPlanInput {
        name: "Billing, second plan".into(),
        description: String::new(),
        protection_group_ids: plan.protection_group_ids.clone(),
        waves: None,
        rto_target_minutes: 30,
    };
    let other = e.services.create_plan(&alice, &other).await.unwrap();
    let drill = e.services.start_execution(&alice, &starting(&e.plan_id, Mode::Drill)).await.unwrap();
    let err = e.services.start_execution(&alice, &starting(&other.id, Mode::Recovery)).await.unwrap_err();
    let engine::ServiceError::Invalid(fields) = err else { panic!("{err:?}") };
    assert_eq!(fields[0].code, "SERVERS_IN_EXECUTION", "{fields:?}");
    assert!(fields[0].message.contains(&drill.id));
    run(&e, &drill.id).await;
    e.services.start_execution(&alice, &starting(&other.id, Mode::Recovery)).await.unwrap();
}

#[tokio::test]
async fn readiness_is_evaluated_again_as_each_wave_starts() {
    let e = estate().await;
    let exec =
        e.services.start_execution(&person("alice", Role::Operator), &starting(&e.plan_id, Mode::Drill)).await.unwrap();
    // After the start, someone boots one standby of the second wave by hand.
    let spoiled = exec.state.waves[1].servers[0].clone();
    e.sim.with_world(|w| {
        w.scenario.instances.iter_mut().find(|i| i.instance_id == spoiled.standby_instance_id).unwrap().state =
            InstanceState::Running
    });
    run(&e, &exec.id).await;
    let done = e.services.get_execution(&exec.id).await.unwrap();
    let s = done.state.waves[1].servers.iter().find(|s| s.source_server_id == spoiled.source_server_id).unwrap();
    assert_eq!(s.state, ServerState::Failed);
    assert!(s.error.as_deref().unwrap().contains("not ready when its wave started"), "{:?}", s.error);
    assert!(s.job_id.is_none(), "it never launched");
    assert!(!launches(&e.sim).contains_key(spoiled.source_server_id.as_str()));
    assert!(done.state.waves[0].servers.iter().all(|s| s.state == ServerState::Verified));
    assert!(
        done.log.iter().any(|l| l.failure && l.message.contains(&format!("{} blocked", spoiled.source_server_id))),
        "{:?}",
        done.log
    );
}

#[tokio::test]
async fn a_disaster_failover_launches_from_the_last_recovery_point_when_replication_has_stopped() {
    let e = estate().await;
    let plan = e.services.get_plan(&e.plan_id).await.unwrap();
    let pairs = engine::repo::list_pairs(&*e.services.store, Some(&plan.protection_group_ids[0])).await.unwrap();
    // The primary region goes dark: replication of every server of the plan stalls.
    e.sim.with_world(|w| {
        for s in w
            .scenario
            .source_servers
            .iter_mut()
            .filter(|s| pairs.iter().any(|p| p.source_server_id == s.source_server_id))
        {
            s.replication_state = domain::estate::ReplicationState::Stalled;
        }
    });
    let alice = person("alice", Role::Operator);
    let err = e.services.start_execution(&alice, &starting(&e.plan_id, Mode::Drill)).await.unwrap_err();
    let engine::ServiceError::Invalid(fields) = err else { panic!("{err:?}") };
    assert!(fields.iter().all(|f| f.code == "NOT_READY" && f.message.contains("replication.")), "{fields:?}");
    let exec = e.services.start_execution(&alice, &starting(&e.plan_id, Mode::Recovery)).await.unwrap();
    e.services
        .decide_execution(&person("bob", Role::Approver), &exec.id, Decision::Approve, "region down")
        .await
        .unwrap();
    run(&e, &exec.id).await;
    let done = e.services.get_execution(&exec.id).await.unwrap();
    assert_eq!(done.state.phase, Phase::Succeeded, "{:?}", done.log);
    assert!(done.state.waves.iter().flat_map(|w| w.servers.iter()).all(|s| s.recovery_point.is_some()));
}

#[tokio::test]
async fn a_failback_brings_every_server_home_to_its_original_instance_and_ip_once() {
    use engine::cloud::Cloud;
    let e = estate().await;
    let (alice, bob) = (person("alice", Role::Operator), person("bob", Role::Approver));
    let recovery = recovered(&e).await;
    assert_eq!(recovery.state.phase, Phase::Succeeded);
    let origin = recovery.state.waves[0].servers[0].origin.clone().unwrap();
    let before: HashMap<String, std::net::Ipv4Addr> = e
        .sim
        .describe_instances(&origin)
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.instance_id.to_string(), i.private_ip))
        .collect();

    // The originals are running and untagged: nothing happens without the operator's confirmation.
    let mut req = domain::execution::StartFailback {
        execution_id: recovery.id.clone(),
        stop_originals: false,
        tag_originals: false,
        terminate_standbys_confirmation: None,
        ..Default::default()
    };
    let err = e.services.start_failback(&alice, &req).await.unwrap_err();
    let engine::ServiceError::Invalid(fields) = err else { panic!("{err:?}") };
    assert!(
        fields.iter().any(|f| f.code == "ORIGINAL_NOT_STOPPED")
            && fields.iter().any(|f| f.code == "ORIGINAL_NOT_TAGGED"),
        "{fields:?}"
    );
    let drill = e
        .services
        .start_failback(
            &alice,
            &domain::execution::StartFailback { execution_id: "exec-0000000000000000".into(), ..req.clone() },
        )
        .await;
    assert!(drill.is_err());

    (req.stop_originals, req.tag_originals) = (true, true);
    let back = e.services.start_failback(&alice, &req).await.unwrap();
    assert_eq!(back.state.phase, Phase::AwaitingApproval, "a failback needs a second person too");
    e.services.decide_execution(&bob, &back.id, Decision::Approve, "primary is healthy again").await.unwrap();
    for _ in 0..600 {
        if e.services.advance_execution(&back.id, "runner-1", &Limits::default()).await.unwrap() == Step::Done {
            break;
        }
        e.clock.advance(30_000);
    }
    let done = e.services.get_execution(&back.id).await.unwrap();
    assert_eq!(done.state.phase, Phase::Succeeded, "{:#?}", done.log);
    let after = e.sim.describe_instances(&origin).await.unwrap();
    let proof = e.services.round_trip_proof(&back.id).await.unwrap();
    assert_eq!(proof.len(), recovery.state.waves.iter().map(|w| w.servers.len()).sum::<usize>());
    for row in &proof {
        assert_eq!(row.verdict, domain::execution::ProofVerdict::Identical, "{row:?}");
        let original = &row.before_failover.instance_id;
        assert_eq!(before[original.as_str()], row.before_failover.private_ip);
        let now = after.iter().find(|i| &i.instance_id == original).unwrap();
        assert_eq!((now.state, now.private_ip), (InstanceState::Running, row.before_failover.private_ip));
        assert_ne!(row.after_failover.as_ref().unwrap().instance_id, *original, "it ran on its standby in between");
    }
    let reversals =
        e.sim.with_world(|w| w.calls_of("drs:ReverseReplication").iter().filter(|c| c.outcome == "ok").count());
    assert_eq!(reversals, 2 * proof.len(), "per server, one reversal to come home and one to re-protect");
    let seen = done.state.waves.iter().flat_map(|w| w.servers.iter()).map(|s| s.failback_replication.clone());
    assert!(
        seen.into_iter().all(|r| r.is_some_and(|(state, _)| state == "CONTINUOUS")),
        "progress was recorded per server"
    );
    let again = e.services.start_failback(&alice, &req).await.unwrap_err();
    let engine::ServiceError::Invalid(fields) = again else { panic!() };
    assert_eq!(fields[0].code, "NOTHING_TO_FAIL_BACK");
    assert_eq!(fields[0].message, format!("all {} verified servers are home", proof.len()), "it says why");

    // Re-armed: the standbys are stopped and released by DRS on both sides, the originals replicate to the
    // DR region again, and the next drill runs into the same standbys.
    let dr = recovery.dr.clone();
    let standbys = e.sim.describe_instances(&dr).await.unwrap();
    for r in recovery.state.waves.iter().flat_map(|w| w.servers.iter()) {
        let i = standbys.iter().find(|i| i.instance_id == r.standby_instance_id).unwrap();
        assert_eq!(i.state, InstanceState::Stopped, "{}", i.instance_id);
    }
    assert!(e.sim.describe_recovery_instances(&dr, &[]).await.unwrap().is_empty());
    assert!(e.sim.describe_recovery_instances(&origin, &[]).await.unwrap().is_empty());
    let forward = e.sim.describe_source_servers(&dr).await.unwrap();
    for row in &proof {
        let s = forward.iter().find(|s| s.source_server_id == row.source_server_id).unwrap();
        assert_eq!(s.replication_state, domain::estate::ReplicationState::Continuous);
        assert_eq!(s.source_instance_id.as_ref(), Some(&row.before_failover.instance_id));
    }
    assert!(done.log.iter().any(|l| l.message.contains("protected again")), "{:?}", done.log);
    let next = e.services.start_execution(&alice, &starting(&e.plan_id, Mode::Drill)).await.unwrap();
    run(&e, &next.id).await;
    assert_eq!(e.services.get_execution(&next.id).await.unwrap().state.phase, Phase::Succeeded);
}

#[tokio::test]
async fn a_failback_whose_agent_never_installs_fails_that_server_with_the_reason_and_re_arms_the_rest() {
    let e = estate().await;
    let (alice, bob) = (person("alice", Role::Operator), person("bob", Role::Approver));
    let recovery = recovered(&e).await;
    let last = recovery.state.waves.last().unwrap().servers[0].source_server_id.clone();
    e.sim.set_fault(&last, Some(Fault::AgentInstallFails));
    // Its neighbour's reversed replication stalls once synced.
    let stalls = recovery.state.waves.last().unwrap().servers[1].source_server_id.clone();
    e.sim.set_fault(&stalls, Some(Fault::FailbackStalls));
    let req = domain::execution::StartFailback {
        execution_id: recovery.id.clone(),
        stop_originals: true,
        tag_originals: true,
        terminate_standbys_confirmation: None,
        ..Default::default()
    };
    let back = e.services.start_failback(&alice, &req).await.unwrap();
    e.services.decide_execution(&bob, &back.id, Decision::Approve, "go").await.unwrap();
    for _ in 0..600 {
        if e.services.advance_execution(&back.id, "runner-1", &Limits::default()).await.unwrap() == Step::Done {
            break;
        }
        e.clock.advance(30_000);
    }
    let done = e.services.get_execution(&back.id).await.unwrap();
    assert_eq!(done.state.phase, Phase::Failed);
    let stalled =
        done.state.waves.iter().flat_map(|w| w.servers.iter()).find(|s| s.source_server_id == stalls).unwrap();
    assert_eq!(stalled.state, ServerState::Failed);
    assert!(stalled.error.as_deref().unwrap().contains("failback replication is STALLED"), "{:?}", stalled.error);
    let stuck = done.state.waves.iter().flat_map(|w| w.servers.iter()).find(|s| s.source_server_id == last).unwrap();
    assert_eq!(stuck.state, ServerState::Failed);
    assert!(
        stuck.error.as_deref().unwrap().contains("did not finish installing within 30 minutes"),
        "{:?}",
        stuck.error
    );
    let proof = e.services.round_trip_proof(&back.id).await.unwrap();
    for row in proof {
        let expected = if row.source_server_id == last || row.source_server_id == stalls {
            domain::execution::ProofVerdict::Mismatch
        } else {
            domain::execution::ProofVerdict::Identical
        };
        assert_eq!(row.verdict, expected, "{row:?}");
    }
    let others_back = done
        .state
        .waves
        .iter()
        .flat_map(|w| w.servers.iter())
        .filter(|s| s.source_server_id != last && s.source_server_id != stalls);
    assert!(others_back.into_iter().all(|s| s.cleaned_at.is_some()), "the servers that came home are re-armed");
}

#[tokio::test]
async fn a_crash_between_a_reversal_claim_and_its_record_is_reconciled_without_a_second_reversal() {
    use engine::cloud::Cloud;
    let e = estate().await;
    let (alice, bob) = (person("alice", Role::Operator), person("bob", Role::Approver));
    let recovery = recovered(&e).await;
    let req = domain::execution::StartFailback {
        execution_id: recovery.id.clone(),
        stop_originals: true,
        tag_originals: true,
        terminate_standbys_confirmation: None,
        ..Default::default()
    };
    let back = e.services.start_failback(&alice, &req).await.unwrap();
    let back = e.services.decide_execution(&bob, &back.id, Decision::Approve, "go").await.unwrap();
    // What a runner does before it dies: the claim is written, ReverseReplication reaches DRS, the answer is lost.
    let wave0: Vec<_> = back.state.waves[0].servers.iter().map(|s| s.source_server_id.clone()).collect();
    let mut claimed = back.clone();
    claimed.state = domain::execution::on_event(
        claimed.state,
        domain::execution::Event::ReverseClaimed { servers: wave0.clone(), at: e.clock.now_millis() },
    )
    .unwrap();
    e.services
        .store
        .transact(vec![engine::store::WriteOp::Put {
            table: engine::executions::EXECUTIONS.into(),
            key: back.id.clone(),
            value: engine::store::Json::encode(&claimed),
            expect: engine::store::Expect::Version(back.version),
        }])
        .await
        .unwrap();
    for s in back.state.waves[0].servers.iter() {
        e.sim.reverse_replication(&recovery.dr, s.dr_standby_id.as_ref().unwrap()).await.unwrap();
    }
    for _ in 0..600 {
        if e.services.advance_execution(&back.id, "runner-2", &Limits::default()).await.unwrap() == Step::Done {
            break;
        }
        e.clock.advance(30_000);
    }
    let done = e.services.get_execution(&back.id).await.unwrap();
    assert_eq!(done.state.phase, Phase::Succeeded, "{:?}", done.log);
    let servers = done.state.waves.iter().map(|w| w.servers.len()).sum::<usize>();
    let reversals =
        e.sim.with_world(|w| w.calls_of("drs:ReverseReplication").iter().filter(|c| c.outcome == "ok").count());
    assert_eq!(reversals, 2 * servers, "one reversal home and one re-protect per server, none twice");
}

#[tokio::test]
async fn failback_prerequisites_name_the_missing_egress_rule_profile_and_drs_initialisation() {
    let e = estate().await;
    let alice = person("alice", Role::Operator);
    let recovery = recovered(&e).await;
    let first = recovery.state.waves[0].servers[0].clone();
    let origin = first.origin.clone().unwrap();
    e.sim.with_world(|w| {
        let standby = w.scenario.instances.iter_mut().find(|i| i.instance_id == first.standby_instance_id).unwrap();
        standby.iam_instance_profile = None;
        let sg = standby.security_group_ids[0].clone();
        let g = w.scenario.security_groups.iter_mut().find(|g| g.group_id == sg).unwrap();
        g.egress = Some(vec![domain::estate::EgressRule { protocol: "tcp".into(), from_port: 443, to_port: 443 }]);
        w.scenario.uninitialized_drs.push(origin.clone());
        let second = recovery.state.waves[1].servers[0].source_instance_id.clone().unwrap();
        w.scenario.instances.iter_mut().find(|i| i.instance_id == second).unwrap().state = InstanceState::Terminated;
    });
    let req = domain::execution::StartFailback {
        execution_id: recovery.id.clone(),
        stop_originals: true,
        tag_originals: true,
        terminate_standbys_confirmation: None,
        ..Default::default()
    };
    let err = e.services.start_failback(&alice, &req).await.unwrap_err();
    let engine::ServiceError::Invalid(fields) = err else { panic!("{err:?}") };
    let codes: Vec<&str> = fields.iter().map(|f| f.code.as_str()).collect();
    assert!(codes.contains(&"DRS_NOT_INITIALIZED") && codes.contains(&"INSTANCE_PROFILE"), "{fields:?}");
    let gone = fields.iter().find(|f| f.code == "ORIGINAL_TERMINATED").expect("a terminated original blocks");
    assert!(gone.message.contains("is terminated"), "{gone:?}");
    let egress = fields.iter().find(|f| f.code == "SECURITY_GROUP_EGRESS").expect("the egress rule is named");
    assert!(egress.message.contains("TCP 1500") && !fields.iter().any(|f| f.message.contains("TCP 443")), "{fields:?}");
}

#[tokio::test]
async fn only_an_admin_typing_the_plan_name_has_the_dr_standbys_terminated_after_a_failback() {
    use engine::cloud::Cloud;
    let e = estate().await;
    let (alice, bob, root) =
        (person("alice", Role::Operator), person("bob", Role::Approver), person("root", Role::Admin));
    let recovery = recovered(&e).await;
    let mut req = domain::execution::StartFailback {
        execution_id: recovery.id.clone(),
        stop_originals: true,
        tag_originals: true,
        terminate_standbys_confirmation: Some("Billing".into()),
        ..Default::default()
    };
    let code = |r: Result<_, engine::ServiceError>| match r {
        Err(engine::ServiceError::Invalid(f)) => f[0].code.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(code(e.services.start_failback(&alice, &req).await), "ADMIN_REQUIRED");
    req.terminate_standbys_confirmation = Some("billing".into());
    assert_eq!(code(e.services.start_failback(&root, &req).await), "CONFIRMATION_MISMATCH");
    req.terminate_standbys_confirmation = Some("Billing".into());
    let back = e.services.start_failback(&root, &req).await.unwrap();
    e.services.decide_execution(&bob, &back.id, Decision::Approve, "go").await.unwrap();
    for _ in 0..600 {
        if e.services.advance_execution(&back.id, "runner-1", &Limits::default()).await.unwrap() == Step::Done {
            break;
        }
        e.clock.advance(30_000);
    }
    assert_eq!(e.services.get_execution(&back.id).await.unwrap().state.phase, Phase::Succeeded);
    let standbys = e.sim.describe_instances(&recovery.dr).await.unwrap();
    for r in recovery.state.waves.iter().flat_map(|w| w.servers.iter()) {
        assert_eq!(
            standbys.iter().find(|i| i.instance_id == r.standby_instance_id).unwrap().state,
            InstanceState::Terminated
        );
    }
    assert!(e.sim.with_world(|w| w.calls_of("drs:TerminateRecoveryInstances").is_empty()));
    let audit = e.services.audit.query(&Default::default()).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "aws.ec2.TerminateInstances" && a.actor.starts_with("system:")));
}

/// The runner steps again only after progress: a step that reports `Advanced` changed the execution (a job
/// that goes on listing servers it launched long ago is no news), so a tick never spins.
#[tokio::test]
async fn a_step_is_progress_only_when_it_changes_the_execution() {
    let e = estate().await;
    let alice = person("alice", Role::Operator);
    let exec = e.services.start_execution(&alice, &starting(&e.plan_id, Mode::Drill)).await.unwrap();
    let (mut advanced, mut idle) = (0, 0);
    for _ in 0..2000 {
        let before = e.services.get_execution(&exec.id).await.unwrap().state;
        match e.services.advance_execution(&exec.id, "runner-1", &Limits::default()).await.unwrap() {
            Step::Done => break,
            Step::Advanced => {
                advanced += 1;
                let after = e.services.get_execution(&exec.id).await.unwrap().state;
                assert_ne!(before, after, "step {} reported progress without any", advanced + idle);
            }
            _ => {
                idle += 1;
                e.clock.advance(5_000);
            }
        }
    }
    let end = e.services.get_execution(&exec.id).await.unwrap();
    assert_eq!(end.state.phase, Phase::Succeeded);
    // Each server is logged as launched once.
    for r in end.state.waves.iter().flat_map(|w| w.servers.iter()) {
        let lines = end.log.iter().filter(|l| l.message == format!("{} launched", r.source_server_id)).count();
        assert_eq!(lines, 1, "{}", r.source_server_id);
    }
    assert!(advanced > 0 && idle > advanced, "{advanced} advanced, {idle} idle");
}

#[tokio::test]
async fn the_runner_s_decoded_copy_gives_way_to_another_process_s_write() {
    let e = estate().await;
    let alice = person("alice", Role::Operator);
    let exec = e.services.start_execution(&alice, &starting(&e.plan_id, Mode::Drill)).await.unwrap();
    // The runner steps, keeping its decoded copy; then a person cancels through another path.
    assert_ne!(e.services.advance_execution(&exec.id, "runner-1", &Limits::default()).await.unwrap(), Step::Leased);
    e.clock.advance(5_000);
    e.services.advance_execution(&exec.id, "runner-1", &Limits::default()).await.unwrap();
    let cancelled = e.services.decide_execution(&alice, &exec.id, Decision::Cancel, "stop").await.unwrap();
    assert!(cancelled.state.cancel_requested);
    // The next step acts on the stored execution: with the copy from before the cancel its write would
    // conflict with the cancel's.
    e.clock.advance(5_000);
    let step = e.services.advance_execution(&exec.id, "runner-1", &Limits::default()).await;
    assert!(step.is_ok(), "{step:?}");
    let stored = e.services.get_execution(&exec.id).await.unwrap();
    assert!(stored.state.cancel_requested, "the runner's write lost the cancel");
    run(&e, &exec.id).await;
    assert_eq!(e.services.get_execution(&exec.id).await.unwrap().state.phase, Phase::Cancelled);
}

#[tokio::test]
async fn readers_of_one_execution_share_one_view_of_its_current_version() {
    let e = estate().await;
    let alice = person("alice", Role::Operator);
    let exec = e.services.start_execution(&alice, &starting(&e.plan_id, Mode::Drill)).await.unwrap();
    let mut views = Vec::new();
    for _ in 0..4 {
        views.push(e.services.shared_execution_view(&exec.id).await.unwrap());
    }
    assert!(views.windows(2).all(|w| std::sync::Arc::ptr_eq(&w[0].record, &w[1].record)), "each reader decoded");
    assert_eq!(views[0].version, exec.version);
    // A change is seen at once, not after the view's second is up.
    e.services.advance_execution(&exec.id, "runner-1", &Limits::default()).await.unwrap();
    let stored = e.services.get_execution(&exec.id).await.unwrap();
    assert_ne!(stored.version, exec.version);
    let after = e.services.shared_execution_view(&exec.id).await.unwrap();
    assert_eq!((after.version, after.record.as_ref()), (stored.version, &stored));
    let json: serde_json::Value = serde_json::from_str(&after.json).unwrap();
    assert_eq!(json["execution"]["version"], stored.version);
    assert!(!after.json.contains('\n'), "one line, as a server-sent event's data");
}

#[tokio::test(start_paused = true)]
async fn drs_calls_are_paced_to_the_rate_the_estate_states_and_a_later_storm_is_ridden_out() {
    let clock = Arc::new(SimClock::manual(1_800_000_000_000));
    let mut scenario = Scenario::from_toml(DEFAULT_SCENARIO).unwrap();
    (scenario.api.drs_requests_per_second, scenario.api.drs_burst) = (Some(10.0), 5);
    let sim = Arc::new(Simulator::new(scenario, clock.clone()));
    let services = Services::new(sim.clone(), Arc::new(MemoryStore::default()), clock.clone());
    let dr: domain::estate::AccountRegion =
        serde_json::from_value(serde_json::json!({ "account_id": "222222222222", "region": "us-west-2" })).unwrap();
    let throttled = || sim.with_world(|w| w.calls.iter().filter(|c| c.outcome == "ThrottlingException").count());
    let started = tokio::time::Instant::now();
    for _ in 0..30 {
        services.cloud.describe_jobs(&dr, &[]).await.unwrap();
    }
    // 30 calls at (a little under) 10 a second after a burst of 4: about 2.6 s of waiting, nothing throttled.
    let waited = started.elapsed().as_secs_f64();
    assert!((2.5..3.2).contains(&waited), "{waited}");
    assert_eq!(throttled(), 0);
    // A limit the engine was not told about throttles; the retries ride it out.
    sim.set_drs_rate_limit(Some(2.0), 1);
    for _ in 0..5 {
        let (r, _) =
            engine::retry::with_retry(&services.settings.retry, || services.cloud.describe_jobs(&dr, &[])).await;
        r.unwrap();
    }
    assert!(throttled() > 0);
}

/// Two processes share one store (and one estate): while the first steps a drill whose clean-up takes longer
/// than the lease, its heartbeat renews the lease, so the second never takes the execution over. Leases are
/// on the wall clock, so this test runs in real time: DRS is paced at 20 calls a second, which makes the
/// clean-up of the billing application's standbys take several leases of 300 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_keeps_its_lease_through_a_clean_up_longer_than_the_lease() {
    const LEASE_MS: i64 = 300;
    let mut e = estate_with(|sim| sim.set_drs_rate_limit(Some(20.0), 1)).await;
    e.services.settings.lease_ms = LEASE_MS;
    let mut second = Services::new(e.sim.clone(), e.services.store.clone(), e.clock.clone());
    second.settings.lease_ms = LEASE_MS;
    let exec =
        e.services.start_execution(&person("alice", Role::Operator), &starting(&e.plan_id, Mode::Drill)).await.unwrap();
    for _ in 0..200 {
        e.services.advance_execution(&exec.id, "runner-1", &Limits::default()).await.unwrap();
        if e.services.get_execution(&exec.id).await.unwrap().state.phase == Phase::CleaningUp {
            break;
        }
        e.clock.advance(30_000);
    }
    assert_eq!(e.services.get_execution(&exec.id).await.unwrap().state.phase, Phase::CleaningUp);

    let finished = std::sync::atomic::AtomicBool::new(false);
    let first = async {
        let mut longest = std::time::Duration::ZERO;
        for _ in 0..200 {
            let started = std::time::Instant::now();
            let step = e.services.advance_execution(&exec.id, "runner-1", &Limits::default()).await;
            longest = longest.max(started.elapsed());
            match step {
                Ok(Step::Done) => break,
                Ok(_) => e.clock.advance(30_000),
                Err(err) => {
                    finished.store(true, std::sync::atomic::Ordering::SeqCst);
                    panic!("the first runner lost the execution mid-step: {err}");
                }
            }
        }
        finished.store(true, std::sync::atomic::Ordering::SeqCst);
        longest
    };
    let other = async {
        let mut seen = Vec::new();
        while !finished.load(std::sync::atomic::Ordering::SeqCst) {
            seen.push(
                second.advance_execution(&exec.id, "runner-2", &Limits::default()).await.map_err(|e| e.to_string()),
            );
            // The second process looks as often as a busy runner would, many times per lease.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        seen
    };
    let (longest, seen) = tokio::join!(first, other);
    assert!(
        longest > std::time::Duration::from_millis(2 * LEASE_MS as u64),
        "the clean-up must outlast the lease for this test to mean anything: {longest:?}"
    );
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|s| *s == Ok(Step::Leased)), "the second runner took over: {seen:?}");
    let done = e.services.get_execution(&exec.id).await.unwrap();
    assert_eq!(done.state.phase, Phase::Succeeded, "{:?}", done.log);
    assert_eq!(done.lease.map(|l| l.owner).as_deref(), Some("runner-1"));
}

/// Steps a failback to its end (the re-arm included).
async fn run_failback(e: &Estate, id: &str) -> engine::executions::ExecutionRecord {
    for _ in 0..600 {
        if e.services.advance_execution(id, "runner-1", &Limits::default()).await.unwrap() == Step::Done {
            break;
        }
        e.clock.advance(30_000);
    }
    e.services.get_execution(id).await.unwrap()
}

#[tokio::test]
async fn a_server_whose_original_is_terminated_stays_on_dr_while_the_others_fail_back() {
    use domain::execution::StayReason;
    use engine::cloud::Cloud;
    let e = estate().await;
    let (alice, bob) = (person("alice", Role::Operator), person("bob", Role::Approver));
    let recovery = recovered(&e).await;
    let all: Vec<_> = recovery.state.waves.iter().flat_map(|w| w.servers.iter()).cloned().collect();
    assert!(all.len() >= 3, "{}", all.len());
    // One server cannot go home at all (its original is gone); another only until its standby runs again.
    let (gone, paused) = (all[0].clone(), all[1].clone());
    let origin = gone.origin.clone().unwrap();
    e.sim.terminate_instances(&origin, &[gone.source_instance_id.clone().unwrap()]).await.unwrap();
    e.sim.stop_instances(&recovery.dr, std::slice::from_ref(&paused.standby_instance_id)).await.unwrap();
    e.clock.advance(10 * 60_000);
    let req = domain::execution::StartFailback {
        execution_id: recovery.id.clone(),
        stop_originals: true,
        tag_originals: true,
        ..Default::default()
    };

    // As a whole, the request is refused, naming each server and how to go on without it.
    let engine::ServiceError::Invalid(fields) = e.services.start_failback(&alice, &req).await.unwrap_err() else {
        panic!()
    };
    let named: Vec<(&str, &str)> = fields.iter().map(|f| (f.field.as_str(), f.code.as_str())).collect();
    assert!(named.contains(&(gone.source_server_id.as_str(), "ORIGINAL_TERMINATED")), "{fields:?}");
    assert!(named.contains(&(paused.source_server_id.as_str(), "RECOVERY_INSTANCE_NOT_RUNNING")), "{fields:?}");
    assert!(fields.iter().any(|f| f.message.contains("leave this server behind")), "{fields:?}");

    // The dry run with "all that are ready" says exactly who goes and who stays, and why.
    let ready_only = domain::execution::StartFailback { ready_only: true, ..req.clone() };
    let preview = e.services.failback_preview(&alice, &ready_only).await.unwrap();
    assert!(preview.ready && preview.problems.is_empty(), "{preview:?}");
    assert_eq!(preview.going.len(), all.len() - 2);
    let staying: Vec<_> = preview.staying.iter().map(|l| (&l.source_server_id, l.reason)).collect();
    assert_eq!(
        staying,
        vec![(&gone.source_server_id, StayReason::NotReady), (&paused.source_server_id, StayReason::NotReady)]
    );
    assert!(preview.staying[0].message.contains("ORIGINAL_TERMINATED"), "{:?}", preview.staying[0]);
    // Naming them explicitly gives the same failback, with the reason "left behind".
    let leave = vec![gone.source_server_id.clone(), paused.source_server_id.clone()];
    let named = domain::execution::StartFailback { leave_behind: leave, ..req.clone() };
    let preview = e.services.failback_preview(&alice, &named).await.unwrap();
    assert!(preview.ready, "{preview:?}");
    assert!(preview.staying.iter().all(|l| l.reason == StayReason::LeftBehind), "{preview:?}");
    let unknown = domain::execution::StartFailback {
        leave_behind: vec![domain::ids::SourceServerId::parse("s-0000000000000000f").unwrap()],
        ..req.clone()
    };
    let engine::ServiceError::Invalid(fields) = e.services.failback_preview(&alice, &unknown).await.unwrap_err() else {
        panic!()
    };
    assert_eq!((fields[0].field.as_str(), fields[0].code.as_str()), ("leave_behind[0]", "NOT_IN_RECOVERY"));

    let back = e.services.start_failback(&alice, &ready_only).await.unwrap();
    let left: Vec<_> = back.failback.as_ref().unwrap().left_behind.iter().map(|l| l.source_server_id.clone()).collect();
    assert_eq!(left, vec![gone.source_server_id.clone(), paused.source_server_id.clone()], "recorded on the failback");
    let going: Vec<_> = back.state.waves.iter().flat_map(|w| w.servers.iter()).map(|s| &s.source_server_id).collect();
    assert!(!going.contains(&&gone.source_server_id) && !going.contains(&&paused.source_server_id));
    e.services.decide_execution(&bob, &back.id, Decision::Approve, "the others go home").await.unwrap();
    let done = run_failback(&e, &back.id).await;
    assert_eq!(done.state.phase, Phase::Succeeded, "{:?}", done.log);
    // The two are still DRS's recovery instances on their DR standbys.
    let listed = e.sim.describe_recovery_instances(&recovery.dr, &[]).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");

    // Fixed (its standby runs again), the paused one goes home with a later failback; the gone one stays.
    e.sim.start_instances(&recovery.dr, std::slice::from_ref(&paused.standby_instance_id)).await.unwrap();
    e.clock.advance(10 * 60_000);
    let later = e.services.start_failback(&alice, &ready_only).await.unwrap();
    let servers: Vec<_> =
        later.state.waves.iter().flat_map(|w| w.servers.iter()).map(|s| s.source_server_id.clone()).collect();
    assert_eq!(servers, vec![paused.source_server_id.clone()]);
    e.services.decide_execution(&bob, &later.id, Decision::Approve, "fixed").await.unwrap();
    let later = run_failback(&e, &later.id).await;
    assert_eq!(later.state.phase, Phase::Succeeded, "{:?}", later.log);
    let proof = e.services.round_trip_proof(&later.id).await.unwrap();
    assert_eq!(proof.len(), 1);
    assert_eq!(proof[0].verdict, domain::execution::ProofVerdict::Identical);

    // Nothing left that can go: the refusal says why.
    let engine::ServiceError::Invalid(fields) = e.services.start_failback(&alice, &ready_only).await.unwrap_err()
    else {
        panic!()
    };
    assert_eq!(fields[0].code, "NOTHING_TO_FAIL_BACK");
    let home = all.len() - 1;
    assert_eq!(
        fields[0].message,
        format!("every server stays on DR: 1 not ready (see staying), {home} already home"),
        "{fields:?}"
    );
    let preview = e.services.failback_preview(&alice, &ready_only).await.unwrap();
    assert_eq!(preview.staying.iter().filter(|l| l.reason == StayReason::AlreadyHome).count(), home);
}
