//! `/protection-groups/{id}/configure-allow-launching`, `/launch-config-status` and `/readiness`.

use super::Who;
use super::error::{ApiError, ApiJson, ApiPath};
use super::groups::group_id;
use super::routes::Routes;
use axum::Json;
use axum::extract::State;
use domain::auth::{Access, Permission};

use domain::FieldError;
use domain::ids::PairId;
use domain::launch::{ConfigureOutcome, LaunchConfigStatus};
use engine::Services;
use engine::launch::ConfigureRequest;
use engine::readiness::{ReadinessView, VerdictSummary};
use serde::Deserialize;

pub fn routes() -> Routes {
    let read = Access::Role(Permission::Read);
    let operate = Access::Role(Permission::Operate);
    Routes::new()
        .post("/protection-groups/{id}/configure-allow-launching", operate, configure)
        .post("/protection-groups/{id}/configure-allow-launching/rollback", operate, rollback)
        .get("/protection-groups/{id}/launch-config-status", read, status)
        .get("/protection-groups/{id}/readiness", read, readiness)
        .post("/protection-groups/{id}/readiness", operate, evaluate)
        .get("/readiness", read, verdicts)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigureBody {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    pair_ids: Option<Vec<String>>,
}

fn pair_ids(raw: Option<&[String]>) -> Result<Option<Vec<PairId>>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let mut errs = Vec::new();
    let mut out = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        match PairId::parse(p.trim()) {
            Ok(id) => out.push(id),
            Err(e) => errs.push(FieldError::new(format!("pair_ids[{i}]"), e.code, e.message)),
        }
    }
    if raw.is_empty() {
        errs.push(FieldError::new(
            "pair_ids",
            "REQUIRED",
            "list at least one pair id, or leave pair_ids out for all pairs",
        ));
    }
    if errs.is_empty() { Ok(Some(out)) } else { Err(ApiError::invalid(errs)) }
}

async fn configure(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ConfigureBody>,
) -> Result<Json<ConfigureOutcome>, ApiError> {
    let id = group_id(&id)?;
    let req = ConfigureRequest { dry_run: body.dry_run, pair_ids: pair_ids(body.pair_ids.as_deref())? };
    Ok(Json(s.configure_launch_into(&id, &req, &who).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    #[serde(default)]
    pair_ids: Option<Vec<String>>,
}

async fn rollback(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> Result<Json<ConfigureOutcome>, ApiError> {
    let id = group_id(&id)?;
    let subset = pair_ids(body.pair_ids.as_deref())?;
    Ok(Json(s.rollback_launch_into(&id, subset.as_deref(), &who).await?))
}

#[derive(serde::Serialize)]
struct StatusList {
    servers: Vec<LaunchConfigStatus>,
}

async fn status(State(s): State<Services>, ApiPath(id): ApiPath<String>) -> Result<Json<StatusList>, ApiError> {
    Ok(Json(StatusList { servers: s.launch_config_status(&group_id(&id)?).await? }))
}

async fn readiness(State(s): State<Services>, ApiPath(id): ApiPath<String>) -> Result<Json<ReadinessView>, ApiError> {
    Ok(Json(s.readiness(&group_id(&id)?).await?))
}

async fn evaluate(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReadinessView>, ApiError> {
    Ok(Json(s.evaluate_readiness_for(&who, &group_id(&id)?).await?))
}

#[derive(serde::Serialize)]
struct Verdicts {
    protection_groups: Vec<VerdictSummary>,
}

async fn verdicts(State(s): State<Services>) -> Result<Json<Verdicts>, ApiError> {
    Ok(Json(Verdicts { protection_groups: s.verdicts().await? }))
}
