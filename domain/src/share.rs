//! Share links: a random, unguessable token that lets someone without an account read one stakeholder
//! view (the estate-wide readiness status, or one execution's progress) and nothing else.
//!
//! The stakeholder view carries application names, verdicts, times and the operator's message only:
//! never instance IDs, IPs, account numbers or user names.

use crate::execution::{Phase, WaveState};
use crate::readiness::Verdict;
use serde::{Deserialize, Serialize};

/// What a share link shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ShareScope {
    /// The readiness of every protection group (application).
    Estate,
    /// One execution's progress.
    Execution { execution_id: String },
}

/// A share link as operators see it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareLinkView {
    pub id: String,
    pub name: String,
    pub scope: ShareScope,
    /// The short message stakeholders see on the page.
    pub message: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub version: u64,
}

/// Input of a new share link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewShareLink {
    pub name: String,
    #[serde(default = "estate")]
    pub scope: ShareScope,
    #[serde(default)]
    pub message: String,
    /// Hours until it expires; never when absent.
    #[serde(default)]
    pub expires_in_hours: Option<u32>,
}

fn estate() -> ShareScope {
    ShareScope::Estate
}

/// A change of a share link's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareLinkChange {
    pub message: String,
    #[serde(default)]
    pub expected_version: Option<u64>,
}

/// A new share link: its token (shown once; the page is `/status/<token>`) and its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedShareLink {
    pub token: String,
    pub path: String,
    pub details: ShareLinkView,
}

/// One application on the stakeholder page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationStatus {
    /// The protection group's name.
    pub name: String,
    /// `None` until readiness has been evaluated.
    pub verdict: Option<Verdict>,
    pub score: Option<u8>,
    pub evaluated_at: Option<i64>,
    /// Since when the verdict holds.
    pub since: Option<i64>,
}

/// What a share link shows: safe for anyone holding the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StakeholderStatus {
    pub title: String,
    pub message: String,
    pub generated_at: i64,
    pub applications: Vec<ApplicationStatus>,
    /// For a link to one execution.
    #[serde(default)]
    pub execution: Option<ExecutionProgress>,
    pub expires_at: Option<i64>,
}

/// One wave on the stakeholder page: its name and counts, nothing that names a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveProgress {
    pub name: String,
    pub state: WaveState,
    pub servers: usize,
    pub verified: usize,
    pub failed: usize,
}

/// An execution on the stakeholder page: phase, progress and times; never instance IDs, IPs, account
/// numbers or user names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionProgress {
    /// The recovery plan's name.
    pub plan: String,
    pub drill: bool,
    /// Coming back to the original region.
    #[serde(default)]
    pub failback: bool,
    pub phase: Phase,
    pub progress_percent: u8,
    pub elapsed_ms: Option<i64>,
    pub remaining_ms: Option<i64>,
    pub rto_ms: Option<i64>,
    pub rto_target_ms: i64,
    pub waves: Vec<WaveProgress>,
}
