//! A full round trip of 100 simulated servers: a disaster failover into their standbys, a failback into
//! the original instances, and the DR pool back in standby, ready for the next failover.

use domain::auth::{AuthMethod, Principal, Role};
use domain::estate::InstanceState;
use domain::execution::{
    Decision, ExecutionRecord, FailoverKind, Limits, Mode, Phase, ProofVerdict, StartExecution, StartFailback,
};
use domain::readiness::Verdict;
use engine::Services;
use engine::cloud::Cloud;
use engine::executions::Step;
use engine::store::memory::MemoryStore;
use sim::generate::{GenerateOptions, generate};
use sim::{SimClock, Simulator};
use std::sync::Arc;

fn person(name: &str, role: Role) -> Principal {
    Principal { subject: name.into(), role, method: AuthMethod::Oidc, token: None, must_change_password: false }
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

struct Estate {
    clock: Arc<SimClock>,
    sim: Arc<Simulator>,
    store: Arc<MemoryStore>,
    services: Services,
    group: domain::group::ProtectionGroup,
    plan: domain::plan::RecoveryPlan,
}

/// A generated estate of `servers`, grouped, matched, configured and planned in one wave.
async fn planned(servers: usize) -> Estate {
    let clock = Arc::new(SimClock::manual(1_800_000_000_000));
    let scenario = generate(GenerateOptions { servers, seed: 11, problems: false });
    let sim = Arc::new(Simulator::new(scenario, clock.clone()));
    let store = Arc::new(MemoryStore::default());
    let services = Services::new(sim.clone(), store.clone(), clock.clone());
    let alice = person("alice", Role::Operator);
    let input = serde_json::from_value(serde_json::json!({
        "name": "Everything",
        "primary": { "account_id": "111111111111", "region": "us-east-1" },
        "dr": { "account_id": "222222222222", "region": "us-west-2" },
        "selection": { "kind": "all" }
    }))
    .unwrap();
    let group = services.create_group(&alice, &input).await.unwrap();
    let report = services.match_group(&group.id).await.unwrap().report;
    let pairs: Vec<_> = report
        .pairs
        .iter()
        .map(|p| domain::group::PairRequest {
            source_server_id: p.source_server_id.clone(),
            standby_instance_id: p.standby_instance_id.clone(),
        })
        .collect();
    assert_eq!(pairs.len(), servers);
    services.accept_pairs(&group.id, &pairs, &alice).await.unwrap();
    services
        .configure_launch_into(&group.id, &engine::launch::ConfigureRequest { dry_run: false, pair_ids: None }, &alice)
        .await
        .unwrap();
    let plan = domain::plan::RecoveryPlanInput {
        name: "Everything".into(),
        description: String::new(),
        protection_group_ids: vec![group.id.clone()],
        waves: None,
        rto_target_minutes: 30,
    };
    let plan = services.create_plan(&alice, &plan).await.unwrap();
    Estate { clock, sim, store, services, group, plan }
}

/// Fails `e` over (disaster) and starts its failback, both approved.
async fn failed_over_and_failing_back(e: &Estate) -> (ExecutionRecord, ExecutionRecord) {
    let (alice, bob) = (person("alice", Role::Operator), person("bob", Role::Approver));
    let start = StartExecution {
        plan_id: e.plan.id.clone(),
        mode: Mode::Recovery,
        kind: FailoverKind::Disaster,
        acknowledge_warnings: true,
    };
    let recovery = e.services.start_execution(&alice, &start).await.unwrap();
    e.services.decide_execution(&bob, &recovery.id, Decision::Approve, "region down").await.unwrap();
    run_to_end(&e.services, &e.clock, &recovery.id).await;
    let recovery = e.services.get_execution(&recovery.id).await.unwrap();
    assert_eq!(recovery.state.phase, Phase::Succeeded);
    let req = StartFailback {
        execution_id: recovery.id.clone(),
        stop_originals: true,
        tag_originals: true,
        terminate_standbys_confirmation: None,
        ..Default::default()
    };
    let back = e.services.start_failback(&alice, &req).await.unwrap();
    e.services.decide_execution(&bob, &back.id, Decision::Approve, "home").await.unwrap();
    (recovery, back)
}

#[tokio::test]
async fn one_hundred_servers_fail_over_and_back_with_identical_ids_and_ips_and_the_dr_pool_in_standby() {
    let e = planned(100).await;
    let Estate { clock, sim, store, services, group, .. } = &e;
    let dr = group.dr.clone();
    let origin = group.primary.clone();
    let originals_before = sim.describe_instances(&origin).await.unwrap();
    let ready_before = services.evaluate_readiness(&group.id).await.unwrap().readiness;
    assert_ne!(ready_before.verdict, Verdict::Blocked, "{:?}", ready_before.failing);

    let (_, back) = failed_over_and_failing_back(&e).await;
    run_to_end(services, clock, &back.id).await;
    let back = services.get_execution(&back.id).await.unwrap();
    assert_eq!(back.state.phase, Phase::Succeeded);
    // Reversed replications were polled from the shortest sync on: each was seen continuous within minutes.
    for r in back.state.waves.iter().flat_map(|w| w.servers.iter()) {
        let waited = r.replicated_at.unwrap() - r.reverse_claimed_at.unwrap();
        assert!((6 * 60_000..20 * 60_000).contains(&waited), "{waited}");
    }

    let proof = services.round_trip_proof(&back.id).await.unwrap();
    assert_eq!(proof.len(), 100);
    let originals_after = sim.describe_instances(&origin).await.unwrap();
    for row in &proof {
        assert_eq!(row.verdict, ProofVerdict::Identical, "{row:?}");
        let id = &row.before_failover.instance_id;
        let before = originals_before.iter().find(|i| &i.instance_id == id).unwrap();
        let after = originals_after.iter().find(|i| &i.instance_id == id).unwrap();
        assert_eq!(
            (before.private_ip, after.private_ip, after.state),
            (row.before_failover.private_ip, before.private_ip, InstanceState::Running)
        );
    }
    // The DR pool is back in standby: stopped, tagged, paired, released by DRS; readiness is green.
    let standbys = sim.describe_instances(&dr).await.unwrap();
    for p in engine::repo::list_pairs(&*services.store, Some(&group.id)).await.unwrap() {
        let s = standbys.iter().find(|i| i.instance_id == p.standby_instance_id).unwrap();
        assert_eq!(s.state, InstanceState::Stopped);
        assert_eq!(s.tags.get("AWSDRS").map(String::as_str), Some("AllowLaunchingIntoThisInstance"));
    }
    assert!(sim.describe_recovery_instances(&dr, &[]).await.unwrap().is_empty());
    // Every record still fits one DynamoDB item (400 KB; the DynamoDB store takes values up to 390 KB).
    let mut sizes: Vec<(usize, String)> =
        store.lock().iter().map(|((table, key), r)| (r.value.as_str().len(), format!("{table}/{key}"))).collect();
    sizes.sort();
    let (largest, key) = sizes.pop().unwrap();
    eprintln!(
        "largest records after a 100-server round trip: {key} {largest} bytes; {:?}",
        sizes.iter().rev().take(4).collect::<Vec<_>>()
    );
    assert!(largest < 390 * 1024, "{key} is {largest} bytes");
    // Readiness is as green as before the failover (the generated estate's arm64 standbys carry a warning).
    let readiness = services.evaluate_readiness(&group.id).await.unwrap().readiness;
    assert_eq!((readiness.verdict, &readiness.failing), (ready_before.verdict, &ready_before.failing));
}

#[tokio::test]
async fn reversed_replications_are_not_polled_before_the_shortest_sync() {
    let mut e = planned(5).await;
    // Longer than any simulated sync (at most 18 minutes): the runner only learns of them after it.
    e.services.settings.min_reverse_sync_ms = 30 * 60_000;
    let (_, back) = failed_over_and_failing_back(&e).await;
    run_to_end(&e.services, &e.clock, &back.id).await;
    let back = e.services.get_execution(&back.id).await.unwrap();
    assert_eq!(back.state.phase, Phase::Succeeded);
    for r in back.state.waves.iter().flat_map(|w| w.servers.iter()) {
        let waited = r.replicated_at.unwrap() - r.reverse_claimed_at.unwrap();
        assert!((30 * 60_000..31 * 60_000).contains(&waited), "{waited}");
        // Re-protection waits the same way.
        let protected = r.protected_at.unwrap() - r.reprotected_at.unwrap();
        assert!(protected >= 30 * 60_000, "{protected}");
    }
}
