//! The one error type of the REST API: a stable code, a message a person can act on, details, and the
//! HTTP status. Internals are logged with their cause chain and never sent to the client.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::{ErrorCode, FieldError};
use engine::ServiceError;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// An error answered as `{"error":{"code","message","details"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: json!({}) }
    }

    /// A 400 for invalid fields.
    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let message = match fields.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self {
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::ValidationFailed,
            message,
            details: json!({ "fields": fields }),
        }
    }

    /// The status a stable code is answered with.
    pub fn status_of(code: ErrorCode) -> StatusCode {
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let code = e.code();
        if matches!(code, ErrorCode::Internal | ErrorCode::CloudError) {
            tracing::error!(error = ?e, "request failed");
        }
        Self { status: Self::status_of(code), code, message: e.public_message(), details: e.details() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.details.get("retry_after_secs").and_then(Value::as_u64);
        let body = json!({ "error": { "code": self.code, "message": self.message, "details": self.details } });
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        r
    }
}

/// A JSON body whose rejections are answered in the API's error format.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            "the request body is larger than the server accepts; send fewer items per request",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with `Content-Type: application/json`",
        ),
        _ => {
            let mut e = ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedJson,
                "the body is not valid JSON of the expected shape",
            );
            e.details = json!({ "reason": r.body_text() });
            e
        }
    }
}

/// The 401 an anonymous caller gets instead of any other answer: without signing in, the API says nothing
/// about which routes exist.
fn anonymous(who: Option<&axum::Extension<domain::auth::Principal>>) -> Option<ApiError> {
    who.is_none().then(|| ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, "sign in first"))
}

/// Answers unknown API routes.
pub async fn route_not_found(who: Option<axum::Extension<domain::auth::Principal>>, uri: axum::http::Uri) -> ApiError {
    if let Some(e) = anonymous(who.as_ref()) {
        return e;
    }
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::RouteNotFound, format!("no API route {}", uri.path()))
}

/// Answers a known path with the wrong method.
pub async fn method_not_allowed(
    who: Option<axum::Extension<domain::auth::Principal>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> ApiError {
    if let Some(e) = anonymous(who.as_ref()) {
        return e;
    }
    let mut e = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::RouteNotFound,
        format!("{} is not allowed on {}", method, uri.path()),
    );
    e.details = json!({ "method": method.as_str() });
    e
}

/// A 400 for a request part (path, query string) that does not parse.
fn invalid_part(what: &str, reason: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::ValidationFailed, format!("the {what} is not valid: {reason}"))
}

/// Path parameters whose rejections are answered in the API's error format.
pub struct ApiPath<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Self(v)),
            Err(r) => Err(invalid_part("path", &r.body_text())),
        }
    }
}

/// Query parameters whose rejections are answered in the API's error format.
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(r) => Err(invalid_part("query string", &r.body_text())),
        }
    }
}
