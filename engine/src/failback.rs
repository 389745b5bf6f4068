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

use crate::cloud::CloudError;
use crate::executions::{index_by, launch_id, runs};
use crate::services::{ServiceError, Services};
use domain::FieldError;
use domain::auth::Principal;
use domain::estate::{
    AWSDRS_TAG_KEY, AWSDRS_TAG_VALUE, AccountRegion, InstanceState, RECOVERY_INSTANCE_POLICY, ReplicationDirection,
    ReplicationState,
};
use domain::execution::{
    Event, ExecutionRecord, ExecutionState, FailbackOf, FailbackPreview, FailoverKind, GoingHome, LeftBehind, LogLine,
    Mode, ProofRow, ServerRun, ServerState, StartFailback, StayReason, WaveRun, WaveState, round_trip_proof,
};
use domain::ids::{InstanceId, SourceServerId};
use domain::launch::{LaunchConfigurationUpdate, RightSizing};

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

    /// What a failback request checks and reads before the failback is created.
    async fn prepare_failback(&self, who: &Principal, req: &StartFailback) -> Result<Prepared, ServiceError> {
        let recovery = self.get_execution(&req.execution_id).await?;
        if recovery.state.mode != Mode::Recovery {
            return Err(refused(
                "execution_id",
                "NOT_A_RECOVERY",
                "only a recovery fails back: a drill returns its standbys by itself, and a failback cannot be failed back".into(),
            ));
        }
        if !recovery.state.phase.is_terminal() {
            return Err(refused("execution_id", "NOT_ENDED", "the recovery has not ended yet".into()));
        }
        // Servers an earlier failback of this recovery already brought home stay home; only the rest go.
        let earlier: Vec<ExecutionRecord> = self
            .list_executions()
            .await?
            .into_iter()
            .filter(|e| e.failback.as_ref().is_some_and(|f| f.execution_id == recovery.id))
            .collect();
        if let Some(live) = earlier.iter().find(|e| !e.state.phase.is_terminal()) {
            return Err(refused(
                "execution_id",
                "ALREADY_FAILED_BACK",
                format!("failback {} of this recovery is under way", live.id),
            ));
        }
        let home: std::collections::HashMap<&SourceServerId, &str> = earlier
            .iter()
            .flat_map(|e| e.state.waves.iter().flat_map(|w| w.servers.iter()).map(move |r| (r, e.id.as_str())))
            .filter(|(r, _)| r.state == ServerState::Verified)
            .map(|(r, id)| (&r.source_server_id, id))
            .collect();
        let terminate = match &req.terminate_standbys_confirmation {
            None => false,
            Some(_) if who.role != domain::auth::Role::Admin => {
                return Err(refused(
                    "terminate_standbys_confirmation",
                    "ADMIN_REQUIRED",
                    "only an admin may choose to terminate the DR standbys".into(),
                ));
            }
            Some(typed) if typed.trim() != recovery.plan_name => {
                return Err(refused(
                    "terminate_standbys_confirmation",
                    "CONFIRMATION_MISMATCH",
                    "type the plan's name exactly to terminate its DR standbys".into(),
                ));
            }
            Some(_) => true,
        };
        let all: Vec<&ServerRun> = recovery.state.waves.iter().flat_map(|w| w.servers.iter()).collect();
        let mut problems = Vec::new();
        for (i, id) in req.leave_behind.iter().enumerate() {
            if !all.iter().any(|r| &r.source_server_id == id) {
                problems.push(FieldError::new(
                    format!("leave_behind[{i}]"),
                    "NOT_IN_RECOVERY",
                    format!("{id} is not a server of recovery {}", recovery.id),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems));
        }
        // Every server of the recovery either goes or stays with a reason: none is dropped silently.
        let mut staying = Vec::new();
        let mut candidates: Vec<&ServerRun> = Vec::new();
        for r in &all {
            let stay = |reason: StayReason, message: String| LeftBehind {
                source_server_id: r.source_server_id.clone(),
                name: r.name.clone(),
                reason,
                message,
            };
            if r.state != ServerState::Verified {
                let why = r.error.as_deref().unwrap_or("it did not launch");
                staying.push(stay(
                    StayReason::NotVerified,
                    format!("not verified in the recovery ({why}), so it is not on its standby as Roundtrip knows it"),
                ));
            } else if let Some(by) = home.get(&r.source_server_id) {
                staying.push(stay(StayReason::AlreadyHome, format!("already home: failback {by} brought it back")));
            } else if req.leave_behind.contains(&r.source_server_id) {
                staying.push(stay(StayReason::LeftBehind, "left on its DR standby, as asked".into()));
            } else {
                candidates.push(r);
            }
        }
        let origins: std::collections::BTreeSet<&AccountRegion> =
            candidates.iter().filter_map(|r| r.origin.as_ref()).collect();
        let origin = match (candidates.is_empty(), origins.len()) {
            (true, _) => {
                let message = nothing_to_fail_back(&all, &staying);
                let preview = FailbackPreview {
                    ready: false,
                    problems: vec![FieldError::new("execution_id", "NOTHING_TO_FAIL_BACK", message)],
                    going: Vec::new(),
                    staying,
                };
                let dr = recovery.dr.clone();
                return Ok(Prepared {
                    origin: dr.clone(),
                    dr,
                    recovery,
                    ips: std::collections::HashMap::new(),
                    terminate,
                    preview,
                });
            }
            (false, 1) => (*origins.iter().next().unwrap_or(&&recovery.dr)).clone(),
            _ => {
                return Err(refused(
                    "execution_id",
                    "ORIGIN_UNKNOWN",
                    "its servers do not name one original account and region".into(),
                ));
            }
        };
        let dr = recovery.dr.clone();
        let standbys: Vec<SourceServerId> = candidates.iter().map(|r| r.source_server_id.clone()).collect();
        let (dr_instances, originals, recovered) = tokio::try_join!(
            self.retried(|| self.cloud.describe_instances(&dr)),
            self.retried(|| self.cloud.describe_instances(&origin)),
            self.retried(|| self.cloud.describe_recovery_instances(&dr, &standbys)),
        )?;
        let (groups, profiles, initialized) = tokio::try_join!(
            self.retried(|| self.cloud.describe_security_groups(&dr)),
            self.retried(|| self.cloud.describe_instance_profiles(&dr)),
            self.retried(|| self.cloud.drs_initialized(&origin)),
        )?;
        if !initialized {
            problems.push(FieldError::new(
                "execution_id",
                "DRS_NOT_INITIALIZED",
                format!(
                    "DRS is not initialised in {} {}: initialise it there first (InitializeService)",
                    origin.account_id, origin.region
                ),
            ));
        }
        let mut ips = std::collections::HashMap::new();
        let mut going = Vec::new();
        for run in &candidates {
            let mut mine = Vec::new();
            let original = server_prerequisites(
                run,
                req,
                &origin,
                Facts {
                    dr_instances: &dr_instances,
                    originals: &originals,
                    recovered: &recovered,
                    groups: &groups,
                    profiles: &profiles,
                },
                &mut |code: &str, message: String| mine.push((code.to_owned(), message)),
            );
            if mine.is_empty() {
                if let Some(o) = original {
                    ips.insert(run.source_server_id.clone(), o);
                }
                going.push(GoingHome { source_server_id: run.source_server_id.clone(), name: run.name.clone() });
            } else if req.ready_only {
                let codes: Vec<String> = mine.iter().map(|(c, m)| format!("{c}: {m}")).collect();
                staying.push(LeftBehind {
                    source_server_id: run.source_server_id.clone(),
                    name: run.name.clone(),
                    reason: StayReason::NotReady,
                    message: codes.join("; "),
                });
            } else {
                problems.extend(mine.into_iter().map(|(code, message)| {
                    FieldError::new(run.source_server_id.to_string(), &code, format!("{}: {message}", run.name))
                }));
            }
        }
        if going.is_empty() && problems.is_empty() {
            problems.push(FieldError::new(
                "execution_id",
                "NOTHING_TO_FAIL_BACK",
                nothing_to_fail_back(&all, &staying),
            ));
        }
        // In the plan's order, as the failback runs them.
        let order: std::collections::HashMap<&SourceServerId, usize> =
            all.iter().enumerate().map(|(i, r)| (&r.source_server_id, i)).collect();
        staying.sort_by_key(|l| order.get(&l.source_server_id).copied().unwrap_or(usize::MAX));
        let preview = FailbackPreview { ready: problems.is_empty(), problems, going, staying };
        Ok(Prepared { recovery, origin, dr, ips, terminate, preview })
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

    /// `ReverseReplication` on each server's recovery instance (already claimed).
    pub(crate) async fn reverse(
        &self,
        rec: &ExecutionRecord,
        servers: &[SourceServerId],
        now: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        let at = self.failback_of(rec)?.recovery_region.clone();
        let mut events = Vec::new();
        for run in runs(rec, servers) {
            let Some(standby) = run.dr_standby_id.clone() else { continue };
            let r = self.retried(|| self.cloud.reverse_replication(&at, &standby)).await;
            let details = serde_json::json!({ "recovery_instance_id": standby, "source_server_id": r.as_ref().ok() });
            self.record_aws_write(rec, "aws.drs.ReverseReplication", &at, details, &r).await;
            let server = run.source_server_id.clone();
            match r {
                Ok(back) => events.push(Event::Reversed { server, failback_source: back, at: now }),
                // Maybe reversed after all (a 5xx DRS processed, or our own earlier call): reconcile.
                Err(CloudError::Conflict { .. } | CloudError::Unavailable { .. } | CloudError::Unexpected(_)) => {}
                // Refused before anything happened: claim again later.
                Err(CloudError::Throttled { .. } | CloudError::QuotaExceeded { .. }) => {
                    events.push(Event::ReverseAbandoned { servers: vec![server] });
                }
                Err(e) => events.push(Event::StartFailed {
                    servers: vec![server],
                    error: format!("could not reverse replication: {e}"),
                    at: now,
                }),
            }
        }
        Ok(events)
    }

    /// Claimed reversals: the failback source server DRS created for the standby, or none.
    pub(crate) async fn reconcile_reverse(
        &self,
        rec: &ExecutionRecord,
        servers: &[SourceServerId],
    ) -> Result<Vec<Event>, ServiceError> {
        let now = self.clock.now_millis();
        let sources = self.retried(|| self.cloud.describe_source_servers(&rec.dr)).await?;
        let mut lost = Vec::new();
        let mut events = Vec::new();
        for run in runs(rec, servers) {
            // The newest live one: failback source servers of earlier round trips stay behind, stopped.
            let found = sources.iter().rev().find(|s| {
                s.replication_direction == ReplicationDirection::Failback
                    && s.source_instance_id == run.dr_standby_id
                    && s.replication_state != ReplicationState::Stopped
            });
            match found {
                Some(s) => events.push(Event::Reversed {
                    server: run.source_server_id.clone(),
                    failback_source: s.source_server_id.clone(),
                    at: now,
                }),
                None => lost.push(run.source_server_id.clone()),
            }
        }
        if !lost.is_empty() {
            events.push(Event::ReverseAbandoned { servers: lost });
        }
        Ok(events)
    }

    /// Servers whose reversed replication is continuous with a small lag; failures for the ones stuck.
    pub(crate) async fn await_replication(
        &self,
        rec: &ExecutionRecord,
        servers: &[SourceServerId],
        now: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        // Adaptive polling: none of them can be continuous before the shortest sync.
        let due = |r: &&ServerRun| r.reverse_claimed_at.is_none_or(|t| now >= t + self.settings.min_reverse_sync_ms);
        let ids: Vec<SourceServerId> =
            runs(rec, servers).filter(due).filter_map(|r| r.failback_source_id.clone()).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sources = self.retried(|| self.cloud.describe_source_servers_by_id(&rec.dr, &ids)).await?;
        let mut ready = Vec::new();
        let mut events = Vec::new();
        let mut seen = Vec::new();
        let sources = index_by(&sources, |s| &s.source_server_id);
        for run in runs(rec, servers) {
            let Some(s) = run.failback_source_id.as_ref().and_then(|id| sources.get(id)) else {
                continue;
            };
            let now_seen = (s.replication_state.as_str().to_owned(), s.lag_seconds);
            if run.failback_replication.as_ref() != Some(&now_seen) {
                seen.push((run.source_server_id.clone(), now_seen.0, now_seen.1));
            }
            let waited = now - run.reverse_claimed_at.unwrap_or(now);
            match s.replication_state {
                ReplicationState::Continuous if s.lag_seconds <= MAX_FAILBACK_LAG_SECONDS => {
                    ready.push(run.source_server_id.clone());
                }
                ReplicationState::Initiating if waited >= AGENT_INSTALL_TIMEOUT_MS => events.push(Event::StartFailed {
                    servers: vec![run.source_server_id.clone()],
                    error: format!(
                        "the replication agent on {} did not finish installing within {} minutes; check that it reaches DRS on TCP 443 and the replication servers on TCP 1500",
                        run.dr_standby_id.as_ref().map(ToString::to_string).unwrap_or_default(),
                        AGENT_INSTALL_TIMEOUT_MS / 60_000
                    ),
                    at: now,
                }),
                ReplicationState::Paused
                | ReplicationState::Stalled
                | ReplicationState::Disconnected
                | ReplicationState::Stopped => events.push(Event::StartFailed {
                    servers: vec![run.source_server_id.clone()],
                    error: format!(
                        "failback replication is {} (lag {} s); check the agent on {} and its network",
                        s.replication_state.as_str(),
                        s.lag_seconds,
                        run.dr_standby_id.as_ref().map(ToString::to_string).unwrap_or_default()
                    ),
                    at: now,
                }),
                _ => {}
            }
        }
        if !seen.is_empty() {
            events.insert(0, Event::ReplicationObserved { observations: seen });
        }
        if !ready.is_empty() {
            events.push(Event::Replicated { servers: ready, at: now });
        }
        Ok(events)
    }

    /// Stops and tags the originals (as confirmed at the request) and points each failback source server
    /// at its original in two steps; servers whose original is stopped and configured are `Configured`.
    pub(crate) async fn configure_failback(
        &self,
        rec: &ExecutionRecord,
        servers: &[SourceServerId],
        now: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        let of = self.failback_of(rec)?.clone();
        let at = &rec.dr;
        let originals: Vec<InstanceId> = runs(rec, servers).map(|r| r.standby_instance_id.clone()).collect();
        let instances = self.retried(|| self.cloud.describe_instances_by_id(at, &originals)).await?;
        let mut to_stop: Vec<InstanceId> = Vec::new();
        let mut events = Vec::new();
        let mut ready = Vec::new();
        let by_id = index_by(&instances, |i| &i.instance_id);
        for run in runs(rec, servers) {
            let original = &run.standby_instance_id;
            let Some(i) = by_id.get(original) else {
                events.push(Event::StartFailed {
                    servers: vec![run.source_server_id.clone()],
                    error: format!("the original {original} no longer exists"),
                    at: now,
                });
                continue;
            };
            if i.tags.get(AWSDRS_TAG_KEY).map(String::as_str) != Some(AWSDRS_TAG_VALUE) {
                let r = if of.tag_originals {
                    self.retried(|| self.cloud.create_tags(at, original, AWSDRS_TAG_KEY, AWSDRS_TAG_VALUE)).await
                } else {
                    Err(CloudError::Validation { message: "the original lost its AWSDRS tag".into() })
                };
                if of.tag_originals {
                    let details =
                        serde_json::json!({ "instance_id": original, "tag": { AWSDRS_TAG_KEY: AWSDRS_TAG_VALUE } });
                    self.record_aws_write(rec, "aws.ec2.CreateTags", at, details, &r).await;
                }
                if let Err(e) = r {
                    events.push(Event::StartFailed {
                        servers: vec![run.source_server_id.clone()],
                        error: format!("could not tag the original {original}: {e}"),
                        at: now,
                    });
                    continue;
                }
            }
            match i.state {
                InstanceState::Stopped => {}
                InstanceState::Running | InstanceState::Pending if of.stop_originals => {
                    to_stop.push(original.clone());
                    continue;
                }
                InstanceState::Stopping => continue,
                other => {
                    events.push(Event::StartFailed {
                        servers: vec![run.source_server_id.clone()],
                        error: format!("the original {original} is {} and must be stopped", other.as_str()),
                        at: now,
                    });
                    continue;
                }
            }
            let source = launch_id(run).clone();
            let failed = self.launch_into(rec, at, &source, original).await.err();
            match failed {
                None => ready.push(run.source_server_id.clone()),
                Some(CloudError::Throttled { .. } | CloudError::Unavailable { .. }) => {}
                Some(e) => events.push(Event::StartFailed {
                    servers: vec![run.source_server_id.clone()],
                    error: format!("could not configure the launch into {original}: {e}"),
                    at: now,
                }),
            }
        }
        if !to_stop.is_empty() {
            let r = self.retried(|| self.cloud.stop_instances(at, &to_stop)).await;
            self.record_aws_write(rec, "aws.ec2.StopInstances", at, serde_json::json!({ "instance_ids": to_stop }), &r)
                .await;
        }
        if !ready.is_empty() {
            events.push(Event::Configured { servers: ready, at: now });
        }
        Ok(events)
    }

    /// One re-arm step for servers that came home; each part is idempotent and is asked again next step
    /// until the server is back to standby (`CleanedUp`).
    pub(crate) async fn re_arm(
        &self,
        rec: &ExecutionRecord,
        servers: &[SourceServerId],
        now: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        let of = self.failback_of(rec)?.clone();
        let (origin, dr) = (&rec.dr, &of.recovery_region);
        let mut events = Vec::new();
        // 1. Re-protect: reverse the original's replication again (a conflict means it already is).
        let mut reprotected = Vec::new();
        for run in runs(rec, servers).filter(|r| r.reprotected_at.is_none()) {
            let original = &run.standby_instance_id;
            let r = self.retried(|| self.cloud.reverse_replication(origin, original)).await;
            self.record_aws_write(
                rec,
                "aws.drs.ReverseReplication",
                origin,
                serde_json::json!({ "recovery_instance_id": original }),
                &r,
            )
            .await;
            if matches!(r, Ok(_) | Err(CloudError::Conflict { .. })) {
                reprotected.push(run.source_server_id.clone());
            }
        }
        if !reprotected.is_empty() {
            events.push(Event::Reprotected { servers: reprotected, at: now });
        }
        // 2. Wait for the forward replication to be continuous again.
        let waiting: Vec<SourceServerId> = runs(rec, servers)
            .filter(|r| r.protected_at.is_none())
            .filter(|r| r.reprotected_at.is_some_and(|t| now >= t + self.settings.min_reverse_sync_ms))
            .map(|r| r.source_server_id.clone())
            .collect();
        let forward = if waiting.is_empty() {
            Vec::new()
        } else {
            self.retried(|| self.cloud.describe_source_servers_by_id(dr, &waiting)).await?
        };
        let forward = index_by(&forward, |s| &s.source_server_id);
        let protected: Vec<SourceServerId> = runs(rec, servers)
            .filter(|r| r.reprotected_at.is_some() && r.protected_at.is_none())
            .filter(|r| {
                forward.get(&r.source_server_id).is_some_and(|s| {
                    s.source_instance_id.as_ref() == Some(&r.standby_instance_id)
                        && s.replication_state == ReplicationState::Continuous
                        && s.lag_seconds <= MAX_FAILBACK_LAG_SECONDS
                })
            })
            .map(|r| r.source_server_id.clone())
            .collect();
        if !protected.is_empty() {
            events.push(Event::Protected { servers: protected, at: now });
        }
        // 3. Back to standby, for the ones protected.
        let ready: Vec<&ServerRun> = runs(rec, servers).filter(|r| r.protected_at.is_some()).collect();
        if ready.is_empty() {
            return Ok(events);
        }
        let forward_ids: Vec<SourceServerId> = ready.iter().map(|r| r.source_server_id.clone()).collect();
        let back_ids: Vec<SourceServerId> = ready.iter().map(|r| launch_id(r).clone()).collect();
        let standbys: Vec<InstanceId> = ready.iter().filter_map(|r| r.dr_standby_id.clone()).collect();
        let (dr_listed, origin_listed, dr_instances) = tokio::try_join!(
            self.retried(|| self.cloud.describe_recovery_instances(dr, &forward_ids)),
            self.retried(|| self.cloud.describe_recovery_instances(origin, &back_ids)),
            self.retried(|| self.cloud.describe_instances_by_id(dr, &standbys)),
        )?;
        let mut to_stop = Vec::new();
        let mut to_terminate = Vec::new();
        let mut done = Vec::new();
        let dr_instances = index_by(&dr_instances, |i| &i.instance_id);
        for run in ready {
            let Some(standby) = run.dr_standby_id.clone() else { continue };
            let mut clean = true;
            let listed =
                dr_listed.iter().filter(|r| r.ec2_instance_id == standby).map(|r| (dr, r.recovery_instance_id.clone()));
            let home = origin_listed
                .iter()
                .filter(|r| r.ec2_instance_id == run.standby_instance_id)
                .map(|r| (origin, r.recovery_instance_id.clone()));
            for (at, id) in listed.chain(home).collect::<Vec<_>>() {
                // Reversed, so deleted without a disconnect.
                clean &= self.release_recovery_instance(rec, at, &id, false).await;
            }
            let state = dr_instances.get(&standby).map(|i| i.state);
            if of.terminate_standbys {
                // An admin's typed choice: the standby goes for good (through EC2, after DRS let go of it).
                if clean && !matches!(state, Some(InstanceState::Terminated) | None) {
                    to_terminate.push(standby.clone());
                    clean = false;
                }
                if clean {
                    done.push(run.source_server_id.clone());
                }
                continue;
            }
            match state {
                Some(InstanceState::Running | InstanceState::Pending) => {
                    to_stop.push(standby.clone());
                    clean = false;
                }
                Some(InstanceState::Stopping) => clean = false,
                _ => {}
            }
            // Not back yet: its configuration is checked on the step that finds it stopped and released.
            if !clean {
                continue;
            }
            // The next failover launches into the standby again: its launch-into configuration must hold.
            let config = match self.retried(|| self.cloud.get_launch_configuration(dr, &run.source_server_id)).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(execution_id = %rec.id, server = %run.source_server_id, error = %e, "launch configuration unreadable during re-arm");
                    continue;
                }
            };
            if config.launch_into_instance_id.as_ref() != Some(&standby) || config.copy_private_ip || config.copy_tags {
                clean &= self.launch_into(rec, dr, &run.source_server_id, &standby).await.is_ok();
            }
            if clean {
                done.push(run.source_server_id.clone());
            }
        }
        if !to_stop.is_empty() {
            let r = self.retried(|| self.cloud.stop_instances(dr, &to_stop)).await;
            self.record_aws_write(rec, "aws.ec2.StopInstances", dr, serde_json::json!({ "instance_ids": to_stop }), &r)
                .await;
        }
        if !to_terminate.is_empty() {
            let r = self.retried(|| self.cloud.terminate_instances(dr, &to_terminate)).await;
            let details = serde_json::json!({ "instance_ids": to_terminate });
            self.record_aws_write(rec, "aws.ec2.TerminateInstances", dr, details, &r).await;
        }
        if !done.is_empty() {
            events.push(Event::CleanedUp { servers: done, at: now });
        }
        Ok(events)
    }

    /// Points `source` at `target` in DRS's two documented steps (copy private IP, copy tags and right-sizing
    /// off; then the launch-into instance), each write audited.
    async fn launch_into(
        &self,
        rec: &ExecutionRecord,
        at: &AccountRegion,
        source: &SourceServerId,
        target: &InstanceId,
    ) -> Result<(), CloudError> {
        let mut step1 = LaunchConfigurationUpdate::for_server(source.clone());
        (step1.copy_private_ip, step1.copy_tags, step1.right_sizing) =
            (Some(false), Some(false), Some(RightSizing::None));
        let mut step2 = LaunchConfigurationUpdate::for_server(source.clone());
        step2.launch_into_instance_id = Some(Some(target.clone()));
        for update in [step1, step2] {
            let r = self.retried(|| self.cloud.update_launch_configuration(at, &update)).await;
            let details = serde_json::json!({ "source_server_id": source, "after": update });
            self.record_aws_write(rec, "aws.drs.UpdateLaunchConfiguration", at, details, &r).await;
            r?;
        }
        Ok(())
    }
}

