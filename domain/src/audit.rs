//! The audit trail's records as clients see them: entries, filters and the result of verifying the chain.
//! The chain itself (hashing, appending, verifying) is the engine's.

use crate::auth::AuthMethod;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most entries one query returns.
pub const MAX_QUERY_LIMIT: usize = 10_000;

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It was done.
    Ok,
    /// It was attempted and failed (e.g. AWS refused a write).
    Failed,
    /// It was refused before anything changed (e.g. a wrong password).
    Refused,
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// 1, 2, 3, … without gaps.
    pub seq: u64,
    /// Wall-clock milliseconds since the Unix epoch.
    pub at: i64,
    /// Who, as written for people: `alice`, `alice (token ci)`, `system:readiness-loop`.
    pub actor: String,
    /// The person behind the actor, for filtering.
    pub subject: String,
    pub method: AuthMethod,
    /// What, e.g. `protection_group.create`, `aws.drs.UpdateLaunchConfiguration`, `auth.login`.
    pub action: String,
    /// The object acted on, e.g. a group id, a source server id, a user name.
    pub target: String,
    pub outcome: Outcome,
    /// Before/after and other facts, where known.
    #[serde(default)]
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// Filters of an audit query; every given one must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditFilter {
    /// The subject (person) exactly, case-insensitive.
    pub actor: Option<String>,
    /// Actions starting with this, e.g. `protection_group.` or `aws.`.
    pub action: Option<String>,
    /// Targets containing this.
    pub target: Option<String>,
    /// From this time (ms since epoch, inclusive).
    pub since: Option<i64>,
    /// Before this time (ms since epoch, exclusive).
    pub until: Option<i64>,
    /// Newest entries first, at most this many (default 500).
    pub limit: Option<usize>,
}

impl AuditFilter {
    /// Whether `e` passes every given filter.
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.actor.as_ref().is_none_or(|a| e.subject.eq_ignore_ascii_case(a.trim()))
            && self.action.as_ref().is_none_or(|a| e.action.starts_with(a.trim()))
            && self.target.as_ref().is_none_or(|t| e.target.contains(t.trim()))
            && self.since.is_none_or(|s| e.at >= s)
            && self.until.is_none_or(|u| e.at < u)
    }
}

/// One problem found by [`AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainProblem {
    /// The sequence number where the chain breaks.
    pub seq: u64,
    pub problem: String,
}

/// The result of verifying the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// True when every entry is intact and the chain reaches the head.
    pub intact: bool,
    pub entries: u64,
    /// The last sequence number and hash, as the head records them.
    pub head_seq: u64,
    pub head_hash: String,
    /// Every break found, in order (at most 100).
    pub problems: Vec<ChainProblem>,
}
