//! `/protection-groups/{id}/instance-pairs`: accept pairs from a match report, set one by hand, remove one.

use super::Who;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::groups::{VersionQuery, group_id};
use super::parse_id;
use super::routes::Routes;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::auth::{Access, Permission};

use domain::FieldError;
use domain::group::{InstancePair, PairRequest};
use domain::ids::{InstanceId, PairId, SourceServerId};
use engine::Services;
use engine::services::AcceptOutcome;
use serde::Deserialize;

pub fn routes() -> Routes {
    let operate = Access::Role(Permission::Operate);
    Routes::new()
        .get("/protection-groups/{id}/instance-pairs", Access::Role(Permission::Read), list)
        .post("/protection-groups/{id}/instance-pairs", operate, accept)
        .put("/protection-groups/{id}/instance-pairs/{pair_id}", operate, set)
        .delete("/protection-groups/{id}/instance-pairs/{pair_id}", operate, remove)
}

#[derive(serde::Serialize)]
struct PairList {
    pairs: Vec<InstancePair>,
}

async fn list(State(s): State<Services>, ApiPath(id): ApiPath<String>) -> Result<Json<PairList>, ApiError> {
    Ok(Json(PairList { pairs: s.list_pairs(&group_id(&id)?).await? }))
}

#[derive(Deserialize)]
struct PairInput {
    #[serde(default)]
    source_server_id: String,
    #[serde(default)]
    standby_instance_id: String,
}

#[derive(Deserialize)]
struct AcceptBody {
    pairs: Vec<PairInput>,
}

/// Parses every pair of a request, collecting every bad field.
fn parse_pairs(pairs: &[PairInput]) -> Result<Vec<PairRequest>, ApiError> {
    let mut errs = Vec::new();
    let mut out = Vec::with_capacity(pairs.len());
    for (i, p) in pairs.iter().enumerate() {
        let s = SourceServerId::parse(p.source_server_id.trim());
        let t = InstanceId::parse(p.standby_instance_id.trim());
        match (s, t) {
            (Ok(source_server_id), Ok(standby_instance_id)) => {
                out.push(PairRequest { source_server_id, standby_instance_id })
            }
            (s, t) => {
                if let Err(e) = s {
                    errs.push(FieldError::new(format!("pairs[{i}].source_server_id"), e.code, e.message));
                }
                if let Err(e) = t {
                    errs.push(FieldError::new(format!("pairs[{i}].standby_instance_id"), e.code, e.message));
                }
            }
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(ApiError::invalid(errs)) }
}

async fn accept(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<AcceptBody>,
) -> Result<(StatusCode, Json<AcceptOutcome>), ApiError> {
    let id = group_id(&id)?;
    let pairs = parse_pairs(&body.pairs)?;
    let outcome = s.accept_pairs(&id, &pairs, &who).await?;
    let status = if outcome.accepted.is_empty() { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(outcome)))
}

#[derive(Deserialize)]
struct SetBody {
    #[serde(default)]
    standby_instance_id: String,
    expected_version: Option<u64>,
}

async fn set(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath((id, pair_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SetBody>,
) -> Result<Json<InstancePair>, ApiError> {
    let id = group_id(&id)?;
    let pair_id = parse_id("pair_id", &pair_id, PairId::parse)?;
    let standby = parse_id("standby_instance_id", body.standby_instance_id.trim(), InstanceId::parse)?;
    Ok(Json(s.set_pair(&id, &pair_id, &standby, body.expected_version, &who).await?))
}

async fn remove(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath((id, pair_id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> Result<StatusCode, ApiError> {
    let id = group_id(&id)?;
    let pair_id = parse_id("pair_id", &pair_id, PairId::parse)?;
    s.delete_pair(&who, &id, &pair_id, q.expected_version).await?;
    Ok(StatusCode::NO_CONTENT)
}
