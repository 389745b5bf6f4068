//! Pre-flight readiness: every check that says whether a failover of a protection group would succeed now.
//!
//! Each check has a stable id, a severity, the expected and actual values and a remediation sentence.
//! Critical failures block a failover; warnings can be acknowledged by name. A group's verdict is
//! ready, ready with warnings, or blocked, with a score from 0 to 100 (critical checks weigh 3, warnings 1).
//! Rules follow `shared/reference/aws-drs-api.md` §1.2 (launch-into requirements), §2.6–2.7 (replication)
//! and §4.2 (quotas).

use crate::estate::{
    AccountRegion, Architecture, Ec2Instance, InstanceState, IpPlacement, ReplicationState, SourceServer, Subnet,
    ip_placement, required_boot_mode,
};
use crate::group::InstancePair;
use crate::ids::{InstanceId, PairId, ProtectionGroupId, SourceServerId};
use crate::launch::{LaunchConfiguration, drift};
use crate::matching::{PairStatus, Severity, human_duration};
use serde::{Deserialize, Serialize};

use std::collections::{HashMap, HashSet};

/// DRS quotas that bound a recovery (§4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    pub max_replicating_servers: usize,
    pub max_servers_per_job: usize,
    pub max_concurrent_jobs: usize,
    pub max_servers_in_active_jobs: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            max_replicating_servers: 300,
            max_servers_per_job: 100,
            max_concurrent_jobs: 20,
            max_servers_in_active_jobs: 500,
        }
    }
}

/// One readiness rule, evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub id: String,
    pub severity: Severity,
    pub passed: bool,
    pub expected: String,
    pub actual: String,
    pub remediation: String,
}

fn check(
    id: &str,
    severity: Severity,
    passed: bool,
    expected: impl Into<String>,
    actual: impl Into<String>,
    remediation: &str,
) -> Check {
    Check {
        id: id.into(),
        severity,
        passed,
        expected: expected.into(),
        actual: actual.into(),
        remediation: remediation.into(),
    }
}

/// The verdict on a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ready,
    ReadyWithWarnings,
    Blocked,
}

impl Verdict {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::ReadyWithWarnings => "ready_with_warnings",
            Self::Blocked => "blocked",
        }
    }

    /// The verdict of a set of checks.
    pub fn of<'a>(checks: impl IntoIterator<Item = &'a Check>) -> Self {
        let mut v = Self::Ready;
        for c in checks.into_iter().filter(|c| !c.passed) {
            match c.severity {
                Severity::Critical => return Self::Blocked,
                Severity::Warning => v = Self::ReadyWithWarnings,
            }
        }
        v
    }
}

/// Readiness of one pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairReadiness {
    pub pair_id: PairId,
    pub source_server_id: SourceServerId,
    pub source_name: String,
    pub standby_instance_id: InstanceId,
    pub status: PairStatus,
    pub checks: Vec<Check>,
}

/// Readiness of a protection group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReadiness {
    pub protection_group_id: ProtectionGroupId,
    pub verdict: Verdict,
    /// 0–100: weighted share of checks passed.
    pub score: u8,
    /// Unix milliseconds.
    pub evaluated_at: i64,
    pub group_checks: Vec<Check>,
    pub pairs: Vec<PairReadiness>,
    pub ready_pairs: usize,
    pub warning_pairs: usize,
    pub blocked_pairs: usize,
    /// Ids of the failed checks, with how many pairs fail each, most frequent first.
    pub failing: Vec<(String, usize)>,
}

/// One change of a group's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictChange {
    pub verdict: Verdict,
    /// Unix milliseconds.
    pub since: i64,
    pub score: u8,
    /// The failing checks at the change, most frequent first.
    pub because: Vec<(String, usize)>,
}

/// A group's latest readiness and how its verdict has changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessView {
    pub readiness: GroupReadiness,
    /// Newest first.
    pub history: Vec<VerdictChange>,
}

/// The latest verdict of every group, for the overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictSummary {
    pub protection_group_id: ProtectionGroupId,
    pub name: String,
    pub verdict: Verdict,
    pub score: u8,
    pub evaluated_at: i64,
    /// When the verdict last changed.
    pub since: i64,
    pub because: Vec<(String, usize)>,
    /// The group-level checks that fail, with their remediation (a wizard shows them next to the verdict).
    #[serde(default)]
    pub group_findings: Vec<Check>,
}

