//! Evidence reports: `/executions/{id}/report` (JSON, or `?format=html` for the printable page) and
//! `/reports`, the history of ended executions with their RTO.

use super::error::{ApiError, ApiPath, ApiQuery};
use super::routes::Routes;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use domain::auth::{Access, Permission};
use domain::execution::Mode;
use domain::report::ReportSummary;
use engine::Services;
use serde::{Deserialize, Serialize};

pub fn routes() -> Routes {
    let read = Access::Role(Permission::Read);
    Routes::new().get("/executions/{execution_id}/report", read, report).get("/reports", read, history)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// `json` (default) or `html`.
    format: Option<String>,
    /// Ask the browser to save it instead of showing it.
    #[serde(default)]
    download: bool,
}

/// The page's own policy: its inline styles, nothing else (no scripts, no requests).
const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

async fn report(
    State(s): State<Services>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    let format = q.format.as_deref().unwrap_or("json");
    if format != "json" && format != "html" {
        return Err(ApiError::invalid(vec![domain::FieldError::new(
            "format",
            "INVALID_FORMAT",
            format!("format {format:?} is not one of json, html"),
        )]));
    }
    let report = s.evidence_report(&id).await?;
    let safe_id: String = report.execution_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    let mut r = if format == "html" {
        let mut r =
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], domain::report::to_html(&report)).into_response();
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(REPORT_CSP));
        r
    } else {
        Json(report).into_response()
    };
    if q.download {
        let name = format!("attachment; filename=\"roundtrip-report-{safe_id}.{format}\"");
        if let Ok(v) = HeaderValue::from_str(&name) {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    /// `drill`, `recovery` or `failback`; all when absent.
    mode: Option<Mode>,
    plan_id: Option<String>,
}

#[derive(Serialize)]
struct History {
    /// Oldest first.
    reports: Vec<ReportSummary>,
}

async fn history(State(s): State<Services>, ApiQuery(q): ApiQuery<HistoryQuery>) -> Result<Json<History>, ApiError> {
    let plan = q.plan_id.as_deref().filter(|p| !p.is_empty());
    Ok(Json(History { reports: s.report_history(q.mode, plan).await? }))
}
