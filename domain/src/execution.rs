//! The execution of a recovery plan as a pure state machine: events in, new state out; the commands the
//! state calls for are derived from it (`code-style.md` §7). No I/O, no clock: times come in with events.
//!
//! How a runner uses it, so that a crash at any point never starts a DRS job twice:
//! 1. `decide(&state, &limits)` lists commands. For `StartJob`, the runner first applies
//!    [`Event::BatchClaimed`] (servers `Waiting` → `Starting`) and persists the state with a conditional
//!    write, *then* calls `StartRecovery`, then applies [`Event::JobStarted`] with the job id and persists
//!    again.
//! 2. After a crash, servers left `Starting` without a job id come back as a `Reconcile` command: the
//!    runner looks for a job holding them (`DescribeJobs`) and applies `JobStarted` if one exists, or
//!    [`Event::StartAbandoned`] (back to `Waiting`) if none does.
//! 3. `PollJobs` and `Verify` are idempotent reads.
//!
//! Terminal phases absorb late events; an event that makes no sense in the current state is an
//! [`InvalidTransition`].

use crate::estate::AccountRegion;
use crate::ids::{InstanceId, SourceServerId};
use crate::plan::OnFailure;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// How long a drill's clean-up may take before it ends with what is left.
pub const CLEANUP_TIMEOUT_MS: i64 = 30 * 60_000;
/// How long a failback's re-arm may take (re-protecting copies whole volumes again).
pub const REARM_TIMEOUT_MS: i64 = 24 * 60 * 60_000;

/// Drill or real recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `isDrill=true`; runs without approval.
    Drill,
    /// A real failover; runs only once a second person approves.
    Recovery,
    /// Back from a recovery into the original instances (reverse replication, then launch into them);
    /// runs only once a second person approves.
    Failback,
}

/// How a recovery treats the source side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverKind {
    /// The primary region is healthy: stop each wave's source instances, wait until replication has shipped
    /// the last data (lag and backlog zero), then launch. No data loss.
    Planned,
    /// The primary may be unreachable: never touch the source side; record the recovery point each server
    /// launched from. Drills are always of this kind.
    #[default]
    Disaster,
}

/// Where an execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    AwaitingApproval,
    Running,
    /// Waiting for an approver to release the next wave.
    AwaitingGate,
    Succeeded,
    /// Ended with at least one server not verified.
    Failed,
    Cancelled,
    Rejected,
    /// Nobody approved in time.
    Expired,
    /// A drill has run its waves and is returning its standbys to standby (stopped, no longer a DRS
    /// recovery instance) before it ends with its outcome.
    CleaningUp,
}

impl Phase {
    /// Whether the execution has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Cancelled | Phase::Rejected | Phase::Expired)
    }

    /// The wire name, e.g. `awaiting_approval`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::AwaitingApproval => "awaiting_approval",
            Phase::Running => "running",
            Phase::AwaitingGate => "awaiting_gate",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Cancelled => "cancelled",
            Phase::Rejected => "rejected",
            Phase::Expired => "expired",
            Phase::CleaningUp => "cleaning_up",
        }
    }
}

/// A phase in words.
pub fn phase_word(p: Phase) -> &'static str {
    match p {
        Phase::AwaitingApproval => "awaiting approval",
        Phase::Running => "running",
        Phase::AwaitingGate => "awaiting a gate",
        Phase::Succeeded => "succeeded",
        Phase::Failed => "failed",
        Phase::Cancelled => "cancelled",
        Phase::Rejected => "rejected",
        Phase::Expired => "expired",
        Phase::CleaningUp => "cleaning up",
    }
}

/// Where one server stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    Waiting,
    /// Claimed for a `StartRecovery` call that may or may not have reached DRS.
    Starting,
    /// In a DRS job.
    Launching,
    /// DRS says `LAUNCHED`; identity not yet verified.
    Launched,
    Verified,
    Failed,
}

/// Where one wave stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaveState {
    Pending,
    Running,
    Succeeded,
    /// At least one server failed (or the wave timed out).
    Failed,
    /// Not run: an earlier wave stopped the execution, or it was cancelled.
    Skipped,
}

/// One server of an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRun {
    /// The source server's name (its Name tag, as the pair recorded it).
    #[serde(default)]
    pub name: String,
    pub source_server_id: SourceServerId,
    /// The standby it must come up as.
    pub standby_instance_id: InstanceId,
    /// The private IP it must come up with.
    pub expected_ip: Ipv4Addr,
    pub state: ServerState,
    pub job_id: Option<String>,
    pub started_at: Option<i64>,
    pub launched_at: Option<i64>,
    pub verified_at: Option<i64>,
    pub error: Option<String>,
    /// The source instance and where it runs (a planned failover stops it first).
    #[serde(default)]
    pub source_instance_id: Option<InstanceId>,
    #[serde(default)]
    pub origin: Option<AccountRegion>,
    /// Planned failover: when `StopInstances` was asked for the source instance.
    #[serde(default)]
    pub source_stopped_at: Option<i64>,
    /// Planned failover: when replication had shipped the last data (lag and backlog zero).
    #[serde(default)]
    pub drained_at: Option<i64>,
    /// The point in time of the data it launched from (DRS's `pointInTimeSnapshotDateTime`).
    #[serde(default)]
    pub recovery_point: Option<i64>,
    /// Drill: when its standby was stopped again and removed from DRS's recovery instances.
    #[serde(default)]
    pub cleaned_at: Option<i64>,
    /// Failback: the DR standby it runs on now (the recovery instance whose replication is reversed).
    #[serde(default)]
    pub dr_standby_id: Option<InstanceId>,
    /// Failback: when `ReverseReplication` was claimed (persisted before the call).
    #[serde(default)]
    pub reverse_claimed_at: Option<i64>,
    /// Failback: the source server DRS created in the original region, which the failback launches from.
    #[serde(default)]
    pub failback_source_id: Option<SourceServerId>,
    /// Failback: when its reversed replication was continuous with a small lag.
    #[serde(default)]
    pub replicated_at: Option<i64>,
    /// Failback: when the original was stopped and tagged and the launch into it configured.
    #[serde(default)]
    pub configured_at: Option<i64>,
    /// Failback: the reversed replication's state and lag as last seen (e.g. `INITIAL_SYNC`, 0).
    #[serde(default)]
    pub failback_replication: Option<(String, u64)>,
    /// Re-arm: when the original's replication to the DR region was reversed again.
    #[serde(default)]
    pub reprotected_at: Option<i64>,
    /// Re-arm: when that replication was continuous.
    #[serde(default)]
    pub protected_at: Option<i64>,
}

impl ServerRun {
    /// A server about to run, in state `Waiting`.
    pub fn waiting(source_server_id: SourceServerId, standby_instance_id: InstanceId, expected_ip: Ipv4Addr) -> Self {
        Self {
            name: String::new(),
            source_server_id,
            standby_instance_id,
            expected_ip,
            state: ServerState::Waiting,
            job_id: None,
            started_at: None,
            launched_at: None,
            verified_at: None,
            error: None,
            source_instance_id: None,
            origin: None,
            source_stopped_at: None,
            drained_at: None,
            recovery_point: None,
            cleaned_at: None,
            dr_standby_id: None,
            reverse_claimed_at: None,
            failback_source_id: None,
            replicated_at: None,
            configured_at: None,
            failback_replication: None,
            reprotected_at: None,
            protected_at: None,
        }
    }
}

/// A wave's servers, shared between copies of the state until one of them changes them (the runner keeps the
/// state as last written beside the one it changes), with their JSON text as last encoded: a step that
/// changes one wave encodes that wave alone, and copying or encoding every wave's servers on every step was
/// most of the runner's work.
#[derive(Clone, Default)]
pub struct Servers(Arc<Encoded>);

#[derive(Default)]
struct Encoded {
    list: Vec<ServerRun>,
    /// Set by the first encoding (JSON only); a copy to change starts without it.
    json: std::sync::OnceLock<Box<serde_json::value::RawValue>>,
}

impl Clone for Encoded {
    fn clone(&self) -> Self {
        Self { list: self.list.clone(), json: std::sync::OnceLock::new() }
    }
}

impl Servers {
    /// The list to change: a copy of its own when another state shares it, and no longer encoded.
    pub fn make_mut(&mut self) -> &mut Vec<ServerRun> {
        let e = Arc::make_mut(&mut self.0);
        e.json = std::sync::OnceLock::new();
        &mut e.list
    }
}

impl std::ops::Deref for Servers {
    type Target = Vec<ServerRun>;

    fn deref(&self) -> &Vec<ServerRun> {
        &self.0.list
    }
}