/// Everything the checks look at for one group.
pub struct ReadinessInput<'a> {
    pub group: &'a ProtectionGroupId,
    /// Where the group's servers run, and where they recover.
    pub primary: &'a AccountRegion,
    pub dr: &'a AccountRegion,
    pub pairs: &'a [InstancePair],
    /// Source servers in the DR account and region.
    pub sources: &'a [SourceServer],
    /// Instances in the DR account and region.
    pub instances: &'a [Ec2Instance],
    pub subnets: &'a [Subnet],
    /// Current launch configurations, by source server (missing = could not be read).
    pub launch_configs: &'a HashMap<SourceServerId, LaunchConfiguration>,
    /// What Roundtrip applied, by source server.
    pub applied: &'a HashMap<SourceServerId, LaunchConfiguration>,
    pub servers_in_active_jobs: &'a HashSet<SourceServerId>,
    pub quotas: Quotas,
    /// Source servers replicating in the DR account and region (all groups).
    pub replicating_servers: usize,
    /// Source servers the group protects that have no pair.
    pub unpaired_sources: usize,
    pub lag_threshold_seconds: u64,
    /// The group's launch disposition, part of a correct launch configuration.
    pub launch_disposition: crate::launch::LaunchDisposition,
    pub now: i64,
}

/// Evaluates every check.
pub fn evaluate(input: &ReadinessInput<'_>) -> GroupReadiness {
    let sources: HashMap<&SourceServerId, &SourceServer> =
        input.sources.iter().map(|s| (&s.source_server_id, s)).collect();
    let instances: HashMap<&InstanceId, &Ec2Instance> = input.instances.iter().map(|i| (&i.instance_id, i)).collect();
    let pairs: Vec<PairReadiness> = input
        .pairs
        .iter()
        .map(|p| {
            let checks = pair_checks(
                p,
                sources.get(&p.source_server_id).copied(),
                instances.get(&p.standby_instance_id).copied(),
                input,
            );
            let status = match Verdict::of(&checks) {
                Verdict::Ready => PairStatus::Ready,
                Verdict::ReadyWithWarnings => PairStatus::Warning,
                Verdict::Blocked => PairStatus::Blocked,
            };
            PairReadiness {
                pair_id: p.id.clone(),
                source_server_id: p.source_server_id.clone(),
                source_name: p.source_name.clone(),
                standby_instance_id: p.standby_instance_id.clone(),
                status,
                checks,
            }
        })
        .collect();
    let q = input.quotas;
    let n = input.pairs.len();
    let group_checks = vec![
        check(
            "group.has_pairs",
            Severity::Critical,
            n > 0,
            "at least one pair",
            format!("{n} pairs"),
            "Run instance matching and accept pairs for this group.",
        ),
        check(
            "group.all_sources_paired",
            Severity::Warning,
            input.unpaired_sources == 0,
            "every protected source server paired",
            format!("{} without a pair", input.unpaired_sources),
            "Pair the remaining source servers on the instance matching page, or narrow the group's selection.",
        ),
        check(
            "group.dr_region_differs",
            Severity::Warning,
            input.primary.region != input.dr.region,
            "a DR region other than the primary region",
            format!(
                "primary {} in {}, DR {} in {}",
                input.primary.account_id, input.primary.region, input.dr.account_id, input.dr.region
            ),
            "A recovery into the primary region protects against a lost account, not a lost region: choose another \
             DR region for the group, or acknowledge this warning if another account in the same region is the plan.",
        ),
        check(
            "quota.replicating_servers",
            Severity::Critical,
            input.replicating_servers <= q.max_replicating_servers,
            format!("at most {} replicating source servers per account and region", q.max_replicating_servers),
            format!("{} replicating", input.replicating_servers),
            "Request a DRS quota increase or move servers to another account.",
        ),
        check(
            "quota.job_capacity",
            Severity::Warning,
            n + input.servers_in_active_jobs.len()
                <= q.max_servers_in_active_jobs.min(q.max_concurrent_jobs * q.max_servers_per_job),
            format!(
                "at most {} servers in active jobs ({} jobs of {})",
                q.max_servers_in_active_jobs, q.max_concurrent_jobs, q.max_servers_per_job
            ),
            format!("{n} servers to launch, {} already in active jobs", input.servers_in_active_jobs.len()),
            "The failover will run in several rounds of jobs; split the plan into waves or request a quota increase.",
        ),
    ];
    let mut failing: HashMap<&str, usize> = HashMap::new();
    let (mut weight, mut passed_weight) = (0u32, 0u32);
    for c in group_checks.iter().chain(pairs.iter().flat_map(|p| &p.checks)) {
        let w = if c.severity == Severity::Critical { 3 } else { 1 };
        weight += w;
        if c.passed {
            passed_weight += w;
        } else {
            *failing.entry(c.id.as_str()).or_default() += 1;
        }
    }
    let mut failing: Vec<(String, usize)> = failing.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    failing.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let verdict = Verdict::of(group_checks.iter().chain(pairs.iter().flat_map(|p| &p.checks)));
    let count = |s: PairStatus| pairs.iter().filter(|p| p.status == s).count();
    GroupReadiness {
        protection_group_id: input.group.clone(),
        verdict,
        score: (passed_weight * 100).checked_div(weight).map_or(0, |s| u8::try_from(s).unwrap_or(100)),
        evaluated_at: input.now,
        ready_pairs: count(PairStatus::Ready),
        warning_pairs: count(PairStatus::Warning),
        blocked_pairs: count(PairStatus::Blocked),
        group_checks,
        pairs,
        failing,
    }
}

