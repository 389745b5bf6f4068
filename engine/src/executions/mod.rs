//! Executions of recovery plans: start one (readiness gate, one execution per plan at a time, approval
//! for real recoveries), and drive it with a runner step that is safe to repeat and to crash.
//!
//! Layout: `executions/<id>` → [`ExecutionRecord`] (the pure [`ExecutionState`] plus what the runner needs);
//! `execution_locks/active` → [`ActiveLocks`]: which plan and which source servers each live execution
//! holds, written with the execution in one transaction (and released with its last write), so two
//! simultaneous requests for one plan make one execution, and a drill and a recovery never run on
//! overlapping servers.
//!
//! [`Services::advance_execution`] is one step: take (or renew) the lease, apply the clock, ask the state
//! machine what to do, and do it. Every state change is written with the version read before any AWS call
//! it leads to; claimed servers are persisted before `StartRecovery`, so after a crash they are reconciled
//! against `DescribeJobs` and never started twice (`domain::execution`). One process holds an execution's
//! lease at a time; another takes it over only once it has expired.

mod caches;
mod cleanup;
mod decisions;
mod persist;
mod runner;
mod start;

use crate::error::ServiceError;
pub use caches::SharedView;
pub(crate) use caches::{RunnerCopies, SharedViews};
use domain::FieldError;
pub use domain::execution::{Decision, ExecutionRecord, ExecutionView, Lease, LogLine, StartExecution};
use domain::execution::{Event, ExecutionState, FailoverKind, Mode, ServerRun, on_event};
use domain::ids::SourceServerId;
use domain::matching::Severity;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

pub const EXECUTIONS: &str = "executions";

pub const EXECUTION_LOCKS: &str = "execution_locks";

/// `execution_leases/<id>` → [`Lease`]: who steps an execution, until when. Apart from the execution, so the
/// holder renews it while a long step works (a heartbeat) without rewriting the execution.
pub const EXECUTION_LEASES: &str = "execution_leases";

/// The key of the one [`ActiveLocks`] record.
const ACTIVE: &str = "active";

/// Lines an execution's event log keeps (the most recent).
pub const LOG_LINES: usize = 500;

/// What live executions hold: plan id → execution id, and source server id → execution id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveLocks {
    pub plans: BTreeMap<String, String>,
    pub servers: BTreeMap<SourceServerId, String>,
}

/// What one runner step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Something changed; step again soon.
    Advanced,
    /// Nothing to do until time passes or someone acts.
    Idle,
    /// Another process holds the lease.
    Leased,
    /// The execution has ended.
    Done,
}

/// Applies `events` to the execution in memory, with their log lines.
fn apply(mut rec: ExecutionRecord, events: &[Event]) -> Result<ExecutionRecord, ServiceError> {
    for ev in events {
        let line =
            ev.summary().map(|message| LogLine { at: event_time(ev, &rec.state), failure: ev.is_failure(), message });
        rec.state =
            on_event(rec.state, ev.clone()).map_err(|e| refused("event", "INVALID_TRANSITION", e.to_string()))?;
        rec.log.extend(line);
    }
    Ok(rec)
}

/// When an event happened (events without a time: the execution's start).
fn event_time(ev: &Event, s: &ExecutionState) -> i64 {
    match ev {
        Event::Approved { at, .. }
        | Event::Rejected { at, .. }
        | Event::GateReleased { at, .. }
        | Event::BatchClaimed { at, .. }
        | Event::JobStarted { at, .. }
        | Event::StartFailed { at, .. }
        | Event::Launched { at, .. }
        | Event::LaunchFailed { at, .. }
        | Event::Verified { at, .. }
        | Event::VerificationFailed { at, .. }
        | Event::SourcesStopped { at, .. }
        | Event::Drained { at, .. }
        | Event::CleanedUp { at, .. }
        | Event::ReadinessChecked { at, .. }
        | Event::ReverseClaimed { at, .. }
        | Event::Reversed { at, .. }
        | Event::Replicated { at, .. }
        | Event::Configured { at, .. }
        | Event::Reprotected { at, .. }
        | Event::ReArmRequested { at, .. }
        | Event::Protected { at, .. }
        | Event::CancelRequested { at, .. }
        | Event::Tick { at } => *at,
        Event::StartAbandoned { .. } | Event::ReverseAbandoned { .. } | Event::ReplicationObserved { .. } => {
            s.started_at.unwrap_or(s.requested_at)
        }
    }
}

