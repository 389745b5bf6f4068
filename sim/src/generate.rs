//! Generated estates: any number of source servers in web/app/db tiers, each with a stopped, tagged
//! standby of the same name in the DR region — and, on request, the realistic problems an operator must
//! see on first start.
//!
//! Generation is deterministic: the same `(servers, seed, problems)` always gives the same scenario.

use crate::scenario::{Scenario, ScenarioAccount, SecurityGroup, SimulationSettings};
use domain::estate::*;
use domain::ids::{AccountId, InstanceId, Region, SourceServerId, SubnetId};
use domain::net::Ipv4Cidr;

/// The primary (production) account of generated estates.
pub const PRIMARY_ACCOUNT: &str = "111111111111";
/// The DR (recovery) account of generated estates.
pub const DR_ACCOUNT: &str = "222222222222";
/// The primary region of generated estates.
pub const PRIMARY_REGION: &str = "us-east-1";
/// The DR region of generated estates.
pub const DR_REGION: &str = "us-west-2";

const APPS: [&str; 10] = ["shop", "crm", "billing", "hr", "analytics", "payments", "inventory", "mail", "wiki", "erp"];

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct GenerateOptions {
    pub servers: usize,
    pub seed: u64,
    /// Inject the realistic problems (conflict, running standby, wrong-case tag, stalled replication,
    /// nameless source, near-miss name).
    pub problems: bool,
}

/// SplitMix64: small, fast, good enough for ids and jitter.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn hex17(&mut self) -> String {
        format!("{:017x}", self.next())
    }
}

fn parse<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    // Generated ids are well-formed by construction; a failure here is a bug in this module.
    r.unwrap_or_else(|e| panic!("generator built an invalid id: {e:?}"))
}

#[derive(Clone, Copy)]
enum Tier {
    Web,
    App,
    Db,
}

impl Tier {
    fn name(self) -> &'static str {
        match self {
            Tier::Web => "web",
            Tier::App => "app",
            Tier::Db => "db",
        }
    }
    fn index(self) -> u32 {
        match self {
            Tier::Web => 0,
            Tier::App => 1,
            Tier::Db => 2,
        }
    }
    /// Databases come up first, web servers last.
    fn wave(self) -> &'static str {
        match self {
            Tier::Db => "1",
            Tier::App => "2",
            Tier::Web => "3",
        }
    }
}

/// Server names in application order: each application has 3 web, 2 app and 1–2 db servers.
fn server_names(n: usize) -> Vec<(String, String, Tier)> {
    let mut out = Vec::with_capacity(n);
    let mut round = 0;
    'outer: loop {
        for (a, app) in APPS.iter().enumerate() {
            let app = if round == 0 { (*app).to_owned() } else { format!("{app}{}", round + 1) };
            let dbs = if (a + round) % 3 == 0 { 2 } else { 1 };
            let tiers = [(Tier::Web, 3), (Tier::App, 2), (Tier::Db, dbs)];
            for (tier, count) in tiers {
                for k in 1..=count {
                    if out.len() == n {
                        break 'outer;
                    }
                    out.push((format!("{app}-{}-{k:02}", tier.name()), app.clone(), tier));
                }
            }
        }
        round += 1;
    }
    out
}

/// Generates a scenario.
/// The instance profile every generated instance carries.
const DRS_PROFILE: &str = "drs-replication-agent";

