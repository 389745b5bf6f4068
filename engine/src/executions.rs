//! Executions of recovery plans: start one (readiness gate, one execution per plan at a time, approval
//! for real recoveries), and drive it with a runner step that is safe to repeat and to crash.
//!
//! Layout: `executions/<id>` → [`ExecutionRecord`] (the pure [`ExecutionState`] plus what the runner needs);
//! `execution_locks/active` → [`ActiveLocks`]: which plan and which source servers each live execution
//! holds, written with the execution in one transaction (and released with its last write), so two
//! simultaneous requests for one plan make one execution, and a drill and a recovery never run on
//! overlapping servers.
//!
//! [`Services::advance_execution`] is one step: take (or renew) the lease, apply the clock, ask the state
//! machine what to do, and do it. Every state change is written with the version read before any AWS call
//! it leads to; claimed servers are persisted before `StartRecovery`, so after a crash they are reconciled
//! against `DescribeJobs` and never started twice (`domain::execution`). One process holds an execution's
//! lease at a time; another takes it over only once it has expired.

use crate::audit::AuditEvent;
use crate::cloud::CloudError;
use crate::repo;
use crate::services::{ServiceError, Services};
use crate::store::{Expect, StoreError, WriteOp};
use domain::FieldError;
use domain::auth::Principal;
use domain::estate::{AccountRegion, InstanceState};
use domain::execution::{
    Command, Event, ExecutionState, FailoverKind, Limits, Mode, ServerRun, ServerState, WaveRun, WaveState, decide,
    on_event,
};
pub use domain::execution::{Decision, ExecutionRecord, ExecutionView, Lease, LogLine, StartExecution};
use domain::ids::{InstanceId, SourceServerId};
use domain::matching::Severity;
use domain::recovery::LaunchStatus;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

pub const EXECUTIONS: &str = "executions";
pub const EXECUTION_LOCKS: &str = "execution_locks";
/// `execution_leases/<id>` → [`Lease`]: who steps an execution, until when. Apart from the execution, so the
/// holder renews it while a long step works (a heartbeat) without rewriting the execution.
pub const EXECUTION_LEASES: &str = "execution_leases";
/// The key of the one [`ActiveLocks`] record.
const ACTIVE: &str = "active";
/// Lines an execution's event log keeps (the most recent).
pub const LOG_LINES: usize = 500;

/// What live executions hold: plan id → execution id, and source server id → execution id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveLocks {
    pub plans: BTreeMap<String, String>,
    pub servers: BTreeMap<SourceServerId, String>,
}

/// The audit action of a decision.
fn decision_action(d: Decision) -> &'static str {
    match d {
        Decision::Approve => "execution.approve",
        Decision::Reject => "execution.reject",
        Decision::Resume => "execution.resume",
        Decision::Cancel => "execution.cancel",
    }
}

/// What one runner step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Something changed; step again soon.
    Advanced,
    /// Nothing to do until time passes or someone acts.
    Idle,
    /// Another process holds the lease.
    Leased,
    /// The execution has ended.
    Done,
}

/// The runner's decoded copies of the executions it steps, by id. A copy is used only while the stored
/// version is the one it was written as, so another process's write (a decision, a takeover) is never
/// missed; decoding a 3,000-server record on every step was most of the runner's work.
#[derive(Clone, Default)]
pub(crate) struct RunnerCopies(Arc<std::sync::Mutex<HashMap<String, ExecutionRecord>>>);

impl RunnerCopies {
    fn keep(&self, rec: ExecutionRecord) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(rec.id.clone(), rec);
    }

    fn forget(&self, id: &str) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
    }

    /// A copy of the runner's copy when it is of `version` (cheap: the waves' servers are shared, and
    /// already encoded by the write that made the version).
    fn get(&self, id: &str, version: u64) -> Option<ExecutionRecord> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .filter(|r| r.version == version)
            .cloned()
    }
}

/// Applies `events` to the execution in memory, with their log lines.
fn apply(mut rec: ExecutionRecord, events: &[Event]) -> Result<ExecutionRecord, ServiceError> {
    for ev in events {
        let line =
            ev.summary().map(|message| LogLine { at: event_time(ev, &rec.state), failure: ev.is_failure(), message });
        rec.state =
            on_event(rec.state, ev.clone()).map_err(|e| refused("event", "INVALID_TRANSITION", e.to_string()))?;
        rec.log.extend(line);
    }
    Ok(rec)
}

