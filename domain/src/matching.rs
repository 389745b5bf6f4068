//! Name-tag matching: which standby each source server will recover into.
//!
//! Invariants, in order of importance:
//! - **Strict 1:1.** A normalised name shared by two or more source servers, or by two or more standbys,
//!   pairs nobody; the report lists the conflict with every id involved. Nothing is resolved by API order.
//! - **Every unmatched source server and standby carries a reason code.**
//! - **Suggestions are never pairs.** Near misses (small edit distance) are offered for a person to confirm.
//! - **Deterministic output.** The same estate gives the same report, whatever order AWS listed it in.
//!
//! Candidates are DR-region instances tagged exactly `AWSDRS=AllowLaunchingIntoThisInstance` and not
//! terminated (`shared/reference/aws-drs-api.md` §1.2).

use crate::estate::{
    Architecture, BootMode, Ec2Instance, InstanceState, Platform, ReplicationState, SourceServer, required_boot_mode,
};
use crate::ids::{InstanceId, SourceServerId, SubnetId};
use crate::text::quoted;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use unicode_normalization::UnicodeNormalization;

/// Replication lag above which a pair gets a warning, in seconds.
pub const LAG_WARNING_SECONDS: u64 = 3600;
/// Largest edit distance offered as a suggestion.
pub const MAX_SUGGESTION_DISTANCE: usize = 2;
/// Upper bound on edit-distance cells computed for suggestions, so matching stays fast on any estate.
pub const MAX_SUGGESTION_CELLS: usize = 20_000_000;

/// Normalises a name for matching: Unicode NFKC, trim, collapse inner whitespace to one space, lowercase.
pub fn normalize_name(raw: &str) -> String {
    // NFKC leaves ASCII unchanged, so the common case skips it and lowercases in place.
    if raw.is_ascii() {
        let mut out = String::with_capacity(raw.len());
        for word in raw.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
        out.make_ascii_lowercase();
        return out;
    }
    let nfkc: String = raw.nfkc().collect();
    let mut out = String::with_capacity(nfkc.len());
    for word in nfkc.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.to_lowercase()
}

/// Which text of a source server is compared with standby Name tags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceNameKey {
    /// The source server's `Name` tag, falling back to its hostname.
    #[default]
    NameTagThenHostname,
    /// The `Name` tag only.
    NameTag,
    /// The hostname only.
    Hostname,
}

impl SourceNameKey {
    /// The source text this key selects, if any.
    pub fn source_name<'a>(&self, s: &'a SourceServer) -> Option<&'a str> {
        let host = (!s.hostname.trim().is_empty()).then_some(s.hostname.as_str());
        match self {
            Self::NameTagThenHostname => s.name_tag().filter(|n| !n.trim().is_empty()).or(host),
            Self::NameTag => s.name_tag(),
            Self::Hostname => host,
        }
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Blocks a failover until fixed.
    Critical,
    /// Worth a look; does not block.
    Warning,
}

/// Readiness of a pair: ready, ready with warnings, or blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairStatus {
    Ready,
    Warning,
    Blocked,
}

impl PairStatus {
    /// Lower-case name, as the API and the console show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Warning => "warning",
            Self::Blocked => "blocked",
        }
    }

    /// The status implied by a set of findings.
    pub fn of(findings: &[Finding]) -> Self {
        if findings.iter().any(|f| f.severity == Severity::Critical) {
            Self::Blocked
        } else if findings.is_empty() {
            Self::Ready
        } else {
            Self::Warning
        }
    }
}

/// One problem found with a pair, with a stable code and an actionable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: String,
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    fn critical(code: &str, message: String) -> Self {
        Self { code: code.to_owned(), severity: Severity::Critical, message }
    }
    fn warning(code: &str, message: String) -> Self {
        Self { code: code.to_owned(), severity: Severity::Warning, message }
    }
}

