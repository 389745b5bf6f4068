//! A full round trip of 100 simulated servers: a disaster failover into their standbys, a failback into
//! the original instances, and the DR pool back in standby, ready for the next failover.

use domain::auth::{AuthMethod, Principal, Role};
use domain::estate::InstanceState;
use domain::execution::{Decision, FailoverKind, Limits, Mode, Phase, ProofVerdict, StartExecution, StartFailback};
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

#[tokio::test]
async fn one_hundred_servers_fail_over_and_back_with_identical_ids_and_ips_and_the_dr_pool_in_standby() {
    let clock = Arc::new(SimClock::manual(1_800_000_000_000));
    let scenario = generate(GenerateOptions { servers: 100, seed: 11, problems: false });
    let sim = Arc::new(Simulator::new(scenario, clock.clone()));
    let store = Arc::new(MemoryStore::default());
    let services = Services::new(sim.clone(), store.clone(), clock.clone());
    let (alice, bob) = (person("alice", Role::Operator), person("bob", Role::Approver));
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
    assert_eq!(pairs.len(), 100);
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
    let dr = group.dr.clone();
    let origin = group.primary.clone();
    let originals_before = sim.describe_instances(&origin).await.unwrap();
    let ready_before = services.evaluate_readiness(&group.id).await.unwrap().readiness;
    assert_ne!(ready_before.verdict, Verdict::Blocked, "{:?}", ready_before.failing);

    let start = StartExecution {
        plan_id: plan.id.clone(),
        mode: Mode::Recovery,
        kind: FailoverKind::Disaster,
        acknowledge_warnings: true,
    };
    let recovery = services.start_execution(&alice, &start).await.unwrap();
    services.decide_execution(&bob, &recovery.id, Decision::Approve, "region down").await.unwrap();
    run_to_end(&services, &clock, &recovery.id).await;
    let recovery = services.get_execution(&recovery.id).await.unwrap();
    assert_eq!(recovery.state.phase, Phase::Succeeded);

    let req = StartFailback {
        execution_id: recovery.id.clone(),
        stop_originals: true,
        tag_originals: true,
        terminate_standbys_confirmation: None,
    };
    let back = services.start_failback(&alice, &req).await.unwrap();
    services.decide_execution(&bob, &back.id, Decision::Approve, "home").await.unwrap();
    run_to_end(&services, &clock, &back.id).await;
    assert_eq!(services.get_execution(&back.id).await.unwrap().state.phase, Phase::Succeeded);

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
