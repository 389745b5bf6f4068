//! What an execution is made of: its phase, waves and servers, and their states.

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
