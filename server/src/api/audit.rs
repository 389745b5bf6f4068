//! `/audit`: the audit trail, filtered, exported as JSON, JSON lines or CSV, and verified.

use super::error::{ApiError, ApiQuery};
use super::routes::Routes;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::ErrorCode;
use domain::auth::{Access, Permission};
use engine::Services;
use engine::audit::{AuditEntry, AuditFilter, ChainReport};
use serde::Deserialize;

pub fn routes() -> Routes {
    let read = Access::Role(Permission::Read);
    Routes::new().get("/audit", read, list).get("/audit/verify", read, verify)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    limit: Option<usize>,
    /// `json` (default), `jsonl` or `csv`.
    format: Option<String>,
}

#[derive(serde::Serialize)]
struct AuditList {
    entries: Vec<AuditEntry>,
}

async fn list(State(s): State<Services>, ApiQuery(q): ApiQuery<AuditQuery>) -> Result<Response, ApiError> {
    let filter = AuditFilter {
        actor: q.actor.filter(|v| !v.is_empty()),
        action: q.action.filter(|v| !v.is_empty()),
        target: q.target.filter(|v| !v.is_empty()),
        since: q.since,
        until: q.until,
        limit: q.limit,
    };
    let entries = s.audit.query(&filter).await.map_err(engine::ServiceError::from)?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(AuditList { entries }).into_response()),
        "jsonl" => {
            let body: String = entries.iter().map(|e| serde_json::to_string(e).unwrap_or_default() + "\n").collect();
            Ok(download(body, "application/x-ndjson", "roundtrip-audit.jsonl"))
        }
        "csv" => Ok(download(to_csv(&entries), "text/csv; charset=utf-8", "roundtrip-audit.csv")),
        other => Err(ApiError::invalid(vec![domain::FieldError::new(
            "format",
            "INVALID_FORMAT",
            format!("format {other:?} is not one of json, jsonl, csv"),
        )])),
    }
}

fn download(body: String, content_type: &'static str, name: &str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

/// One CSV field: quoted, quotes doubled, and a leading `=`, `+`, `-`, `@`, tab or carriage return defused
/// so a spreadsheet does not run it as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() };
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn to_csv(entries: &[AuditEntry]) -> String {
    let mut out = String::from("seq,at,actor,action,target,outcome,details,prev_hash,hash\n");
    for e in entries {
        let outcome =
            serde_json::to_value(e.outcome).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let row = [
            e.seq.to_string(),
            e.at.to_string(),
            csv_field(&e.actor),
            csv_field(&e.action),
            csv_field(&e.target),
            outcome,
            csv_field(&e.details.to_string()),
            e.prev_hash.clone(),
            e.hash.clone(),
        ];
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// 200 with the report when the chain is intact, 409 with the same report when it is not.
async fn verify(State(s): State<Services>) -> Result<Response, ApiError> {
    let report: ChainReport = s.audit.verify().await.map_err(engine::ServiceError::from)?;
    if report.intact {
        Ok(Json(report).into_response())
    } else {
        tracing::error!(problems = report.problems.len(), "the audit chain does not verify");
        let mut e = ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::AuditChainBroken,
            format!("the audit chain is broken at {} place(s); see details", report.problems.len()),
        );
        e.details = serde_json::to_value(&report).unwrap_or_default();
        Ok(e.into_response())
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
    }
}