impl From<Vec<ServerRun>> for Servers {
    fn from(list: Vec<ServerRun>) -> Self {
        Self(Arc::new(Encoded { list, json: std::sync::OnceLock::new() }))
    }
}

impl FromIterator<ServerRun> for Servers {
    fn from_iter<I: IntoIterator<Item = ServerRun>>(iter: I) -> Self {
        Self::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl PartialEq for Servers {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.list == other.0.list
    }
}

impl Eq for Servers {}

impl std::fmt::Debug for Servers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.list.fmt(f)
    }
}

/// Serialized as the list. Every state is written as JSON (store, API, console), so the list's text is kept
/// and written raw the next time; the text is JSON a `serde_json` serializer reads back as the list.
impl Serialize for Servers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Some(raw) = self.0.json.get() {
            return raw.serialize(s);
        }
        match serde_json::value::to_raw_value(&self.0.list) {
            Ok(raw) => self.0.json.get_or_init(|| raw).serialize(s),
            Err(_) => self.0.list.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Servers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::deserialize(d).map(Self::from)
    }
}

/// One wave of an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveRun {
    pub name: String,
    pub pause_before: bool,
    pub on_failure: OnFailure,
    pub timeout_ms: i64,
    pub state: WaveState,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub servers: Servers,
    /// When readiness was evaluated again as the wave started (nothing launches before).
    #[serde(default)]
    pub readiness_checked_at: Option<i64>,
}

/// The whole state of an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionState {
    pub mode: Mode,
    #[serde(default)]
    pub kind: FailoverKind,
    pub phase: Phase,
    /// While a drill cleans up: the phase it ends in once done.
    #[serde(default)]
    pub outcome: Option<Phase>,
    /// When the drill's clean-up began.
    #[serde(default)]
    pub cleanup_started_at: Option<i64>,
    pub requested_by: String,
    pub requested_at: i64,
    /// A recovery not approved by then expires.
    pub approval_deadline: Option<i64>,
    pub approved_by: Option<String>,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// The wave running or next to run.
    pub current_wave: usize,
    pub cancel_requested: bool,
    pub waves: Vec<WaveRun>,
    /// How many times a person asked an ended failback to re-arm again.
    #[serde(default)]
    pub re_arms: u32,
}

/// No DRS launch ends sooner than this after its job starts (a snapshot, a conversion and a boot take
/// minutes; the simulated estate's fastest is 2 min 5 s): by default the runner does not poll a job younger
/// than this (`min_launch_ms`).
pub const MIN_LAUNCH_MS: i64 = 60_000;

/// No reversed replication is continuous sooner than this after `ReverseReplication` (the agent installs on
/// the instance, then every disk is copied once; the simulated estate's fastest is 6 min): by default the
/// runner does not ask DRS about it before (`min_reverse_sync_ms`).
pub const MIN_REVERSE_SYNC_MS: i64 = 5 * 60_000;

/// Why identity verification fails when DRS names no recovery instance at all (a failed server, not
/// another identity).
pub const NO_RECOVERY_INSTANCE: &str = "DRS lists no recovery instance for it";

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

impl ExecutionState {
    /// A new execution of `waves`: a drill runs at once, a recovery waits for approval until `deadline`.
    pub fn new(
        mode: Mode,
        kind: FailoverKind,
        waves: Vec<WaveRun>,
        requested_by: &str,
        at: i64,
        approval_ttl_ms: i64,
    ) -> Self {
        let (phase, deadline) = match mode {
            Mode::Drill => (Phase::Running, None),
            Mode::Recovery | Mode::Failback => (Phase::AwaitingApproval, Some(at + approval_ttl_ms)),
        };
        let mut s = Self {
            mode,
            kind: if mode == Mode::Recovery { kind } else { FailoverKind::Disaster },
            phase,
            outcome: None,
            cleanup_started_at: None,
            requested_by: requested_by.to_owned(),
            requested_at: at,
            approval_deadline: deadline,
            approved_by: None,
            started_at: None,
            ended_at: None,
            current_wave: 0,
            cancel_requested: false,
            waves,
            re_arms: 0,
        };
        if phase == Phase::Running {
            s.started_at = Some(at);
            s.enter_wave(at, false);
        }
        s
    }

    fn server_mut(&mut self, id: &SourceServerId) -> Option<&mut ServerRun> {
        self.waves.get_mut(self.current_wave)?.servers.make_mut().iter_mut().find(|s| &s.source_server_id == id)
    }

    /// Starts the current wave, or stops at its gate unless an approver `released` it.
    fn enter_wave(&mut self, at: i64, released: bool) {
        match self.waves.get_mut(self.current_wave) {
            None => self.finish(at),
            Some(w) if w.pause_before && !released && w.state == WaveState::Pending => {
                self.phase = Phase::AwaitingGate;
            }
            Some(w) => {
                self.phase = Phase::Running;
                w.state = WaveState::Running;
                w.started_at = Some(at);
            }
        }
    }

    fn finish(&mut self, at: i64) {
        let all_verified = self.waves.iter().all(|w| w.servers.iter().all(|s| s.state == ServerState::Verified));
        let outcome = if self.cancel_requested {
            Phase::Cancelled
        } else if all_verified {
            Phase::Succeeded
        } else {
            Phase::Failed
        };
        for w in &mut self.waves {
            if w.state == WaveState::Pending {
                w.state = WaveState::Skipped;
            }
        }
        if matches!(self.mode, Mode::Drill | Mode::Failback) && !self.to_clean_up().is_empty() {
            self.phase = Phase::CleaningUp;
            self.outcome = Some(outcome);
            self.cleanup_started_at = Some(at);
        } else {
            self.phase = outcome;
            self.ended_at = Some(at);
        }
    }

    /// Servers not yet back to standby: a drill's that may have reached DRS (claimed for a job); a
    /// failback's that came home (their DR standby is to be re-armed).
    fn to_clean_up(&self) -> Vec<SourceServerId> {
        let failback = self.mode == Mode::Failback;
        self.waves
            .iter()
            .flat_map(|w| w.servers.iter())
            .filter(|r| if failback { r.state == ServerState::Verified } else { r.started_at.is_some() })
            .filter(|r| r.cleaned_at.is_none())
            .map(|r| r.source_server_id.clone())
            .collect()
    }

    /// How long the clean-up (drill) or re-arm (failback) may take before it ends with what is left.
    fn cleanup_timeout_ms(&self) -> i64 {
        if self.mode == Mode::Failback { REARM_TIMEOUT_MS } else { CLEANUP_TIMEOUT_MS }
    }

    /// Whether a waiting server may be put in a job: at once, except in a planned failover, where its
    /// source must be stopped and drained first.
    fn may_launch(&self, r: &ServerRun) -> bool {
        match self.mode {
            Mode::Failback => r.configured_at.is_some(),
            _ => self.kind != FailoverKind::Planned || r.drained_at.is_some(),
        }
    }

    /// Closes the current wave once no server is in flight, and moves on (or stops).
    fn settle_wave(&mut self, at: i64) {
        let Some(w) = self.waves.get_mut(self.current_wave) else { return };
        if w.state != WaveState::Running {
            return;
        }
        let in_flight = w
            .servers
            .iter()
            .any(|s| matches!(s.state, ServerState::Starting | ServerState::Launching | ServerState::Launched));
        let waiting = w.servers.iter().any(|s| s.state == ServerState::Waiting);
        // A planned failover's server whose source is already stopped is committed: it launches even after
        // a cancel, or its application would be down on both sides.
        let committed = w.servers.iter().any(|s| s.state == ServerState::Waiting && s.source_stopped_at.is_some());
        if in_flight || committed || (waiting && !self.cancel_requested) {
            return;
        }
        let failed = w.servers.iter().any(|s| s.state != ServerState::Verified);
        w.state = if failed { WaveState::Failed } else { WaveState::Succeeded };
        w.ended_at = Some(at);
        let stop = self.cancel_requested || (failed && w.on_failure == OnFailure::Stop);
        if stop {
            self.finish(at);
        } else {
            self.current_wave += 1;
            self.enter_wave(at, false);
        }
    }
}

fn invalid(state: &ExecutionState, event: &'static str, why: impl Into<String>) -> InvalidTransition {
    InvalidTransition { phase: state.phase, event, why: why.into() }
}