fn refused(field: &str, code: &str, message: String) -> ServiceError {
    ServiceError::Invalid(vec![FieldError::new(field, code, message)])
}

/// What a notice says of the execution it is about.
fn notice_context(rec: &ExecutionRecord) -> domain::notify::ExecutionContext<'_> {
    domain::notify::ExecutionContext {
        execution_id: &rec.id,
        plan_name: &rec.plan_name,
        rto_target_minutes: rec.rto_target_minutes,
    }
}

/// Adds a pair's readiness to the snapshot an execution keeps for its evidence report.
fn note_readiness(at: &mut domain::execution::ReadinessAtStart, pr: &domain::readiness::PairReadiness) {
    use domain::matching::PairStatus;
    at.pairs += 1;
    match pr.status {
        PairStatus::Ready => at.ready += 1,
        PairStatus::Blocked => at.blocked += 1,
        PairStatus::Warning => at.with_warnings += 1,
    }
    for c in pr.checks.iter().filter(|c| !c.passed) {
        if at.notes.len() == domain::execution::MAX_READINESS_NOTES {
            at.omitted += 1;
            continue;
        }
        at.notes.push(domain::execution::ReadinessNote {
            source_name: pr.source_name.clone(),
            source_server_id: pr.source_server_id.clone(),
            check_id: c.id.clone(),
            severity: c.severity,
            expected: c.expected.clone(),
            actual: c.actual.clone(),
        });
    }
}

/// The failed checks of a pair that keep it from launching: critical ones, and warnings unless
/// acknowledged. In a disaster failover the source side may be gone, and DRS launches from the last
/// recovery point, so replication checks do not block it (the recovery point is recorded instead).
fn blocking_checks(
    pr: &domain::readiness::PairReadiness,
    mode: Mode,
    kind: FailoverKind,
    acknowledged: bool,
) -> Vec<&domain::readiness::Check> {
    let disaster = mode == Mode::Recovery && kind == FailoverKind::Disaster;
    pr.checks
        .iter()
        .filter(|c| !c.passed)
        .filter(|c| !(disaster && c.id.starts_with("replication.")))
        .filter(|c| c.severity == Severity::Critical || !acknowledged)
        .collect()
}

/// The DRS source server a run launches from: for a failback, the one DRS created in the original region.
pub(crate) fn launch_id(r: &ServerRun) -> &SourceServerId {
    r.failback_source_id.as_ref().unwrap_or(&r.source_server_id)
}

/// The DRS source servers `servers` launch from.
fn launch_ids(rec: &ExecutionRecord, servers: &[SourceServerId]) -> Vec<SourceServerId> {
    runs(rec, servers).map(|r| launch_id(r).clone()).collect()
}

/// The server of `rec` that launches from DRS source server `id` (itself when none does).
fn from_launch_id(rec: &ExecutionRecord, id: &SourceServerId) -> SourceServerId {
    rec.state
        .waves
        .iter()
        .flat_map(|w| w.servers.iter())
        .find(|r| launch_id(r) == id)
        .map_or_else(|| id.clone(), |r| r.source_server_id.clone())
}

/// The runs of `servers` in `rec`.
pub(crate) fn runs<'a>(rec: &'a ExecutionRecord, servers: &'a [SourceServerId]) -> impl Iterator<Item = &'a ServerRun> {
    let wanted: HashSet<&SourceServerId> = servers.iter().collect();
    rec.state.waves.iter().flat_map(|w| w.servers.iter()).filter(move |r| wanted.contains(&r.source_server_id))
}

/// `items` by the key `key` gives each (the first of equal keys), for lookups in a loop over servers.
pub(crate) fn index_by<'a, T, K: Eq + std::hash::Hash + ?Sized>(
    items: &'a [T],
    key: impl Fn(&'a T) -> &'a K,
) -> HashMap<&'a K, &'a T> {
    let mut out = HashMap::with_capacity(items.len());
    for i in items {
        out.entry(key(i)).or_insert(i);
    }
    out
}