/// Events a runner step applied in memory and has not written yet, and the state as last written.
struct Unwritten {
    written: ExecutionState,
    events: Vec<Event>,
}

impl Unwritten {
    /// Applies `events` and keeps them for the step's next write: observations (launches, verifications,
    /// readiness), which a crash before the write only makes the next step observe again.
    fn defer(&mut self, rec: ExecutionRecord, events: Vec<Event>) -> Result<ExecutionRecord, ServiceError> {
        let rec = apply(rec, &events)?;
        self.events.extend(events);
        Ok(rec)
    }
}

impl Services {
    /// Writes every deferred event now (before and after an AWS mutation).
    async fn flush(&self, rec: ExecutionRecord, u: &mut Unwritten) -> Result<ExecutionRecord, ServiceError> {
        if u.events.is_empty() {
            return Ok(rec);
        }
        let rec = self.write(rec, &u.written, &u.events).await?;
        u.events.clear();
        u.written = rec.state.clone();
        Ok(rec)
    }
}

/// How long a [`SharedView`] of an unchanged execution is served (its status's clocks move).
const SHARED_VIEW_MS: i64 = 1_000;
/// Executions whose shared view is kept.
const SHARED_VIEWS: usize = 256;

/// An execution as [`Services::shared_execution_view`] serves it.
#[derive(Clone)]
pub struct SharedView {
    pub version: u64,
    /// Whether the execution has ended.
    pub ended: bool,
    pub record: Arc<ExecutionRecord>,
    /// The [`ExecutionView`] as JSON (no line breaks).
    pub json: Arc<str>,
    /// When it was made (wall clock, Unix ms).
    at: i64,
}

/// The shared views, by execution id.
#[derive(Clone, Default)]
pub(crate) struct SharedViews(Arc<std::sync::Mutex<HashMap<String, SharedView>>>, Arc<tokio::sync::Mutex<()>>);

impl SharedViews {
    fn get(&self, id: &str) -> Option<SharedView> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(id).cloned()
    }

    fn keep(&self, id: &str, v: SharedView) {
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.len() >= SHARED_VIEWS && !m.contains_key(id) {
            m.clear();
        }
        m.insert(id.to_owned(), v);
    }
}

fn decode_lease(r: &crate::store::Record) -> Result<Lease, ServiceError> {
    r.value.decode().map_err(|e| {
        ServiceError::Store(StoreError::Unexpected(anyhow::anyhow!("the lease of {} does not decode: {e}", r.key)))
    })
}

fn decode(r: crate::store::Record) -> Result<ExecutionRecord, ServiceError> {
    let version = r.version;
    let mut e: ExecutionRecord = r.value.decode().map_err(|e| {
        ServiceError::Store(StoreError::Unexpected(anyhow::anyhow!("execution {} does not decode: {e}", r.key)))
    })?;
    e.version = version;
    Ok(e)
}

fn put(e: &ExecutionRecord, expect: Expect) -> WriteOp {
    WriteOp::Put { table: EXECUTIONS.into(), key: e.id.clone(), value: crate::store::Json::encode(e), expect }
}

/// When an event happened (events without a time: the execution's start).
fn event_time(ev: &Event, s: &ExecutionState) -> i64 {
    match ev {
        Event::Approved { at, .. }
        | Event::Rejected { at, .. }
        | Event::GateReleased { at, .. }
        | Event::BatchClaimed { at, .. }
        | Event::JobStarted { at, .. }
        | Event::StartFailed { at, .. }
        | Event::Launched { at, .. }
        | Event::LaunchFailed { at, .. }
        | Event::Verified { at, .. }
        | Event::VerificationFailed { at, .. }
        | Event::SourcesStopped { at, .. }
        | Event::Drained { at, .. }
        | Event::CleanedUp { at, .. }
        | Event::ReadinessChecked { at, .. }
        | Event::ReverseClaimed { at, .. }
        | Event::Reversed { at, .. }
        | Event::Replicated { at, .. }
        | Event::Configured { at, .. }
        | Event::Reprotected { at, .. }
        | Event::ReArmRequested { at, .. }
        | Event::Protected { at, .. }
        | Event::CancelRequested { at, .. }
        | Event::Tick { at } => *at,
        Event::StartAbandoned { .. } | Event::ReverseAbandoned { .. } | Event::ReplicationObserved { .. } => {
            s.started_at.unwrap_or(s.requested_at)
        }
    }
}