/// The facts about a pair that readiness rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessFacts {
    pub standby_state: InstanceState,
    pub source_architecture: Architecture,
    pub standby_architecture: Architecture,
    pub source_platform: Platform,
    pub standby_platform: Platform,
    pub source_boot_mode: Option<BootMode>,
    pub standby_boot_mode: BootMode,
    pub private_ip: Ipv4Addr,
    pub subnet_id: SubnetId,
    pub replication_state: ReplicationState,
    pub lag_seconds: u64,
}

/// The facts of a source server and standby.
pub fn readiness_facts(source: &SourceServer, standby: &Ec2Instance) -> ReadinessFacts {
    ReadinessFacts {
        standby_state: standby.state,
        source_architecture: source.architecture,
        standby_architecture: standby.architecture,
        source_platform: source.platform,
        standby_platform: standby.platform,
        source_boot_mode: source.boot_mode,
        standby_boot_mode: standby.boot_mode,
        private_ip: standby.private_ip,
        subnet_id: standby.subnet_id.clone(),
        replication_state: source.replication_state,
        lag_seconds: source.lag_seconds,
    }
}

/// The findings of a pair: the DRS launch-into requirements (aws-drs-api.md §1.2) and replication health.
pub fn pair_findings(source: &SourceServer, standby: &Ec2Instance) -> Vec<Finding> {
    let mut out = Vec::new();
    if !standby.has_exact_awsdrs_tag() {
        out.push(Finding::critical(
            "STANDBY_NOT_TAGGED",
            format!("{} no longer carries AWSDRS=AllowLaunchingIntoThisInstance exactly", standby.instance_id),
        ));
    }
    match standby.state {
        InstanceState::Stopped => {}
        InstanceState::Terminated => out.push(Finding::critical(
            "STANDBY_TERMINATED",
            format!("{} is terminated; {}", standby.instance_id, InstanceState::Terminated.launch_into_remedy()),
        )),
        s => out.push(Finding::critical(
            "STANDBY_NOT_STOPPED",
            format!("{} is {}; {}", standby.instance_id, s.as_str(), s.launch_into_remedy()),
        )),
    }
    if source.architecture != standby.architecture {
        out.push(Finding::critical(
            "ARCHITECTURE_MISMATCH",
            format!(
                "source is {}, standby is {}; DRS needs the same architecture",
                source.architecture.as_str(),
                standby.architecture.as_str()
            ),
        ));
    }
    let boot = required_boot_mode(source, standby);
    if source.platform != standby.platform {
        out.push(Finding::critical(
            "PLATFORM_MISMATCH",
            format!("source runs {}, standby runs {}", source.platform.as_str(), standby.platform.as_str()),
        ));
    } else if standby.boot_mode != boot {
        let (code, message) = match standby.platform {
            Platform::Linux => ("LINUX_STANDBY_NOT_BIOS", "a Linux standby must boot legacy-bios"),
            Platform::Windows => ("BOOT_MODE_MISMATCH", "a Windows standby must boot like its source"),
        };
        out.push(Finding::critical(
            code,
            format!("{message}; {} boots {}", standby.instance_id, standby.boot_mode.as_str()),
        ));
    }
    if standby.root_device_type != "ebs" {
        out.push(Finding::critical(
            "ROOT_DEVICE_NOT_EBS",
            format!("the standby's root device is {}; DRS needs an EBS root", standby.root_device_type),
        ));
    }
    match source.replication_state {
        ReplicationState::Continuous if source.lag_seconds > LAG_WARNING_SECONDS => out.push(Finding::warning(
            "REPLICATION_LAGGING",
            format!(
                "replication lags {} behind; recovery would lose that much data",
                human_duration(source.lag_seconds)
            ),
        )),
        ReplicationState::Continuous => {}
        s => out.push(Finding::warning(
            "SOURCE_NOT_CONTINUOUS",
            format!("replication is {}, not CONTINUOUS; recovery would use an older point in time", s.as_str()),
        )),
    }
    out
}

/// `3725` → `1h 2m`.
pub fn human_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m {s}s"),
        (h, m) => format!("{h}h {m}m"),
    }
}