/// What the prerequisite checks of one server look at.
struct Facts<'a> {
    dr_instances: &'a [domain::estate::Ec2Instance],
    originals: &'a [domain::estate::Ec2Instance],
    recovered: &'a [domain::recovery::RecoveryInstance],
    groups: &'a [domain::estate::SecurityGroup],
    profiles: &'a [domain::estate::InstanceProfile],
}

/// The failback prerequisites of one server: each failed one goes to `problem` (code, message); the
/// original instance and its private IP when it is known.
fn server_prerequisites(
    run: &ServerRun,
    req: &StartFailback,
    origin: &AccountRegion,
    f: Facts<'_>,
    problem: &mut dyn FnMut(&str, String),
) -> Option<(InstanceId, std::net::Ipv4Addr)> {
    let standby = &run.standby_instance_id;
    if !f.recovered.iter().any(|r| r.source_server_id == run.source_server_id && &r.ec2_instance_id == standby) {
        problem("RECOVERY_INSTANCE_GONE", format!("DRS no longer lists {standby} as its recovery instance"));
    }
    match f.dr_instances.iter().find(|i| &i.instance_id == standby) {
        Some(i) if i.state != InstanceState::Running => problem(
            "RECOVERY_INSTANCE_NOT_RUNNING",
            format!("{standby} is {}; start it: reverse replication needs its agent running", i.state.as_str()),
        ),
        Some(i) if i.private_ip != run.expected_ip => problem(
            "IP_CHANGED",
            format!("{standby} has private IP {}, not the recorded {}", i.private_ip, run.expected_ip),
        ),
        Some(i) => {
            // The agent on the recovery instance reaches DRS on 443 and the replication servers on 1500.
            let mine: Vec<_> = f.groups.iter().filter(|g| i.security_group_ids.contains(&g.group_id)).collect();
            for port in [443, 1500] {
                if !mine.iter().any(|g| g.allows_tcp_out(port)) {
                    problem(
                        "SECURITY_GROUP_EGRESS",
                        format!("no security group of {standby} allows outbound TCP {port}; add an egress rule"),
                    );
                }
            }
            let allowed = i.iam_instance_profile.as_ref().is_some_and(|name| {
                f.profiles.iter().any(|p| &p.name == name && p.policies.iter().any(|x| x == RECOVERY_INSTANCE_POLICY))
            });
            if !allowed {
                problem(
                    "INSTANCE_PROFILE",
                    format!("{standby} needs an instance profile whose role has {RECOVERY_INSTANCE_POLICY}"),
                );
            }
        }
        None => problem("RECOVERY_INSTANCE_GONE", format!("{standby} does not exist")),
    }
    let Some(original_id) = &run.source_instance_id else {
        problem("NO_ORIGINAL", "DRS named no original EC2 instance for it".into());
        return None;
    };
    let Some(original) = f.originals.iter().find(|i| &i.instance_id == original_id) else {
        problem("ORIGINAL_GONE", format!("the original {original_id} does not exist in {}", origin.region));
        return None;
    };
    if matches!(original.state, InstanceState::Terminated | InstanceState::ShuttingDown) {
        problem(
            "ORIGINAL_TERMINATED",
            format!(
                "the original {original_id} is {}; leave this server behind to fail back the others",
                original.state.as_str()
            ),
        );
        return None;
    }
    if let Some(standby) = f.dr_instances.iter().find(|i| &i.instance_id == standby) {
        if standby.architecture != original.architecture {
            problem(
                "ARCHITECTURE_MISMATCH",
                format!("the original {original_id} is not {}", standby.architecture.as_str()),
            );
        }
        if standby.boot_mode != original.boot_mode {
            problem("BOOT_MODE_MISMATCH", format!("the original {original_id} does not boot like its standby"));
        }
    }
    if original.tags.get(AWSDRS_TAG_KEY).map(String::as_str) != Some(AWSDRS_TAG_VALUE) && !req.tag_originals {
        problem(
            "ORIGINAL_NOT_TAGGED",
            format!(
                "{original_id} lacks {AWSDRS_TAG_KEY}={AWSDRS_TAG_VALUE}; confirm tag_originals to let Roundtrip add it"
            ),
        );
    }
    if original.state != InstanceState::Stopped && !req.stop_originals {
        problem(
            "ORIGINAL_NOT_STOPPED",
            format!(
                "{original_id} is {}; DRS cannot stop it: confirm stop_originals to let Roundtrip stop it",
                original.state.as_str()
            ),
        );
    }
    Some((original_id.clone(), original.private_ip))
}

/// Why a failback would bring no server home, for the operator.
fn nothing_to_fail_back(all: &[&ServerRun], staying: &[LeftBehind]) -> String {
    let count = |reason: StayReason| staying.iter().filter(|l| l.reason == reason).count();
    let (not_verified, home, left, not_ready) = (
        count(StayReason::NotVerified),
        count(StayReason::AlreadyHome),
        count(StayReason::LeftBehind),
        count(StayReason::NotReady),
    );
    if all.is_empty() || not_verified == all.len() {
        return "no server of the recovery was verified, so none is on its standby to come home from".into();
    }
    if home + not_verified == all.len() {
        let mut m = format!("all {home} verified servers are home");
        if not_verified > 0 {
            m.push_str(&format!("; {not_verified} were never verified in the recovery"));
        }
        return m;
    }
    let mut parts = Vec::new();
    if left > 0 {
        parts.push(format!("{left} left behind as asked"));
    }
    if not_ready > 0 {
        parts.push(format!("{not_ready} not ready (see staying)"));
    }
    if home > 0 {
        parts.push(format!("{home} already home"));
    }
    if not_verified > 0 {
        parts.push(format!("{not_verified} never verified"));
    }
    format!("every server stays on DR: {}", parts.join(", "))
}
