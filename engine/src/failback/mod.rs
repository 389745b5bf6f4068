//! Failback: a completed recovery's servers go home, into their *original* instances (`aws-drs-api.md`
//! §3.2–3.3). A failback is an execution (`Mode::Failback`) run by the same runner, with the same claims,
//! leases, locks, approval and event stream as a failover. Per server:
//!
//! 1. `ReverseReplication` on its recovery instance (the DR standby), claimed before the call; DRS creates a
//!    source server in the original region that replicates the standby back. After a crash, a claim is
//!    reconciled against the original region's source servers, never called twice.
//! 2. Wait until that replication is `CONTINUOUS` with a lag under [`MAX_FAILBACK_LAG_SECONDS`]; `PAUSED`,
//!    `STALLED`, `DISCONNECTED` or `STOPPED` fail the server (an agent that never installs runs into the
//!    wave's timeout).
//! 3. Stop and tag the original (only with the operator's confirmation given at the request; DRS cannot
//!    stop it), then point the new source server at it in two steps (copy private IP, copy tags and
//!    right-sizing off; then launch into the original).
//! 4. `StartRecovery` in the original region in batches, and verify: the original instance id, its
//!    original private IP, running.
//!
//! 5. Re-arm, once every wave is done (phase `cleaning_up`): re-protect each original (`ReverseReplication`
//!    on it, so the forward source server replicates it to the DR region again) and wait until that is
//!    continuous; then return the DR standby to standby — removed from DRS's recovery instances (deleted:
//!    an instance whose replication was reversed cannot be disconnected; never `TerminateRecoveryInstances`)
//!    and stopped — remove the original from the original region's recovery instances (so no later launch
//!    deletes it as "the previous recovery instance"), and re-apply the launch-into configuration.
//!
//! An admin may instead have the DR standbys terminated (typing the plan's name when requesting the
//! failback): then each is deleted from DRS's recovery instances first and terminated through EC2.

mod prepare;
mod rearm;
mod steps;

use crate::error::ServiceError;
use crate::services::Services;
use domain::FieldError;
use domain::auth::Principal;
use domain::estate::AccountRegion;
use domain::execution::{
    ExecutionRecord, ExecutionState, FailbackOf, FailbackPreview, FailoverKind, LogLine, Mode, ProofRow, ServerRun,
    StartFailback, WaveRun, WaveState, round_trip_proof,
};
use domain::ids::{InstanceId, SourceServerId};

/// The largest lag of a reversed replication at which a failback launches.
pub const MAX_FAILBACK_LAG_SECONDS: u64 = 60;

/// The shortest wave timeout of a failback (the initial sync of a reversed replication copies whole volumes).
pub const FAILBACK_WAVE_TIMEOUT_MS: i64 = 24 * 60 * 60_000;

/// How long the agent on a recovery instance may take to install before the server fails.
pub const AGENT_INSTALL_TIMEOUT_MS: i64 = 30 * 60_000;

/// What a failback request read and decided before the failback is created.
struct Prepared {
    recovery: ExecutionRecord,
    origin: AccountRegion,
    dr: AccountRegion,
    /// The servers that go home: their original instance and its private IP.
    ips: std::collections::HashMap<SourceServerId, (InstanceId, std::net::Ipv4Addr)>,
    terminate: bool,
    preview: FailbackPreview,
}

fn refused(field: &str, code: &str, message: String) -> ServiceError {
    ServiceError::Invalid(vec![FieldError::new(field, code, message)])
}

