//! `/protection-groups`: create, list, read, replace and delete protection groups.

use super::error::{ApiError, ApiJson};
use super::parse_id;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use domain::group::{ProtectionGroup, ProtectionGroupInput};
use domain::ids::ProtectionGroupId;
use engine::Services;
use engine::services::GroupSummary;
use serde::Deserialize;

pub fn router() -> Router<Services> {
    Router::new()
        .route("/protection-groups", get(list).post(create))
        .route("/protection-groups/{id}", get(read).put(replace).delete(remove))
}

#[derive(serde::Serialize)]
struct GroupList {
    protection_groups: Vec<GroupSummary>,
}

async fn list(State(s): State<Services>) -> Result<Json<GroupList>, ApiError> {
    Ok(Json(GroupList { protection_groups: s.list_groups().await? }))
}

async fn create(
    State(s): State<Services>,
    ApiJson(input): ApiJson<ProtectionGroupInput>,
) -> Result<(StatusCode, Json<ProtectionGroup>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.create_group(&input).await?)))
}

pub(super) fn group_id(text: &str) -> Result<ProtectionGroupId, ApiError> {
    parse_id("id", text, ProtectionGroupId::parse)
}

async fn read(State(s): State<Services>, Path(id): Path<String>) -> Result<Json<ProtectionGroup>, ApiError> {
    Ok(Json(s.get_group(&group_id(&id)?).await?))
}

/// A replacement: the group's fields plus, optionally, the version the client last read.
#[derive(Deserialize)]
struct Replace {
    #[serde(flatten)]
    input: ProtectionGroupInput,
    expected_version: Option<u64>,
}

async fn replace(
    State(s): State<Services>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Replace>,
) -> Result<Json<ProtectionGroup>, ApiError> {
    Ok(Json(s.update_group(&group_id(&id)?, &body.input, body.expected_version).await?))
}

#[derive(Deserialize)]
pub(super) struct VersionQuery {
    pub expected_version: Option<u64>,
}

async fn remove(
    State(s): State<Services>,
    Path(id): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Result<StatusCode, ApiError> {
    s.delete_group(&group_id(&id)?, q.expected_version).await?;
    Ok(StatusCode::NO_CONTENT)
}
