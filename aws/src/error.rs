//! SDK errors → [`CloudError`]: the one place that reads AWS error codes, HTTP statuses and headers.
//!
//! AWS names the same outcome differently per service (DRS `ThrottlingException`, EC2
//! `RequestLimitExceeded`, `ConflictException` vs `IncorrectInstanceState`…), and DRS sends its quota error
//! as HTTP 402 (`aws-drs-api.md` §4.1, §8). The mapping works on the code, the status and the body, so one
//! table serves every SDK crate, and the SDK's own `Display` ("service error") is never shown to anyone.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use engine::cloud::CloudError;

/// The parts of a failed AWS call the mapping looks at.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `service:Operation`, e.g. `drs:StartRecovery`: named when access is denied.
    pub action: String,
    pub status: Option<u16>,
    /// The AWS error code (`x-amzn-ErrorType`, `<Code>`, `__type`).
    pub code: Option<String>,
    pub message: Option<String>,
    /// `Retry-After` (seconds) or `x-amz-retry-after` (milliseconds), in milliseconds.
    pub retry_after_ms: Option<u64>,
    /// The JSON body, when there is one (DRS carries `reason`, `fieldList`, `resourceId`, `quotaCode`).
    pub body: Option<serde_json::Value>,
}

const THROTTLING: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "EC2ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceededException",
    "SlowDown",
];

/// Codes that mean the caller is not allowed, or its credentials are not (expired, unknown, badly signed).
const CREDENTIALS: &[&str] = &[
    "UnauthorizedOperation",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "MissingAuthenticationToken",
];

/// The longest retry-after hint honoured.
const MAX_RETRY_AFTER_MS: u64 = 300_000;

/// The missing permission in an access-denied message ("… is not authorized to perform: drs:StartRecovery
/// on resource …").
pub fn missing_action(message: &str) -> Option<&str> {
    let rest = &message[message.find("perform: ")? + "perform: ".len()..];
    let action = rest.split(|c: char| c.is_whitespace() || c == ',').next()?;
    (action.contains(':') && action.len() > 2).then_some(action)
}

impl Failure {
    /// The domain error this failure is.
    pub fn classify(self) -> CloudError {
        let code = self.code.as_deref().unwrap_or("");
        let message = self.message.clone().unwrap_or_else(|| code.to_owned());
        let body_str = |k: &str| self.body.as_ref().and_then(|b| b.get(k)).and_then(|v| v.as_str()).map(str::to_owned);
        if THROTTLING.contains(&code) || self.status == Some(429) {
            return CloudError::Throttled { retry_after_ms: self.retry_after_ms.unwrap_or(1_000) };
        }
        if code == "ServiceQuotaExceededException" || self.status == Some(402) {
            let quota = body_str("quotaCode").unwrap_or_else(|| "unknown".into());
            return CloudError::QuotaExceeded { message, quota };
        }
        if code.contains("AccessDenied") || CREDENTIALS.contains(&code) || self.status == Some(403) {
            let action = missing_action(&message).map_or_else(|| self.action.clone(), str::to_owned);
            return CloudError::AccessDenied { message: format!("missing permission {action}: {message}") };
        }
        if code == "ConflictException"
            || code == "IncorrectInstanceState"
            || code == "IncorrectState"
            || self.status == Some(409)
        {
            return CloudError::Conflict { message, resource_id: body_str("resourceId") };
        }
        if code == "ResourceNotFoundException"
            || code.ends_with(".NotFound")
            || code == "NoSuchEntity"
            || self.status == Some(404)
        {
            return CloudError::NotFound { message };
        }
        if code == "UninitializedAccountException" {
            return CloudError::Validation {
                message: format!("DRS is not initialised in this account and region (InitializeService): {message}"),
            };
        }
        if self.status.is_some_and(|s| s >= 500)
            || code == "InternalServerException"
            || code == "InternalError"
            || code == "ServiceUnavailable"
            || code == "Unavailable"
        {
            return CloudError::Unavailable { message, retry_after_ms: self.retry_after_ms };
        }
        if code.contains("Validation")
            || code.starts_with("Invalid")
            || code.starts_with("Missing")
            || self.status == Some(400)
        {
            let mut m = message;
            if let Some(reason) = body_str("reason") {
                m = format!("{m} (reason: {reason})");
            }
            if let Some(fields) = self.body.as_ref().and_then(|b| b.get("fieldList")).and_then(|v| v.as_array()) {
                let named: Vec<String> = fields
                    .iter()
                    .filter_map(|f| {
                        Some(format!("{}: {}", f.get("name")?.as_str()?, f.get("message")?.as_str().unwrap_or("")))
                    })
                    .collect();
                if !named.is_empty() {
                    m = format!("{m}; {}", named.join("; "));
                }
            }
            return CloudError::Validation { message: m };
        }
        CloudError::Unexpected(anyhow::anyhow!(
            "{}: {} {message}",
            self.action,
            if code.is_empty() { "unknown error" } else { code }
        ))
    }
}

fn retry_after_ms(r: &HttpResponse) -> Option<u64> {
    let h = r.headers();
    h.get("x-amz-retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or_else(|| {
            h.get("retry-after")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite())
                .map(|s| (s.clamp(0.0, 300.0) * 1000.0) as u64)
        })
        .map(|ms| ms.min(MAX_RETRY_AFTER_MS))
}

/// The one way the adapter turns an SDK call's failure into the cloud port's error: `call.for_action("drs:…")`
/// names the action (it is what the IAM table lists) and maps the failure with [`map_sdk_error`].
pub trait ForAction<T> {
    /// The call's result, its failure mapped.
    ///
    /// # Errors
    /// The mapped [`CloudError`].
    fn for_action(self, action: &str) -> Result<T, CloudError>;
}