/// A proposed pair: one source server and one standby whose names normalise alike, with nobody else
/// sharing that name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposedPair {
    pub source_server_id: SourceServerId,
    pub source_name: String,
    pub standby_instance_id: InstanceId,
    pub standby_name: String,
    pub normalized_name: String,
    pub wave: Option<String>,
    pub facts: ReadinessFacts,
    pub findings: Vec<Finding>,
    pub status: PairStatus,
}

/// Why a source server or standby was not paired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnmatchedReason {
    /// No name to match on (no Name tag, and no hostname where that is the fallback).
    NoName,
    /// No standby has this name.
    NoStandbyWithName,
    /// No source server has this name.
    NoSourceWithName,
    /// The name is shared with another source server or standby: see the conflict.
    Conflict,
    /// Carries an AWSDRS tag that is not exactly `AWSDRS=AllowLaunchingIntoThisInstance`.
    AwsdrsTagNotExact,
    /// The only standby with this name is terminated: a new one is needed.
    StandbyTerminated,
}

impl UnmatchedReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoName => "NO_NAME",
            Self::NoStandbyWithName => "NO_STANDBY_WITH_NAME",
            Self::NoSourceWithName => "NO_SOURCE_WITH_NAME",
            Self::Conflict => "CONFLICT",
            Self::AwsdrsTagNotExact => "AWSDRS_TAG_NOT_EXACT",
            Self::StandbyTerminated => "STANDBY_TERMINATED",
        }
    }
}

/// A source server that was not paired, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmatchedSource {
    pub source_server_id: SourceServerId,
    pub source_name: Option<String>,
    pub normalized_name: Option<String>,
    pub wave: Option<String>,
    pub replication_state: ReplicationState,
    pub reason: UnmatchedReason,
    pub message: String,
}

/// A standby (or near-standby) that was not paired, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmatchedStandby {
    pub instance_id: InstanceId,
    pub name: Option<String>,
    pub normalized_name: Option<String>,
    pub state: InstanceState,
    pub reason: UnmatchedReason,
    pub message: String,
}

/// Which side of a conflict holds more than one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictSide {
    Sources,
    Standbys,
    Both,
}

/// Two or more source servers, or two or more standbys, whose names normalise alike. Never paired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub normalized_name: String,
    pub side: ConflictSide,
    pub source_server_ids: Vec<SourceServerId>,
    pub standby_instance_ids: Vec<InstanceId>,
    pub message: String,
}

/// A near miss offered for a person to confirm; never paired automatically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    pub source_server_id: SourceServerId,
    pub source_name: String,
    pub standby_instance_id: InstanceId,
    pub standby_name: String,
    pub distance: usize,
}

/// Totals of a match report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MatchCounts {
    pub source_servers: usize,
    pub standbys: usize,
    pub pairs: usize,
    pub ready_pairs: usize,
    pub pairs_with_warnings: usize,
    pub blocked_pairs: usize,
    pub unmatched_sources: usize,
    pub unmatched_standbys: usize,
    pub conflicts: usize,
    pub suggestions: usize,
    /// Pairs divided by source servers, 0 to 1.
    pub match_rate: f64,
}

/// The result of Name-tag matching.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MatchReport {
    pub pairs: Vec<ProposedPair>,
    pub unmatched_sources: Vec<UnmatchedSource>,
    pub unmatched_standbys: Vec<UnmatchedStandby>,
    pub conflicts: Vec<Conflict>,
    pub suggestions: Vec<Suggestion>,
    /// Whether suggestion search stopped early at [`MAX_SUGGESTION_CELLS`].
    pub suggestions_truncated: bool,
    pub counts: MatchCounts,
}

