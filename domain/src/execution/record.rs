//! An execution as stored and shown: the record, its lease and log, readiness at the start, the requests
//! that start one and the decisions people take on it.

use super::failback::FailbackOf;
use super::state::{ExecutionState, FailoverKind, Mode, Phase, phase_word};
use super::status::{ExecutionStatus, status};
use crate::estate::AccountRegion;
use crate::ids::SourceServerId;
use serde::{Deserialize, Serialize};

/// One line of an execution's event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub at: i64,
    pub message: String,
    #[serde(default)]
    pub failure: bool,
}

/// Who drives an execution, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub until: i64,
}

/// A stored execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub id: String,
    pub plan_id: String,
    pub plan_name: String,
    /// Where its DRS jobs run (every group of the plan recovers into this account and region).
    pub dr: AccountRegion,
    pub rto_target_minutes: u32,
    /// The plan's protection groups (readiness is evaluated per group).
    #[serde(default)]
    pub protection_group_ids: Vec<crate::ids::ProtectionGroupId>,
    /// Whether the requester acknowledged readiness warnings (critical checks block regardless).
    #[serde(default)]
    pub acknowledge_warnings: bool,
    pub state: ExecutionState,
    pub lease: Option<Lease>,
    /// For a failback: the recovery it reverses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failback: Option<FailbackOf>,
    /// What happened, most recent last (the engine keeps the last 500 lines).
    #[serde(default)]
    pub log: Vec<LogLine>,
    /// Readiness as it was requested (recoveries and drills), for its evidence report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_at_start: Option<ReadinessAtStart>,
    #[serde(default)]
    pub version: u64,
}

/// Notes a [`ReadinessAtStart`] keeps.
pub const MAX_READINESS_NOTES: usize = 200;

/// Readiness of an execution's servers when it was requested: counts, and each check that did not pass
/// (warnings the requester acknowledged; critical checks would have refused the start).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReadinessAtStart {
    /// Unix ms.
    pub evaluated_at: i64,
    pub pairs: usize,
    pub ready: usize,
    pub with_warnings: usize,
    pub blocked: usize,
    /// At most [`MAX_READINESS_NOTES`].
    pub notes: Vec<ReadinessNote>,
    /// Notes left out past the limit.
    #[serde(default)]
    pub omitted: usize,
}

/// One check that did not pass for one pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadinessNote {
    pub source_name: String,
    pub source_server_id: SourceServerId,
    pub check_id: String,
    pub severity: crate::matching::Severity,
    pub expected: String,
    pub actual: String,
}

/// An execution with its progress, as the API, the dashboard and its live stream show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionView {
    pub execution: ExecutionRecord,
    pub status: ExecutionStatus,
}

/// One line of the executions list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionSummary {
    pub id: String,
    pub plan_id: String,
    pub plan_name: String,
    pub mode: Mode,
    pub kind: FailoverKind,
    pub phase: Phase,
    pub progress_percent: u8,
    pub servers: usize,
    pub requested_by: String,
    pub requested_at: i64,
    pub approved_by: Option<String>,
    pub ended_at: Option<i64>,
    /// The wave waiting at its gate, when one is.
    pub gate: Option<String>,
}

impl ExecutionSummary {
    /// The summary of a stored execution.
    pub fn of(e: &ExecutionRecord) -> Self {
        let s = &e.state;
        Self {
            id: e.id.clone(),
            plan_id: e.plan_id.clone(),
            plan_name: e.plan_name.clone(),
            mode: s.mode,
            kind: s.kind,
            phase: s.phase,
            progress_percent: status(s, e.rto_target_minutes, 0).progress_percent,
            servers: s.waves.iter().map(|w| w.servers.len()).sum(),
            requested_by: s.requested_by.clone(),
            requested_at: s.requested_at,
            approved_by: s.approved_by.clone(),
            ended_at: s.ended_at,
            gate: (s.phase == Phase::AwaitingGate)
                .then(|| s.waves.get(s.current_wave).map(|w| w.name.clone()))
                .flatten(),
        }
    }
}

/// A request to run a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartExecution {
    pub plan_id: String,
    pub mode: Mode,
    /// For a recovery: `planned` (stop the sources and drain first) or `disaster` (the default).
    #[serde(default)]
    pub kind: FailoverKind,
    /// Run even though some pairs have readiness warnings (critical checks always block).
    #[serde(default)]
    pub acknowledge_warnings: bool,
}

/// A person's decision on an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
    /// Release the gate before the next wave.
    Resume,
    Cancel,
}

impl Decision {
    /// The wire name, e.g. `approve`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
            Decision::Resume => "resume",
            Decision::Cancel => "cancel",
        }
    }
}

/// Why a person's decision does not fit the execution now. Nothing is written for it: a decision on a
/// request that has expired, been rejected or already started is refused, never recorded as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotAwaiting {
    /// An approval or rejection of an execution that is not awaiting approval.
    #[error("nothing awaits approval: the execution is {}", phase_word(*phase))]
    Approval { phase: Phase },
    /// A gate release while no wave waits at a gate.
    #[error("no wave waits at a gate: the execution is {}", phase_word(*phase))]
    Gate { phase: Phase },
    /// A cancel of an execution that has ended.
    #[error("the execution has already ended: it {}", phase_word(*phase))]
    Ended { phase: Phase },
}

impl NotAwaiting {
    /// The phase the execution is in.
    pub fn phase(self) -> Phase {
        match self {
            Self::Approval { phase } | Self::Gate { phase } | Self::Ended { phase } => phase,
        }
    }
}

impl ExecutionState {
    /// The phase at `now`: a request whose approval deadline has passed is expired, even before the runner
    /// has recorded it.
    pub fn phase_at(&self, now: i64) -> Phase {
        match self.approval_deadline {
            Some(d) if self.phase == Phase::AwaitingApproval && now >= d => Phase::Expired,
            _ => self.phase,
        }
    }

    /// Whether `decision` fits the execution at `now`.
    ///
    /// # Errors
    /// [`NotAwaiting`] naming the phase: approve and reject only while approval is awaited (not once the
    /// request expired, was rejected or started), resume only at a gate, cancel only before the end.
    pub fn admits(&self, decision: Decision, now: i64) -> Result<(), NotAwaiting> {
        let phase = self.phase_at(now);
        match decision {
            Decision::Approve | Decision::Reject if phase != Phase::AwaitingApproval => {
                Err(NotAwaiting::Approval { phase })
            }
            Decision::Resume if phase != Phase::AwaitingGate => Err(NotAwaiting::Gate { phase }),
            Decision::Cancel if phase.is_terminal() => Err(NotAwaiting::Ended { phase }),
            _ => Ok(()),
        }
    }
}
