//! Checking stored pairs against the estate as it is now.
//!
//! A pair was right when a person accepted it; the estate moves on. These checks say whether each pair
//! would still work: the standby still exists, is tagged and stopped, is paired only once, and its
//! private IP is still the recorded one, inside its subnet, not reserved by AWS and not used twice.

use crate::estate::{Ec2Instance, InstanceState, IpPlacement, SourceServer, Subnet, ip_placement};
use crate::group::InstancePair;
use crate::ids::{InstanceId, PairId, SourceServerId, SubnetId};
use crate::matching::{Finding, PairStatus, Severity, normalize_name, pair_findings};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// The verdict on one stored pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairValidation {
    pub pair_id: PairId,
    pub source_server_id: SourceServerId,
    pub standby_instance_id: InstanceId,
    pub status: PairStatus,
    pub findings: Vec<Finding>,
}

/// Counts of a validation run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationSummary {
    pub pairs: usize,
    pub ready: usize,
    pub warning: usize,
    pub blocked: usize,
}

/// The result of validating a group's pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationReport {
    pub results: Vec<PairValidation>,
    pub summary: ValidationSummary,
}

impl ValidationReport {
    fn from_results(mut results: Vec<PairValidation>) -> Self {
        results.sort_unstable_by(|a, b| a.pair_id.cmp(&b.pair_id));
        let mut summary = ValidationSummary { pairs: results.len(), ..Default::default() };
        for r in &results {
            match r.status {
                PairStatus::Ready => summary.ready += 1,
                PairStatus::Warning => summary.warning += 1,
                PairStatus::Blocked => summary.blocked += 1,
            }
        }
        Self { results, summary }
    }
}

/// What the checks look at: the DR side of one protection group.
pub struct DrView<'a> {
    /// Source servers in the DR account and region.
    pub sources: &'a [SourceServer],
    /// Every instance in the DR account and region.
    pub instances: &'a [Ec2Instance],
    /// Every subnet in the DR account and region.
    pub subnets: &'a [Subnet],
    /// Every stored pair whose standby lives in this DR account and region, in any group.
    pub all_pairs: &'a [InstancePair],
}

struct Index<'a> {
    sources: HashMap<&'a SourceServerId, &'a SourceServer>,
    instances: HashMap<&'a InstanceId, &'a Ec2Instance>,
    subnets: HashMap<&'a SubnetId, &'a Subnet>,
    /// How many live instances use each private IP, per VPC (VPCs may overlap).
    ip_users: HashMap<(&'a str, Ipv4Addr), u32>,
    live: Vec<&'a Ec2Instance>,
    standby_uses: HashMap<&'a InstanceId, usize>,
    /// How many standbys carry each normalised name.
    standby_names: HashMap<String, usize>,
    /// The normalised name of each standby.
    name_of: HashMap<&'a InstanceId, String>,
}

impl<'a> Index<'a> {
    fn new(view: &DrView<'a>) -> Self {
        let vpc_of: HashMap<&SubnetId, &str> = view.subnets.iter().map(|s| (&s.subnet_id, s.vpc_id.as_str())).collect();
        let mut ip_users: HashMap<(&str, Ipv4Addr), u32> = HashMap::with_capacity(view.instances.len());
        let mut standby_names: HashMap<String, usize> = HashMap::with_capacity(view.instances.len());
        let mut name_of: HashMap<&InstanceId, String> = HashMap::with_capacity(view.instances.len());
        let live: Vec<&Ec2Instance> = view.instances.iter().filter(|i| i.state != InstanceState::Terminated).collect();
        for i in &live {
            *ip_users.entry((vpc_of.get(&i.subnet_id).copied().unwrap_or(""), i.private_ip)).or_default() += 1;
            if let (true, Some(n)) = (i.is_standby(), i.name()) {
                let n = normalize_name(n);
                *standby_names.entry(n.clone()).or_default() += 1;
                name_of.insert(&i.instance_id, n);
            }
        }
        let mut standby_uses: HashMap<&InstanceId, usize> = HashMap::new();
        for p in view.all_pairs {
            *standby_uses.entry(&p.standby_instance_id).or_default() += 1;
        }
        Self {
            sources: view.sources.iter().map(|s| (&s.source_server_id, s)).collect(),
            instances: view.instances.iter().map(|i| (&i.instance_id, i)).collect(),
            subnets: view.subnets.iter().map(|s| (&s.subnet_id, s)).collect(),
            ip_users,
            live,
            standby_uses,
            standby_names,
            name_of,
        }
    }
}