/// Matches source servers to the standbys among `dr_instances` by normalised name.
///
/// `sources` are the source servers of one protection group; `dr_instances` every instance of the DR
/// account and region (non-standbys are ignored, except near-miss AWSDRS tags, which are reported).
pub fn match_estate(sources: &[SourceServer], dr_instances: &[Ec2Instance], key: SourceNameKey) -> MatchReport {
    let mut report = MatchReport::default();
    let mut src_by_name: BTreeMap<String, Vec<&SourceServer>> = BTreeMap::new();
    for s in sources {
        match key.source_name(s).map(normalize_name).filter(|n| !n.is_empty()) {
            Some(n) => src_by_name.entry(n).or_default().push(s),
            None => report.unmatched_sources.push(UnmatchedSource {
                source_server_id: s.source_server_id.clone(),
                source_name: None,
                normalized_name: None,
                wave: s.wave().map(str::to_owned),
                replication_state: s.replication_state,
                reason: UnmatchedReason::NoName,
                message: match key {
                    SourceNameKey::NameTag => "no Name tag; tag the source server or its instance".into(),
                    SourceNameKey::Hostname => "no hostname reported by the replication agent".into(),
                    SourceNameKey::NameTagThenHostname => "no Name tag and no hostname; tag the source server".into(),
                },
            }),
        }
    }
    let mut sb_by_name: BTreeMap<String, Vec<&Ec2Instance>> = BTreeMap::new();
    // Terminated standbys match nothing, but explain a source server left without one.
    let mut terminated_by_name: BTreeMap<String, &Ec2Instance> = BTreeMap::new();
    let mut standby_count = 0;
    for i in dr_instances {
        if i.has_exact_awsdrs_tag() && i.state == InstanceState::Terminated {
            if let Some(n) = i.name().map(normalize_name).filter(|n| !n.is_empty()) {
                terminated_by_name.entry(n).or_insert(i);
            }
        } else if i.is_standby() {
            standby_count += 1;
            match i.name().map(normalize_name).filter(|n| !n.is_empty()) {
                Some(n) => sb_by_name.entry(n).or_default().push(i),
                None => report.unmatched_standbys.push(unmatched_standby(
                    i,
                    UnmatchedReason::NoName,
                    "standby has no Name tag; tag it with its source server's name".into(),
                )),
            }
        } else if i.has_near_miss_awsdrs_tag() && i.state != InstanceState::Terminated {
            report.unmatched_standbys.push(unmatched_standby(
                i,
                UnmatchedReason::AwsdrsTagNotExact,
                "AWSDRS tag is not exactly AWSDRS=AllowLaunchingIntoThisInstance (case-sensitive); DRS will refuse it"
                    .into(),
            ));
        }
    }
    for (name, srcs) in &src_by_name {
        let sbs = sb_by_name.get(name).map(Vec::as_slice).unwrap_or_default();
        match (srcs.as_slice(), sbs) {
            ([s], [t]) => report.pairs.push(proposed_pair(s, t, key, name)),
            ([s], []) => {
                let written = quoted(key.source_name(s).unwrap_or(name));
                let (reason, message) = match terminated_by_name.get(name) {
                    Some(t) => (
                        UnmatchedReason::StandbyTerminated,
                        format!(
                            "the standby named {written} ({}) is terminated; provision a new stopped standby with this \
                             name and the AWSDRS tag",
                            t.instance_id
                        ),
                    ),
                    None => {
                        (UnmatchedReason::NoStandbyWithName, format!("no standby is named {written} in the DR region"))
                    }
                };
                report.unmatched_sources.push(unmatched_source(s, key, name, reason, message));
            }
            _ => push_conflict(&mut report, name, srcs, sbs, key),
        }
    }
    for (name, sbs) in &sb_by_name {
        if src_by_name.contains_key(name) {
            continue;
        }
        if let [t] = sbs.as_slice() {
            report.unmatched_standbys.push(unmatched_standby(
                t,
                UnmatchedReason::NoSourceWithName,
                format!("no source server in this group is named {}", quoted(t.name().unwrap_or(name))),
            ));
        } else {
            push_conflict(&mut report, name, &[], sbs, key);
        }
    }
    suggest(&mut report);
    report
        .pairs
        .sort_by(|a, b| (&a.normalized_name, &a.source_server_id).cmp(&(&b.normalized_name, &b.source_server_id)));
    report
        .unmatched_sources
        .sort_by(|a, b| (&a.normalized_name, &a.source_server_id).cmp(&(&b.normalized_name, &b.source_server_id)));
    report
        .unmatched_standbys
        .sort_by(|a, b| (&a.normalized_name, &a.instance_id).cmp(&(&b.normalized_name, &b.instance_id)));
    report.conflicts.sort_by(|a, b| a.normalized_name.cmp(&b.normalized_name));
    let c = &mut report.counts;
    c.source_servers = sources.len();
    c.standbys = standby_count;
    c.pairs = report.pairs.len();
    for p in &report.pairs {
        match p.status {
            PairStatus::Ready => c.ready_pairs += 1,
            PairStatus::Warning => c.pairs_with_warnings += 1,
            PairStatus::Blocked => c.blocked_pairs += 1,
        }
    }
    c.unmatched_sources = report.unmatched_sources.len();
    c.unmatched_standbys = report.unmatched_standbys.len();
    c.conflicts = report.conflicts.len();
    c.suggestions = report.suggestions.len();
    c.match_rate = if sources.is_empty() { 0.0 } else { c.pairs as f64 / sources.len() as f64 };
    report
}