/// Applies one event.
///
/// # Errors
/// [`InvalidTransition`] when the event does not fit the state (a terminal state absorbs every event).
pub fn on_event(mut s: ExecutionState, ev: Event) -> Result<ExecutionState, InvalidTransition> {
    if let Event::ReArmRequested { at, .. } = ev {
        if s.mode != Mode::Failback || !s.phase.is_terminal() || s.to_clean_up().is_empty() {
            return Err(invalid(&s, "re_arm_requested", "only an ended failback with servers left to re-arm re-arms"));
        }
        s.outcome = Some(s.phase);
        s.phase = Phase::CleaningUp;
        s.cleanup_started_at = Some(at);
        s.ended_at = None;
        s.re_arms += 1;
        return Ok(s);
    }
    if s.phase.is_terminal() {
        return Ok(s);
    }
    if s.phase == Phase::CleaningUp {
        // Late job events change nothing. Clean-up ends when every standby is back, or when a person
        // cancels it, or after CLEANUP_TIMEOUT_MS (e.g. a permission is missing): what is left stays as
        // it is, and the next execution refuses to start while DRS still lists a standby.
        let end = match ev {
            Event::CleanedUp { servers, at } => {
                for r in s.waves.iter_mut().flat_map(|w| w.servers.make_mut().iter_mut()) {
                    if servers.contains(&r.source_server_id) && r.cleaned_at.is_none() {
                        r.cleaned_at = Some(at);
                    }
                }
                s.to_clean_up().is_empty().then_some(at)
            }
            Event::Reprotected { servers, at } => {
                for r in s
                    .waves
                    .iter_mut()
                    .flat_map(|w| w.servers.make_mut().iter_mut())
                    .filter(|r| servers.contains(&r.source_server_id))
                {
                    r.reprotected_at.get_or_insert(at);
                }
                None
            }
            Event::Protected { servers, at } => {
                for r in s
                    .waves
                    .iter_mut()
                    .flat_map(|w| w.servers.make_mut().iter_mut())
                    .filter(|r| servers.contains(&r.source_server_id))
                {
                    r.protected_at.get_or_insert(at);
                }
                None
            }
            Event::CancelRequested { at, .. } => Some(at),
            Event::Tick { at } if s.cleanup_started_at.is_some_and(|t| at >= t + s.cleanup_timeout_ms()) => Some(at),
            _ => None,
        };
        if let Some(at) = end {
            s.phase = s.outcome.take().unwrap_or(Phase::Failed);
            s.ended_at = Some(at);
        }
        return Ok(s);
    }
    match ev {
        Event::Approved { by, at } => {
            if s.phase != Phase::AwaitingApproval {
                return Err(invalid(&s, "approved", "nothing awaits approval"));
            }
            s.approved_by = Some(by);
            s.started_at = Some(at);
            s.phase = Phase::Running;
            s.enter_wave(at, false);
        }
        Event::Rejected { at, .. } => {
            if s.phase != Phase::AwaitingApproval {
                return Err(invalid(&s, "rejected", "nothing awaits approval"));
            }
            s.phase = Phase::Rejected;
            s.ended_at = Some(at);
        }
        Event::GateReleased { at, .. } => {
            if s.phase != Phase::AwaitingGate {
                return Err(invalid(&s, "gate_released", "no wave waits at a gate"));
            }
            s.enter_wave(at, true);
        }
        Event::BatchClaimed { servers, at } => {
            let committed = |id: &SourceServerId| {
                s.waves.get(s.current_wave).is_some_and(|w| {
                    w.servers.iter().any(|r| &r.source_server_id == id && r.source_stopped_at.is_some())
                })
            };
            if s.phase != Phase::Running || (s.cancel_requested && !servers.iter().all(committed)) {
                return Err(invalid(&s, "batch_claimed", "no wave is starting servers"));
            }
            for id in &servers {
                let state = s.waves[s.current_wave].servers.iter().find(|r| &r.source_server_id == id).map(|r| r.state);
                match state {
                    None => return Err(invalid(&s, "batch_claimed", format!("{id} is not in the current wave"))),
                    Some(ServerState::Waiting) => {}
                    Some(other) => return Err(invalid(&s, "batch_claimed", format!("{id} is {other:?}, not waiting"))),
                }
            }
            for id in &servers {
                if let Some(r) = s.server_mut(id) {
                    r.state = ServerState::Starting;
                    r.started_at = Some(at);
                }
            }
        }
        Event::JobStarted { job_id, servers, .. } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.state == ServerState::Starting
                {
                    r.state = ServerState::Launching;
                    r.job_id = Some(job_id.clone());
                }
            }
        }
        Event::StartAbandoned { servers } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.state == ServerState::Starting
                {
                    r.state = ServerState::Waiting;
                    r.started_at = None;
                }
            }
            let at = s.started_at.unwrap_or(s.requested_at);
            s.settle_wave(at);
        }
        Event::StartFailed { servers, error, at } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && matches!(r.state, ServerState::Starting | ServerState::Waiting)
                {
                    r.state = ServerState::Failed;
                    r.error = Some(error.clone());
                }
            }
            s.settle_wave(at);
        }
        Event::Launched { server, at } => {
            if let Some(r) = s.server_mut(&server)
                && r.state == ServerState::Launching
            {
                r.state = ServerState::Launched;
                r.launched_at = Some(at);
            }
        }
        Event::LaunchFailed { server, error, at } => {
            if let Some(r) = s.server_mut(&server)
                && matches!(r.state, ServerState::Launching | ServerState::Starting)
            {
                r.state = ServerState::Failed;
                r.error = Some(error);
            }
            s.settle_wave(at);
        }
        Event::Verified { server, at, recovery_point } => {
            if let Some(r) = s.server_mut(&server)
                && r.state == ServerState::Launched
            {
                r.state = ServerState::Verified;
                r.verified_at = Some(at);
                r.recovery_point = recovery_point;
            }
            s.settle_wave(at);
        }
        Event::SourcesStopped { servers, at } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.state == ServerState::Waiting
                    && r.source_stopped_at.is_none()
                {
                    r.source_stopped_at = Some(at);
                }
            }
        }
        Event::Drained { servers, at } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.state == ServerState::Waiting
                    && r.source_stopped_at.is_some()
                {
                    r.drained_at = Some(at);
                }
            }
        }
        Event::ReadinessChecked { blocked, at } => {
            let Some(w) = s.waves.get_mut(s.current_wave) else { return Ok(s) };
            w.readiness_checked_at = Some(at);
            for r in w.servers.make_mut() {
                if let Some((_, why)) = blocked.iter().find(|(id, _)| id == &r.source_server_id)
                    && r.state == ServerState::Waiting
                {
                    r.state = ServerState::Failed;
                    r.error = Some(format!("not ready when its wave started: {why}"));
                }
            }
            s.settle_wave(at);
        }
        Event::ReverseClaimed { servers, at } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.state == ServerState::Waiting
                    && r.reverse_claimed_at.is_none()
                {
                    r.reverse_claimed_at = Some(at);
                    r.started_at = Some(at);
                }
            }
        }
        Event::Reversed { server, failback_source, .. } => {
            if let Some(r) = s.server_mut(&server)
                && r.state == ServerState::Waiting
            {
                r.failback_source_id = Some(failback_source);
            }
        }
        Event::ReverseAbandoned { servers } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.failback_source_id.is_none()
                {
                    r.reverse_claimed_at = None;
                    r.started_at = None;
                }
            }
        }
        Event::ReplicationObserved { observations } => {
            for (id, state, lag) in observations {
                if let Some(r) = s.server_mut(&id) {
                    r.failback_replication = Some((state, lag));
                }
            }
        }
        Event::Replicated { servers, at } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.failback_source_id.is_some()
                {
                    r.replicated_at = Some(at);
                }
            }
        }
        Event::Configured { servers, at } => {
            for id in &servers {
                if let Some(r) = s.server_mut(id)
                    && r.replicated_at.is_some()
                {
                    r.configured_at = Some(at);
                }
            }
        }
        Event::CleanedUp { .. } => return Err(invalid(&s, "cleaned_up", "only a drill that has ended cleans up")),
        Event::Reprotected { .. } | Event::Protected { .. } => {
            return Err(invalid(&s, "reprotected", "only a failback that has come home re-arms"));
        }
        Event::ReArmRequested { .. } => return Err(invalid(&s, "re_arm_requested", "the failback is still running")),
        Event::VerificationFailed { server, error, at } => {
            if let Some(r) = s.server_mut(&server)
                && r.state == ServerState::Launched
            {
                r.state = ServerState::Failed;
                r.error = Some(error);
            }
            s.settle_wave(at);
        }
        Event::CancelRequested { at, .. } => {
            s.cancel_requested = true;
            match s.phase {
                Phase::AwaitingApproval | Phase::AwaitingGate => s.finish(at),
                _ => s.settle_wave(at),
            }
        }
        Event::Tick { at } => {
            if s.phase == Phase::AwaitingApproval && s.approval_deadline.is_some_and(|d| at >= d) {
                s.phase = Phase::Expired;
                s.ended_at = Some(at);
                return Ok(s);
            }
            let i = s.current_wave;
            if s.phase == Phase::Running
                && let Some(w) = s.waves.get_mut(i)
                && w.state == WaveState::Running
                && w.started_at.is_some_and(|t| at >= t + w.timeout_ms)
            {
                let minutes = w.timeout_ms / 60_000;
                for r in w.servers.make_mut() {
                    // A claim without a job id may be a running job: reconciliation decides, not the clock.
                    let unreconciled = r.state == ServerState::Starting && r.job_id.is_none();
                    if !matches!(r.state, ServerState::Verified | ServerState::Failed) && !unreconciled {
                        r.state = ServerState::Failed;
                        r.error = Some(format!("the wave timed out after {minutes} minutes"));
                    }
                }
                s.settle_wave(at);
            }
        }
    }
    Ok(s)
}

