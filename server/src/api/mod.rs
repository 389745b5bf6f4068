//! REST API v1 under `/api/v1`: thin handlers that parse, call one service and map the result.
//! Each resource module exports `routes()`, where every route declares its access; this module merges them,
//! puts the authorisation layer over them and adds the JSON error fallbacks.

pub mod admin;
pub mod audit;
pub mod drs;
pub mod error;
pub mod executions;
pub mod groups;
pub mod launch;
pub mod notify;
pub mod openapi;
pub mod pairs;
pub mod plans;
pub mod reports;
pub mod routes;
pub mod session;
pub mod share;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use domain::auth::{Access, Permission, Principal};
use engine::Services;
use error::{ApiError, method_not_allowed, route_not_found};
use routes::{RouteRule, Routes};
use serde_json::{Value, json};

pub use routes::PREFIX;

/// The signed-in identity of a request; a 401 when there is none (the route's access layer ran first).
pub struct Who(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Principal>().cloned().map(Who).ok_or_else(|| {
            ApiError::new(axum::http::StatusCode::UNAUTHORIZED, domain::ErrorCode::Unauthenticated, "sign in first")
        })
    }
}

/// Parses an id from a path or body field, answering a 400 that names the field.
pub fn parse_id<T>(
    field: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, domain::ids::IdError>,
) -> Result<T, ApiError> {
    parse(text).map_err(|e| ApiError::invalid(vec![domain::FieldError::new(field, e.code, e.message)]))
}

/// Splits a replacement body into the resource and its optional `expected_version` (the version the
/// client read).
///
/// # Errors
/// A 400 naming the field when `expected_version` is not a whole number or the rest is not `what`.
pub fn with_expected_version<T: serde::de::DeserializeOwned>(
    mut body: Value,
    what: &str,
) -> Result<(T, Option<u64>), ApiError> {
    let expected = match body.as_object_mut().and_then(|o| o.remove("expected_version")) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            ApiError::invalid(vec![domain::FieldError::new(
                "expected_version",
                "NOT_A_VERSION",
                "expected_version is a whole number: the version you read",
            )])
        })?),
    };
    let input = serde_json::from_value(body).map_err(|e| {
        let mut err = ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            domain::ErrorCode::MalformedJson,
            format!("the body is not {what}"),
        );
        err.details = json!({ "reason": e.to_string() });
        err
    })?;
    Ok((input, expected))
}

/// Every REST route with its declared access.
pub fn routes() -> Routes {
    Routes::new()
        .get("/health", Access::Public, health)
        .get("/openapi.json", Access::Public, openapi::document)
        .get("/estate", Access::Role(Permission::Read), estate)
        .merge(session::routes())
        .merge(groups::routes())
        .merge(pairs::routes())
        .merge(drs::routes())
        .merge(launch::routes())
        .merge(plans::routes())
        .merge(executions::routes())
        .merge(admin::routes())
        .merge(audit::routes())
        .merge(share::routes())
        .merge(notify::routes())
        .merge(reports::routes())
}

/// The declared routes, for the OpenAPI document and the role-matrix test.
pub fn route_rules() -> Vec<RouteRule> {
    routes().rules().to_vec()
}

/// The REST API, with its state applied.
pub fn router(services: Services, max_body_bytes: usize) -> Router {
    let (router, _) = routes().into_parts();
    router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(services)
}

async fn health(State(s): State<Services>) -> axum::Json<Value> {
    let info = s.cloud_info();
    axum::Json(json!({ "status": "ok", "cloud": info.kind, "version": env!("CARGO_PKG_VERSION") }))
}

async fn estate(State(s): State<Services>) -> Result<axum::Json<domain::estate::EstateOverview>, ApiError> {
    Ok(axum::Json(s.overview().await?))
}