impl Services {
    /// Requests a failback of a completed recovery: its verified servers, in the plan's wave order, back into
    /// their original instances. It runs once a second person approves.
    ///
    /// # Errors
    /// [`ServiceError::ExecutionNotFound`]; [`ServiceError::Invalid`] when the execution is not an ended
    /// recovery, or a prerequisite fails for a server (each with its remediation).
    pub async fn start_failback(&self, who: &Principal, req: &StartFailback) -> Result<ExecutionRecord, ServiceError> {
        let prepared = self.prepare_failback(who, req).await?;
        if !prepared.preview.problems.is_empty() {
            return Err(ServiceError::Invalid(prepared.preview.problems));
        }
        let Prepared { recovery, origin, dr, ips, terminate, preview } = prepared;
        let waves: Vec<WaveRun> = recovery
            .state
            .waves
            .iter()
            .map(|w| WaveRun {
                name: w.name.clone(),
                pause_before: w.pause_before,
                on_failure: w.on_failure,
                // A reversed replication's initial sync takes hours for real volumes.
                timeout_ms: w.timeout_ms.max(FAILBACK_WAVE_TIMEOUT_MS),
                state: WaveState::Pending,
                started_at: None,
                ended_at: None,
                readiness_checked_at: Some(0),
                servers: w
                    .servers
                    .iter()
                    .filter_map(|r| {
                        let (original, ip) = ips.get(&r.source_server_id)?.clone();
                        let mut back = ServerRun::waiting(r.source_server_id.clone(), original.clone(), ip);
                        back.name = r.name.clone();
                        back.dr_standby_id = Some(r.standby_instance_id.clone());
                        back.source_instance_id = Some(original);
                        back.origin = Some(dr.clone());
                        Some(back)
                    })
                    .collect::<Vec<_>>()
                    .into(),
            })
            .filter(|w| !w.servers.is_empty())
            .collect();
        let now = self.clock.now_millis();
        let ttl = i64::from(self.settings.approval_ttl_minutes) * 60_000;
        let record = ExecutionRecord {
            id: format!("exec-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
            plan_id: recovery.plan_id.clone(),
            plan_name: recovery.plan_name.clone(),
            dr: origin,
            rto_target_minutes: recovery.rto_target_minutes,
            protection_group_ids: recovery.protection_group_ids.clone(),
            acknowledge_warnings: false,
            state: ExecutionState::new(Mode::Failback, FailoverKind::Disaster, waves, &who.subject, now, ttl),
            lease: None,
            failback: Some(FailbackOf {
                execution_id: recovery.id.clone(),
                recovery_region: dr,
                stop_originals: req.stop_originals,
                tag_originals: req.tag_originals,
                terminate_standbys: terminate,
                left_behind: preview.staying.clone(),
            }),
            log: vec![LogLine {
                at: now,
                message: format!("failback of {} ({}) requested by {}", recovery.plan_name, recovery.id, who.subject),
                failure: false,
            }],
            readiness_at_start: None,
            version: 1,
        };
        self.lock_and_insert(&record).await?;
        let left: Vec<&SourceServerId> = preview.staying.iter().map(|l| &l.source_server_id).collect();
        let details = serde_json::json!({
            "failback_of": recovery.id, "stop_originals": req.stop_originals, "tag_originals": req.tag_originals,
            "servers": preview.going.len(), "left_behind": left,
        });
        self.audit
            .record_or_log(who, crate::audit::AuditEvent::ok("execution.start", record.id.as_str(), details))
            .await;
        Ok(record)
    }

    /// What a failback request would do now (a dry run): which servers go home and which stay on DR and
    /// why, and each failed prerequisite with its remediation (none: it can be requested).
    ///
    /// # Errors
    /// As [`Services::start_failback`], except that failed prerequisites are reported, not refused.
    pub async fn failback_preview(
        &self,
        who: &Principal,
        req: &StartFailback,
    ) -> Result<FailbackPreview, ServiceError> {
        Ok(self.prepare_failback(who, req).await?.preview)
    }

    /// The round-trip proof of a failback: per server, instance and private IP before failover, after
    /// failover and after failback, with a verdict.
    ///
    /// # Errors
    /// [`ServiceError::ExecutionNotFound`]; [`ServiceError::Invalid`] for an execution that is not a failback.
    pub async fn round_trip_proof(&self, id: &str) -> Result<Vec<ProofRow>, ServiceError> {
        let back = self.get_execution(id).await?;
        let Some(of) = &back.failback else {
            return Err(refused("execution_id", "NOT_A_FAILBACK", "a round-trip proof belongs to a failback".into()));
        };
        let recovery = self.get_execution(&of.execution_id).await?;
        Ok(round_trip_proof(&recovery, &back))
    }

    fn failback_of<'a>(&self, rec: &'a ExecutionRecord) -> Result<&'a FailbackOf, ServiceError> {
        rec.failback
            .as_ref()
            .ok_or_else(|| refused("execution_id", "NOT_A_FAILBACK", format!("{} is not a failback", rec.id)))
    }
}
