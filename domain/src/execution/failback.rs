//! What a failback reverses and leaves behind, and its dry run: who goes home, who stays and why.

use crate::estate::AccountRegion;
use crate::ids::SourceServerId;
use serde::{Deserialize, Serialize};

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
