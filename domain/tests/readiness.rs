//! Readiness: one case per check, each breaking exactly one rule of an otherwise ready pair.

use domain::estate::*;
use domain::group::{InstancePair, PairOrigin};
use domain::ids::*;
use domain::launch::{LaunchConfiguration, RightSizing};
use domain::matching::Severity;
use domain::net::Ipv4Cidr;
use domain::readiness::*;
use rstest::rstest;
use std::collections::{HashMap, HashSet};

struct World {
    pair: InstancePair,
    source: SourceServer,
    standby: Ec2Instance,
    subnet: Subnet,
    current: Option<LaunchConfiguration>,
    applied: Option<LaunchConfiguration>,
    busy: bool,
    replicating: usize,
    unpaired: usize,
    primary: AccountRegion,
    dr: AccountRegion,
}

fn ready() -> World {
    let sid = SourceServerId::parse("s-0123456789abcdef0").unwrap();
    let iid = InstanceId::parse("i-0123456789abcdef0").unwrap();
    let dr = AccountId::parse("222222222222").unwrap();
    let region = Region::parse("us-west-2").unwrap();
    let subnet = Subnet {
        subnet_id: SubnetId::parse("subnet-0123456789abcdef0").unwrap(),
        account_id: dr.clone(),
        region: region.clone(),
        vpc_id: "vpc-1".into(),
        cidr: Ipv4Cidr::parse("10.1.0.0/24").unwrap(),
        availability_zone: "us-west-2a".into(),
    };
    let mut tags = Tags::new();
    tags.insert("Name".into(), "web-01".into());
    let mut standby_tags = tags.clone();
    standby_tags.insert(AWSDRS_TAG_KEY.into(), AWSDRS_TAG_VALUE.into());
    let mut config = LaunchConfiguration::drs_default(sid.clone());
    config.right_sizing = RightSizing::None;
    config.launch_into_instance_id = Some(iid.clone());
    World {
        pair: InstancePair {
            id: PairId::for_source(&sid),
            protection_group_id: ProtectionGroupId::parse("pg-1").unwrap(),
            source_server_id: sid.clone(),
            standby_instance_id: iid.clone(),
            origin: PairOrigin::Matched,
            source_name: "web-01".into(),
            standby_name: "web-01".into(),
            standby_private_ip: "10.1.0.10".parse().unwrap(),
            standby_subnet_id: subnet.subnet_id.clone(),
            wave: None,
            accepted_at: 0,
            accepted_by: "test".into(),
            version: 1,
        },
        source: SourceServer {
            source_server_id: sid,
            account_id: dr.clone(),
            region: region.clone(),
            origin_account_id: AccountId::parse("111111111111").unwrap(),
            origin_region: Region::parse("us-east-1").unwrap(),
            hostname: "web-01".into(),
            source_instance_id: None,
            replication_state: ReplicationState::Continuous,
            lag_seconds: 4,
            backlog_bytes: 0,
            replication_direction: Default::default(),
            tags,
            architecture: Architecture::X86_64,
            platform: Platform::Linux,
            boot_mode: Some(BootMode::LegacyBios),
        },
        standby: Ec2Instance {
            instance_id: iid,
            account_id: dr,
            region,
            tags: standby_tags,
            state: InstanceState::Stopped,
            private_ip: "10.1.0.10".parse().unwrap(),
            subnet_id: subnet.subnet_id.clone(),
            security_group_ids: vec![],
            instance_type: "t3.medium".into(),
            architecture: Architecture::X86_64,
            platform: Platform::Linux,
            boot_mode: BootMode::LegacyBios,
            root_device_type: "ebs".into(),
            volumes: vec![],
            iam_instance_profile: None,
        },
        subnet,
        current: Some(config.clone()),
        applied: Some(config),
        busy: false,
        replicating: 10,
        unpaired: 0,
        primary: AccountRegion {
            account_id: AccountId::parse("111111111111").unwrap(),
            region: Region::parse("us-east-1").unwrap(),
        },
        dr: AccountRegion {
            account_id: AccountId::parse("222222222222").unwrap(),
            region: Region::parse("us-west-2").unwrap(),
        },
    }
}

fn run(w: &World) -> GroupReadiness {
    let mut launch = HashMap::new();
    if let Some(c) = &w.current {
        launch.insert(w.source.source_server_id.clone(), c.clone());
    }
    let mut applied = HashMap::new();
    if let Some(a) = &w.applied {
        applied.insert(w.source.source_server_id.clone(), a.clone());
    }
    let busy: HashSet<SourceServerId> =
        if w.busy { [w.source.source_server_id.clone()].into() } else { HashSet::new() };
    let group = w.pair.protection_group_id.clone();
    evaluate(&ReadinessInput {
        group: &group,
        primary: &w.primary,
        dr: &w.dr,
        pairs: std::slice::from_ref(&w.pair),
        sources: std::slice::from_ref(&w.source),
        instances: std::slice::from_ref(&w.standby),
        subnets: std::slice::from_ref(&w.subnet),
        launch_configs: &launch,
        applied: &applied,
        servers_in_active_jobs: &busy,
        quotas: Quotas::default(),
        replicating_servers: w.replicating,
        unpaired_sources: w.unpaired,
        lag_threshold_seconds: 600,
        launch_disposition: Default::default(),
        now: 42,
    })
}

#[test]
fn a_clean_pair_is_ready_with_a_full_score() {
    let r = run(&ready());
    assert_eq!((r.verdict, r.score, r.failing.len()), (Verdict::Ready, 100, 0), "{:?}", r.failing);
    assert_eq!(r.pairs[0].checks.len(), 14, "every pair rule is evaluated");
}

