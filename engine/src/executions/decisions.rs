//! People's decisions on an execution (approve, reject, resume, cancel), admitted only while it awaits them,
//! and a request to re-arm what an ended failback left.

use super::refused;
use crate::audit::AuditEvent;
use crate::error::ServiceError;
use crate::services::Services;
use crate::store::Expect;
use domain::auth::Principal;
use domain::execution::{Decision, ExecutionRecord, LogLine};
use domain::execution::{Event, on_event};

/// The audit action of a decision.
pub(super) fn decision_action(d: Decision) -> &'static str {
    match d {
        Decision::Approve => "execution.approve",
        Decision::Reject => "execution.reject",
        Decision::Resume => "execution.resume",
        Decision::Cancel => "execution.cancel",
    }
}

impl Services {
    /// Re-arms what an ended failback left (its clean-up gave up or was abandoned): it runs again,
    /// holding its plan and servers.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] (`INVALID_TRANSITION`) unless it is an ended failback with servers left;
    /// `EXECUTION_IN_PROGRESS` / `SERVERS_IN_EXECUTION` when another execution holds them.
    pub async fn request_re_arm(&self, who: &Principal, id: &str) -> Result<ExecutionRecord, ServiceError> {
        let mut rec = self.get_execution(id).await?;
        let at = self.clock.now_millis();
        let ev = Event::ReArmRequested { by: who.subject.clone(), at };
        let line = ev.summary().map(|message| LogLine { at, message, failure: false });
        rec.state = on_event(rec.state, ev).map_err(|e| refused("event", "INVALID_TRANSITION", e.to_string()))?;
        rec.log.extend(line);
        rec.version = self.lock_and_write(&rec, Expect::Version(rec.version)).await?;
        self.audit.record_or_log(who, AuditEvent::ok("execution.re_arm", id, serde_json::json!({}))).await;
        Ok(rec)
    }

    /// Records a person's decision on an execution: approve or reject a requested recovery, release a gate,
    /// or cancel. Approving and releasing gates follow the two-person rule.
    ///
    /// # Errors
    /// [`ServiceError::ApprovalRefused`] or [`ServiceError::Forbidden`] from the two-person rule;
    /// [`ServiceError::NotAwaiting`] when the execution does not wait for that decision now (a request that
    /// expired, was rejected or already started; no wave at a gate; an ended execution). A refused decision
    /// changes nothing and is audited as refused, never as done.
    pub async fn decide_execution(
        &self,
        who: &Principal,
        id: &str,
        decision: Decision,
        comment: &str,
    ) -> Result<ExecutionRecord, ServiceError> {
        let mut rec = self.get_execution(id).await?;
        let comment: String = comment.chars().take(1000).collect();
        let at = self.clock.now_millis();
        let by = who.subject.clone();
        let event = match decision {
            Decision::Approve => Event::Approved { by, at },
            Decision::Resume => Event::GateReleased { by, at },
            Decision::Reject => Event::Rejected { by, at },
            Decision::Cancel => Event::CancelRequested { by, at },
        };
        // The runner writes the execution as it steps (its lease, what it observed): when such a write lands
        // between this read and this write, the decision is checked and applied again to what is stored now
        // (someone else may have decided first, or the request expired meanwhile).
        let mut tries = 0;
        let rec = loop {
            if let Err(not) = rec.state.admits(decision, at) {
                let details =
                    serde_json::json!({ "phase": not.phase(), "comment": comment, "reason": not.to_string() });
                let event =
                    AuditEvent::ok(decision_action(decision), id, details).with_outcome(crate::audit::Outcome::Refused);
                self.audit.record_or_log(who, event).await;
                return Err(not.into());
            }
            if decision != Decision::Cancel {
                self.auth.authorize_approval(&rec.state.requested_by, who).await?;
            }
            match self.commit(rec, vec![event.clone()]).await {
                Err(ServiceError::VersionConflict { .. }) if tries < 5 => {
                    tries += 1;
                    rec = self.get_execution(id).await?;
                }
                other => break other?,
            }
        };
        let details = serde_json::json!({ "phase": rec.state.phase, "comment": comment });
        self.audit.record_or_log(who, AuditEvent::ok(decision_action(decision), id, details)).await;
        Ok(rec)
    }
}
