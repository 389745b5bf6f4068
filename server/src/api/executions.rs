//! `/executions`: start a drill or a recovery of a plan, decide on it (approve, reject, resume a gate,
//! cancel), and read its progress, once or as Server-Sent Events. The runner loop
//! (`server::spawn_execution_runner`) drives them. `/swapped-volumes` lists the volumes launches swapped out
//! of standbys, with their retention.

use super::Who;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::routes::Routes;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use domain::auth::{Access, Permission};
use domain::execution::{ExecutionStatus, ProofRow, StartFailback, status};
use domain::recovery::SwappedVolume;
use engine::Services;
use engine::executions::{Decision, ExecutionRecord, SharedView, StartExecution};
use futures::Stream;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;

/// How often the event stream looks for a change.
const STREAM_POLL: Duration = Duration::from_millis(500);
/// The longest the stream stays silent while an execution runs (its clocks move).
const STREAM_REFRESH: Duration = Duration::from_secs(5);

pub fn routes() -> Routes {
    let read = Access::Role(Permission::Read);
    let operate = Access::Role(Permission::Operate);
    let approve = Access::Role(Permission::Approve);
    Routes::new()
        .post("/executions/allow-launching/failover", operate, start)
        .post("/executions/allow-launching/failback", operate, start_failback)
        .get("/executions/{execution_id}/round-trip-proof", read, round_trip_proof)
        .get("/executions", read, list)
        .get("/executions/{execution_id}", read, read_one)
        .get("/executions/{execution_id}/allow-launching/status", read, progress)
        .get("/executions/{execution_id}/events", read, events)
        .get("/swapped-volumes", read, swapped_volumes)
        .delete("/swapped-volumes/{volume_id}", operate, delete_swapped_volume)
        .post("/executions/{execution_id}/approve", approve, approve_one)
        .post("/executions/{execution_id}/reject", approve, reject_one)
        .post("/executions/{execution_id}/resume", approve, resume_one)
        .post("/executions/{execution_id}/cancel", operate, cancel_one)
        .post("/executions/{execution_id}/re-arm", operate, re_arm)
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

/// `?dry_run=true` reports which servers would go and which would stay (and why), and the failed prerequisites,
/// without requesting anything.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRun {
    #[serde(default)]
    dry_run: bool,
}

async fn start_failback(
    State(s): State<Services>,
    Who(who): Who,
    ApiQuery(q): ApiQuery<DryRun>,
    ApiJson(req): ApiJson<StartFailback>,
) -> Result<Response, ApiError> {
    if q.dry_run {
        return Ok(Json(s.failback_preview(&who, &req).await?).into_response());
    }
    Ok((StatusCode::CREATED, Json(s.start_failback(&who, &req).await?)).into_response())
}

#[derive(Serialize)]
struct Proof {
    execution_id: String,
    servers: Vec<ProofRow>,
}

async fn round_trip_proof(State(s): State<Services>, ApiPath(id): ApiPath<String>) -> Result<Json<Proof>, ApiError> {
    let servers = s.round_trip_proof(&id).await?;
    Ok(Json(Proof { execution_id: id, servers }))
}

async fn re_arm(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ExecutionRecord>, ApiError> {
    Ok(Json(s.request_re_arm(&who, &id).await?))
}

async fn list(State(s): State<Services>) -> Result<Json<ExecutionList>, ApiError> {
    Ok(Json(ExecutionList { executions: s.list_executions().await? }))
}

async fn read_one(State(s): State<Services>, ApiPath(id): ApiPath<String>) -> Result<Json<ExecutionRecord>, ApiError> {
    Ok(Json(s.get_execution(&id).await?))
}

async fn progress(State(s): State<Services>, ApiPath(id): ApiPath<String>) -> Result<Json<ExecutionStatus>, ApiError> {
    let e = s.shared_execution_view(&id).await?.record;
    Ok(Json(status(&e.state, e.rto_target_minutes, s.clock.now_millis())))
}

#[derive(Serialize)]
struct SwappedVolumeList {
    retention_days: u32,
    volumes: Vec<SwappedVolume>,
}

async fn swapped_volumes(State(s): State<Services>) -> Result<Json<SwappedVolumeList>, ApiError> {
    let volumes = s.swapped_volumes().await?;
    Ok(Json(SwappedVolumeList { retention_days: s.settings.swapped_volume_retention_days, volumes }))
}

async fn delete_swapped_volume(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(volume_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_swapped_volume(&who, &volume_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `event: execution` with an [`domain::execution::ExecutionView`] whenever the execution changes (and every few seconds while
/// it runs); the stream ends after the view that shows it ended.
async fn events(
    State(s): State<Services>,
    ApiPath(id): ApiPath<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let first = s.shared_execution_view(&id).await?;
    struct Cursor {
        s: Services,
        id: String,
        next: Option<SharedView>,
        last: Option<(u64, tokio::time::Instant)>,
        ended: bool,
    }
    let cursor = Cursor { s, id, next: Some(first), last: None, ended: false };
    let stream = futures::stream::unfold(cursor, |mut c| async move {
        if c.ended {
            return None;
        }
        loop {
            let view = match c.next.take() {
                Some(v) => v,
                None => {
                    tokio::time::sleep(STREAM_POLL).await;
                    match c.s.shared_execution_view(&c.id).await {
                        Ok(v) => v,
                        Err(e) => {
                            tracing::warn!(execution_id = %c.id, error = %e, "execution stream read failed");
                            continue;
                        }
                    }
                }
            };
            let stale = c.last.is_none_or(|(v, t)| v != view.version || t.elapsed() >= STREAM_REFRESH);
            if !stale {
                continue;
            }
            c.last = Some((view.version, tokio::time::Instant::now()));
            c.ended = view.ended;
            // Encoded once for every follower: `SharedView::json` is an `ExecutionView` on one line.
            return Some((Ok(SseEvent::default().event("execution").data(&*view.json)), c));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
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
