//! Evidence reports: the report of one execution, and the history of ended executions with their RTO.

use crate::error::ServiceError;
use crate::services::Services;
use domain::audit::AuditFilter;
use domain::execution::Mode;
pub use domain::report::{EvidenceReport, ReportSummary};

impl Services {
    /// The evidence report of an execution (it may still be running: the report says so).
    ///
    /// # Errors
    /// [`ServiceError::ExecutionNotFound`]; store failures.
    pub async fn evidence_report(&self, id: &str) -> Result<EvidenceReport, ServiceError> {
        let rec = self.get_execution(id).await?;
        let filter = AuditFilter {
            target: Some(rec.id.clone()),
            limit: Some(domain::audit::MAX_QUERY_LIMIT),
            ..AuditFilter::default()
        };
        let entries = self.audit.query(&filter).await?;
        let chain = self.audit.verify().await?;
        let proof = match &rec.failback {
            Some(_) => Some(self.round_trip_proof(id).await?),
            None => None,
        };
        Ok(domain::report::build(&rec, &entries, proof, chain.intact, self.wall_clock.now_millis()))
    }

    /// Ended executions, oldest first, optionally of one mode and one plan: the drill history and its RTO
    /// trend.
    ///
    /// # Errors
    /// Store failures.
    pub async fn report_history(
        &self,
        mode: Option<Mode>,
        plan_id: Option<&str>,
    ) -> Result<Vec<ReportSummary>, ServiceError> {
        let mut out: Vec<ReportSummary> = self
            .list_executions()
            .await?
            .iter()
            .filter(|e| e.state.phase.is_terminal())
            .filter(|e| mode.is_none_or(|m| e.state.mode == m))
            .filter(|e| plan_id.is_none_or(|p| e.plan_id == p))
            .map(ReportSummary::of)
            .collect();
        out.sort_by_key(|s| s.requested_at);
        Ok(out)
    }
}