fn refused(field: &str, code: &str, message: String) -> ServiceError {
    ServiceError::Invalid(vec![FieldError::new(field, code, message)])
}

impl Services {
    /// One execution.
    ///
    /// # Errors
    /// [`ServiceError::ExecutionNotFound`].
    pub async fn get_execution(&self, id: &str) -> Result<ExecutionRecord, ServiceError> {
        let r = self.store.get(EXECUTIONS, id).await?.ok_or_else(|| ServiceError::ExecutionNotFound(id.to_owned()))?;
        decode(r)
    }

    /// One execution with its progress now.
    ///
    /// # Errors
    /// As [`Services::get_execution`].
    pub async fn execution_view(&self, id: &str) -> Result<ExecutionView, ServiceError> {
        let execution = self.get_execution(id).await?;
        let status = domain::execution::status(&execution.state, execution.rto_target_minutes, self.clock.now_millis());
        Ok(ExecutionView { execution, status })
    }

    /// The execution's view, decoded and encoded once for every reader of its current version within a
    /// second: each follower of the status stream looks twice a second, and hundreds follow one execution.
    ///
    /// # Errors
    /// As [`Services::get_execution`].
    pub async fn shared_execution_view(&self, id: &str) -> Result<SharedView, ServiceError> {
        let fresh = || async {
            let now = self.wall_clock.now_millis();
            Ok::<_, ServiceError>(match self.store.version(EXECUTIONS, id).await? {
                Some(version) => {
                    self.shared_views.get(id).filter(|v| v.version == version && now - v.at < SHARED_VIEW_MS)
                }
                None => None,
            })
        };
        if let Some(v) = fresh().await? {
            return Ok(v);
        }
        // One reader makes the new view; the others wait for it instead of each decoding the record.
        let _turn = self.shared_views.1.lock().await;
        if let Some(v) = fresh().await? {
            return Ok(v);
        }
        let now = self.wall_clock.now_millis();
        // When this process runs the execution, the runner's copy of the stored version needs no decoding.
        let view = match self.runner_copy(id).await? {
            Some(execution) => {
                let status =
                    domain::execution::status(&execution.state, execution.rto_target_minutes, self.clock.now_millis());
                ExecutionView { execution, status }
            }
            None => self.execution_view(id).await?,
        };
        let json = serde_json::to_string(&view).map_err(|e| ServiceError::Store(StoreError::Unexpected(e.into())))?;
        let shared = SharedView {
            version: view.execution.version,
            ended: view.execution.state.phase.is_terminal(),
            record: Arc::new(view.execution),
            json: json.into(),
            at: now,
        };
        self.shared_views.keep(id, shared.clone());
        Ok(shared)
    }

