//! `/protection-groups`: create, list, read, replace and delete protection groups.

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::parse_id;
use super::routes::Routes;
use super::{Who, with_expected_version};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::auth::{Access, Permission};

use domain::group::{ProtectionGroup, ProtectionGroupInput};
use domain::ids::ProtectionGroupId;
use engine::Services;
use engine::services::GroupSummary;
use serde::Deserialize;

pub fn routes() -> Routes {
    let read_ = Access::Role(Permission::Read);
    let operate = Access::Role(Permission::Operate);
    Routes::new()
        .get("/protection-groups", read_, list)
        .post("/protection-groups", operate, create)
        .get("/protection-groups/{id}", read_, read)
        .put("/protection-groups/{id}", operate, replace)
        .delete("/protection-groups/{id}", operate, remove)
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
    Who(who): Who,
    ApiJson(input): ApiJson<ProtectionGroupInput>,
) -> Result<(StatusCode, Json<ProtectionGroup>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.create_group(&who, &input).await?)))
}

pub(super) fn group_id(text: &str) -> Result<ProtectionGroupId, ApiError> {
    parse_id("id", text, ProtectionGroupId::parse)
}

async fn read(State(s): State<Services>, ApiPath(id): ApiPath<String>) -> Result<Json<ProtectionGroup>, ApiError> {
    Ok(Json(s.get_group(&group_id(&id)?).await?))
}

/// A replacement: the group's fields plus, optionally, `expected_version` (the version the client read).
async fn replace(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<ProtectionGroup>, ApiError> {
    let (input, expected): (ProtectionGroupInput, _) = with_expected_version(body, "a protection group")?;
    Ok(Json(s.update_group(&who, &group_id(&id)?, &input, expected).await?))
}

#[derive(Deserialize)]
pub(super) struct VersionQuery {
    pub expected_version: Option<u64>,
}

async fn remove(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> Result<StatusCode, ApiError> {
    s.delete_group(&who, &group_id(&id)?, q.expected_version).await?;
    Ok(StatusCode::NO_CONTENT)
}
