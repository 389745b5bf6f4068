//! Stable error codes and field-level input errors.
//!
//! Codes are part of the public contract of the REST API and the console: they never change meaning and are
//! never reused. Messages are for people and may change.

use serde::{Deserialize, Serialize};

/// Every stable error code Roundtrip reports, in the REST API (`error.code`) and in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// One or more fields of a request are invalid; `details.fields` lists them.
    ValidationFailed,
    /// The body is not JSON, or not JSON of the expected shape.
    MalformedJson,
    /// The body is larger than the server accepts.
    PayloadTooLarge,
    /// The request's content type is not `application/json`.
    UnsupportedMediaType,
    /// No route answers this path and method.
    RouteNotFound,
    /// The protection group does not exist.
    ProtectionGroupNotFound,
    /// The pair does not exist in this protection group.
    PairNotFound,
    /// The record changed since the client read it (optimistic concurrency).
    VersionConflict,
    /// A protection group with this name already exists.
    DuplicateName,
    /// The pair cannot be accepted or set: `details.reasons` says why.
    PairRejected,
    /// Roundtrip changed DRS launch configurations for this group; roll them back first.
    LaunchConfigurationApplied,
    /// The cloud (simulated or AWS) refused or failed a call.
    CloudError,
    /// The cloud asked us to slow down.
    Throttled,
    /// Something unexpected failed on the server; the log has the cause.
    Internal,
    /// The request carries no valid session, token or share link; sign in.
    Unauthenticated,
    /// The signed-in identity's role does not allow this.
    Forbidden,
    /// A state-changing request authenticated by cookie came without a valid CSRF token or from another origin.
    CsrfRejected,
    /// The user name or password is wrong (which one is not said).
    LoginFailed,
    /// Too many failed sign-ins for this user or address; wait and retry.
    LoginThrottled,
    /// The user must change their one-time password first.
    PasswordChangeRequired,
    /// The user does not exist.
    UserNotFound,
    /// A user with this name already exists.
    DuplicateUser,
    /// The API token does not exist.
    TokenNotFound,
    /// The share link does not exist, was revoked or has expired.
    ShareLinkNotFound,
    /// The change would leave no enabled admin.
    LastAdmin,
    /// The two-person rule: whoever requested an execution cannot approve it.
    SelfApproval,
    /// The route declares no permission, so it is refused (deny by default).
    NoPermissionDeclared,
    /// The audit trail's hash chain does not verify: an entry was edited or removed.
    AuditChainBroken,
    /// The recovery plan does not exist.
    RecoveryPlanNotFound,
    /// The execution does not exist.
    ExecutionNotFound,
    WebhookNotFound,
    /// A recovery plan uses the group or pair; change or delete the plan first.
    InRecoveryPlan,
    /// An approval or rejection of an execution that does not await approval (it expired, was rejected or
    /// already started); `details.phase` names where it stands.
    NotAwaitingApproval,
    /// A gate release while no wave of the execution waits at a gate; `details.phase` names where it stands.
    NotAwaitingGate,
    /// A cancel of an execution that has already ended; `details.phase` names how it ended.
    ExecutionEnded,
}

impl ErrorCode {
    /// The HTTP status this code is answered with, in the REST API and by console functions.
    pub fn http_status(self) -> u16 {
        match self {
            Self::ValidationFailed | Self::MalformedJson => 400,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::RouteNotFound | Self::ProtectionGroupNotFound | Self::PairNotFound => 404,
            Self::VersionConflict | Self::DuplicateName | Self::LaunchConfigurationApplied => 409,
            Self::PairRejected => 422,
            Self::Throttled => 503,
            Self::CloudError => 502,
            Self::Internal => 500,
            Self::Unauthenticated | Self::LoginFailed => 401,
            Self::Forbidden
            | Self::CsrfRejected
            | Self::PasswordChangeRequired
            | Self::SelfApproval
            | Self::NoPermissionDeclared => 403,
            Self::LoginThrottled => 429,
            Self::UserNotFound
            | Self::TokenNotFound
            | Self::ShareLinkNotFound
            | Self::RecoveryPlanNotFound
            | Self::ExecutionNotFound
            | Self::WebhookNotFound => 404,
            Self::DuplicateUser
            | Self::LastAdmin
            | Self::AuditChainBroken
            | Self::InRecoveryPlan
            | Self::NotAwaitingApproval
            | Self::NotAwaitingGate
            | Self::ExecutionEnded => 409,
        }
    }

    /// The wire form of the code, e.g. `PROTECTION_GROUP_NOT_FOUND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationFailed => "VALIDATION_FAILED",
            Self::MalformedJson => "MALFORMED_JSON",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::RouteNotFound => "ROUTE_NOT_FOUND",
            Self::ProtectionGroupNotFound => "PROTECTION_GROUP_NOT_FOUND",
            Self::PairNotFound => "PAIR_NOT_FOUND",
            Self::VersionConflict => "VERSION_CONFLICT",
            Self::DuplicateName => "DUPLICATE_NAME",
            Self::PairRejected => "PAIR_REJECTED",
            Self::LaunchConfigurationApplied => "LAUNCH_CONFIGURATION_APPLIED",
            Self::CloudError => "CLOUD_ERROR",
            Self::Throttled => "THROTTLED",
            Self::Internal => "INTERNAL",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::CsrfRejected => "CSRF_REJECTED",
            Self::LoginFailed => "LOGIN_FAILED",
            Self::LoginThrottled => "LOGIN_THROTTLED",
            Self::PasswordChangeRequired => "PASSWORD_CHANGE_REQUIRED",
            Self::UserNotFound => "USER_NOT_FOUND",
            Self::DuplicateUser => "DUPLICATE_USER",
            Self::TokenNotFound => "TOKEN_NOT_FOUND",
            Self::ShareLinkNotFound => "SHARE_LINK_NOT_FOUND",
            Self::LastAdmin => "LAST_ADMIN",
            Self::SelfApproval => "SELF_APPROVAL",
            Self::NoPermissionDeclared => "NO_PERMISSION_DECLARED",
            Self::AuditChainBroken => "AUDIT_CHAIN_BROKEN",
            Self::RecoveryPlanNotFound => "RECOVERY_PLAN_NOT_FOUND",
            Self::ExecutionNotFound => "EXECUTION_NOT_FOUND",
            Self::WebhookNotFound => "WEBHOOK_NOT_FOUND",
            Self::InRecoveryPlan => "IN_RECOVERY_PLAN",
            Self::NotAwaitingApproval => "NOT_AWAITING_APPROVAL",
            Self::NotAwaitingGate => "NOT_AWAITING_GATE",
            Self::ExecutionEnded => "EXECUTION_ENDED",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One invalid field of an input: which field, a stable code, and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path of the field in the request, e.g. `dr.region` or `selection.source_server_ids[2]`.
    pub field: String,
    /// Stable code of the problem, e.g. `INVALID_REGION`.
    pub code: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self { field: field.into(), code: code.to_owned(), message: message.into() }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}