    /// Every execution, newest first.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_executions(&self) -> Result<Vec<ExecutionRecord>, ServiceError> {
        let mut out: Vec<ExecutionRecord> =
            self.store.list(EXECUTIONS, "").await?.into_iter().map(decode).collect::<Result<_, _>>()?;
        out.sort_by_key(|e| std::cmp::Reverse(e.state.requested_at));
        Ok(out)
    }

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

    /// Reads the active locks and their version (0 when there are none yet).
    pub(crate) async fn active_locks(&self) -> Result<(ActiveLocks, Expect), ServiceError> {
        Ok(match self.store.get(EXECUTION_LOCKS, ACTIVE).await? {
            Some(r) => (
                r.value.decode().map_err(|e| {
                    ServiceError::Store(StoreError::Unexpected(anyhow::anyhow!("execution locks do not decode: {e}")))
                })?,
                Expect::Version(r.version),
            ),
            None => (ActiveLocks::default(), Expect::Absent),
        })
    }

    /// Inserts a new execution holding its plan and servers, or refuses when another live execution holds
    /// either.
    pub(crate) async fn lock_and_insert(&self, rec: &ExecutionRecord) -> Result<(), ServiceError> {
        self.lock_and_write(rec, Expect::Absent).await?;
        self.notifier.publish(domain::notify::execution_notices(
            notice_context(rec),
            None,
            &rec.state,
            &[],
            self.clock.now_millis(),
        ));
        Ok(())
    }

    /// Writes `rec` (expecting `expect`) holding its plan and servers again, or refuses when another live
    /// execution holds either. Returns the record's new version.
    async fn lock_and_write(&self, rec: &ExecutionRecord, expect_record: Expect) -> Result<u64, ServiceError> {
        let servers: Vec<&SourceServerId> =
            rec.state.waves.iter().flat_map(|w| w.servers.iter()).map(|r| &r.source_server_id).collect();
        loop {
            let (mut locks, expect) = self.active_locks().await?;
            if locks.plans.contains_key(&rec.plan_id) {
                return Err(refused(
                    "plan_id",
                    "EXECUTION_IN_PROGRESS",
                    format!("plan {} already has an execution that has not ended", rec.plan_name),
                ));
            }
            let mut held: Vec<String> =
                servers.iter().filter_map(|s| locks.servers.get(*s).map(|e| format!("{s} ({e})"))).collect();
            if !held.is_empty() {
                let n = held.len();
                held.truncate(5);
                return Err(refused(
                    "plan_id",
                    "SERVERS_IN_EXECUTION",
                    format!(
                        "{n} of the plan's servers are in another execution that has not ended: {}",
                        held.join(", ")
                    ),
                ));
            }
            locks.plans.insert(rec.plan_id.clone(), rec.id.clone());
            locks.servers.extend(servers.iter().map(|s| ((*s).clone(), rec.id.clone())));
            let ops = vec![
                WriteOp::Put {
                    table: EXECUTION_LOCKS.into(),
                    key: ACTIVE.into(),
                    value: crate::store::Json::encode(&locks),
                    expect,
                },
                put(rec, expect_record),
            ];
            match self.store.transact(ops).await {
                // Another execution started or ended meanwhile: look again.
                Err(StoreError::Conflict { table, .. }) if table == EXECUTION_LOCKS => {}
                Err(StoreError::Conflict { actual, expected: Expect::Version(expected), .. }) => {
                    return Err(ServiceError::VersionConflict { expected, actual });
                }
                r => return r.map(|v| v[1]).map_err(Into::into),
            }
        }
    }

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

    /// Applies `events` to the stored execution and writes it with the version read; releases its locks
    /// when it ends.
    async fn commit(&self, rec: ExecutionRecord, events: Vec<Event>) -> Result<ExecutionRecord, ServiceError> {
        let old = rec.state.clone();
        let rec = apply(rec, &events)?;
        self.write(rec, &old, &events).await
    }

    /// Writes what [`apply`] did since the stored execution's state was `old` (`events`, which its notices
    /// come from); nothing when the state is unchanged. Releases the execution's locks when it ends.
    async fn write(
        &self,
        mut rec: ExecutionRecord,
        old: &ExecutionState,
        events: &[Event],
    ) -> Result<ExecutionRecord, ServiceError> {
        let before = rec.version;
        if rec.state == *old {
            return Ok(rec);
        }
        if rec.state.phase.is_terminal() && !old.phase.is_terminal() {
            rec.log.push(LogLine {
                at: rec.state.ended_at.unwrap_or_default(),
                message: format!("ended {:?}", rec.state.phase).to_lowercase(),
                failure: rec.state.phase != domain::execution::Phase::Succeeded,
            });
        }
        if rec.log.len() > LOG_LINES {
            rec.log.drain(..rec.log.len() - LOG_LINES);
        }
        loop {
            let mut ops = vec![put(&rec, Expect::Version(before))];
            if rec.state.phase.is_terminal() {
                let (mut locks, expect) = self.active_locks().await?;
                locks.plans.retain(|_, e| e != &rec.id);
                locks.servers.retain(|_, e| e != &rec.id);
                ops.push(WriteOp::Put {
                    table: EXECUTION_LOCKS.into(),
                    key: ACTIVE.into(),
                    value: crate::store::Json::encode(&locks),
                    expect,
                });
            }
            match self.store.transact(ops).await {
                Ok(v) => {
                    rec.version = v[0];
                    // Only the process whose write committed announces the change.
                    self.notifier.publish(domain::notify::execution_notices(
                        notice_context(&rec),
                        Some(old),
                        &rec.state,
                        events,
                        self.clock.now_millis(),
                    ));
                    return Ok(rec);
                }
                Err(StoreError::Conflict { table, .. }) if table == EXECUTION_LOCKS => {}
                Err(StoreError::Conflict { actual, .. }) => {
                    return Err(ServiceError::VersionConflict { expected: before, actual });
                }
                Err(e) => return Err(e.into()),
            }
        }
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

    /// This process's runner copy of execution `id`, when it is of the stored version.
    async fn runner_copy(&self, id: &str) -> Result<Option<ExecutionRecord>, ServiceError> {
        Ok(match self.store.version(EXECUTIONS, id).await? {
            Some(version) => self.runner_copies.get(id, version),
            None => None,
        })
    }

    /// Takes or renews the lease for `owner`: the execution and the lease record's version, or `None` when
    /// another owner holds it. Taking it over also writes the execution (its `lease` names the new owner), so
    /// a former holder that is still working fails its next write with a version conflict and stops.
    async fn lease(&self, id: &str, owner: &str) -> Result<Option<(ExecutionRecord, u64)>, ServiceError> {
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
    async fn renew_lease(&self, id: &str, owner: &str, version: u64) -> Result<Option<u64>, ServiceError> {
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
    async fn keep_lease(&self, id: &str, owner: &str, mut version: u64, done: &tokio::sync::Notify) {
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

    async fn advance_execution_now(&self, id: &str, owner: &str, limits: &Limits) -> Result<Step, ServiceError> {
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
    async fn step(&self, rec: ExecutionRecord, limits: &Limits) -> Result<Step, ServiceError> {
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
    async fn verify(
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

    /// Volumes DRS swapped out of standbys (available volumes last attached to a paired standby), with the
    /// retention that protects them.
    ///
    /// # Errors
    /// Store and cloud failures.
    pub async fn swapped_volumes(&self) -> Result<Vec<domain::recovery::SwappedVolume>, ServiceError> {
        let groups = repo::list_groups(&*self.store).await?;
        // Launches swap volumes of standbys (failover) and of originals (failback).
        let mut standbys: HashSet<InstanceId> =
            repo::list_pairs(&*self.store, None).await?.into_iter().map(|p| p.standby_instance_id).collect();
        for e in self.list_executions().await?.iter().filter(|e| e.failback.is_some()) {
            standbys.extend(e.state.waves.iter().flat_map(|w| w.servers.iter()).map(|r| r.standby_instance_id.clone()));
        }
        let places: std::collections::BTreeSet<AccountRegion> =
            groups.into_iter().flat_map(|g| [g.dr, g.primary]).collect();
        let keep_ms = i64::from(self.settings.swapped_volume_retention_days) * 86_400_000;
        let now = self.clock.now_millis();
        let mut out = Vec::new();
        for at in places {
            for v in self.retried(|| self.cloud.describe_available_volumes(&at)).await? {
                let Some(standby) = v.last_instance_id.clone().filter(|i| standbys.contains(i)) else { continue };
                let deletable_after = v.since + keep_ms;
                out.push(domain::recovery::SwappedVolume {
                    account_id: at.account_id.clone(),
                    region: at.region.clone(),
                    standby_instance_id: standby,
                    deletable_after,
                    deletable: now >= deletable_after,
                    volume: v,
                });
            }
        }
        out.sort_by(|a, b| (a.volume.since, &a.volume.volume_id).cmp(&(b.volume.since, &b.volume.volume_id)));
        Ok(out)
    }

    /// Deletes a swapped-out volume once its retention has ended (never before), and records it.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`]: `NOT_A_SWAPPED_VOLUME`, or `RETENTION_NOT_OVER` with the date it ends.
    pub async fn delete_swapped_volume(&self, who: &Principal, volume_id: &str) -> Result<(), ServiceError> {
        let all = self.swapped_volumes().await?;
        let Some(v) = all.iter().find(|v| v.volume.volume_id == volume_id) else {
            return Err(refused(
                "volume_id",
                "NOT_A_SWAPPED_VOLUME",
                format!(
                    "{:?} is not a volume a launch swapped out of a standby or an original",
                    volume_id.chars().take(64).collect::<String>()
                ),
            ));
        };
        if !v.deletable {
            return Err(refused(
                "volume_id",
                "RETENTION_NOT_OVER",
                format!(
                    "{volume_id} is kept for {} days; it may be deleted from {}",
                    self.settings.swapped_volume_retention_days, v.deletable_after
                ),
            ));
        }
        let at = AccountRegion { account_id: v.account_id.clone(), region: v.region.clone() };
        let r = self.retried(|| self.cloud.delete_volume(&at, volume_id)).await;
        let details = serde_json::json!({
            "volume_id": volume_id, "account_id": at.account_id.to_string(), "region": at.region.to_string(),
            "from_instance": v.standby_instance_id, "error": r.as_ref().err().map(ToString::to_string),
        });
        let outcome = if r.is_ok() { crate::audit::Outcome::Ok } else { crate::audit::Outcome::Failed };
        self.audit
            .record_or_log(who, AuditEvent::ok("aws.ec2.DeleteVolume", volume_id, details).with_outcome(outcome))
            .await;
        r.map_err(Into::into)
    }

    /// Removes a recovery instance from DRS's list, keeping its EC2 instance: disconnect first when asked
    /// (an instance whose replication was reversed is deleted directly), then delete; each call audited.
    /// Whether it is gone.
    pub(crate) async fn release_recovery_instance(
        &self,
        rec: &ExecutionRecord,
        at: &AccountRegion,
        id: &InstanceId,
        disconnect: bool,
    ) -> bool {
        let details = serde_json::json!({ "recovery_instance_id": id });
        if disconnect {
            let r = self.retried(|| self.cloud.disconnect_recovery_instance(at, id)).await;
            self.record_aws_write(rec, "aws.drs.DisconnectRecoveryInstance", at, details.clone(), &r).await;
            if r.is_err() {
                return false;
            }
        }
        let r = self.retried(|| self.cloud.delete_recovery_instance(at, id)).await;
        self.record_aws_write(rec, "aws.drs.DeleteRecoveryInstance", at, details, &r).await;
        r.is_ok()
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
    async fn wave_readiness(
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
    async fn stop_sources(
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
    async fn drained(
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

    /// Drill clean-up: each standby leaves DRS's recovery instances (disconnect, then delete; never
    /// `TerminateRecoveryInstances`) and is stopped again. A server is cleaned up once DRS no longer lists
    /// its standby and the standby is stopped (or gone, which the log reports).
    async fn clean_up(
        &self,
        rec: &ExecutionRecord,
        servers: &[SourceServerId],
        now: i64,
    ) -> Result<Vec<Event>, ServiceError> {
        let dr = &rec.dr;
        // A launch still under way (e.g. after a wave timed out) finishes before its standby is cleaned.
        let busy: HashSet<SourceServerId> =
            self.retried(|| self.cloud.servers_in_active_jobs(dr)).await?.into_iter().collect();
        let servers: Vec<SourceServerId> = servers.iter().filter(|s| !busy.contains(*s)).cloned().collect();
        let servers = servers.as_slice();
        let listed = self.retried(|| self.cloud.describe_recovery_instances(dr, servers)).await?;
        let mut still_listed: HashSet<InstanceId> = HashSet::new();
        for run in runs(rec, servers) {
            let Some(ri) = listed
                .iter()
                .find(|r| r.source_server_id == run.source_server_id && r.ec2_instance_id == run.standby_instance_id)
            else {
                continue;
            };
            if !self.release_recovery_instance(rec, dr, &ri.recovery_instance_id, !ri.disconnected).await {
                still_listed.insert(run.standby_instance_id.clone());
            }
        }
        let standbys: Vec<InstanceId> = runs(rec, servers).map(|r| r.standby_instance_id.clone()).collect();
        let instances = self.retried(|| self.cloud.describe_instances_by_id(dr, &standbys)).await?;
        let by_id = index_by(&instances, |i| &i.instance_id);
        let state_of = |id: &InstanceId| by_id.get(id).map(|i| i.state);
        let to_stop: Vec<InstanceId> = runs(rec, servers)
            .map(|r| r.standby_instance_id.clone())
            .filter(|i| {
                !still_listed.contains(i)
                    && matches!(state_of(i), Some(InstanceState::Running | InstanceState::Pending))
            })
            .collect();
        if !to_stop.is_empty() {
            let r = self.retried(|| self.cloud.stop_instances(dr, &to_stop)).await;
            self.record_aws_write(rec, "aws.ec2.StopInstances", dr, serde_json::json!({ "instance_ids": to_stop }), &r)
                .await;
        }
        let done: Vec<SourceServerId> = runs(rec, servers)
            .filter(|r| !still_listed.contains(&r.standby_instance_id))
            .filter(|r| {
                matches!(
                    state_of(&r.standby_instance_id),
                    Some(InstanceState::Stopped | InstanceState::Terminated) | None
                )
            })
            .map(|r| r.source_server_id.clone())
            .collect();
        Ok(if done.is_empty() { Vec::new() } else { vec![Event::CleanedUp { servers: done, at: now }] })
    }
}

/// The failed checks of a pair that keep it from launching: critical ones, and warnings unless
/// acknowledged. In a disaster failover the source side may be gone, and DRS launches from the last
/// recovery point, so replication checks do not block it (the recovery point is recorded instead).
fn notice_context(rec: &ExecutionRecord) -> domain::notify::ExecutionContext<'_> {
    domain::notify::ExecutionContext {
        execution_id: &rec.id,
        plan_name: &rec.plan_name,
        rto_target_minutes: rec.rto_target_minutes,
    }
}

/// Adds a pair's readiness to the snapshot an execution keeps for its evidence report.
fn note_readiness(at: &mut domain::execution::ReadinessAtStart, pr: &domain::readiness::PairReadiness) {
    use domain::matching::PairStatus;
    at.pairs += 1;
    match pr.status {
        PairStatus::Ready => at.ready += 1,
        PairStatus::Blocked => at.blocked += 1,
        PairStatus::Warning => at.with_warnings += 1,
    }
    for c in pr.checks.iter().filter(|c| !c.passed) {
        if at.notes.len() == domain::execution::MAX_READINESS_NOTES {
            at.omitted += 1;
            continue;
        }
        at.notes.push(domain::execution::ReadinessNote {
            source_name: pr.source_name.clone(),
            source_server_id: pr.source_server_id.clone(),
            check_id: c.id.clone(),
            severity: c.severity,
            expected: c.expected.clone(),
            actual: c.actual.clone(),
        });
    }
}

fn blocking_checks(
    pr: &domain::readiness::PairReadiness,
    mode: Mode,
    kind: FailoverKind,
    acknowledged: bool,
) -> Vec<&domain::readiness::Check> {
    let disaster = mode == Mode::Recovery && kind == FailoverKind::Disaster;
    pr.checks
        .iter()
        .filter(|c| !c.passed)
        .filter(|c| !(disaster && c.id.starts_with("replication.")))
        .filter(|c| c.severity == Severity::Critical || !acknowledged)
        .collect()
}

/// The DRS source server a run launches from: for a failback, the one DRS created in the original region.
pub(crate) fn launch_id(r: &ServerRun) -> &SourceServerId {
    r.failback_source_id.as_ref().unwrap_or(&r.source_server_id)
}

/// The DRS source servers `servers` launch from.
fn launch_ids(rec: &ExecutionRecord, servers: &[SourceServerId]) -> Vec<SourceServerId> {
    runs(rec, servers).map(|r| launch_id(r).clone()).collect()
}

/// The server of `rec` that launches from DRS source server `id` (itself when none does).
fn from_launch_id(rec: &ExecutionRecord, id: &SourceServerId) -> SourceServerId {
    rec.state
        .waves
        .iter()
        .flat_map(|w| w.servers.iter())
        .find(|r| launch_id(r) == id)
        .map_or_else(|| id.clone(), |r| r.source_server_id.clone())
}

/// The runs of `servers` in `rec`.
pub(crate) fn runs<'a>(rec: &'a ExecutionRecord, servers: &'a [SourceServerId]) -> impl Iterator<Item = &'a ServerRun> {
    let wanted: HashSet<&SourceServerId> = servers.iter().collect();
    rec.state.waves.iter().flat_map(|w| w.servers.iter()).filter(move |r| wanted.contains(&r.source_server_id))
}

/// `items` by the key `key` gives each (the first of equal keys), for lookups in a loop over servers.
pub(crate) fn index_by<'a, T, K: Eq + std::hash::Hash + ?Sized>(
    items: &'a [T],
    key: impl Fn(&'a T) -> &'a K,
) -> HashMap<&'a K, &'a T> {
    let mut out = HashMap::with_capacity(items.len());
    for i in items {
        out.entry(key(i)).or_insert(i);
    }
    out
}
