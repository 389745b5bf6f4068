//! Starting an execution: the readiness gate, one execution per plan and per server at a time, approval
//! for real recoveries.

use super::{blocking_checks, note_readiness, refused};
use crate::audit::AuditEvent;
use crate::error::ServiceError;
use crate::repo;
use crate::services::Services;
use domain::FieldError;
use domain::auth::Principal;
use domain::estate::AccountRegion;
use domain::execution::{ExecutionRecord, LogLine, StartExecution};
use domain::execution::{ExecutionState, FailoverKind, Mode, ServerRun, WaveRun, WaveState};
use domain::ids::SourceServerId;
use domain::matching::Severity;
use std::collections::HashMap;

impl Services {
    /// Starts an execution of a plan: a drill runs at once, a recovery waits for a second person.
    ///
    /// # Errors
    /// [`ServiceError::PlanNotFound`]; [`ServiceError::Invalid`] when readiness blocks a server, the plan's
    /// groups recover into different places, or the plan already has a live execution.
    pub async fn start_execution(
        &self,
        who: &Principal,
        req: &StartExecution,
    ) -> Result<ExecutionRecord, ServiceError> {
        if req.mode == Mode::Failback {
            return Err(refused(
                "mode",
                "USE_FAILBACK",
                "a failback starts from a recovery: POST /api/v1/executions/allow-launching/failback".into(),
            ));
        }
        let plan = self.get_plan(&req.plan_id).await?;
        let mut dr: Option<AccountRegion> = None;
        let mut pairs = HashMap::new();
        let mut problems = Vec::new();
        let mut at_start = domain::execution::ReadinessAtStart::default();
        for g in &plan.protection_group_ids {
            let group = self.get_group(g).await?;
            if dr.as_ref().is_some_and(|d| d != &group.dr) {
                return Err(refused(
                    "plan_id",
                    "MIXED_DR_REGIONS",
                    "the plan's groups recover into different accounts or regions; make one plan per DR account and region".into(),
                ));
            }
            dr = Some(group.dr.clone());
            for p in repo::list_pairs(&*self.store, Some(g)).await? {
                pairs.insert(p.id.clone(), p);
            }
            // Readiness now, not as it was: critical checks block; warnings block unless acknowledged.
            let readiness = self.evaluate_readiness(g).await?.readiness;
            at_start.evaluated_at = at_start.evaluated_at.max(readiness.evaluated_at);
            for pr in readiness.pairs.iter().filter(|pr| plan.waves.iter().any(|w| w.pair_ids.contains(&pr.pair_id))) {
                note_readiness(&mut at_start, pr);
                let failing = blocking_checks(pr, req.mode, req.kind, req.acknowledge_warnings);
                if failing.is_empty() {
                    continue;
                }
                let critical = failing.iter().any(|c| c.severity == Severity::Critical);
                let ids: Vec<&str> = failing.iter().map(|c| c.id.as_str()).collect();
                problems.push(FieldError::new(
                    pr.pair_id.to_string(),
                    if critical { "NOT_READY" } else { "WARNINGS_NOT_ACKNOWLEDGED" },
                    format!("{}: {}", pr.source_name, ids.join(", ")),
                ));
            }
        }
        // A pair removed since the plan was saved would silently drop a server: refuse instead.
        for w in &plan.waves {
            for id in w.pair_ids.iter().filter(|id| !pairs.contains_key(*id)) {
                problems.push(FieldError::new(
                    id.to_string(),
                    "PAIR_GONE",
                    format!(
                        "wave {} names {id}, which is no longer a pair of the plan's groups; edit the plan",
                        domain::text::quoted(&w.name)
                    ),
                ));
            }
        }
        if req.mode == Mode::Drill && req.kind == FailoverKind::Planned {
            problems.push(FieldError::new(
                "kind",
                "PLANNED_DRILL",
                "a drill never touches the source side; a planned failover is a recovery",
            ));
        }
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems));
        }
        let Some(dr) = dr else {
            return Err(refused("plan_id", "EMPTY_PLAN", "the plan names no protection group".into()));
        };
        let ids: Vec<SourceServerId> = pairs.values().map(|p| p.source_server_id.clone()).collect();
        let (sources, recovered) = tokio::try_join!(
            self.retried(|| self.cloud.describe_source_servers(&dr)),
            self.retried(|| self.cloud.describe_recovery_instances(&dr, &ids)),
        )?;
        let waves: Vec<WaveRun> = plan
            .waves
            .iter()
            .map(|w| WaveRun {
                name: w.name.clone(),
                pause_before: w.pause_before,
                on_failure: w.on_failure,
                timeout_ms: i64::from(w.timeout_minutes) * 60_000,
                state: WaveState::Pending,
                started_at: None,
                ended_at: None,
                readiness_checked_at: None,
                servers: w
                    .pair_ids
                    .iter()
                    .filter_map(|id| pairs.get(id))
                    .map(|p| {
                        let mut run = ServerRun::waiting(
                            p.source_server_id.clone(),
                            p.standby_instance_id.clone(),
                            p.standby_private_ip,
                        );
                        run.name = p.source_name.chars().take(domain::estate::MAX_TAG_VALUE_CHARS).collect();
                        if let Some(src) = sources.iter().find(|s| s.source_server_id == p.source_server_id) {
                            run.source_instance_id = src.source_instance_id.clone();
                            run.origin = Some(AccountRegion {
                                account_id: src.origin_account_id.clone(),
                                region: src.origin_region.clone(),
                            });
                        }
                        run
                    })
                    .collect::<Vec<_>>()
                    .into(),
            })
            .collect();
        for run in waves.iter().flat_map(|w| w.servers.iter()) {
            // A launch would make DRS delete its previous recovery instance: with launch-into, the standby.
            if recovered
                .iter()
                .any(|r| r.source_server_id == run.source_server_id && r.ec2_instance_id == run.standby_instance_id)
            {
                problems.push(FieldError::new(
                    run.source_server_id.to_string(),
                    "STANDBY_IS_RECOVERY_INSTANCE",
                    format!(
                        "DRS still lists standby {} as the recovery instance of an earlier drill or recovery, and a new launch would delete it; fail back or re-arm that recovery first",
                        run.standby_instance_id
                    ),
                ));
            }
            if req.mode == Mode::Recovery && req.kind == FailoverKind::Planned && run.source_instance_id.is_none() {
                problems.push(FieldError::new(
                    run.source_server_id.to_string(),
                    "NO_SOURCE_INSTANCE",
                    "DRS names no source EC2 instance for this server, so a planned failover cannot stop it; run a disaster failover".to_owned(),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems));
        }
        let now = self.clock.now_millis();
        let mut record = ExecutionRecord {
            id: format!("exec-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
            plan_id: plan.id.clone(),
            plan_name: plan.name.clone(),
            dr,
            rto_target_minutes: plan.rto_target_minutes,
            protection_group_ids: plan.protection_group_ids.clone(),
            acknowledge_warnings: req.acknowledge_warnings,
            state: ExecutionState::new(
                req.mode,
                req.kind,
                waves,
                &who.subject,
                now,
                i64::from(self.settings.approval_ttl_minutes) * 60_000,
            ),
            lease: None,
            failback: None,
            log: Vec::new(),
            readiness_at_start: Some(at_start),
            version: 1,
        };
        let what = match (req.mode, record.state.kind) {
            (Mode::Drill, _) => "drill",
            (Mode::Recovery, FailoverKind::Planned) => "planned failover",
            (Mode::Recovery, FailoverKind::Disaster) => "disaster failover",
            (Mode::Failback, _) => "failback",
        };
        record.log.push(LogLine {
            at: now,
            message: format!("{what} of {} requested by {}", plan.name, who.subject),
            failure: false,
        });
        self.lock_and_insert(&record).await?;
        let details = serde_json::json!({ "plan_id": plan.id, "mode": req.mode, "kind": record.state.kind, "acknowledge_warnings": req.acknowledge_warnings });
        self.audit.record_or_log(who, AuditEvent::ok("execution.start", record.id.as_str(), details)).await;
        Ok(record)
    }
}