/// The commands the state calls for now, within `limits`: claimed starts to reconcile, jobs to poll,
/// launched servers to verify, and new batches while job slots are free (none once cancel is requested).
pub fn decide(s: &ExecutionState, limits: &Limits) -> Vec<Command> {
    if s.phase == Phase::CleaningUp {
        let servers = s.to_clean_up();
        return match (servers.is_empty(), s.mode) {
            (true, _) => Vec::new(),
            (false, Mode::Failback) => vec![Command::ReArm { servers }],
            (false, _) => vec![Command::CleanUp { servers }],
        };
    }
    if s.phase != Phase::Running {
        return Vec::new();
    }
    let Some(w) = s.waves.get(s.current_wave) else { return Vec::new() };
    let mut out = Vec::new();
    let in_state = |st: ServerState| -> Vec<SourceServerId> {
        w.servers.iter().filter(|r| r.state == st).map(|r| r.source_server_id.clone()).collect()
    };
    let orphans: Vec<SourceServerId> = w
        .servers
        .iter()
        .filter(|r| r.state == ServerState::Starting && r.job_id.is_none())
        .map(|r| r.source_server_id.clone())
        .collect();
    if !orphans.is_empty() {
        out.push(Command::Reconcile { servers: orphans });
    }
    let mut jobs: Vec<String> =
        w.servers.iter().filter(|r| r.state == ServerState::Launching).filter_map(|r| r.job_id.clone()).collect();
    jobs.sort();
    jobs.dedup();
    if !jobs.is_empty() {
        out.push(Command::PollJobs { job_ids: jobs.clone() });
    }
    let launched = in_state(ServerState::Launched);
    if !launched.is_empty() {
        out.push(Command::Verify { servers: launched });
    }
    // After a cancel only committed servers (a planned failover's stopped sources) go on.
    let committed = |r: &ServerRun| !s.cancel_requested || r.source_stopped_at.is_some();
    if s.cancel_requested && !w.servers.iter().any(|r| r.state == ServerState::Waiting && committed(r)) {
        return out;
    }
    if s.mode == Mode::Failback {
        // Prerequisites were checked when the failback was requested; each server goes reverse →
        // replicate → configure before it may launch.
        let pick = |f: &dyn Fn(&ServerRun) -> bool| -> Vec<SourceServerId> {
            w.servers
                .iter()
                .filter(|r| r.state == ServerState::Waiting && committed(r) && f(r))
                .map(|r| r.source_server_id.clone())
                .collect()
        };
        let steps = [
            (Command::Reverse { servers: pick(&|r| r.reverse_claimed_at.is_none()) }),
            (Command::ReconcileReverse {
                servers: pick(&|r| r.reverse_claimed_at.is_some() && r.failback_source_id.is_none()),
            }),
            (Command::AwaitReplication {
                servers: pick(&|r| r.failback_source_id.is_some() && r.replicated_at.is_none()),
            }),
            (Command::ConfigureFailback { servers: pick(&|r| r.replicated_at.is_some() && r.configured_at.is_none()) }),
        ];
        out.extend(steps.into_iter().filter(|c| match c {
            Command::Reverse { servers }
            | Command::ReconcileReverse { servers }
            | Command::AwaitReplication { servers }
            | Command::ConfigureFailback { servers } => !servers.is_empty(),
            _ => false,
        }));
    } else if w.readiness_checked_at.is_none() {
        out.push(Command::CheckReadiness { servers: in_state(ServerState::Waiting) });
        return out;
    }
    let active = w.servers.iter().filter(|r| matches!(r.state, ServerState::Starting | ServerState::Launching)).count();
    // Claims not yet known as a job may be one: count them as one job in flight.
    let unknown_job = w.servers.iter().any(|r| r.state == ServerState::Starting && r.job_id.is_none());
    let mut free_jobs = limits.max_concurrent_jobs.saturating_sub(jobs.len() + usize::from(unknown_job));
    let mut free_servers = limits.max_servers_in_active_jobs.saturating_sub(active);
    if s.kind == FailoverKind::Planned {
        let waiting = || w.servers.iter().filter(|r| r.state == ServerState::Waiting);
        let to_stop: Vec<SourceServerId> = waiting()
            .filter(|r| r.source_stopped_at.is_none() && !s.cancel_requested)
            .map(|r| r.source_server_id.clone())
            .collect();
        if !to_stop.is_empty() {
            out.push(Command::StopSources { servers: to_stop });
        }
        let draining: Vec<SourceServerId> = waiting()
            .filter(|r| r.source_stopped_at.is_some() && r.drained_at.is_none())
            .map(|r| r.source_server_id.clone())
            .collect();
        if !draining.is_empty() {
            out.push(Command::AwaitDrain { servers: draining });
        }
    }
    let waiting: Vec<SourceServerId> = w
        .servers
        .iter()
        .filter(|r| r.state == ServerState::Waiting && s.may_launch(r) && committed(r))
        .map(|r| r.source_server_id.clone())
        .collect();
    for chunk in waiting.chunks(limits.max_servers_per_job.max(1)) {
        if free_jobs == 0 || free_servers == 0 {
            break;
        }
        let take = chunk.len().min(free_servers);
        out.push(Command::StartJob { servers: chunk[..take].to_vec(), is_drill: s.mode == Mode::Drill });
        free_jobs -= 1;
        free_servers -= take;
    }
    out
}

/// One wave's progress, for the dashboard and the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveStatus {
    pub name: String,
    pub state: WaveState,
    pub servers: usize,
    pub verified: usize,
    pub failed: usize,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// From the execution's start to the wave's last verification.
    pub rto_ms: Option<i64>,
}

/// An execution's progress: phase, percent done, elapsed time and RTO against its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionStatus {
    pub phase: Phase,
    pub mode: Mode,
    /// Servers verified or failed, of all servers, in percent.
    pub progress_percent: u8,
    pub elapsed_ms: Option<i64>,
    /// An estimate while it runs: the mean time of the finished waves for every wave still to run, less what
    /// the running wave has spent. `None` ("estimating…") until a wave has finished: the first servers of a
    /// wave finish together, so a rate per server misleads.
    pub remaining_ms: Option<i64>,
    /// From the start to the last server's verification (measured RTO), once every server is verified.
    pub rto_ms: Option<i64>,
    pub rto_target_ms: i64,
    pub waves: Vec<WaveStatus>,
}

/// Time left of `s` at `now`; see [`ExecutionStatus::remaining_ms`].
fn remaining(s: &ExecutionState, now: i64) -> Option<i64> {
    if s.phase == Phase::CleaningUp || s.started_at.is_none() {
        return None;
    }
    if s.phase.is_terminal() {
        return Some(0);
    }
    let finished: Vec<i64> = s
        .waves
        .iter()
        .filter(|w| matches!(w.state, WaveState::Succeeded | WaveState::Failed))
        .filter_map(|w| Some(w.ended_at? - w.started_at?))
        .collect();
    let mean = finished.iter().sum::<i64>().checked_div(i64::try_from(finished.len()).ok()?)?;
    Some(
        s.waves
            .iter()
            .map(|w| match w.state {
                WaveState::Pending => mean,
                WaveState::Running => (mean - (now - w.started_at.unwrap_or(now))).max(0),
                WaveState::Succeeded | WaveState::Failed | WaveState::Skipped => 0,
            })
            .sum(),
    )
}

