//! Reading executions: one, all, the view the API and the live stream serve (kept a second, shared by
//! every watcher), and the runner's decoded copies, used only while the stored version is the one they were
//! written as.

use super::EXECUTIONS;
use super::persist::decode;
use crate::error::ServiceError;
use crate::services::Services;
use crate::store::StoreError;
use domain::execution::{ExecutionRecord, ExecutionView};
use std::collections::HashMap;
use std::sync::Arc;

/// The runner's decoded copies of the executions it steps, by id. A copy is used only while the stored
/// version is the one it was written as, so another process's write (a decision, a takeover) is never
/// missed; decoding a 3,000-server record on every step was most of the runner's work.
#[derive(Clone, Default)]
pub(crate) struct RunnerCopies(Arc<std::sync::Mutex<HashMap<String, ExecutionRecord>>>);

impl RunnerCopies {
    pub(super) fn keep(&self, rec: ExecutionRecord) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(rec.id.clone(), rec);
    }

    pub(super) fn forget(&self, id: &str) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
    }

    /// A copy of the runner's copy when it is of `version` (cheap: the waves' servers are shared, and
    /// already encoded by the write that made the version).
    pub(super) fn get(&self, id: &str, version: u64) -> Option<ExecutionRecord> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .filter(|r| r.version == version)
            .cloned()
    }
}

/// How long a [`SharedView`] of an unchanged execution is served (its status's clocks move).
pub(super) const SHARED_VIEW_MS: i64 = 1_000;

/// Executions whose shared view is kept.
pub(super) const SHARED_VIEWS: usize = 256;

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
    pub(super) fn get(&self, id: &str) -> Option<SharedView> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(id).cloned()
    }

    pub(super) fn keep(&self, id: &str, v: SharedView) {
        let mut m = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.len() >= SHARED_VIEWS && !m.contains_key(id) {
            m.clear();
        }
        m.insert(id.to_owned(), v);
    }
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

    /// This process's runner copy of execution `id`, when it is of the stored version.
    pub(super) async fn runner_copy(&self, id: &str) -> Result<Option<ExecutionRecord>, ServiceError> {
        Ok(match self.store.version(EXECUTIONS, id).await? {
            Some(version) => self.runner_copies.get(id, version),
            None => None,
        })
    }
}
