//! `/recovery-plans`: ordered waves of pairs, validated on every save.

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::groups::VersionQuery;
use super::routes::Routes;
use super::{Who, with_expected_version};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::auth::{Access, Permission};
use engine::Services;
use engine::plans::{RecoveryPlan, RecoveryPlanInput};

pub fn routes() -> Routes {
    let read = Access::Role(Permission::Read);
    let operate = Access::Role(Permission::Operate);
    Routes::new()
        .get("/recovery-plans", read, list)
        .post("/recovery-plans", operate, create)
        .get("/recovery-plans/{plan_id}", read, read_one)
        .put("/recovery-plans/{plan_id}", operate, replace)
        .delete("/recovery-plans/{plan_id}", operate, remove)
}

#[derive(serde::Serialize)]
struct PlanList {
    recovery_plans: Vec<RecoveryPlan>,
}

async fn list(State(s): State<Services>) -> Result<Json<PlanList>, ApiError> {
    Ok(Json(PlanList { recovery_plans: s.list_plans().await? }))
}

/// Without `waves`, the waves are derived from the pairs' `dr:wave` tags.
async fn create(
    State(s): State<Services>,
    Who(who): Who,
    ApiJson(input): ApiJson<RecoveryPlanInput>,
) -> Result<(StatusCode, Json<RecoveryPlan>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.create_plan(&who, &input).await?)))
}

async fn read_one(State(s): State<Services>, ApiPath(id): ApiPath<String>) -> Result<Json<RecoveryPlan>, ApiError> {
    Ok(Json(s.get_plan(&id).await?))
}

async fn replace(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<RecoveryPlan>, ApiError> {
    let (input, expected): (RecoveryPlanInput, _) = with_expected_version(body, "a recovery plan")?;
    Ok(Json(s.update_plan(&who, &id, &input, expected).await?))
}

async fn remove(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> Result<StatusCode, ApiError> {
    s.delete_plan(&who, &id, q.expected_version).await?;
    Ok(StatusCode::NO_CONTENT)
}
