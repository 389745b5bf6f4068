//! The AWS adapters against AWS-protocol endpoints: the simulator over the wire (`sim::wire`, in process)
//! for DRS, EC2, STS and IAM; `aws-smithy-mocks` for DRS requests, errors and retries; and moto (started
//! by the test command, `ROUNDTRIP_MOTO_ENDPOINT`) for DynamoDB, EC2 and STS.

mod drs_mock;
mod moto;
mod wire;

use domain::auth::{AuthMethod, Principal, Role};
use domain::estate::AccountRegion;
use engine::Services;

pub fn person(name: &str, role: Role) -> Principal {
    Principal { subject: name.into(), role, method: AuthMethod::Oidc, token: None, must_change_password: false }
}

/// A protection group of every server between `primary` and `dr`, its pairs accepted, launch into the
/// standbys configured, and a one-wave plan of it. Returns (group, plan).
pub async fn ready_plan(
    services: &Services,
    primary: &AccountRegion,
    dr: &AccountRegion,
    servers: usize,
) -> (domain::group::ProtectionGroup, domain::plan::RecoveryPlan) {
    let alice = person("alice", Role::Operator);
    let input = serde_json::from_value(serde_json::json!({
        "name": "Everything",
        "primary": { "account_id": primary.account_id.as_str(), "region": primary.region.as_str() },
        "dr": { "account_id": dr.account_id.as_str(), "region": dr.region.as_str() },
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
    (group, plan)
}