fn proposed_pair(s: &SourceServer, t: &Ec2Instance, key: SourceNameKey, name: &str) -> ProposedPair {
    let findings = pair_findings(s, t);
    ProposedPair {
        source_server_id: s.source_server_id.clone(),
        source_name: key.source_name(s).unwrap_or_default().to_owned(),
        standby_instance_id: t.instance_id.clone(),
        standby_name: t.name().unwrap_or_default().to_owned(),
        normalized_name: name.to_owned(),
        wave: s.wave().map(str::to_owned),
        facts: readiness_facts(s, t),
        status: PairStatus::of(&findings),
        findings,
    }
}

fn unmatched_source(
    s: &SourceServer,
    key: SourceNameKey,
    name: &str,
    reason: UnmatchedReason,
    message: String,
) -> UnmatchedSource {
    UnmatchedSource {
        source_server_id: s.source_server_id.clone(),
        source_name: key.source_name(s).map(str::to_owned),
        normalized_name: Some(name.to_owned()),
        wave: s.wave().map(str::to_owned),
        replication_state: s.replication_state,
        reason,
        message,
    }
}

fn unmatched_standby(i: &Ec2Instance, reason: UnmatchedReason, message: String) -> UnmatchedStandby {
    let normalized_name = i.name().map(normalize_name).filter(|n| !n.is_empty());
    UnmatchedStandby {
        instance_id: i.instance_id.clone(),
        name: i.name().map(str::to_owned),
        normalized_name,
        state: i.state,
        reason,
        message,
    }
}

fn push_conflict(
    report: &mut MatchReport,
    name: &str,
    srcs: &[&SourceServer],
    sbs: &[&Ec2Instance],
    key: SourceNameKey,
) {
    let mut source_server_ids: Vec<SourceServerId> = srcs.iter().map(|s| s.source_server_id.clone()).collect();
    let mut standby_instance_ids: Vec<InstanceId> = sbs.iter().map(|t| t.instance_id.clone()).collect();
    source_server_ids.sort();
    standby_instance_ids.sort();
    let side = match (srcs.len() > 1, sbs.len() > 1) {
        (true, true) => ConflictSide::Both,
        (true, false) => ConflictSide::Sources,
        _ => ConflictSide::Standbys,
    };
    let message = match side {
        ConflictSide::Sources => {
            format!(
                "{} source servers are named {}; rename all but one so each name is unique",
                srcs.len(),
                quoted(name)
            )
        }
        ConflictSide::Standbys => {
            format!(
                "{} standbys are named {}; rename or untag all but one so each name is unique",
                sbs.len(),
                quoted(name)
            )
        }
        ConflictSide::Both => format!(
            "{} source servers and {} standbys are named {}; make every name unique",
            srcs.len(),
            sbs.len(),
            quoted(name)
        ),
    };
    for s in srcs {
        report.unmatched_sources.push(unmatched_source(
            s,
            key,
            name,
            UnmatchedReason::Conflict,
            format!("name {} is not unique; see the conflict", quoted(name)),
        ));
    }
    for t in sbs {
        report.unmatched_standbys.push(unmatched_standby(
            t,
            UnmatchedReason::Conflict,
            format!("name {} is not unique; see the conflict", quoted(name)),
        ));
    }
    report.conflicts.push(Conflict {
        normalized_name: name.to_owned(),
        side,
        source_server_ids,
        standby_instance_ids,
        message,
    });
}

