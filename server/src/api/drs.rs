//! `/drs/instances/…`: matching and validation against the estate as it is now.

use super::error::{ApiError, ApiJson};
use super::parse_id;
use super::routes::Routes;
use axum::Json;
use axum::extract::State;
use domain::auth::{Access, Permission};

use domain::group::{AccountRegionInput, SelectionInput};
use domain::ids::ProtectionGroupId;
use domain::matching::MatchReport;
use domain::matching::SourceNameKey;
use domain::validation::ValidationReport;
use engine::Services;
use engine::pairs::ExplicitMatch;
use serde::{Deserialize, Serialize};

/// Matching and validation read the estate and write nothing, so any role may run them.
pub fn routes() -> Routes {
    let read = Access::Role(Permission::Read);
    Routes::new()
        .post("/drs/instances/match", read, match_instances)
        .post("/drs/instances/validate-pairs", read, validate_pairs)
        .post("/drs/instances/validate-ip", read, validate_ip)
}

/// Match for a stored group, or for explicit accounts and regions.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchBody {
    protection_group_id: Option<String>,
    primary: Option<AccountRegionInput>,
    dr: Option<AccountRegionInput>,
    #[serde(default)]
    selection: SelectionInput,
    #[serde(default)]
    source_name_key: SourceNameKey,
}

#[derive(Serialize)]
struct MatchAnswer {
    protection_group_id: Option<ProtectionGroupId>,
    #[serde(flatten)]
    report: MatchReport,
    /// Source server ids already paired in the group (with the standby they are paired with).
    accepted: Vec<domain::group::InstancePair>,
}

async fn match_instances(
    State(s): State<Services>,
    ApiJson(body): ApiJson<MatchBody>,
) -> Result<Json<MatchAnswer>, ApiError> {
    if let Some(id) = &body.protection_group_id {
        let id = parse_id("protection_group_id", id, ProtectionGroupId::parse)?;
        let m = s.match_group(&id).await?;
        return Ok(Json(MatchAnswer { protection_group_id: Some(id), report: m.report, accepted: m.accepted }));
    }
    let (Some(primary), Some(dr)) = (&body.primary, &body.dr) else {
        return Err(ApiError::invalid(vec![domain::FieldError::new(
            "protection_group_id",
            "REQUIRED",
            "give a protection_group_id, or both primary and dr accounts and regions",
        )]));
    };
    let mut errs = Vec::new();
    let primary = primary.parse("primary").map_err(|e| errs.extend(e)).ok();
    let dr = dr.parse("dr").map_err(|e| errs.extend(e)).ok();
    let selection = body.selection.parse().map_err(|e| errs.extend(e)).ok();
    let (Some(primary), Some(dr), Some(selection)) = (primary, dr, selection) else {
        return Err(ApiError::invalid(errs));
    };
    let report =
        s.match_explicit(&ExplicitMatch { primary, dr, selection, source_name_key: body.source_name_key }).await?;
    Ok(Json(MatchAnswer { protection_group_id: None, report, accepted: Vec::new() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    #[serde(default)]
    protection_group_id: String,
}

async fn validate_pairs(
    State(s): State<Services>,
    ApiJson(b): ApiJson<GroupBody>,
) -> Result<Json<ValidationReport>, ApiError> {
    let id = parse_id("protection_group_id", &b.protection_group_id, ProtectionGroupId::parse)?;
    Ok(Json(s.validate_pairs(&id).await?))
}

async fn validate_ip(
    State(s): State<Services>,
    ApiJson(b): ApiJson<GroupBody>,
) -> Result<Json<ValidationReport>, ApiError> {
    let id = parse_id("protection_group_id", &b.protection_group_id, ProtectionGroupId::parse)?;
    Ok(Json(s.validate_ips(&id).await?))
}
