//! REST API v1 under `/api/v1`: thin handlers that parse, call one service and map the result.
//! Each resource module exports `router()`; this module merges them and adds the JSON error fallbacks.

pub mod drs;
pub mod error;
pub mod groups;
pub mod launch;
pub mod openapi;
pub mod pairs;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::get;
use engine::Services;
use error::{ApiError, method_not_allowed, route_not_found};
use serde_json::{Value, json};

/// Parses an id from a path or body field, answering a 400 that names the field.
pub fn parse_id<T>(
    field: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, domain::ids::IdError>,
) -> Result<T, ApiError> {
    parse(text).map_err(|e| ApiError::invalid(vec![domain::FieldError::new(field, e.code, e.message)]))
}

/// The REST API, with its state applied.
pub fn router(services: Services, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/estate", get(estate))
        .route("/openapi.json", get(openapi::document))
        .merge(groups::router())
        .merge(pairs::router())
        .merge(drs::router())
        .merge(launch::router())
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