pub fn generate(opts: GenerateOptions) -> Scenario {
    let mut rng = Rng(opts.seed ^ 0x5EED_0000);
    let primary = parse(AccountId::parse(PRIMARY_ACCOUNT));
    let dr = parse(AccountId::parse(DR_ACCOUNT));
    let east = parse(Region::parse(PRIMARY_REGION));
    let west = parse(Region::parse(DR_REGION));

    // One /18 per tier and region: room for 16,000 servers per tier.
    let mut subnets = Vec::new();
    let mut security_groups = Vec::new();
    for (account, region, octet, vpc) in
        [(&primary, &east, 0u8, "vpc-0a1b2c3d4e5f60001"), (&dr, &west, 1u8, "vpc-0a1b2c3d4e5f60002")]
    {
        for tier in [Tier::Web, Tier::App, Tier::Db] {
            subnets.push(Subnet {
                subnet_id: parse(SubnetId::parse(&format!("subnet-0{:x}{:015x}", octet, tier.index() + 1))),
                account_id: account.clone(),
                region: region.clone(),
                vpc_id: vpc.to_owned(),
                cidr: parse(Ipv4Cidr::parse(&format!("10.{octet}.{}.0/18", tier.index() * 64))),
                availability_zone: format!("{region}a"),
            });
            security_groups.push(SecurityGroup {
                group_id: format!("sg-0{:x}{:015x}", octet, tier.index() + 1),
                account_id: account.clone(),
                region: region.clone(),
                vpc_id: vpc.to_owned(),
                name: format!("{}-tier", tier.name()),
                egress: None,
            });
        }
    }

    let names = server_names(opts.servers);
    let mut instances = Vec::with_capacity(names.len() * 2);
    let mut sources = Vec::with_capacity(names.len());
    let mut next_ip = [4u32; 3];
    for (name, app, tier) in &names {
        let t = tier.index() as usize;
        let ip_index = next_ip[t];
        next_ip[t] += 1;
        let (arch, platform, boot) = match tier {
            Tier::Db if rng.below(4) == 0 => (Architecture::X86_64, Platform::Windows, BootMode::Uefi),
            Tier::App if rng.below(10) == 0 => (Architecture::Arm64, Platform::Linux, BootMode::LegacyBios),
            _ => (Architecture::X86_64, Platform::Linux, BootMode::LegacyBios),
        };
        let instance_type = match (tier, arch) {
            (_, Architecture::Arm64) => "m7g.large",
            (Tier::Db, _) => "r6i.xlarge",
            (Tier::App, _) => "m6i.large",
            (Tier::Web, _) => "t3.medium",
        };
        let mut tags = Tags::new();
        tags.insert("Name".into(), name.clone());
        tags.insert("app".into(), app.clone());
        tags.insert("tier".into(), tier.name().into());
        tags.insert(WAVE_TAG_KEY.into(), tier.wave().into());
        let mut make = |account: &AccountId, region: &Region, octet: usize, tags: Tags, state| Ec2Instance {
            instance_id: parse(InstanceId::parse(&format!("i-{}", rng.hex17()))),
            account_id: account.clone(),
            region: region.clone(),
            tags,
            state,
            private_ip: subnets[octet * 3 + t].cidr.nth(ip_index).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            subnet_id: subnets[octet * 3 + t].subnet_id.clone(),
            security_group_ids: vec![security_groups[octet * 3 + t].group_id.clone()],
            instance_type: instance_type.into(),
            architecture: arch,
            platform,
            boot_mode: boot,
            root_device_type: "ebs".into(),
            volumes: vec![Volume {
                volume_id: format!("vol-{}", rng.hex17()),
                device_name: if platform == Platform::Windows { "/dev/sda1".into() } else { "/dev/xvda".into() },
                size_gib: match tier {
                    Tier::Db => 500,
                    Tier::App => 100,
                    Tier::Web => 30,
                },
            }],
            // Both sides run the DRS agent one day (failback, re-protect): the profile DRS documents.
            iam_instance_profile: Some(DRS_PROFILE.into()),
        };
        let source_instance = make(&primary, &east, 0, tags.clone(), InstanceState::Running);
        let mut standby_tags = tags.clone();
        standby_tags.insert(AWSDRS_TAG_KEY.into(), AWSDRS_TAG_VALUE.into());
        let standby = make(&dr, &west, 1, standby_tags, InstanceState::Stopped);
        sources.push(SourceServer {
            source_server_id: parse(SourceServerId::parse(&format!("s-{}", rng.hex17()))),
            account_id: dr.clone(),
            region: west.clone(),
            origin_account_id: primary.clone(),
            origin_region: east.clone(),
            hostname: name.clone(),
            source_instance_id: Some(source_instance.instance_id.clone()),
            replication_state: ReplicationState::Continuous,
            lag_seconds: 1 + rng.below(20),
            backlog_bytes: 0,
            replication_direction: Default::default(),
            tags,
            architecture: arch,
            platform,
            boot_mode: Some(boot),
        });
        instances.push(source_instance);
        instances.push(standby);
    }
    let instance_profiles = [&primary, &dr]
        .into_iter()
        .map(|a| InstanceProfile {
            account_id: a.clone(),
            name: DRS_PROFILE.into(),
            policies: vec![RECOVERY_INSTANCE_POLICY.into()],
        })
        .collect();
    let mut s = Scenario {
        name: if opts.problems { "default".into() } else { format!("generated-{}", opts.servers) },
        description: format!(
            "{} source servers in web/app/db tiers replicating from {PRIMARY_ACCOUNT}/{PRIMARY_REGION} to {DR_ACCOUNT}/{DR_REGION}{}",
            opts.servers,
            if opts.problems { ", with realistic problems to find" } else { "" }
        ),
        simulation: SimulationSettings::default(),
        accounts: vec![
            ScenarioAccount { id: primary, name: "production".into() },
            ScenarioAccount { id: dr, name: "recovery".into() },
        ],
        regions: vec![east, west],
        subnets,
        security_groups,
        instance_profiles,
        uninitialized_drs: Vec::new(),
        instances,
        source_servers: sources,
        launch_configurations: Vec::new(),
        jobs: Vec::new(),
        quotas: Default::default(),
        api: Default::default(),
    };
    if opts.problems {
        inject_problems(&mut s, &mut rng);
    }
    s
}