/// The progress of `s` at `now`.
pub fn status(s: &ExecutionState, rto_target_minutes: u32, now: i64) -> ExecutionStatus {
    let servers: Vec<&ServerRun> = s.waves.iter().flat_map(|w| w.servers.iter()).collect();
    let done = servers.iter().filter(|r| matches!(r.state, ServerState::Verified | ServerState::Failed)).count();
    let rto_of = |rs: &[&ServerRun]| -> Option<i64> {
        let start = s.started_at?;
        if rs.is_empty() || rs.iter().any(|r| r.state != ServerState::Verified) {
            return None;
        }
        rs.iter().filter_map(|r| r.verified_at).max().map(|t| t - start)
    };
    ExecutionStatus {
        phase: s.phase,
        mode: s.mode,
        progress_percent: if servers.is_empty() {
            100
        } else {
            u8::try_from(done * 100 / servers.len()).unwrap_or(100)
        },
        elapsed_ms: s.started_at.map(|t| s.ended_at.unwrap_or(now) - t),
        remaining_ms: remaining(s, now),
        rto_ms: rto_of(&servers),
        rto_target_ms: i64::from(rto_target_minutes) * 60_000,
        waves: s
            .waves
            .iter()
            .map(|w| {
                let rs: Vec<&ServerRun> = w.servers.iter().collect();
                WaveStatus {
                    name: w.name.clone(),
                    state: w.state,
                    servers: w.servers.len(),
                    verified: w.servers.iter().filter(|r| r.state == ServerState::Verified).count(),
                    failed: w.servers.iter().filter(|r| r.state == ServerState::Failed).count(),
                    started_at: w.started_at,
                    ended_at: w.ended_at,
                    rto_ms: rto_of(&rs),
                }
            })
            .collect(),
    }
}

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

/// What a failback reverses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailbackOf {
    /// The recovery execution whose servers come home.
    pub execution_id: String,
    /// Where their recovery instances run (the DR account and region).
    pub recovery_region: AccountRegion,
    /// The operator confirmed that Roundtrip may stop running originals (DRS cannot).
    pub stop_originals: bool,
    /// The operator confirmed that Roundtrip may tag originals `AWSDRS=AllowLaunchingIntoThisInstance`.
    pub tag_originals: bool,
    /// An admin chose to terminate the DR standbys instead of returning them to standby.
    #[serde(default)]
    pub terminate_standbys: bool,
    /// The recovery's servers this failback leaves on their DR standbys, each with why; a later failback of
    /// the same recovery can take them once fixed.
    #[serde(default)]
    pub left_behind: Vec<LeftBehind>,
}

/// Why a server of a recovery stays on its DR standby when a failback is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StayReason {
    /// It was not verified in the recovery (it failed identity verification, or never launched), so it is
    /// not on its standby as Roundtrip knows it.
    NotVerified,
    /// An earlier failback of this recovery already brought it home.
    AlreadyHome,
    /// The operator asked to leave it behind.
    LeftBehind,
    /// A failback prerequisite fails for it, and the operator asked to fail back only the servers that are
    /// ready.
    NotReady,
}

impl StayReason {
    /// The wire name, e.g. `NOT_READY`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotVerified => "NOT_VERIFIED",
            Self::AlreadyHome => "ALREADY_HOME",
            Self::LeftBehind => "LEFT_BEHIND",
            Self::NotReady => "NOT_READY",
        }
    }
}

/// A server of a recovery that a failback leaves on its DR standby.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftBehind {
    pub source_server_id: SourceServerId,
    pub name: String,
    pub reason: StayReason,
    /// Why, for a person: the prerequisite that fails, the failback that brought it home, …
    pub message: String,
}

/// A server a failback would bring home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoingHome {
    pub source_server_id: SourceServerId,
    pub name: String,
}

/// What a failback request would do, before it is made (a dry run): which servers go home and which stay
/// on DR and why, and what keeps it from being requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailbackPreview {
    /// Nothing keeps the failback from being requested.
    pub ready: bool,
    /// The failed prerequisites of the failback as a whole and of the servers that would go, each with its
    /// remediation.
    pub problems: Vec<crate::FieldError>,
    pub going: Vec<GoingHome>,
    pub staying: Vec<LeftBehind>,
}

/// A request to fail a recovery back into the original instances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartFailback {
    /// The completed recovery (never a drill).
    pub execution_id: String,
    #[serde(default)]
    pub stop_originals: bool,
    #[serde(default)]
    pub tag_originals: bool,
    /// Terminate the DR standbys afterwards instead of returning them to standby: an admin's choice,
    /// confirmed by typing the plan's name here. By default they go back to standby.
    #[serde(default)]
    pub terminate_standbys_confirmation: Option<String>,
    /// Servers to leave on their DR standbys; the others go home without them.
    #[serde(default)]
    pub leave_behind: Vec<SourceServerId>,
    /// Leave behind every server whose own prerequisites fail ("all that are ready"), instead of refusing the
    /// whole failback. Problems of the failback as a whole still refuse it.
    #[serde(default)]
    pub ready_only: bool,
}

/// Where a server ran: instance and private IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub instance_id: InstanceId,
    pub private_ip: Ipv4Addr,
}

/// Whether a server's identity survived the round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofVerdict {
    /// Back on the original instance with its original private IP, after running on its standby.
    Identical,
    /// The failback did not come back as the original instance with its IP.
    Mismatch,
    /// Not back yet.
    Incomplete,
}

/// One server's round trip: before failover, after failover, after failback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofRow {
    pub name: String,
    pub source_server_id: SourceServerId,
    pub before_failover: Placement,
    pub after_failover: Option<Placement>,
    /// Identity verification's result: the instance and IP it proved.
    pub after_failback: Option<Placement>,
    pub verdict: ProofVerdict,
    pub error: Option<String>,
}