/// Checks each pair against the estate now: every readiness rule and every IP rule.
pub fn validate_pairs(pairs: &[InstancePair], view: &DrView<'_>) -> ValidationReport {
    let ix = Index::new(view);
    let results = pairs
        .iter()
        .map(|p| {
            let mut findings = Vec::new();
            let standby = ix.instances.get(&p.standby_instance_id).copied();
            match (ix.sources.get(&p.source_server_id), standby) {
                (Some(s), Some(t)) => findings.extend(pair_findings(s, t)),
                (None, _) => findings.push(critical(
                    "SOURCE_SERVER_NOT_FOUND",
                    format!("source server {} no longer exists in DRS; remove the pair", p.source_server_id),
                )),
                (Some(_), None) => {}
            }
            if let Some(t) = standby {
                if ix.standby_uses.get(&t.instance_id).copied().unwrap_or(0) > 1 {
                    findings.push(critical(
                        "STANDBY_PAIRED_TWICE",
                        format!("{} is the standby of more than one pair; keep one", t.instance_id),
                    ));
                }
                if let Some(n) = ix.name_of.get(&t.instance_id)
                    && ix.standby_names.get(n).copied().unwrap_or(0) > 1
                {
                    findings.push(warning(
                        "STANDBY_NAME_NOT_UNIQUE",
                        format!(
                            "another standby is now also named {}; matching would flag a conflict",
                            crate::text::quoted(n)
                        ),
                    ));
                }
            }
            findings.extend(ip_checks(p, &ix));
            result(p, findings)
        })
        .collect();
    ValidationReport::from_results(results)
}

/// Checks only the IP rules of each pair: recorded IP unchanged, inside the subnet's CIDR, not an
/// AWS-reserved address, not used by two instances.
pub fn validate_ips(pairs: &[InstancePair], view: &DrView<'_>) -> ValidationReport {
    let ix = Index::new(view);
    ValidationReport::from_results(pairs.iter().map(|p| result(p, ip_checks(p, &ix))).collect())
}

fn result(p: &InstancePair, findings: Vec<Finding>) -> PairValidation {
    PairValidation {
        pair_id: p.id.clone(),
        source_server_id: p.source_server_id.clone(),
        standby_instance_id: p.standby_instance_id.clone(),
        status: PairStatus::of(&findings),
        findings,
    }
}

fn ip_checks(p: &InstancePair, ix: &Index<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(t) = ix.instances.get(&p.standby_instance_id) else {
        out.push(critical(
            "STANDBY_NOT_FOUND",
            format!("standby {} no longer exists in the DR region; pair the source again", p.standby_instance_id),
        ));
        return out;
    };
    if t.private_ip != p.standby_private_ip {
        out.push(critical(
            "IP_CHANGED",
            format!(
                "the standby's private IP is {} but {} was recorded; identity verification would fail, so accept the pair again",
                t.private_ip, p.standby_private_ip
            ),
        ));
    }
    let subnet = ix.subnets.get(&t.subnet_id).copied();
    let cidr = subnet.map(|sn| sn.cidr.to_string()).unwrap_or_default();
    match ip_placement(subnet, t.private_ip) {
        IpPlacement::SubnetMissing => {
            out.push(critical("SUBNET_NOT_FOUND", format!("subnet {} of the standby does not exist", t.subnet_id)))
        }
        IpPlacement::Outside => out.push(critical(
            "IP_OUTSIDE_SUBNET",
            format!("{} is outside subnet {} ({cidr})", t.private_ip, t.subnet_id),
        )),
        IpPlacement::Reserved => out.push(critical(
            "IP_RESERVED",
            format!("{} is one of the five addresses AWS reserves in {cidr}", t.private_ip),
        )),
        IpPlacement::Usable => {}
    }
    let vpc = |i: &Ec2Instance| ix.subnets.get(&i.subnet_id).map_or("", |s| s.vpc_id.as_str());
    if ix.ip_users.get(&(vpc(t), t.private_ip)).is_some_and(|n| *n > 1) {
        let others: Vec<String> = ix
            .live
            .iter()
            .filter(|i| i.private_ip == t.private_ip && i.instance_id != t.instance_id && vpc(i) == vpc(t))
            .map(|i| i.instance_id.to_string())
            .collect();
        out.push(critical(
            "IP_IN_USE_TWICE",
            format!("{} is also the private IP of {}", t.private_ip, others.join(", ")),
        ));
    }
    out
}

fn critical(code: &str, message: String) -> Finding {
    Finding { code: code.to_owned(), severity: Severity::Critical, message }
}

fn warning(code: &str, message: String) -> Finding {
    Finding { code: code.to_owned(), severity: Severity::Warning, message }
}