/// Standby of the `k`-th source server (index into `instances`).
fn standby_index(k: usize) -> usize {
    2 * k + 1
}

/// Injects the problems the default scenario shows on first start. Needs at least 14 servers.
fn inject_problems(s: &mut Scenario, rng: &mut Rng) {
    let n = s.source_servers.len();
    if n < 14 {
        return;
    }
    // 1. Two standbys whose Names normalise alike: a second standby named like server 1, with other case
    //    and stray spaces.
    let mut twin = s.instances[standby_index(1)].clone();
    twin.instance_id = parse(InstanceId::parse(&format!("i-{}", rng.hex17())));
    let name = twin.tags["Name"].clone();
    twin.tags.insert("Name".into(), format!(" {}  ", name.to_uppercase()));
    twin.private_ip = s.subnets[3].cidr.nth(4000).unwrap_or(twin.private_ip);
    twin.subnet_id = s.subnets[3].subnet_id.clone();
    s.instances.push(twin);
    // 2. A standby that is running.
    s.instances[standby_index(4)].state = InstanceState::Running;
    // 3. A wrong-case AWSDRS tag.
    let tags = &mut s.instances[standby_index(7)].tags;
    tags.insert(AWSDRS_TAG_KEY.into(), "allowLaunchingIntoThisInstance".into());
    // 4. A source server stalled in replication.
    let stalled = &mut s.source_servers[9];
    stalled.replication_state = ReplicationState::Stalled;
    stalled.lag_seconds = 5400;
    // 5. A source with no Name (and no hostname): nothing to match on.
    let nameless = &mut s.source_servers[10];
    nameless.tags.remove("Name");
    nameless.hostname.clear();
    // 6. A near miss: the standby of server 11 carries a typo, offered as a suggestion.
    let tags = &mut s.instances[standby_index(11)].tags;
    let name = tags["Name"].clone();
    tags.insert("Name".into(), name.replacen('-', "", 1));
    // 7. Launch settings as teams leave them: copy private IP and tags on for a few servers.
    for k in [2, 5, 13] {
        let mut c = domain::launch::LaunchConfiguration::drs_default(s.source_servers[k].source_server_id.clone());
        c.copy_private_ip = true;
        c.copy_tags = k == 13;
        s.launch_configurations.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_consistent() {
        let opts = GenerateOptions { servers: 250, seed: 3, problems: true };
        let a = generate(opts);
        assert_eq!(a, generate(opts));
        a.check().unwrap();
        assert_eq!(a.source_servers.len(), 250);
        assert_eq!(a.instances.len(), 501);
    }

    #[test]
    fn names_are_unique_at_any_size() {
        let names = server_names(5_000);
        let set: std::collections::HashSet<_> = names.iter().map(|n| &n.0).collect();
        assert_eq!(set.len(), 5_000);
    }
}