/// Offers near misses between unmatched source servers and unmatched standbys.
fn suggest(report: &mut MatchReport) {
    let mut by_len: BTreeMap<usize, Vec<(&str, &UnmatchedStandby)>> = BTreeMap::new();
    for t in &report.unmatched_standbys {
        if let (UnmatchedReason::NoSourceWithName, Some(n)) = (t.reason, &t.normalized_name) {
            by_len.entry(n.chars().count()).or_default().push((n, t));
        }
    }
    let mut cells = 0usize;
    let mut out = Vec::new();
    'sources: for s in &report.unmatched_sources {
        let (UnmatchedReason::NoStandbyWithName, Some(name)) = (s.reason, &s.normalized_name) else { continue };
        let len = name.chars().count();
        let max = MAX_SUGGESTION_DISTANCE.min(len / 4);
        if max == 0 {
            continue;
        }
        let mut best: Vec<(usize, &UnmatchedStandby)> = Vec::new();
        for (_, cands) in by_len.range(len.saturating_sub(max)..=len + max) {
            for (n, t) in cands {
                cells += len.min(n.len()) * (2 * max + 1);
                if cells > MAX_SUGGESTION_CELLS {
                    report.suggestions_truncated = true;
                    break 'sources;
                }
                if digits(name) != digits(n) {
                    // `app-01` and `app-02` are two servers, not a typo.
                    continue;
                }
                if let Some(d) = bounded_levenshtein(name, n, max) {
                    if best.first().is_none_or(|(b, _)| d < *b) {
                        best.clear();
                    }
                    if best.first().is_none_or(|(b, _)| d == *b) {
                        best.push((d, t));
                    }
                }
            }
        }
        for (d, t) in best {
            out.push(Suggestion {
                source_server_id: s.source_server_id.clone(),
                source_name: s.source_name.clone().unwrap_or_default(),
                standby_instance_id: t.instance_id.clone(),
                standby_name: t.name.clone().unwrap_or_default(),
                distance: d,
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.source_server_id, a.distance, &a.standby_instance_id).cmp(&(
            &b.source_server_id,
            b.distance,
            &b.standby_instance_id,
        ))
    });
    report.suggestions = out;
}

/// The digits of a name, in order: names that differ in their numbers are different servers.
fn digits(name: &str) -> String {
    name.chars().filter(char::is_ascii_digit).collect()
}

/// Levenshtein distance over chars, or `None` when it exceeds `max`. Only the diagonal band of width
/// `2·max + 1` is computed, so the cost is `O(len · max)`, not `O(len²)`.
pub fn bounded_levenshtein(a: &str, b: &str, max: usize) -> Option<usize> {
    const INF: usize = usize::MAX / 2;
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    if n.abs_diff(m) > max {
        return None;
    }
    let mut prev: Vec<usize> = (0..=m).map(|j| if j <= max { j } else { INF }).collect();
    let mut cur = vec![INF; m + 1];
    for i in 1..=n {
        let lo = if i > max { i - max } else { 1 };
        let hi = (i + max).min(m);
        cur[lo - 1] = if lo == 1 && i <= max { i } else { INF };
        let mut row_min = cur[lo - 1];
        for j in lo..=hi {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let v = (prev[j - 1] + cost).min(prev[j] + 1).min(cur[j - 1] + 1);
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if hi < m {
            cur[hi + 1] = INF;
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    (prev[m] <= max).then_some(prev[m])
}
