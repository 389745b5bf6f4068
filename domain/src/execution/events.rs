//! What comes in (events) and what goes out (commands) of the state machine, and DRS's limits.

use super::state::Phase;
use crate::ids::SourceServerId;
use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A second person approved (the caller has checked the two-person rule).
    Approved {
        by: String,
        at: i64,
    },
    Rejected {
        by: String,
        at: i64,
    },
    /// An approver released the gate before the current wave.
    GateReleased {
        by: String,
        at: i64,
    },
    /// Servers claimed for a `StartRecovery` call (persisted before the call).
    BatchClaimed {
        servers: Vec<SourceServerId>,
        at: i64,
    },
    /// DRS accepted the job.
    JobStarted {
        job_id: String,
        servers: Vec<SourceServerId>,
        at: i64,
    },
    /// The claimed call never reached DRS (found no job on reconciliation, or a retryable refusal).
    StartAbandoned {
        servers: Vec<SourceServerId>,
    },
    /// DRS refused the start for good (e.g. the server is not replicating).
    StartFailed {
        servers: Vec<SourceServerId>,
        error: String,
        at: i64,
    },
    Launched {
        server: SourceServerId,
        at: i64,
    },
    LaunchFailed {
        server: SourceServerId,
        error: String,
        at: i64,
    },
    /// Identity verification passed: the standby's id, its private IP, running.
    Verified {
        server: SourceServerId,
        at: i64,
        /// The point in time of the data it launched from, when DRS says.
        #[serde(default)]
        recovery_point: Option<i64>,
    },
    /// Planned failover: `StopInstances` was asked for these servers' source instances.
    SourcesStopped {
        servers: Vec<SourceServerId>,
        at: i64,
    },
    /// Planned failover: the source instance is stopped and replication has shipped the last data.
    Drained {
        servers: Vec<SourceServerId>,
        at: i64,
    },
    /// Readiness evaluated again as the current wave starts: these servers are blocked, with the reason.
    ReadinessChecked {
        blocked: Vec<(SourceServerId, String)>,
        at: i64,
    },
    /// Failback: `ReverseReplication` is about to be called for these servers (persisted before the call).
    ReverseClaimed {
        servers: Vec<SourceServerId>,
        at: i64,
    },
    /// Failback: DRS reversed the replication; `failback_source` replicates the standby back.
    Reversed {
        server: SourceServerId,
        failback_source: SourceServerId,
        at: i64,
    },
    /// Failback: a claimed reversal never reached DRS (found none on reconciliation).
    ReverseAbandoned {
        servers: Vec<SourceServerId>,
    },
    /// Failback: the reversed replication's state and lag now, per server.
    ReplicationObserved {
        observations: Vec<(SourceServerId, String, u64)>,
    },
    /// Failback: the reversed replication is continuous with a small lag.
    Replicated {
        servers: Vec<SourceServerId>,
        at: i64,
    },
    /// Failback: the original is stopped and tagged, and the failback source launches into it.
    Configured {
        servers: Vec<SourceServerId>,
        at: i64,
    },
    /// Re-arm after a failback: the original's replication to the DR region was reversed again.
    Reprotected {
        servers: Vec<SourceServerId>,
        at: i64,
    },
    /// Re-arm after a failback: the forward replication is continuous again.
    Protected {
        servers: Vec<SourceServerId>,
        at: i64,
    },
    /// A person asks an ended failback to re-arm what is left (after a clean-up that gave up or was abandoned).
    ReArmRequested {
        by: String,
        at: i64,
    },
    /// Drill clean-up or failback re-arm: the standby is stopped and no longer a DRS recovery instance.
    CleanedUp {
        servers: Vec<SourceServerId>,
        at: i64,
    },
    VerificationFailed {
        server: SourceServerId,
        error: String,
        at: i64,
    },
    CancelRequested {
        by: String,
        at: i64,
    },
    /// Time passed (approval expiry, wave timeouts).
    Tick {
        at: i64,
    },
}

