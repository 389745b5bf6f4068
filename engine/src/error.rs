//! What a use case answers when it refuses or fails: [`ServiceError`], with a stable [`domain::ErrorCode`]
//! and an HTTP status for each variant.

use crate::cloud::CloudError;
use crate::store::StoreError;
use domain::ErrorCode;
use domain::error::FieldError;
use domain::ids::{InstanceId, PairId, ProtectionGroupId, SourceServerId};
use serde::{Deserialize, Serialize};

/// Why a pair request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairRejection {
    pub source_server_id: SourceServerId,
    pub standby_instance_id: InstanceId,
    /// Each reason has a stable code and a message.
    pub reasons: Vec<FieldError>,
}

/// What went wrong in a use case.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the request has invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("protection group {0} does not exist")]
    GroupNotFound(ProtectionGroupId),
    #[error("pair {0} does not exist in this protection group")]
    PairNotFound(PairId),
    #[error("the record changed since it was read (expected version {expected}, found {actual:?}); reload and retry")]
    VersionConflict { expected: u64, actual: Option<u64> },
    #[error("a protection group named {} already exists", domain::text::quoted(.0))]
    DuplicateName(String),
    #[error("{} pair(s) cannot be accepted; nothing was written", .0.len())]
    PairRejected(Vec<PairRejection>),
    #[error(
        "Roundtrip changed the DRS launch configuration of {0} source server(s) in this group; roll the configuration back before deleting it, so nothing is left pointing at standbys"
    )]
    LaunchConfigurationApplied(usize),
    #[error("cloud call failed: {0}")]
    Cloud(#[from] CloudError),
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
    #[error("sign in first")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("the user name or password is wrong")]
    LoginFailed,
    #[error("too many failed sign-ins; wait {retry_after_secs} seconds and retry")]
    LoginThrottled { retry_after_secs: u64 },
    #[error("change your one-time password first")]
    PasswordChangeRequired,
    #[error("user {} does not exist", domain::text::quoted(.0))]
    UserNotFound(String),
    #[error("a user named {} already exists", domain::text::quoted(.0))]
    DuplicateUser(String),
    #[error("API token {0:?} does not exist")]
    TokenNotFound(String),
    #[error("this share link does not exist, was revoked or has expired")]
    ShareLinkNotFound,
    #[error("this would leave no enabled admin; make another user admin first")]
    LastAdmin,
    #[error("{0}")]
    ApprovalRefused(#[from] domain::auth::ApprovalRefusal),
    #[error("recovery plan {0} does not exist")]
    PlanNotFound(String),
    #[error("execution {0} does not exist")]
    ExecutionNotFound(String),
    #[error("no webhook {0}")]
    WebhookNotFound(String),
    #[error("recovery plan(s) {} use this; change or delete them first", .0.join(", "))]
    InRecoveryPlan(Vec<String>),
    #[error("{0}")]
    NotAwaiting(#[from] domain::execution::NotAwaiting),
}

impl ServiceError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::ValidationFailed,
            Self::GroupNotFound(_) => ErrorCode::ProtectionGroupNotFound,
            Self::PairNotFound(_) => ErrorCode::PairNotFound,
            Self::VersionConflict { .. } => ErrorCode::VersionConflict,
            Self::DuplicateName(_) => ErrorCode::DuplicateName,
            Self::PairRejected(_) => ErrorCode::PairRejected,
            Self::LaunchConfigurationApplied(_) => ErrorCode::LaunchConfigurationApplied,
            Self::Cloud(CloudError::Throttled { .. }) => ErrorCode::Throttled,
            Self::Cloud(CloudError::Unavailable { .. }) => ErrorCode::CloudError,
            Self::Cloud(_) => ErrorCode::CloudError,
            Self::Store(StoreError::Conflict { .. }) => ErrorCode::VersionConflict,
            Self::Store(_) => ErrorCode::Internal,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::LoginFailed => ErrorCode::LoginFailed,
            Self::LoginThrottled { .. } => ErrorCode::LoginThrottled,
            Self::PasswordChangeRequired => ErrorCode::PasswordChangeRequired,
            Self::UserNotFound(_) => ErrorCode::UserNotFound,
            Self::DuplicateUser(_) => ErrorCode::DuplicateUser,
            Self::TokenNotFound(_) => ErrorCode::TokenNotFound,
            Self::ShareLinkNotFound => ErrorCode::ShareLinkNotFound,
            Self::LastAdmin => ErrorCode::LastAdmin,
            Self::ApprovalRefused(domain::auth::ApprovalRefusal::SelfApproval { .. }) => ErrorCode::SelfApproval,
            Self::ApprovalRefused(domain::auth::ApprovalRefusal::PasswordChangeRequired { .. }) => {
                ErrorCode::PasswordChangeRequired
            }
            Self::ApprovalRefused(_) => ErrorCode::Forbidden,
            Self::PlanNotFound(_) => ErrorCode::RecoveryPlanNotFound,
            Self::ExecutionNotFound(_) => ErrorCode::ExecutionNotFound,
            Self::WebhookNotFound(_) => ErrorCode::WebhookNotFound,
            Self::InRecoveryPlan(_) => ErrorCode::InRecoveryPlan,
            Self::NotAwaiting(domain::execution::NotAwaiting::Approval { .. }) => ErrorCode::NotAwaitingApproval,
            Self::NotAwaiting(domain::execution::NotAwaiting::Gate { .. }) => ErrorCode::NotAwaitingGate,
            Self::NotAwaiting(domain::execution::NotAwaiting::Ended { .. }) => ErrorCode::ExecutionEnded,
        }
    }

    /// Structured details for the client (never internals).
    pub fn details(&self) -> serde_json::Value {
        match self {
            Self::Invalid(fields) => serde_json::json!({ "fields": fields }),
            Self::GroupNotFound(id) => serde_json::json!({ "protection_group_id": id }),
            Self::PairNotFound(id) => serde_json::json!({ "pair_id": id }),
            Self::VersionConflict { expected, actual } => serde_json::json!({ "expected": expected, "actual": actual }),
            Self::DuplicateName(name) => serde_json::json!({ "name": name }),
            Self::PairRejected(rejections) => serde_json::json!({ "rejections": rejections }),
            Self::LaunchConfigurationApplied(n) => serde_json::json!({ "servers": n }),
            Self::LoginThrottled { retry_after_secs } => serde_json::json!({ "retry_after_secs": retry_after_secs }),
            Self::UserNotFound(u) | Self::DuplicateUser(u) => serde_json::json!({ "username": u }),
            Self::TokenNotFound(id) => serde_json::json!({ "token_id": id }),
            Self::PlanNotFound(id) => serde_json::json!({ "recovery_plan_id": id }),
            Self::ExecutionNotFound(id) => serde_json::json!({ "execution_id": id }),
            Self::WebhookNotFound(id) => serde_json::json!({ "webhook_id": id }),
            Self::InRecoveryPlan(plans) => serde_json::json!({ "recovery_plans": plans }),
            Self::ApprovalRefused(r) => serde_json::json!({ "reason": r.code() }),
            Self::NotAwaiting(n) => serde_json::json!({ "phase": n.phase().as_str() }),
            _ => serde_json::json!({}),
        }
    }

    /// A message safe to show a client: internal failures are not described.
    pub fn public_message(&self) -> String {
        match self {
            Self::Store(StoreError::Conflict { .. }) => {
                "the record changed while it was being written; reload and retry".into()
            }
            Self::Store(_) => "the store failed; the server log has the cause".into(),
            Self::Cloud(CloudError::Unexpected(_)) => "the cloud call failed; the server log has the cause".into(),
            other => other.to_string(),
        }
    }
}