#[rstest]
#[case::replication_stalled("replication.continuous", Severity::Critical, |w: &mut World| w.source.replication_state = ReplicationState::Stalled)]
#[case::replication_lagging("replication.lag", Severity::Warning, |w: &mut World| w.source.lag_seconds = 3600)]
#[case::in_an_active_job("source.no_active_job", Severity::Critical, |w: &mut World| w.busy = true)]
#[case::standby_untagged("standby.tagged", Severity::Critical, |w: &mut World| { w.standby.tags.insert(AWSDRS_TAG_KEY.into(), "allowlaunchingintothisinstance".into()); })]
#[case::standby_running("standby.stopped", Severity::Critical, |w: &mut World| w.standby.state = InstanceState::Running)]
#[case::platform("standby.platform", Severity::Critical, |w: &mut World| w.source.platform = Platform::Windows)]
#[case::architecture("standby.architecture", Severity::Critical, |w: &mut World| w.source.architecture = Architecture::Arm64)]
#[case::linux_uefi("standby.boot_mode", Severity::Critical, |w: &mut World| w.standby.boot_mode = BootMode::Uefi)]
#[case::instance_store_root("standby.root_device", Severity::Critical, |w: &mut World| w.standby.root_device_type = "instance-store".into())]
#[case::ip_changed("standby.ip_stable", Severity::Critical, |w: &mut World| w.pair.standby_private_ip = "10.1.0.11".parse().unwrap())]
#[case::ip_reserved("standby.ip_in_subnet", Severity::Critical, |w: &mut World| { w.standby.private_ip = "10.1.0.1".parse().unwrap(); w.pair.standby_private_ip = w.standby.private_ip; })]
#[case::not_configured("launch_config.applied", Severity::Critical, |w: &mut World| { w.current.as_mut().unwrap().launch_into_instance_id = None; w.applied = None; })]
#[case::drifted("launch_config.drift", Severity::Critical, |w: &mut World| { w.applied.as_mut().unwrap().launch_disposition = domain::launch::LaunchDisposition::Stopped; })]
#[case::unreadable("launch_config.applied", Severity::Critical, |w: &mut World| { w.current = None; w.applied = None; })]
#[case::unpaired_sources("group.all_sources_paired", Severity::Warning, |w: &mut World| w.unpaired = 3)]
#[case::dr_in_the_primary_region("group.dr_region_differs", Severity::Warning, |w: &mut World| w.primary.region = w.dr.region.clone())]
#[case::over_quota("quota.replicating_servers", Severity::Critical, |w: &mut World| w.replicating = 301)]
fn each_check_fails_on_its_own_rule(#[case] id: &str, #[case] severity: Severity, #[case] breaks: fn(&mut World)) {
    let mut w = ready();
    breaks(&mut w);
    let r = run(&w);
    let failed: Vec<&Check> =
        r.group_checks.iter().chain(r.pairs.iter().flat_map(|p| &p.checks)).filter(|c| !c.passed).collect();
    assert_eq!(failed.len(), 1, "exactly one check fails: {failed:?}");
    let c = failed[0];
    assert_eq!((c.id.as_str(), c.severity), (id, severity));
    assert!(!c.remediation.is_empty() && !c.expected.is_empty() && !c.actual.is_empty());
    let want = if severity == Severity::Critical { Verdict::Blocked } else { Verdict::ReadyWithWarnings };
    assert_eq!(r.verdict, want);
    assert!(r.score < 100);
}

#[test]
fn a_missing_standby_or_source_is_reported_not_panicked_on() {
    let w = ready();
    let group = w.pair.protection_group_id.clone();
    let r = evaluate(&ReadinessInput {
        group: &group,
        primary: &w.primary,
        dr: &w.dr,
        pairs: std::slice::from_ref(&w.pair),
        sources: &[],
        instances: &[],
        subnets: &[],
        launch_configs: &HashMap::new(),
        applied: &HashMap::new(),
        servers_in_active_jobs: &HashSet::new(),
        quotas: Quotas::default(),
        replicating_servers: 0,
        unpaired_sources: 0,
        lag_threshold_seconds: 600,
        launch_disposition: Default::default(),
        now: 0,
    });
    let ids: Vec<&str> = r.pairs[0].checks.iter().filter(|c| !c.passed).map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["source.exists", "standby.exists"]);
    assert_eq!(r.verdict, Verdict::Blocked);
}

#[rstest]
#[case::running(InstanceState::Running, "Stop the standby")]
#[case::stopping(InstanceState::Stopping, "Wait until the standby has stopped")]
#[case::shutting_down(InstanceState::ShuttingDown, "provision a new stopped standby")]
fn a_standby_that_is_not_stopped_gets_the_remedy_of_its_state(#[case] state: InstanceState, #[case] remedy: &str) {
    let mut w = ready();
    w.standby.state = state;
    let r = run(&w);
    let c = r.pairs[0].checks.iter().find(|c| c.id == "standby.stopped").unwrap();
    assert_eq!((c.passed, c.actual.as_str()), (false, state.as_str()));
    assert!(c.remediation.starts_with(remedy) || c.remediation.contains(remedy), "{state:?}: {}", c.remediation);
    if state != InstanceState::Running {
        assert!(
            !c.remediation.contains("Stop the standby"),
            "a {state:?} standby is not told to stop: {}",
            c.remediation
        );
    }
    let report = domain::matching::match_estate(
        std::slice::from_ref(&w.source),
        std::slice::from_ref(&w.standby),
        domain::matching::SourceNameKey::default(),
    );
    let f = report.pairs[0].findings.iter().find(|f| f.code == "STANDBY_NOT_STOPPED").unwrap();
    assert!(f.message.contains(remedy), "{state:?}: {}", f.message);
}
