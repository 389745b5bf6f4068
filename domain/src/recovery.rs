//! DRS recovery jobs as Roundtrip reads them: jobs started by `StartRecovery`, their per-server launch
//! status, their log, and the recovery instances they leave. See `aws-drs-api.md` §2.2–2.4.
//!
//! A job's `COMPLETED` status says only that it ended: success is decided per server, by
//! `launch_status == Launched` (§2.2).

use crate::ids::{InstanceId, SourceServerId};
use serde::{Deserialize, Serialize};

/// `JobStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Pending,
    Started,
    /// Ended, successfully or not for each server.
    Completed,
}

/// `LaunchStatus` of one participating server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LaunchStatus {
    Pending,
    InProgress,
    Launched,
    Failed,
    Terminated,
}

/// One server of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipatingServer {
    pub source_server_id: SourceServerId,
    /// Set once DRS knows the instance it launched (for launch-into: the target instance).
    pub recovery_instance_id: Option<InstanceId>,
    pub launch_status: LaunchStatus,
}

/// A DRS job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrsJob {
    /// `drsjob-` and 17 hex digits.
    pub job_id: String,
    pub is_drill: bool,
    pub status: JobStatus,
    pub created_at: i64,
    pub ended_at: Option<i64>,
    pub servers: Vec<ParticipatingServer>,
}

impl DrsJob {
    /// Whether the job still holds its servers (`PENDING` or `STARTED`).
    pub fn is_active(&self) -> bool {
        self.status != JobStatus::Completed
    }
}

/// One `JobLog` item (`JobLogEvent` and the fields Roundtrip uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLogItem {
    pub at: i64,
    /// e.g. `SNAPSHOT_START`, `CONVERSION_END`, `LAUNCH_START`, `LAUNCH_FAILED`, `JOB_END`.
    pub event: String,
    pub source_server_id: Option<SourceServerId>,
    pub target_instance_id: Option<InstanceId>,
    /// The raw error, for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A DRS recovery instance (for launch-into: the standby itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryInstance {
    pub recovery_instance_id: InstanceId,
    pub ec2_instance_id: InstanceId,
    pub source_server_id: SourceServerId,
    pub job_id: String,
    pub is_drill: bool,
    /// When the data it was launched from was taken (the recovery point).
    pub point_in_time: i64,
    /// `DisconnectRecoveryInstance` was called: DRS no longer replicates it; it can be deleted from DRS.
    #[serde(default)]
    pub disconnected: bool,
}

/// An EBS volume attached to no instance (`DescribeVolumes`, `status=available`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailableVolume {
    pub volume_id: String,
    pub size_gib: u32,
    /// When it was detached (or created), Unix ms.
    pub since: i64,
    /// The instance it was last attached to, when known (for a swapped-out volume: the standby).
    pub last_instance_id: Option<InstanceId>,
    pub device_name: Option<String>,
}

/// A volume DRS swapped out of a standby when it launched into it, listed for clean-up. Roundtrip never
/// deletes it by itself: it may hold the standby's own data, so it is kept at least for the retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwappedVolume {
    pub volume: AvailableVolume,
    pub account_id: crate::ids::AccountId,
    pub region: crate::ids::Region,
    /// The standby it was swapped out of.
    pub standby_instance_id: InstanceId,
    /// When the retention ends, Unix ms.
    pub deletable_after: i64,
    /// Whether the retention has ended.
    pub deletable: bool,
}
