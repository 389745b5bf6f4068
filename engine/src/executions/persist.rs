//! Writing executions: every write is conditional on the version read, and the one that holds or releases
//! a plan's or a server's lock goes in one transaction with `execution_locks/active`.

use super::{ACTIVE, ActiveLocks, EXECUTION_LOCKS, EXECUTIONS, LOG_LINES, apply, notice_context, refused};
use crate::error::ServiceError;
use crate::services::Services;
use crate::store::{Expect, StoreError, WriteOp};
use domain::execution::{Event, ExecutionState};
use domain::execution::{ExecutionRecord, Lease, LogLine};
use domain::ids::SourceServerId;

/// Events a runner step applied in memory and has not written yet, and the state as last written.
pub(super) struct Unwritten {
    pub(super) written: ExecutionState,
    pub(super) events: Vec<Event>,
}

impl Unwritten {
    /// Applies `events` and keeps them for the step's next write: observations (launches, verifications,
    /// readiness), which a crash before the write only makes the next step observe again.
    pub(super) fn defer(&mut self, rec: ExecutionRecord, events: Vec<Event>) -> Result<ExecutionRecord, ServiceError> {
        let rec = apply(rec, &events)?;
        self.events.extend(events);
        Ok(rec)
    }
}

pub(super) fn decode_lease(r: &crate::store::Record) -> Result<Lease, ServiceError> {
    r.value.decode().map_err(|e| {
        ServiceError::Store(StoreError::Unexpected(anyhow::anyhow!("the lease of {} does not decode: {e}", r.key)))
    })
}

pub(super) fn decode(r: crate::store::Record) -> Result<ExecutionRecord, ServiceError> {
    let version = r.version;
    let mut e: ExecutionRecord = r.value.decode().map_err(|e| {
        ServiceError::Store(StoreError::Unexpected(anyhow::anyhow!("execution {} does not decode: {e}", r.key)))
    })?;
    e.version = version;
    Ok(e)
}

pub(super) fn put(e: &ExecutionRecord, expect: Expect) -> WriteOp {
    WriteOp::Put { table: EXECUTIONS.into(), key: e.id.clone(), value: crate::store::Json::encode(e), expect }
}

impl Services {
    /// Writes every deferred event now (before and after an AWS mutation).
    pub(super) async fn flush(&self, rec: ExecutionRecord, u: &mut Unwritten) -> Result<ExecutionRecord, ServiceError> {
        if u.events.is_empty() {
            return Ok(rec);
        }
        let rec = self.write(rec, &u.written, &u.events).await?;
        u.events.clear();
        u.written = rec.state.clone();
        Ok(rec)
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
    pub(super) async fn lock_and_write(
        &self,
        rec: &ExecutionRecord,
        expect_record: Expect,
    ) -> Result<u64, ServiceError> {
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

    /// Applies `events` to the stored execution and writes it with the version read; releases its locks
    /// when it ends.
    pub(super) async fn commit(
        &self,
        rec: ExecutionRecord,
        events: Vec<Event>,
    ) -> Result<ExecutionRecord, ServiceError> {
        let old = rec.state.clone();
        let rec = apply(rec, &events)?;
        self.write(rec, &old, &events).await
    }

    /// Writes what [`apply`] did since the stored execution's state was `old` (`events`, which its notices
    /// come from); nothing when the state is unchanged. Releases the execution's locks when it ends.
    pub(super) async fn write(
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
}
