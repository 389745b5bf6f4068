//! The runner's step: take (or renew) the lease, keep it with a heartbeat while the step works, apply the
//! clock, ask the state machine what to do and do it — start jobs, poll them, verify identities, stop
//! sources, check each wave's readiness.

use super::persist::{Unwritten, decode_lease, put};
use super::{EXECUTION_LEASES, Step, blocking_checks, from_launch_id, index_by, launch_id, launch_ids, runs};
use crate::audit::AuditEvent;
use crate::cloud::CloudError;
use crate::error::ServiceError;
use crate::repo;
use crate::services::Services;
use crate::store::{Expect, StoreError, WriteOp};
use domain::auth::Principal;
use domain::estate::{AccountRegion, InstanceState};
use domain::execution::{Command, Event, Limits, ServerState, decide};
use domain::execution::{ExecutionRecord, Lease};
use domain::ids::{InstanceId, SourceServerId};
use domain::recovery::LaunchStatus;
use std::collections::{BTreeMap, HashMap, HashSet};

impl Services {
    /// Drives every live execution for ever: each `interval`, steps each one until it has nothing to do.
    /// Several processes may run this on one store; leases give each execution one driver.
    pub async fn run_executions(&self, interval: std::time::Duration) {
        let owner = format!("runner-{}", uuid::Uuid::new_v4().simple());
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.step_live_executions(&owner).await;
        }
    }

    /// Steps each live execution until it has nothing to do (at most 20 steps each), with DRS's limits as
    /// the account states them (DRS's defaults when unreadable). A failed step is logged and tried again at
    /// the next tick.
    pub async fn step_live_executions(&self, owner: &str) {
        let limits = match self.quotas_for_runner().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "DRS quotas unreadable; using DRS's defaults");
                Limits::default()
            }
        };
        let Ok(all) = self.list_executions().await else { return };
        for e in all.iter().filter(|e| !e.state.phase.is_terminal()) {
            for _ in 0..20 {
                match self.advance_execution(&e.id, owner, &limits).await {
                    Ok(Step::Advanced) => continue,
                    Ok(_) => break,
                    Err(err) => {
                        tracing::warn!(execution_id = %e.id, error = %err, "execution step failed; retrying later");
                        break;
                    }
                }
            }
        }
    }

    /// DRS's limits for the runner: the simulated or real account's quotas when readable.
    ///
    /// # Errors
    /// Cloud failures.
    pub async fn quotas_for_runner(&self) -> Result<Limits, ServiceError> {
        let groups = repo::list_groups(&*self.store).await?;
        let Some(g) = groups.first() else { return Ok(Limits::default()) };
        let q = self.retried(|| self.cloud.quotas(&g.dr)).await?;
        Ok(Limits {
            max_servers_per_job: q.max_servers_per_job,
            max_concurrent_jobs: q.max_concurrent_jobs,
            max_servers_in_active_jobs: q.max_servers_in_active_jobs,
        })
    }

    /// Takes or renews the lease for `owner`: the execution and the lease record's version, or `None` when
    /// another owner holds it. Taking it over also writes the execution (its `lease` names the new owner), so
    /// a former holder that is still working fails its next write with a version conflict and stops.
    pub(super) async fn lease(&self, id: &str, owner: &str) -> Result<Option<(ExecutionRecord, u64)>, ServiceError> {
        let held = self.store.get(EXECUTION_LEASES, id).await?;
        // The copy stays for readers while the step works on its own (waves are shared until changed).
        let mut rec = match self.runner_copy(id).await? {
            Some(copy) => copy,
            None => self.get_execution(id).await?,
        };
        let (current, expect) = match &held {
            Some(r) => (Some(decode_lease(r)?), Expect::Version(r.version)),
            // Written before lease records existed: the lease lived in the execution alone.
            None => (rec.lease.clone(), Expect::Absent),
        };
        let now = self.wall_clock.now_millis();
        if current.as_ref().is_some_and(|l| l.owner != owner && l.until > now) {
            return Ok(None);
        }
        let mine = rec.lease.as_ref().is_some_and(|l| l.owner == owner);
        // Held with more than half its time left: no write (the heartbeat renews it while a step works).
        if let (Some(r), Some(l)) = (&held, &current)
            && mine
            && l.owner == owner
            && l.until - now > self.settings.lease_ms / 2
        {
            return Ok(Some((rec, r.version)));
        }
        let lease = Lease { owner: owner.to_owned(), until: now + self.settings.lease_ms };
        let mut ops = vec![WriteOp::Put {
            table: EXECUTION_LEASES.into(),
            key: id.to_owned(),
            value: crate::store::Json::encode(&lease),
            expect,
        }];
        if !mine {
            rec.lease = Some(lease);
            ops.push(put(&rec, Expect::Version(rec.version)));
        }
        match self.store.transact(ops).await {
            Ok(v) => {
                if !mine {
                    rec.version = v[1];
                }
                Ok(Some((rec, v[0])))
            }
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Renews `owner`'s lease of execution `id`, held at lease record `version`: the new version, or `None`
    /// when another process has taken it over.
    pub(super) async fn renew_lease(&self, id: &str, owner: &str, version: u64) -> Result<Option<u64>, ServiceError> {
        let lease = Lease { owner: owner.to_owned(), until: self.wall_clock.now_millis() + self.settings.lease_ms };
        let op = WriteOp::Put {
            table: EXECUTION_LEASES.into(),
            key: id.to_owned(),
            value: crate::store::Json::encode(&lease),
            expect: Expect::Version(version),
        };
        match self.store.transact(vec![op]).await {
            Ok(v) => Ok(v.first().copied()),
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Renews the lease every third of `lease_ms` until `done` is notified: a step that works for longer
    /// than the lease (a clean-up of hundreds of servers, a call retried through a throttling storm) keeps
    /// it, so no other process takes the execution over while this one lives. It stops at once when the
    /// lease was lost; the step's next write then conflicts.
    pub(super) async fn keep_lease(&self, id: &str, owner: &str, mut version: u64, done: &tokio::sync::Notify) {
        let period = std::time::Duration::from_millis(u64::try_from(self.settings.lease_ms / 3).unwrap_or(1).max(1));
        loop {
            // Only the sleep is ever dropped here, never a write in progress.
            tokio::select! {
                () = done.notified() => return,
                () = tokio::time::sleep(period) => {}
            }
            match self.renew_lease(id, owner, version).await {
                Ok(Some(v)) => version = v,
                Ok(None) => {
                    tracing::warn!(execution_id = id, "another process took the execution's lease over");
                    return;
                }
                Err(e) => tracing::warn!(execution_id = id, error = %e, "the execution's lease was not renewed"),
            }
        }
    }

    /// One runner step for `owner` (a process id): see the module documentation.
    ///
    /// # Errors
    /// Store failures; cloud failures other than the ones the state machine absorbs.
    pub async fn advance_execution(&self, id: &str, owner: &str, limits: &Limits) -> Result<Step, ServiceError> {
        crate::cloud::on_behalf_of(id, self.advance_execution_now(id, owner, limits)).await
    }

    pub(super) async fn advance_execution_now(
        &self,
        id: &str,
        owner: &str,
        limits: &Limits,
    ) -> Result<Step, ServiceError> {
        let Some((rec, lease_version)) = self.lease(id, owner).await? else { return Ok(Step::Leased) };
        if rec.state.phase.is_terminal() {
            self.runner_copies.forget(id);
            return Ok(Step::Done);
        }
        let done = tokio::sync::Notify::new();
        let work = async {
            let r = self.step(rec, limits).await;
            done.notify_one();
            r
        };
        let (r, ()) = tokio::join!(work, self.keep_lease(id, owner, lease_version, &done));
        r
    }

    /// The step itself, once the lease is held.
    pub(super) async fn step(&self, rec: ExecutionRecord, limits: &Limits) -> Result<Step, ServiceError> {
        let id = rec.id.clone();
        let id = id.as_str();
        let now = self.clock.now_millis();
        let version = rec.version;
        // Observations are written once, at the end of the step; claims before their AWS calls, and what AWS
        // mutations did right after them.
        let mut u = Unwritten { written: rec.state.clone(), events: Vec::new() };
        let mut rec = u.defer(rec, vec![Event::Tick { at: now }])?;
        for cmd in decide(&rec.state, limits) {
            let mutates = matches!(
                cmd,
                Command::StartJob { .. }
                    | Command::StopSources { .. }
                    | Command::Reverse { .. }
                    | Command::ConfigureFailback { .. }
                    | Command::ReArm { .. }
                    | Command::CleanUp { .. }
            );
            // Claims are written before their calls (below); other AWS mutations are idempotent, asked again
            // until observed done, and their results are written as soon as they return.
            let events = match cmd {
                Command::StartJob { servers, is_drill } => {
                    // Persist the claim before the call: a crash after it is reconciled, never repeated.
                    rec = u.defer(rec, vec![Event::BatchClaimed { servers: servers.clone(), at: now }])?;
                    rec = self.flush(rec, &mut u).await?;
                    let drs = launch_ids(&rec, &servers);
                    let r = self.retried(|| self.cloud.start_recovery(&rec.dr, &drs, is_drill)).await;
                    let details = serde_json::json!({
                        "source_server_ids": drs, "is_drill": is_drill,
                        "job_id": r.as_ref().ok().map(|j| j.job_id.clone()),
                    });
                    self.record_aws_write(&rec, "aws.drs.StartRecovery", &rec.dr, details, &r).await;
                    match r {
                        Ok(job) => vec![Event::JobStarted { job_id: job.job_id, servers, at: now }],
                        // Refused before anything started (throttled, over quota): try again later.
                        Err(CloudError::QuotaExceeded { .. } | CloudError::Throttled { .. }) => {
                            vec![Event::StartAbandoned { servers }]
                        }
                        // The call may have started a job after all (a 5xx that DRS processed, whose retry
                        // then conflicts with it): leave the claim for reconciliation with DescribeJobs.
                        Err(
                            CloudError::Conflict { .. } | CloudError::Unavailable { .. } | CloudError::Unexpected(_),
                        ) => Vec::new(),
                        Err(e) => vec![Event::StartFailed { servers, error: e.to_string(), at: now }],
                    }
                }
                Command::Reconcile { servers } => {
                    let jobs = self.retried(|| self.cloud.describe_jobs(&rec.dr, &[])).await?;
                    let mut evs = Vec::new();
                    let mut found: HashSet<SourceServerId> = HashSet::new();
                    for j in jobs.iter().filter(|j| j.created_at >= rec.state.requested_at) {
                        let mine: Vec<SourceServerId> = j
                            .servers
                            .iter()
                            .map(|s| from_launch_id(&rec, &s.source_server_id))
                            .filter(|s| servers.contains(s) && !found.contains(s))
                            .collect();
                        if !mine.is_empty() {
                            found.extend(mine.iter().cloned());
                            evs.push(Event::JobStarted { job_id: j.job_id.clone(), servers: mine, at: now });
                        }
                    }
                    let lost: Vec<SourceServerId> = servers.into_iter().filter(|s| !found.contains(s)).collect();
                    if !lost.is_empty() {
                        evs.push(Event::StartAbandoned { servers: lost });
                    }
                    evs
                }
                Command::PollJobs { job_ids } => {
                    // Adaptive polling: nothing can have launched in the first minute of every job in flight.
                    let youngest_wait = rec
                        .state
                        .waves
                        .iter()
                        .flat_map(|w| w.servers.iter())
                        .filter(|r| r.state == ServerState::Launching)
                        .filter_map(|r| r.started_at)
                        .min();
                    if youngest_wait.is_some_and(|t| now < t + self.settings.min_launch_ms) {
                        continue;
                    }
                    let jobs = self.retried(|| self.cloud.describe_jobs(&rec.dr, &job_ids)).await?;
                    // Only news: a job goes on listing the servers it launched long after they are verified.
                    let pending: HashSet<&SourceServerId> = rec
                        .state
                        .waves
                        .iter()
                        .flat_map(|w| w.servers.iter())
                        .filter(|r| matches!(r.state, ServerState::Launching | ServerState::Starting))
                        .map(launch_id)
                        .collect();
                    let mut evs = Vec::new();
                    for j in jobs {
                        for s in j.servers.iter().filter(|s| pending.contains(&s.source_server_id)) {
                            match s.launch_status {
                                LaunchStatus::Launched => evs.push(Event::Launched {
                                    server: from_launch_id(&rec, &s.source_server_id),
                                    at: now,
                                }),
                                LaunchStatus::Failed | LaunchStatus::Terminated => {
                                    let log =
                                        self.retried(|| self.cloud.describe_job_log_items(&rec.dr, &j.job_id)).await?;
                                    let reason = log
                                        .iter()
                                        .rev()
                                        .find(|l| {
                                            l.source_server_id.as_ref() == Some(&s.source_server_id)
                                                && l.error.is_some()
                                        })
                                        .and_then(|l| l.error.clone())
                                        .unwrap_or_else(|| "DRS reports the launch as failed".into());
                                    evs.push(Event::LaunchFailed {
                                        server: from_launch_id(&rec, &s.source_server_id),
                                        error: reason,
                                        at: now,
                                    });
                                }
                                _ => {}
                            }
                        }
                    }
                    evs
                }
                Command::Verify { servers } => self.verify(&rec, &servers, now).await?,
                Command::CheckReadiness { servers } => self.wave_readiness(&rec, &servers, now).await?,
                Command::StopSources { servers } => self.stop_sources(&rec, &servers, now).await?,
                Command::Reverse { servers } => {
                    // Persist the claims before the calls: a crash after them is reconciled, never repeated.
                    rec = u.defer(rec, vec![Event::ReverseClaimed { servers: servers.clone(), at: now }])?;
                    rec = self.flush(rec, &mut u).await?;
                    self.reverse(&rec, &servers, now).await?
                }
                Command::ReconcileReverse { servers } => self.reconcile_reverse(&rec, &servers).await?,
                Command::AwaitReplication { servers } => self.await_replication(&rec, &servers, now).await?,
                Command::ConfigureFailback { servers } => self.configure_failback(&rec, &servers, now).await?,
                Command::ReArm { servers } => self.re_arm(&rec, &servers, now).await?,
                Command::AwaitDrain { servers } => self.drained(&rec, &servers, now).await?,
                Command::CleanUp { servers } => self.clean_up(&rec, &servers, now).await?,
            };
            rec = u.defer(rec, events)?;
            if mutates {
                rec = self.flush(rec, &mut u).await?;
            }
        }
        let rec = self.write(rec, &u.written, &u.events).await?;
        // Events that change nothing (a late repeat) are no progress: the runner waits for time.
        let advanced = rec.version != version;
        if rec.state.phase.is_terminal() {
            self.runner_copies.forget(id);
            let details = serde_json::json!({ "phase": rec.state.phase });
            self.audit
                .record_or_log(&Principal::system("runner"), AuditEvent::ok("execution.end", rec.id.as_str(), details))
                .await;
            return Ok(Step::Done);
        }
        self.runner_copies.keep(rec);
        Ok(if advanced { Step::Advanced } else { Step::Idle })
    }

    /// Identity verification: the recovery instance is the paired standby, with its recorded private IP,
    /// running.
    pub(super) async fn verify(
        &self,
        rec: &ExecutionRecord,
        servers: &[SourceServerId],
        now: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        let drs = launch_ids(rec, servers);
        let standbys: Vec<InstanceId> = runs(rec, servers).map(|r| r.standby_instance_id.clone()).collect();
        let recovered = self.retried(|| self.cloud.describe_recovery_instances(&rec.dr, &drs)).await?;
        let instances = self.retried(|| self.cloud.describe_instances_by_id(&rec.dr, &standbys)).await?;
        let (recovered, instances) =
            (index_by(&recovered, |r| &r.source_server_id), index_by(&instances, |i| &i.instance_id));
        Ok(runs(rec, servers)
            .map(|run| {
                let server = run.source_server_id.clone();
                let Some(ri) = recovered.get(launch_id(run)) else {
                    return Event::VerificationFailed {
                        server,
                        error: domain::execution::NO_RECOVERY_INSTANCE.into(),
                        at: now,
                    };
                };
                if ri.ec2_instance_id != run.standby_instance_id {
                    let error =
                        format!("came up as {}, not its standby {}", ri.ec2_instance_id, run.standby_instance_id);
                    return Event::VerificationFailed { server, error, at: now };
                }
                match instances.get(&run.standby_instance_id) {
                    None => Event::VerificationFailed { server, error: "the standby no longer exists".into(), at: now },
                    Some(i) if i.private_ip != run.expected_ip => Event::VerificationFailed {
                        server,
                        error: format!("came up with private IP {}, expected {}", i.private_ip, run.expected_ip),
                        at: now,
                    },
                    Some(i) if i.state != InstanceState::Running => Event::VerificationFailed {
                        server,
                        error: format!("the standby is {}, not running", i.state.as_str()),
                        at: now,
                    },
                    Some(_) => Event::Verified { server, at: now, recovery_point: Some(ri.point_in_time) },
                }
            })
            .collect())
    }

    /// Records one AWS write the runner made, with its outcome.
    pub(crate) async fn record_aws_write<T>(
        &self,
        rec: &ExecutionRecord,
        action: &str,
        at: &AccountRegion,
        mut details: serde_json::Value,
        r: &Result<T, CloudError>,
    ) {
        if let Some(d) = details.as_object_mut() {
            d.insert("execution_id".into(), rec.id.clone().into());
            d.insert("account_id".into(), at.account_id.to_string().into());
            d.insert("region".into(), at.region.to_string().into());
            d.insert("error".into(), r.as_ref().err().map(ToString::to_string).into());
        }
        let outcome = if r.is_ok() { crate::audit::Outcome::Ok } else { crate::audit::Outcome::Failed };
        let event = AuditEvent::ok(action, rec.id.as_str(), details).with_outcome(outcome);
        self.audit.record_or_log(&Principal::system("runner"), event).await;
    }

    /// Readiness again as a wave starts: a server whose pair is blocked (or has warnings nobody
    /// acknowledged) does not launch.
    pub(super) async fn wave_readiness(
        &self,
        rec: &ExecutionRecord,
        servers: &[SourceServerId],
        now: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        let mut blocked = Vec::new();
        let wave: HashSet<SourceServerId> = servers.iter().cloned().collect();
        for g in &rec.protection_group_ids {
            for pr in self.readiness_of(g, &wave).await?.pairs {
                if !wave.contains(&pr.source_server_id) {
                    continue;
                }
                let run = &pr;
                let failing = blocking_checks(&pr, rec.state.mode, rec.state.kind, rec.acknowledge_warnings);
                if failing.is_empty() {
                    continue;
                }
                // A fact that could not be read now (throttling while DRS is busy) is asked again next step.
                if failing.iter().all(|c| c.actual.contains("could not be read")) {
                    return Ok(Vec::new());
                }
                let ids: Vec<&str> = failing.iter().map(|c| c.id.as_str()).collect();
                blocked.push((run.source_server_id.clone(), ids.join(", ")));
            }
        }
        Ok(vec![Event::ReadinessChecked { blocked, at: now }])
    }

    /// Planned failover: `StopInstances` on the servers' source instances, per origin account and region.
    pub(super) async fn stop_sources(
        &self,
        rec: &ExecutionRecord,
        servers: &[SourceServerId],
        now: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        let mut by_origin: BTreeMap<AccountRegion, Vec<(SourceServerId, InstanceId)>> = BTreeMap::new();
        let mut events = Vec::new();
        for run in runs(rec, servers) {
            match (&run.origin, &run.source_instance_id) {
                (Some(o), Some(i)) => {
                    by_origin.entry(o.clone()).or_default().push((run.source_server_id.clone(), i.clone()))
                }
                _ => events.push(Event::StartFailed {
                    servers: vec![run.source_server_id.clone()],
                    error: "no source instance is known, so it cannot be stopped".into(),
                    at: now,
                }),
            }
        }
        for (origin, items) in by_origin {
            let ids: Vec<InstanceId> = items.iter().map(|(_, i)| i.clone()).collect();
            let servers: Vec<SourceServerId> = items.into_iter().map(|(s, _)| s).collect();
            let r = self.retried(|| self.cloud.stop_instances(&origin, &ids)).await;
            self.record_aws_write(
                rec,
                "aws.ec2.StopInstances",
                &origin,
                serde_json::json!({ "instance_ids": ids }),
                &r,
            )
            .await;
            events.push(match r {
                Ok(()) => Event::SourcesStopped { servers, at: now },
                Err(CloudError::Throttled { .. } | CloudError::Unavailable { .. }) => continue,
                Err(e) => {
                    Event::StartFailed { servers, error: format!("could not stop the source instance: {e}"), at: now }
                }
            });
        }
        Ok(events)
    }

    /// Planned failover: servers whose source instance is stopped and whose replication has shipped the
    /// last data (lag and backlog zero).
    pub(super) async fn drained(
        &self,
        rec: &ExecutionRecord,
        servers: &[SourceServerId],
        now: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        let sources = self.retried(|| self.cloud.describe_source_servers_by_id(&rec.dr, servers)).await?;
        let drained: HashSet<&SourceServerId> = sources
            .iter()
            .filter(|s| s.lag_seconds == 0 && s.backlog_bytes == 0)
            .map(|s| &s.source_server_id)
            .collect();
        let mut stopped: HashSet<InstanceId> = HashSet::new();
        let mut by_origin: HashMap<&AccountRegion, Vec<InstanceId>> = HashMap::new();
        for r in runs(rec, servers) {
            if let (Some(o), Some(i)) = (&r.origin, &r.source_instance_id) {
                by_origin.entry(o).or_default().push(i.clone());
            }
        }
        for (o, ids) in by_origin {
            let instances = self.retried(|| self.cloud.describe_instances_by_id(o, &ids)).await?;
            stopped.extend(instances.into_iter().filter(|i| i.state == InstanceState::Stopped).map(|i| i.instance_id));
        }
        let done: Vec<SourceServerId> = runs(rec, servers)
            .filter(|r| r.source_instance_id.as_ref().is_some_and(|i| stopped.contains(i)))
            .filter(|r| drained.contains(&r.source_server_id))
            .map(|r| r.source_server_id.clone())
            .collect();
        Ok(if done.is_empty() { Vec::new() } else { vec![Event::Drained { servers: done, at: now }] })
    }
}