fn pair_checks(
    p: &InstancePair,
    source: Option<&SourceServer>,
    standby: Option<&Ec2Instance>,
    input: &ReadinessInput<'_>,
) -> Vec<Check> {
    use Severity::{Critical, Warning};
    let mut out = Vec::with_capacity(16);
    match source {
        None => out.push(check(
            "source.exists",
            Critical,
            false,
            "source server in DRS",
            "not found",
            "The source server is gone from DRS: remove the pair, or re-add the server to DRS.",
        )),
        Some(s) => {
            out.push(check(
                "replication.continuous",
                Critical,
                s.replication_state == ReplicationState::Continuous,
                "CONTINUOUS",
                s.replication_state.as_str(),
                "Fix replication (agent, network to the replication server on TCP 1500) until DRS shows CONTINUOUS.",
            ));
            out.push(check(
                "replication.lag",
                Warning,
                s.lag_seconds <= input.lag_threshold_seconds,
                format!("lag ≤ {}", human_duration(input.lag_threshold_seconds)),
                human_duration(s.lag_seconds),
                "Check replication bandwidth and the source's write rate; recovery would lose the lagging data.",
            ));
            let busy = input.servers_in_active_jobs.contains(&s.source_server_id);
            out.push(check(
                "source.no_active_job",
                Critical,
                !busy,
                "not in an active DRS job",
                if busy { "in an active job" } else { "idle" },
                "Wait for the running DRS job to finish, or end it, before a failover.",
            ));
        }
    }
    let Some(t) = standby else {
        out.push(check(
            "standby.exists",
            Critical,
            false,
            format!("{} exists", p.standby_instance_id),
            "not found",
            "Provision a new standby and pair it again.",
        ));
        return out;
    };
    out.push(check(
        "standby.tagged",
        Critical,
        t.has_exact_awsdrs_tag(),
        "AWSDRS=AllowLaunchingIntoThisInstance",
        t.tags.get("AWSDRS").map_or_else(|| "(no AWSDRS tag)".to_owned(), |v| format!("AWSDRS={v}")),
        "Tag the standby AWSDRS=AllowLaunchingIntoThisInstance exactly (case-sensitive).",
    ));
    out.push(check(
        "standby.stopped",
        Critical,
        t.state == InstanceState::Stopped,
        "stopped",
        t.state.as_str(),
        t.state.launch_into_remedy(),
    ));
    if let Some(s) = source {
        out.push(check(
            "standby.platform",
            Critical,
            s.platform == t.platform,
            s.platform.as_str(),
            t.platform.as_str(),
            "Provision a standby with the source's operating system platform.",
        ));
        out.push(check(
            "standby.architecture",
            Critical,
            s.architecture == t.architecture,
            s.architecture.as_str(),
            t.architecture.as_str(),
            "Provision a standby with the source's CPU architecture.",
        ));
        let want = required_boot_mode(s, t);
        let ok = want == t.boot_mode;
        out.push(check(
            "standby.boot_mode",
            Critical,
            ok,
            want.as_str(),
            t.boot_mode.as_str(),
            "A Linux standby must boot legacy-bios; a Windows standby must boot like its source. Rebuild it.",
        ));
    }
    out.push(check(
        "standby.root_device",
        Critical,
        t.root_device_type == "ebs",
        "ebs (HVM)",
        t.root_device_type.clone(),
        "Provision an HVM standby with an EBS root volume.",
    ));
    out.push(check(
        "standby.x86_64",
        Warning,
        t.architecture == Architecture::X86_64,
        "x86_64",
        t.architecture.as_str(),
        "Older DRS documentation allows launch-into only for x86_64; test a drill before relying on arm64.",
    ));
    out.push(check(
        "standby.ip_stable",
        Critical,
        t.private_ip == p.standby_private_ip,
        p.standby_private_ip.to_string(),
        t.private_ip.to_string(),
        "The standby's private IP changed since the pair was accepted: accept the pair again.",
    ));
    let subnet = input.subnets.iter().find(|sn| sn.subnet_id == t.subnet_id);
    let cidr = subnet.map(|sn| sn.cidr.to_string()).unwrap_or_default();
    let (ok, actual) = match ip_placement(subnet, t.private_ip) {
        IpPlacement::SubnetMissing => (false, format!("subnet {} not found", t.subnet_id)),
        IpPlacement::Outside => (false, format!("{} outside {cidr}", t.private_ip)),
        IpPlacement::Reserved => (false, format!("{} is reserved in {cidr}", t.private_ip)),
        IpPlacement::Usable => (true, format!("{} in {cidr}", t.private_ip)),
    };
    out.push(check(
        "standby.ip_in_subnet",
        Critical,
        ok,
        "a usable address inside the standby's subnet",
        actual,
        "Move the standby to an address inside its subnet that AWS does not reserve.",
    ));
    let current = input.launch_configs.get(&p.source_server_id);
    let expected = format!(
        "launch into {}, copyPrivateIp and copyTags off, right-sizing NONE, disposition {}",
        p.standby_instance_id,
        input.launch_disposition.as_str()
    );
    let (ok, actual) = match current {
        None => (false, "could not be read".to_owned()),
        Some(c) if c.launches_into(&p.standby_instance_id, input.launch_disposition) => (true, "applied".to_owned()),
        Some(c) => (
            false,
            format!(
                "launch into {}, copyPrivateIp {}, copyTags {}, right-sizing {}",
                c.launch_into_instance_id.as_ref().map_or("(none)".to_owned(), ToString::to_string),
                c.copy_private_ip,
                c.copy_tags,
                c.right_sizing.as_str()
            ),
        ),
    };
    out.push(check(
        "launch_config.applied",
        Critical,
        ok,
        expected,
        actual,
        "Apply the launch-into configuration from the group's configuration page.",
    ));
    let (ok, actual) = match (input.applied.get(&p.source_server_id), current) {
        (Some(a), Some(c)) => {
            let d = drift(a, c);
            (
                d.is_empty(),
                if d.is_empty() {
                    "unchanged".to_owned()
                } else {
                    d.iter()
                        .map(|f| format!("{} {} → {}", f.field, f.desired, f.current))
                        .collect::<Vec<_>>()
                        .join("; ")
                },
            )
        }
        (None, _) => (true, "not applied by Roundtrip yet".to_owned()),
        (Some(_), None) => (false, "could not be read".to_owned()),
    };
    out.push(check(
        "launch_config.drift",
        Critical,
        ok,
        "unchanged since Roundtrip applied it",
        actual,
        "Someone changed the DRS launch configuration outside Roundtrip: review it and apply again.",
    ));
    out
}