impl<T, E> ForAction<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn for_action(self, action: &str) -> Result<T, CloudError> {
        self.map_err(|e| map_sdk_error(action, e))
    }
}

/// Maps an SDK error of the call `action` (`service:Operation`).
pub fn map_sdk_error<E>(action: &str, err: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let raw = err.raw_response();
    let failure = Failure {
        action: action.to_owned(),
        status: raw.map(|r| r.status().as_u16()),
        code: err.code().map(str::to_owned),
        message: err.message().map(str::to_owned),
        retry_after_ms: raw.and_then(retry_after_ms),
        body: raw.and_then(|r| r.body().bytes()).and_then(|b| serde_json::from_slice(b).ok()),
    };
    if !matches!(err, SdkError::ServiceError(_)) {
        // Credentials are resolved before the call is sent: a refused AssumeRole arrives here, not as the
        // service's own error.
        let text = DisplayErrorContext(&err).to_string();
        let refused = ["AccessDenied", "not authorized"].iter().any(|w| text.contains(w));
        if refused && text.contains("AssumeRole") {
            return CloudError::AccessDenied {
                message: format!(
                    "missing permission sts:AssumeRole (or the role's trust policy refuses Roundtrip or its External ID), needed for {action}: {text}"
                ),
            };
        }
        // No usable credentials at all (none in the chain, expired, unknown key): nothing to retry.
        if text.to_ascii_lowercase().contains("credential") || CREDENTIALS.iter().any(|c| text.contains(c)) {
            return CloudError::AccessDenied {
                message: format!("no usable credentials for {action} (check the base credentials and roles): {text}"),
            };
        }
    }
    match &err {
        SdkError::ServiceError(_) => failure.classify(),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            CloudError::Unavailable {
                message: format!("{action}: {}", DisplayErrorContext(&err)),
                retry_after_ms: None,
            }
        }
        _ => CloudError::Unexpected(anyhow::anyhow!("{action}: {}", DisplayErrorContext(&err))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(status: u16, code: &str, body: serde_json::Value) -> Failure {
        Failure {
            action: "drs:StartRecovery".into(),
            status: Some(status),
            code: (!code.is_empty()).then(|| code.to_owned()),
            message: Some("because".into()),
            retry_after_ms: None,
            body: Some(body),
        }
    }

    #[test]
    fn each_aws_error_becomes_its_domain_outcome() {
        let cases: Vec<(Failure, &str)> = vec![
            (f(429, "ThrottlingException", json!({})), "Throttled"),
            (f(503, "RequestLimitExceeded", json!({})), "Throttled"),
            (f(429, "", json!({})), "Throttled"),
            (f(402, "ServiceQuotaExceededException", json!({"quotaCode": "L-1"})), "QuotaExceeded"),
            (f(403, "AccessDeniedException", json!({})), "AccessDenied"),
            (f(403, "UnauthorizedOperation", json!({})), "AccessDenied"),
            (f(400, "ExpiredToken", json!({})), "AccessDenied"),
            (f(429, "SomethingNew", json!({})), "Throttled"),
            (f(409, "ConflictException", json!({"resourceId": "s-1"})), "Conflict"),
            (f(400, "IncorrectInstanceState", json!({})), "Conflict"),
            (f(404, "ResourceNotFoundException", json!({})), "NotFound"),
            (f(400, "InvalidInstanceID.NotFound", json!({})), "NotFound"),
            (f(400, "ValidationException", json!({"reason": "fieldValidationFailed"})), "Validation"),
            (f(400, "InvalidParameterValue", json!({})), "Validation"),
            (f(400, "UninitializedAccountException", json!({})), "Validation"),
            (f(500, "InternalServerException", json!({})), "Unavailable"),
            (f(503, "", json!({})), "Unavailable"),
            (f(418, "Teapot", json!({})), "Unexpected"),
        ];
        for (failure, want) in cases {
            let what = format!("{failure:?}");
            let got = failure.classify();
            let name = format!("{got:?}");
            assert!(name.starts_with(want), "{what} became {name}, expected {want}");
        }
    }

    #[test]
    fn access_denied_names_the_missing_permission() {
        let mut x = f(403, "AccessDeniedException", json!({}));
        x.message = Some("User: arn:aws:sts::111122223333:assumed-role/dr/s is not authorized to perform: drs:ReverseReplication on resource: arn:x".into());
        let CloudError::AccessDenied { message } = x.classify() else { panic!() };
        assert!(message.starts_with("missing permission drs:ReverseReplication"), "{message}");
        let CloudError::AccessDenied { message } = f(403, "AccessDenied", json!({})).classify() else { panic!() };
        assert!(
            message.starts_with("missing permission drs:StartRecovery"),
            "the called action when AWS names none: {message}"
        );
    }

    #[test]
    fn a_validation_error_carries_drs_reason_and_fields() {
        let x = f(
            400,
            "ValidationException",
            json!({"reason": "fieldValidationFailed", "fieldList": [{"name": "copyPrivateIp", "message": "must be false"}]}),
        );
        let CloudError::Validation { message } = x.classify() else { panic!() };
        assert!(
            message.contains("fieldValidationFailed") && message.contains("copyPrivateIp: must be false"),
            "{message}"
        );
    }

    #[test]
    fn throttling_keeps_the_retry_after_hint() {
        let mut x = f(429, "ThrottlingException", json!({}));
        x.retry_after_ms = Some(3_000);
        assert!(matches!(x.classify(), CloudError::Throttled { retry_after_ms: 3_000 }));
    }
}