impl Event {
    /// A line for the execution's event log, or `None` for an event worth no line (time passing).
    pub fn summary(&self) -> Option<String> {
        let list = |v: &[SourceServerId]| match v {
            [one] => one.to_string(),
            many => format!("{} servers", many.len()),
        };
        Some(match self {
            Event::Approved { by, .. } => format!("approved by {by}"),
            Event::Rejected { by, .. } => format!("rejected by {by}"),
            Event::GateReleased { by, .. } => format!("gate released by {by}"),
            Event::BatchClaimed { servers, .. } => format!("starting a recovery job for {}", list(servers)),
            Event::JobStarted { job_id, servers, .. } => format!("DRS job {job_id} started for {}", list(servers)),
            Event::StartAbandoned { servers } => format!("start of {} did not reach DRS; will retry", list(servers)),
            Event::StartFailed { servers, error, .. } => format!("{} could not start: {error}", list(servers)),
            Event::Launched { server, .. } => format!("{server} launched"),
            Event::LaunchFailed { server, error, .. } => format!("{server} failed to launch: {error}"),
            Event::Verified { server, .. } => format!("{server} verified: its standby, its IP, running"),
            Event::VerificationFailed { server, error, .. } => format!("{server} failed verification: {error}"),
            Event::SourcesStopped { servers, .. } => format!("stopping the source instance of {}", list(servers)),
            Event::Drained { servers, .. } => format!("{}: the last data is replicated", list(servers)),
            Event::CleanedUp { servers, .. } => format!("{}: standby stopped and released by DRS", list(servers)),
            Event::ReadinessChecked { blocked, .. } if blocked.is_empty() => {
                "readiness checked again: the wave may start".into()
            }
            Event::ReadinessChecked { blocked, .. } => {
                let ids: Vec<SourceServerId> = blocked.iter().map(|(id, _)| id.clone()).collect();
                format!("readiness checked again: {} blocked", list(&ids))
            }
            Event::ReverseClaimed { servers, .. } => format!("reversing the replication of {}", list(servers)),
            Event::Reversed { server, failback_source, .. } => {
                format!("{server}: replication reversed; {failback_source} replicates it back")
            }
            Event::ReverseAbandoned { servers } => {
                format!("reversal of {} did not reach DRS; will retry", list(servers))
            }
            Event::Replicated { servers, .. } => format!("{}: reversed replication is continuous", list(servers)),
            Event::Configured { servers, .. } => {
                format!("{}: original stopped and tagged, failback launch configured", list(servers))
            }
            Event::Reprotected { servers, .. } => {
                format!("{}: re-protected, replicating to the DR region", list(servers))
            }
            Event::Protected { servers, .. } => format!("{}: protected again (replication continuous)", list(servers)),
            Event::ReArmRequested { by, .. } => format!("re-arm requested by {by}"),
            Event::CancelRequested { by, .. } => format!("cancel requested by {by}"),
            Event::Tick { .. } | Event::ReplicationObserved { .. } => return None,
        })
    }

    /// Whether the line reports a failure.
    pub fn is_failure(&self) -> bool {
        matches!(self, Event::StartFailed { .. } | Event::LaunchFailed { .. } | Event::VerificationFailed { .. })
            || matches!(self, Event::ReadinessChecked { blocked, .. } if !blocked.is_empty())
    }
}

/// What the state calls for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    StartJob {
        servers: Vec<SourceServerId>,
        is_drill: bool,
    },
    /// Find out whether a claimed start reached DRS.
    Reconcile {
        servers: Vec<SourceServerId>,
    },
    PollJobs {
        job_ids: Vec<String>,
    },
    Verify {
        servers: Vec<SourceServerId>,
    },
    /// Evaluate readiness again for the current wave's servers before anything of it launches.
    CheckReadiness {
        servers: Vec<SourceServerId>,
    },
    /// Failback: reverse the replication of these servers' recovery instances (claim first).
    Reverse {
        servers: Vec<SourceServerId>,
    },
    /// Failback: find out whether a claimed reversal reached DRS.
    ReconcileReverse {
        servers: Vec<SourceServerId>,
    },
    /// Failback: wait until the reversed replication is continuous.
    AwaitReplication {
        servers: Vec<SourceServerId>,
    },
    /// Failback: stop and tag the originals and point the failback source servers at them.
    ConfigureFailback {
        servers: Vec<SourceServerId>,
    },
    /// Planned failover: stop these servers' source instances (idempotent).
    StopSources {
        servers: Vec<SourceServerId>,
    },
    /// Planned failover: check whether replication has shipped the last data.
    AwaitDrain {
        servers: Vec<SourceServerId>,
    },
    /// Drill: stop these standbys again and remove them from DRS's recovery instances (never
    /// `TerminateRecoveryInstances`, which would terminate the standby itself).
    CleanUp {
        servers: Vec<SourceServerId>,
    },
    /// Failback: re-protect the originals (replication to the DR region again), return the DR standbys to
    /// standby and re-apply their launch-into configuration.
    ReArm {
        servers: Vec<SourceServerId>,
    },
}

/// DRS's limits, as configured or read from the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_servers_per_job: usize,
    pub max_concurrent_jobs: usize,
    pub max_servers_in_active_jobs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_servers_per_job: 100, max_concurrent_jobs: 20, max_servers_in_active_jobs: 500 }
    }
}

/// An event that does not fit the state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event} is not possible while the execution is {phase:?}: {why}")]
pub struct InvalidTransition {
    pub phase: Phase,
    pub event: &'static str,
    pub why: String,
}
