//! Matching and validation at scale: N source servers against N standbys (plus a few conflicts and near
//! misses), the median of repeated runs. `cargo bench -p domain --bench matching [-- N ...]`.
//! Results are recorded in docs/benchmarks.md.

use domain::estate::*;
use domain::group::{InstancePair, PairOrigin};
use domain::ids::*;
use domain::matching::SourceNameKey;
use domain::matching::match_estate;
use domain::net::Ipv4Cidr;
use domain::validation::{DrView, validate_pairs};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fn estate(n: usize) -> (Vec<SourceServer>, Vec<Ec2Instance>, Vec<Subnet>) {
    let account = AccountId::parse("222222222222").unwrap();
    let region = Region::parse("us-west-2").unwrap();
    let subnet = Subnet {
        subnet_id: SubnetId::parse("subnet-0123456789abcdef0").unwrap(),
        account_id: account.clone(),
        region: region.clone(),
        vpc_id: "vpc-1".into(),
        cidr: Ipv4Cidr::parse("10.0.0.0/16").unwrap(),
        availability_zone: "us-west-2a".into(),
    };
    let mut sources = Vec::with_capacity(n);
    let mut standbys = Vec::with_capacity(n);
    for i in 0..n {
        // Every 500th standby has a typo (a suggestion), every 1000th name is shared by two sources.
        let name = format!("App-{:05}.Corp", if i % 1000 == 999 { i - 1 } else { i });
        let mut tags = Tags::new();
        tags.insert("Name".into(), name.clone());
        tags.insert(WAVE_TAG_KEY.into(), (i % 10).to_string());
        sources.push(SourceServer {
            source_server_id: SourceServerId::parse(&format!("s-{i:017x}")).unwrap(),
            account_id: account.clone(),
            region: region.clone(),
            origin_account_id: AccountId::parse("111111111111").unwrap(),
            origin_region: Region::parse("us-east-1").unwrap(),
            hostname: name.to_lowercase(),
            source_instance_id: None,
            replication_state: ReplicationState::Continuous,
            lag_seconds: 3,
            backlog_bytes: 0,
            replication_direction: Default::default(),
            tags,
            architecture: Architecture::X86_64,
            platform: Platform::Linux,
            boot_mode: Some(BootMode::LegacyBios),
        });
        let mut t = Tags::new();
        t.insert(AWSDRS_TAG_KEY.into(), AWSDRS_TAG_VALUE.into());
        let standby_name = if i % 500 == 250 { format!("ap-{i:05}.corp") } else { format!(" app-{i:05}.corp ") };
        t.insert("Name".into(), standby_name);
        standbys.push(Ec2Instance {
            instance_id: InstanceId::parse(&format!("i-{i:017x}")).unwrap(),
            account_id: account.clone(),
            region: region.clone(),
            tags: t,
            state: InstanceState::Stopped,
            private_ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 10)) + i as u32),
            subnet_id: subnet.subnet_id.clone(),
            security_group_ids: vec![],
            instance_type: "m6i.large".into(),
            architecture: Architecture::X86_64,
            platform: Platform::Linux,
            boot_mode: BootMode::LegacyBios,
            root_device_type: "ebs".into(),
            volumes: vec![],
            iam_instance_profile: None,
        });
    }
    (sources, standbys, vec![subnet])
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let sizes: Vec<usize> =
        std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect::<Vec<_>>().into_iter().collect();
    let sizes = if sizes.is_empty() { vec![1_000, 10_000] } else { sizes };
    println!("| servers | match median | match min | validate median | pairs | conflicts | suggestions |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let (sources, standbys, subnets) = estate(n);
        let runs = if n <= 2_000 { 51 } else { 21 };
        let mut match_times = Vec::with_capacity(runs);
        let mut report = None;
        for _ in 0..runs {
            let t = Instant::now();
            let r = match_estate(black_box(&sources), black_box(&standbys), SourceNameKey::NameTagThenHostname);
            match_times.push(t.elapsed());
            report = Some(r);
        }
        let report = report.unwrap();
        let group = ProtectionGroupId::parse("pg-1").unwrap();
        let pairs: Vec<InstancePair> = report
            .pairs
            .iter()
            .map(|p| InstancePair {
                id: PairId::for_source(&p.source_server_id),
                protection_group_id: group.clone(),
                source_server_id: p.source_server_id.clone(),
                standby_instance_id: p.standby_instance_id.clone(),
                origin: PairOrigin::Matched,
                source_name: p.source_name.clone(),
                standby_name: p.standby_name.clone(),
                standby_private_ip: p.facts.private_ip,
                standby_subnet_id: p.facts.subnet_id.clone(),
                wave: p.wave.clone(),
                accepted_at: 0,
                accepted_by: "bench".into(),
                version: 1,
            })
            .collect();
        let view = DrView { sources: &sources, instances: &standbys, subnets: &subnets, all_pairs: &pairs };
        let mut validate_times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            black_box(validate_pairs(black_box(&pairs), &view));
            validate_times.push(t.elapsed());
        }
        let min = *match_times.iter().min().unwrap();
        println!(
            "| {n} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {} | {} |",
            median(match_times).as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3,
            median(validate_times).as_secs_f64() * 1e3,
            report.counts.pairs,
            report.counts.conflicts,
            report.counts.suggestions
        );
    }
}