/// The round-trip proof of a failback, against the recovery it reversed. Each placement is one identity
/// verification proved (instance id, private IP, running), not a value read back later.
pub fn round_trip_proof(recovery: &ExecutionRecord, failback: &ExecutionRecord) -> Vec<ProofRow> {
    let forward: Vec<&ServerRun> = recovery.state.waves.iter().flat_map(|w| w.servers.iter()).collect();
    failback
        .state
        .waves
        .iter()
        .flat_map(|w| w.servers.iter())
        .map(|back| {
            let before = Placement { instance_id: back.standby_instance_id.clone(), private_ip: back.expected_ip };
            let after_failover = forward
                .iter()
                .find(|f| f.source_server_id == back.source_server_id && f.state == ServerState::Verified)
                .map(|f| Placement { instance_id: f.standby_instance_id.clone(), private_ip: f.expected_ip });
            let home = back.state == ServerState::Verified;
            let verdict = match (home, &after_failover, back.state) {
                (true, Some(_), _) => ProofVerdict::Identical,
                (_, _, ServerState::Failed) => ProofVerdict::Mismatch,
                _ => ProofVerdict::Incomplete,
            };
            ProofRow {
                name: back.name.clone(),
                source_server_id: back.source_server_id.clone(),
                after_failback: home.then(|| before.clone()),
                before_failover: before,
                after_failover,
                verdict,
                error: back.error.clone(),
            }
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn server(n: u32) -> ServerRun {
        ServerRun::waiting(
            SourceServerId::parse(&format!("s-{n:017x}")).unwrap(),
            InstanceId::parse(&format!("i-{n:017x}")).unwrap(),
            Ipv4Addr::new(10, 1, 0, 10),
        )
    }

    fn wave(name: &str, servers: std::ops::Range<u32>, pause_before: bool, on_failure: OnFailure) -> WaveRun {
        WaveRun {
            name: name.into(),
            pause_before,
            on_failure,
            timeout_ms: 60 * MIN,
            state: WaveState::Pending,
            started_at: None,
            ended_at: None,
            servers: servers.map(server).collect(),
            // Checked already, so tests of other rules start at once (one test below covers the check).
            readiness_checked_at: Some(0),
        }
    }

    fn id(n: u32) -> SourceServerId {
        server(n).source_server_id
    }

    fn apply(s: ExecutionState, events: Vec<Event>) -> ExecutionState {
        events.into_iter().fold(s, |s, e| on_event(s, e).unwrap())
    }

    /// Runs every server of the current wave through claim → job → launch → verify.
    fn run_wave(s: ExecutionState, job: &str, at: i64) -> ExecutionState {
        let ids: Vec<SourceServerId> =
            s.waves[s.current_wave].servers.iter().map(|r| r.source_server_id.clone()).collect();
        let mut evs = vec![
            Event::BatchClaimed { servers: ids.clone(), at },
            Event::JobStarted { job_id: job.into(), servers: ids.clone(), at },
        ];
        evs.extend(ids.iter().map(|i| Event::Launched { server: i.clone(), at: at + 5 * MIN }));
        evs.extend(ids.iter().map(|i| Event::Verified {
            server: i.clone(),
            at: at + 6 * MIN,
            recovery_point: Some(at),
        }));
        apply(s, evs)
    }

    #[test]
    fn a_decision_is_admitted_only_while_the_execution_awaits_it() {
        use Decision::{Approve, Cancel, Reject, Resume};
        let requested = || {
            ExecutionState::new(
                Mode::Recovery,
                FailoverKind::Disaster,
                vec![wave("db", 1..2, false, OnFailure::Stop), wave("app", 2..3, true, OnFailure::Stop)],
                "alice",
                0,
                60 * MIN,
            )
        };
        let rejected = apply(requested(), vec![Event::Rejected { by: "bob".into(), at: MIN }]);
        let expired = apply(requested(), vec![Event::Tick { at: 61 * MIN }]);
        let running = apply(requested(), vec![Event::Approved { by: "bob".into(), at: MIN }]);
        let at_gate = run_wave(running.clone(), "drsjob-1", 2 * MIN);
        assert_eq!(at_gate.phase, Phase::AwaitingGate);
        let fresh = requested();
        let not_approval = |phase| Err(NotAwaiting::Approval { phase });
        type Case<'a> = (&'a str, &'a ExecutionState, i64, Decision, Result<(), NotAwaiting>);
        let cases: Vec<Case> = vec![
            ("a fresh request is approved", &fresh, MIN, Approve, Ok(())),
            ("a fresh request is rejected", &fresh, MIN, Reject, Ok(())),
            ("past its deadline, before the runner saw it", &fresh, 60 * MIN, Approve, not_approval(Phase::Expired)),
            ("an expired request", &expired, 62 * MIN, Approve, not_approval(Phase::Expired)),
            ("a rejected request", &rejected, 2 * MIN, Approve, not_approval(Phase::Rejected)),
            ("a rejected request, rejected again", &rejected, 2 * MIN, Reject, not_approval(Phase::Rejected)),
            ("an approved, running request", &running, 2 * MIN, Approve, not_approval(Phase::Running)),
            ("a wave at its gate is released", &at_gate, 9 * MIN, Resume, Ok(())),
            ("no gate while running", &running, 2 * MIN, Resume, Err(NotAwaiting::Gate { phase: Phase::Running })),
            (
                "a gate approval is a release, not an approval",
                &at_gate,
                9 * MIN,
                Approve,
                not_approval(Phase::AwaitingGate),
            ),
            ("a running execution is cancelled", &running, 2 * MIN, Cancel, Ok(())),
            ("an ended one is not", &rejected, 2 * MIN, Cancel, Err(NotAwaiting::Ended { phase: Phase::Rejected })),
        ];
        for (why, state, now, decision, want) in cases {
            assert_eq!(state.admits(decision, now), want, "{why}");
        }
        assert_eq!(
            NotAwaiting::Approval { phase: Phase::Expired }.to_string(),
            "nothing awaits approval: the execution is expired"
        );
    }

    #[test]
    fn a_drill_runs_its_waves_in_order_and_succeeds() {
        let s = ExecutionState::new(
            Mode::Drill,
            FailoverKind::Disaster,
            vec![wave("db", 1..3, false, OnFailure::Stop), wave("app", 3..5, false, OnFailure::Stop)],
            "alice",
            0,
            0,
        );
        assert_eq!((s.phase, s.waves[0].state), (Phase::Running, WaveState::Running));
        assert_eq!(decide(&s, &Limits::default()), [Command::StartJob { servers: vec![id(1), id(2)], is_drill: true }]);
        let s = run_wave(s, "drsjob-1", MIN);
        assert_eq!((s.current_wave, s.waves[0].state, s.waves[1].state), (1, WaveState::Succeeded, WaveState::Running));
        let s = run_wave(s, "drsjob-2", 10 * MIN);
        // A drill then returns every standby to standby before it ends.
        assert_eq!((s.phase, s.outcome, s.ended_at), (Phase::CleaningUp, Some(Phase::Succeeded), None));
        let all = vec![id(1), id(2), id(3), id(4)];
        assert_eq!(decide(&s, &Limits::default()), [Command::CleanUp { servers: all.clone() }]);
        let s = apply(s, vec![Event::CleanedUp { servers: vec![id(1)], at: 17 * MIN }]);
        assert_eq!(decide(&s, &Limits::default()), [Command::CleanUp { servers: all[1..].to_vec() }]);
        let late = apply(s.clone(), vec![Event::LaunchFailed { server: id(2), error: "late".into(), at: 17 * MIN }]);
        assert_eq!(late, s, "late job events change nothing");
        // A person may abandon the clean-up; it also gives up after CLEANUP_TIMEOUT_MS.
        let abandoned = apply(s.clone(), vec![Event::CancelRequested { by: "a".into(), at: 17 * MIN }]);
        assert_eq!((abandoned.phase, abandoned.ended_at), (Phase::Succeeded, Some(17 * MIN)));
        let stuck = apply(s.clone(), vec![Event::Tick { at: 16 * MIN + CLEANUP_TIMEOUT_MS - 1 }]);
        assert_eq!(stuck.phase, Phase::CleaningUp);
        let gave_up = apply(s.clone(), vec![Event::Tick { at: 16 * MIN + CLEANUP_TIMEOUT_MS }]);
        assert_eq!((gave_up.phase, gave_up.waves[0].servers[1].cleaned_at), (Phase::Succeeded, None));
        let s = apply(s, vec![Event::CleanedUp { servers: all[1..].to_vec(), at: 18 * MIN }]);
        assert_eq!((s.phase, s.ended_at), (Phase::Succeeded, Some(18 * MIN)));
        assert!(decide(&s, &Limits::default()).is_empty());
    }

    #[test]
    fn a_cancelled_planned_failover_still_launches_the_servers_whose_source_it_stopped() {
        let s = ExecutionState::new(
            Mode::Recovery,
            FailoverKind::Planned,
            vec![wave("a", 1..3, false, OnFailure::Stop), wave("b", 3..4, false, OnFailure::Stop)],
            "alice",
            0,
            60 * MIN,
        );
        let s = apply(
            s,
            vec![
                Event::Approved { by: "bob".into(), at: 0 },
                Event::SourcesStopped { servers: vec![id(1)], at: MIN },
                Event::CancelRequested { by: "alice".into(), at: MIN },
            ],
        );
        assert_eq!(s.phase, Phase::Running, "server 1's source is down: it must come up on the DR side");
        assert_eq!(
            decide(&s, &Limits::default()),
            [Command::AwaitDrain { servers: vec![id(1)] }],
            "server 2 is left alone"
        );
        let s = apply(s, vec![Event::Drained { servers: vec![id(1)], at: 2 * MIN }]);
        assert_eq!(decide(&s, &Limits::default()), [Command::StartJob { servers: vec![id(1)], is_drill: false }]);
        let ids = vec![id(1)];
        let s = apply(
            s,
            vec![
                Event::BatchClaimed { servers: ids.clone(), at: 2 * MIN },
                Event::JobStarted { job_id: "j".into(), servers: ids, at: 2 * MIN },
                Event::Launched { server: id(1), at: 5 * MIN },
                Event::Verified { server: id(1), at: 6 * MIN, recovery_point: None },
            ],
        );
        assert_eq!(
            (s.phase, s.waves[0].servers[1].state, s.waves[1].state),
            (Phase::Cancelled, ServerState::Waiting, WaveState::Skipped)
        );
    }

    #[test]
    fn a_wave_timeout_leaves_a_claim_without_a_job_to_reconciliation() {
        let s = ExecutionState::new(
            Mode::Drill,
            FailoverKind::Disaster,
            vec![wave("a", 1..3, false, OnFailure::Stop)],
            "a",
            0,
            0,
        );
        let s = apply(s, vec![Event::BatchClaimed { servers: vec![id(1)], at: 0 }, Event::Tick { at: 60 * MIN }]);
        assert_eq!(
            (s.waves[0].servers[0].state, s.waves[0].servers[1].state),
            (ServerState::Starting, ServerState::Failed)
        );
        assert_eq!(decide(&s, &Limits::default()), [Command::Reconcile { servers: vec![id(1)] }]);
    }

    #[test]
    fn status_counts_progress_and_measures_rto_from_the_start() {
        let s = ExecutionState::new(
            Mode::Drill,
            FailoverKind::Disaster,
            vec![wave("a", 1..3, false, OnFailure::Stop), wave("b", 3..5, false, OnFailure::Stop)],
            "a",
            0,
            0,
        );
        let first = apply(
            s.clone(),
            vec![
                Event::BatchClaimed { servers: vec![id(1), id(2)], at: MIN },
                Event::JobStarted { job_id: "j1".into(), servers: vec![id(1), id(2)], at: MIN },
                Event::Launched { server: id(1), at: 6 * MIN },
                Event::Verified { server: id(1), at: 6 * MIN, recovery_point: None },
            ],
        );
        let early = status(&first, 30, 6 * MIN);
        assert_eq!(early.progress_percent, 25);
        assert_eq!(early.remaining_ms, None, "no wave has finished: estimating, not 18 minutes from one server");
        let s = run_wave(s, "j1", MIN);
        let half = status(&s, 30, 8 * MIN);
        assert_eq!((half.progress_percent, half.rto_ms, half.elapsed_ms), (50, None, Some(8 * MIN)));
        let (a, b) = (&s.waves[0], &s.waves[1]);
        let took = a.ended_at.unwrap() - a.started_at.unwrap();
        let spent = b.started_at.map_or(0, |t| 8 * MIN - t);
        assert_eq!(
            half.remaining_ms,
            Some(took - spent),
            "wave b takes as long as wave a, {took} ms; {spent} ms spent"
        );
        assert_eq!(half.waves[0].rto_ms, Some(7 * MIN));
        let s = run_wave(s, "j2", 10 * MIN);
        let s = apply(s, vec![Event::CleanedUp { servers: (1..5).map(id).collect(), at: 16 * MIN }]);
        let done = status(&s, 30, 60 * MIN);
        assert_eq!((done.progress_percent, done.rto_ms, done.elapsed_ms), (100, Some(16 * MIN), Some(16 * MIN)));
    }

    #[test]
    fn a_recovery_waits_for_approval_which_can_expire_or_be_rejected() {
        let waves = || vec![wave("all", 1..2, false, OnFailure::Stop)];
        let s = ExecutionState::new(Mode::Recovery, FailoverKind::Disaster, waves(), "alice", 0, 60 * MIN);
        assert_eq!(s.phase, Phase::AwaitingApproval);
        assert!(decide(&s, &Limits::default()).is_empty(), "nothing starts before approval");
        let expired = apply(s.clone(), vec![Event::Tick { at: 60 * MIN }]);
        assert_eq!(expired.phase, Phase::Expired);
        let rejected = apply(s.clone(), vec![Event::Rejected { by: "bob".into(), at: MIN }]);
        assert_eq!(rejected.phase, Phase::Rejected);
        let approved = apply(s, vec![Event::Approved { by: "bob".into(), at: MIN }]);
        assert_eq!((approved.phase, approved.approved_by.as_deref()), (Phase::Running, Some("bob")));
        assert!(matches!(decide(&approved, &Limits::default())[0], Command::StartJob { is_drill: false, .. }));
    }

    #[test]
    fn batches_respect_the_per_job_and_active_server_limits() {
        let s = ExecutionState::new(
            Mode::Drill,
            FailoverKind::Disaster,
            vec![wave("big", 0..250, false, OnFailure::Stop)],
            "alice",
            0,
            0,
        );
        let limits = Limits { max_servers_per_job: 100, max_concurrent_jobs: 20, max_servers_in_active_jobs: 220 };
        let sizes: Vec<usize> = decide(&s, &limits)
            .into_iter()
            .map(|c| match c {
                Command::StartJob { servers, .. } => servers.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(sizes, [100, 100, 20]);
        let two_jobs = Limits { max_concurrent_jobs: 2, ..limits };
        assert_eq!(decide(&s, &two_jobs).len(), 2);
    }

    #[test]
    fn a_claimed_start_without_a_job_is_reconciled_not_started_again() {
        let s = ExecutionState::new(
            Mode::Drill,
            FailoverKind::Disaster,
            vec![wave("w", 1..3, false, OnFailure::Stop)],
            "alice",
            0,
            0,
        );
        let claimed = apply(s, vec![Event::BatchClaimed { servers: vec![id(1), id(2)], at: MIN }]);
        // The process died here; on resume the state asks to reconcile, and starts nothing new.
        assert_eq!(decide(&claimed, &Limits::default()), [Command::Reconcile { servers: vec![id(1), id(2)] }]);
        let found = apply(
            claimed.clone(),
            vec![Event::JobStarted { job_id: "drsjob-9".into(), servers: vec![id(1), id(2)], at: MIN }],
        );
        assert_eq!(decide(&found, &Limits::default()), [Command::PollJobs { job_ids: vec!["drsjob-9".into()] }]);
        let lost = apply(claimed, vec![Event::StartAbandoned { servers: vec![id(1), id(2)] }]);
        assert!(matches!(&decide(&lost, &Limits::default())[..], [Command::StartJob { .. }]));
    }

    #[test]
    fn a_failed_server_stops_the_plan_or_not_as_the_wave_says() {
        let waves = |policy| vec![wave("a", 1..3, false, policy), wave("b", 3..4, false, OnFailure::Stop)];
        let fail_one = |s: ExecutionState| {
            apply(
                s,
                vec![
                    Event::BatchClaimed { servers: vec![id(1), id(2)], at: 0 },
                    Event::JobStarted { job_id: "j".into(), servers: vec![id(1), id(2)], at: 0 },
                    Event::Launched { server: id(1), at: MIN },
                    Event::LaunchFailed { server: id(2), error: "LAUNCH_FAILED".into(), at: MIN },
                    Event::VerificationFailed {
                        server: id(1),
                        error: "came up with 10.9.9.9, expected 10.1.0.10".into(),
                        at: 2 * MIN,
                    },
                ],
            )
        };
        let stopped =
            fail_one(ExecutionState::new(Mode::Drill, FailoverKind::Disaster, waves(OnFailure::Stop), "a", 0, 0));
        assert_eq!(
            (stopped.phase, stopped.outcome, stopped.waves[1].state),
            (Phase::CleaningUp, Some(Phase::Failed), WaveState::Skipped)
        );
        let went_on =
            fail_one(ExecutionState::new(Mode::Drill, FailoverKind::Disaster, waves(OnFailure::Continue), "a", 0, 0));
        assert_eq!(
            (went_on.phase, went_on.current_wave, went_on.waves[1].state),
            (Phase::Running, 1, WaveState::Running)
        );
    }

    #[test]
    fn a_gate_holds_the_next_wave_until_released() {
        let s = ExecutionState::new(
            Mode::Drill,
            FailoverKind::Disaster,
            vec![wave("a", 1..2, false, OnFailure::Stop), wave("b", 2..3, true, OnFailure::Stop)],
            "a",
            0,
            0,
        );
        let s = run_wave(s, "j1", 0);
        assert_eq!((s.phase, s.waves[1].state), (Phase::AwaitingGate, WaveState::Pending));
        assert!(decide(&s, &Limits::default()).is_empty());
        let s = apply(s, vec![Event::GateReleased { by: "bob".into(), at: 20 * MIN }]);
        assert_eq!((s.phase, s.waves[1].started_at), (Phase::Running, Some(20 * MIN)));
    }

    #[test]
    fn cancel_starts_nothing_new_and_ends_when_jobs_in_flight_settle() {
        let s = ExecutionState::new(
            Mode::Drill,
            FailoverKind::Disaster,
            vec![wave("a", 1..3, false, OnFailure::Stop), wave("b", 3..4, false, OnFailure::Stop)],
            "a",
            0,
            0,
        );
        let s = apply(
            s,
            vec![
                Event::BatchClaimed { servers: vec![id(1)], at: 0 },
                Event::JobStarted { job_id: "j".into(), servers: vec![id(1)], at: 0 },
                Event::CancelRequested { by: "alice".into(), at: MIN },
            ],
        );
        assert_eq!(s.phase, Phase::Running, "server 1 is still launching");
        assert_eq!(decide(&s, &Limits::default()), [Command::PollJobs { job_ids: vec!["j".into()] }]);
        let s = apply(
            s,
            vec![
                Event::Launched { server: id(1), at: 2 * MIN },
                Event::Verified { server: id(1), at: 3 * MIN, recovery_point: None },
            ],
        );
        assert_eq!((s.phase, s.outcome), (Phase::CleaningUp, Some(Phase::Cancelled)));
        assert_eq!(decide(&s, &Limits::default()), [Command::CleanUp { servers: vec![id(1)] }], "only what launched");
        assert_eq!(
            (s.waves[0].servers[1].state, s.waves[1].state),
            (ServerState::Waiting, WaveState::Skipped),
            "never launched"
        );
    }

    #[test]
    fn a_wave_that_runs_past_its_timeout_fails_its_unfinished_servers() {
        let s = ExecutionState::new(
            Mode::Drill,
            FailoverKind::Disaster,
            vec![wave("a", 1..3, false, OnFailure::Stop)],
            "a",
            0,
            0,
        );
        let s = apply(s, vec![Event::Tick { at: 59 * MIN }]);
        assert_eq!(s.phase, Phase::Running);
        let s = apply(s, vec![Event::Tick { at: 60 * MIN }]);
        assert_eq!(s.phase, Phase::Failed);
        assert!(s.waves[0].servers[0].error.as_deref().unwrap().contains("timed out after 60 minutes"));
    }

    #[test]
    fn events_that_do_not_fit_are_refused_and_terminal_states_absorb_the_rest() {
        let s = ExecutionState::new(
            Mode::Drill,
            FailoverKind::Disaster,
            vec![wave("a", 1..2, false, OnFailure::Stop)],
            "a",
            0,
            0,
        );
        let e = on_event(s.clone(), Event::Approved { by: "bob".into(), at: 0 }).unwrap_err();
        assert_eq!(e.event, "approved");
        assert!(on_event(s.clone(), Event::BatchClaimed { servers: vec![id(9)], at: 0 }).is_err(), "not in the wave");
        let done = apply(run_wave(s, "j", 0), vec![Event::CleanedUp { servers: vec![id(1)], at: MIN }]);
        assert_eq!(done.phase, Phase::Succeeded);
        assert_eq!(
            on_event(done.clone(), Event::LaunchFailed { server: id(1), error: "late".into(), at: 99 }).unwrap(),
            done
        );
    }

    #[test]
    fn a_planned_failover_stops_and_drains_each_source_before_launching_it() {
        let s = ExecutionState::new(
            Mode::Recovery,
            FailoverKind::Planned,
            vec![wave("a", 1..3, false, OnFailure::Stop)],
            "alice",
            0,
            60 * MIN,
        );
        let s = apply(s, vec![Event::Approved { by: "bob".into(), at: MIN }]);
        assert_eq!(decide(&s, &Limits::default()), [Command::StopSources { servers: vec![id(1), id(2)] }]);
        let s = apply(s, vec![Event::SourcesStopped { servers: vec![id(1), id(2)], at: MIN }]);
        assert_eq!(decide(&s, &Limits::default()), [Command::AwaitDrain { servers: vec![id(1), id(2)] }]);
        let s = apply(s, vec![Event::Drained { servers: vec![id(2)], at: 2 * MIN }]);
        assert_eq!(
            decide(&s, &Limits::default()),
            [Command::AwaitDrain { servers: vec![id(1)] }, Command::StartJob { servers: vec![id(2)], is_drill: false }],
            "only a drained server launches"
        );
        let drill = ExecutionState::new(
            Mode::Drill,
            FailoverKind::Planned,
            vec![wave("a", 1..2, false, OnFailure::Stop)],
            "a",
            0,
            0,
        );
        assert_eq!(drill.kind, FailoverKind::Disaster, "a drill never touches the source side");
        assert!(matches!(&decide(&drill, &Limits::default())[..], [Command::StartJob { .. }]));
    }

    #[test]
    fn a_recovery_records_the_point_in_time_it_launched_from_and_ends_without_clean_up() {
        let s = ExecutionState::new(
            Mode::Recovery,
            FailoverKind::Disaster,
            vec![wave("a", 1..2, false, OnFailure::Stop)],
            "alice",
            0,
            60 * MIN,
        );
        let s = apply(s, vec![Event::Approved { by: "bob".into(), at: 0 }]);
        let s = run_wave(s, "j", MIN);
        assert_eq!((s.phase, s.waves[0].servers[0].recovery_point), (Phase::Succeeded, Some(MIN)));
    }

    #[test]
    fn a_wave_starts_nothing_before_readiness_is_checked_again_and_blocked_servers_fail() {
        let mut waves = vec![wave("a", 1..4, false, OnFailure::Continue), wave("b", 4..5, false, OnFailure::Stop)];
        waves.iter_mut().for_each(|w| w.readiness_checked_at = None);
        let s = ExecutionState::new(Mode::Drill, FailoverKind::Disaster, waves, "a", 0, 0);
        assert_eq!(decide(&s, &Limits::default()), [Command::CheckReadiness { servers: vec![id(1), id(2), id(3)] }]);
        let s = apply(s, vec![Event::ReadinessChecked { blocked: vec![(id(2), "standby.stopped".into())], at: MIN }]);
        assert_eq!(decide(&s, &Limits::default()), [Command::StartJob { servers: vec![id(1), id(3)], is_drill: true }]);
        let blocked = &s.waves[0].servers[1];
        assert_eq!(blocked.state, ServerState::Failed);
        assert!(blocked.error.as_deref().unwrap().contains("standby.stopped"));
        // Every server blocked: the wave fails at once and, as it continues on failure, the next one is checked.
        let all = apply(
            ExecutionState::new(
                Mode::Drill,
                FailoverKind::Disaster,
                vec![wave("a", 1..2, false, OnFailure::Continue), wave("b", 2..3, false, OnFailure::Stop)],
                "a",
                0,
                0,
            ),
            vec![],
        );
        let mut all = all;
        all.waves.iter_mut().for_each(|w| w.readiness_checked_at = None);
        let all = apply(all, vec![Event::ReadinessChecked { blocked: vec![(id(1), "x".into())], at: MIN }]);
        assert_eq!((all.current_wave, all.waves[0].state), (1, WaveState::Failed));
        assert_eq!(decide(&all, &Limits::default()), [Command::CheckReadiness { servers: vec![id(2)] }]);
    }

    #[test]
    fn a_failback_reverses_replicates_and_configures_each_server_before_launching_it() {
        let s = ExecutionState::new(
            Mode::Failback,
            FailoverKind::Planned,
            vec![wave("a", 1..3, false, OnFailure::Stop)],
            "alice",
            0,
            60 * MIN,
        );
        assert_eq!((s.phase, s.kind), (Phase::AwaitingApproval, FailoverKind::Disaster));
        let s = apply(s, vec![Event::Approved { by: "bob".into(), at: 0 }]);
        assert_eq!(decide(&s, &Limits::default()), [Command::Reverse { servers: vec![id(1), id(2)] }]);
        let s = apply(s, vec![Event::ReverseClaimed { servers: vec![id(1), id(2)], at: MIN }]);
        // A crash here: the claims are reconciled, not reversed again.
        assert_eq!(decide(&s, &Limits::default()), [Command::ReconcileReverse { servers: vec![id(1), id(2)] }]);
        let back = |n: u32| SourceServerId::parse(&format!("s-f{n:016x}")).unwrap();
        let s = apply(
            s,
            vec![
                Event::Reversed { server: id(1), failback_source: back(1), at: MIN },
                Event::ReverseAbandoned { servers: vec![id(2)] },
            ],
        );
        assert_eq!(
            decide(&s, &Limits::default()),
            [Command::Reverse { servers: vec![id(2)] }, Command::AwaitReplication { servers: vec![id(1)] }]
        );
        let s = apply(s, vec![Event::Replicated { servers: vec![id(1)], at: 20 * MIN }]);
        assert!(decide(&s, &Limits::default()).contains(&Command::ConfigureFailback { servers: vec![id(1)] }));
        let s = apply(s, vec![Event::Configured { servers: vec![id(1)], at: 21 * MIN }]);
        assert!(decide(&s, &Limits::default()).contains(&Command::StartJob { servers: vec![id(1)], is_drill: false }));
        assert_eq!(s.waves[0].servers[0].failback_source_id, Some(back(1)));
    }

    #[test]
    fn a_wave_s_servers_are_encoded_again_only_after_they_change() {
        let mut w = wave("w", 0..3, false, OnFailure::Stop);
        let plain = |w: &WaveRun| serde_json::to_string(&w.servers.iter().collect::<Vec<_>>()).unwrap();
        let first = serde_json::to_string(&w).unwrap();
        assert!(first.contains(&plain(&w)));
        // A copy shares the text; changing the copy encodes the copy anew and leaves the original as it was.
        let mut copy = w.clone();
        copy.servers.make_mut()[1].state = ServerState::Failed;
        copy.servers.make_mut()[1].error = Some("<gone>".into());
        let changed = serde_json::to_string(&copy).unwrap();
        assert!(changed.contains(&plain(&copy)) && changed.contains("<gone>"), "{changed}");
        assert_eq!(serde_json::to_string(&w).unwrap(), first);
        // Changed in place (not shared), it is encoded anew too.
        w.servers.make_mut()[0].name = "web-1".into();
        let again = serde_json::to_string(&w).unwrap();
        assert!(again.contains("\"web-1\"") && again.contains(&plain(&w)), "{again}");
        // Read back, and as a JSON value, it is the list.
        let back: WaveRun = serde_json::from_str(&again).unwrap();
        assert_eq!(back, w);
        assert_eq!(serde_json::to_value(&w).unwrap()["servers"][0]["name"], "web-1");
    }
}
