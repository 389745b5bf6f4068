//! `/executions`: start a drill or a recovery of a plan, decide on it (approve, reject, resume a gate,
//! cancel), and read its progress. The runner loop (`server::spawn_execution_runner`) drives them.

use super::Who;
use super::error::{ApiError, ApiJson, ApiPath};
use super::routes::Routes;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::auth::{Access, Permission};
use domain::execution::{ExecutionStatus, status};
use engine::Services;
use engine::executions::{Decision, ExecutionRecord, StartExecution};
use serde::{Deserialize, Serialize};

pub fn routes() -> Routes {
    let read = Access::Role(Permission::Read);
    let operate = Access::Role(Permission::Operate);
    let approve = Access::Role(Permission::Approve);
    Routes::new()
        .post("/executions/allow-launching/failover", operate, start)
        .get("/executions", read, list)
        .get("/executions/{execution_id}", read, read_one)
        .get("/executions/{execution_id}/allow-launching/status", read, progress)
        .post("/executions/{execution_id}/approve", approve, approve_one)
        .post("/executions/{execution_id}/reject", approve, reject_one)
        .post("/executions/{execution_id}/resume", approve, resume_one)
        .post("/executions/{execution_id}/cancel", operate, cancel_one)
}

#[derive(Serialize)]
struct ExecutionList {
    executions: Vec<ExecutionRecord>,
}

/// A decision's reason, required for approvals and rejections.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    comment: String,
}

async fn start(
    State(s): State<Services>,
    Who(who): Who,
    ApiJson(req): ApiJson<StartExecution>,
) -> Result<(StatusCode, Json<ExecutionRecord>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.start_execution(&who, &req).await?)))
}

async fn list(State(s): State<Services>) -> Result<Json<ExecutionList>, ApiError> {
    Ok(Json(ExecutionList { executions: s.list_executions().await? }))
}

async fn read_one(State(s): State<Services>, ApiPath(id): ApiPath<String>) -> Result<Json<ExecutionRecord>, ApiError> {
    Ok(Json(s.get_execution(&id).await?))
}

async fn progress(State(s): State<Services>, ApiPath(id): ApiPath<String>) -> Result<Json<ExecutionStatus>, ApiError> {
    let e = s.get_execution(&id).await?;
    Ok(Json(status(&e.state, e.rto_target_minutes, s.clock.now_millis())))
}

async fn decide(
    s: &Services,
    who: &domain::auth::Principal,
    id: &str,
    decision: Decision,
    body: DecisionBody,
) -> Result<Json<ExecutionRecord>, ApiError> {
    if matches!(decision, Decision::Approve | Decision::Reject) && body.comment.trim().is_empty() {
        return Err(ApiError::invalid(vec![domain::FieldError::new(
            "comment",
            "REQUIRED",
            "say why: an approval or rejection needs a comment",
        )]));
    }
    Ok(Json(s.decide_execution(who, id, decision, body.comment.trim()).await?))
}

async fn approve_one(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> Result<Json<ExecutionRecord>, ApiError> {
    decide(&s, &who, &id, Decision::Approve, body).await
}

async fn reject_one(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> Result<Json<ExecutionRecord>, ApiError> {
    decide(&s, &who, &id, Decision::Reject, body).await
}

async fn resume_one(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> Result<Json<ExecutionRecord>, ApiError> {
    decide(&s, &who, &id, Decision::Resume, body).await
}

async fn cancel_one(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DecisionBody>,
) -> Result<Json<ExecutionRecord>, ApiError> {
    decide(&s, &who, &id, Decision::Cancel, body).await
}
