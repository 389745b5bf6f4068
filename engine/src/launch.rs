//! Launch-into configuration of a group's source servers: preview (dry run), apply in two steps, roll
//! back, and report where each server stands.
//!
//! Invariants:
//! - Nothing is written for a pair whose standby fails a prerequisite (stopped, exact AWSDRS tag, same
//!   platform, architecture and boot mode, EBS root); the outcome says why.
//! - Nothing is written when the current configuration already is the desired one.
//! - The configuration before Roundtrip's first write is stored before that write, once; a rollback
//!   restores it.
//! - If step 2 fails, step 1 is undone for that server; the other servers go on.
//! - Every DRS write is in the audit trail (`aws.drs.UpdateLaunchConfiguration`), with its actor and outcome.
//! - Calls run with bounded concurrency and are retried on throttling and service errors only.

use crate::audit::{AuditEvent, Outcome};
use crate::cloud::CloudError;
use crate::error::ServiceError;
use crate::repo;
use crate::retry::{Attempts, with_retry};
use crate::services::Services;
use crate::store::{Expect, StoreError, WriteOp};
use domain::FieldError;
use domain::auth::Principal;
use domain::estate::{AccountRegion, Ec2Instance, SourceServer};
use domain::group::{InstancePair, ProtectionGroup};
use domain::ids::{PairId, ProtectionGroupId, SourceServerId};
use domain::launch::{
    ConfigureOutcome, ConfigureStatus, LaunchConfigState, LaunchConfigStatus, LaunchConfiguration,
    LaunchConfigurationUpdate, ServerOutcome, drift, plan_launch_into, restore, undo_step1,
};
use domain::matching::{Severity, pair_findings};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Which pairs a configuration request covers and whether it writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigureRequest {
    #[serde(default)]
    pub dry_run: bool,
    /// A subset of the group's pairs; all when absent.
    #[serde(default)]
    pub pair_ids: Option<Vec<PairId>>,
}

/// The audit entry of a whole apply or rollback (each DRS write has its own entry too).
fn summary(action: &str, id: &ProtectionGroupId, o: &ConfigureOutcome) -> AuditEvent {
    AuditEvent::ok(action, id.as_str(), serde_json::json!({ "writes": o.writes, "servers": o.counts }))
}

fn backup_key(g: &ProtectionGroupId, s: &SourceServerId) -> String {
    format!("{g}/{s}")
}

struct Job {
    services: Services,
    group: Arc<ProtectionGroup>,
    pair: InstancePair,
    source: Option<SourceServer>,
    standby: Option<Ec2Instance>,
    who: Arc<Principal>,
}

struct Tally {
    out: ServerOutcome,
}

impl Tally {
    fn new(pair: &InstancePair) -> Self {
        Self {
            out: ServerOutcome {
                pair_id: pair.id.clone(),
                source_server_id: pair.source_server_id.clone(),
                source_name: pair.source_name.clone(),
                standby_instance_id: pair.standby_instance_id.clone(),
                status: ConfigureStatus::Unchanged,
                changes: Vec::new(),
                writes: 0,
                calls: 0,
                throttled: 0,
                reasons: Vec::new(),
            },
        }
    }

    fn spent(&mut self, a: Attempts) {
        self.out.calls += a.attempts;
        self.out.throttled += a.throttled;
    }

    fn reason(&mut self, code: &str, message: impl Into<String>) {
        self.out.reasons.push(FieldError::new("launch_configuration", code, message));
    }

    fn finish(mut self, status: ConfigureStatus) -> ServerOutcome {
        self.out.status = status;
        self.out
    }
}

fn cloud_code(e: &CloudError) -> &'static str {
    match e {
        CloudError::Validation { .. } => "DRS_VALIDATION",
        CloudError::Throttled { .. } => "THROTTLED",
        CloudError::AccessDenied { .. } => "ACCESS_DENIED",
        CloudError::NotFound { .. } => "NOT_FOUND",
        CloudError::Conflict { .. } => "DRS_CONFLICT",
        CloudError::QuotaExceeded { .. } => "DRS_QUOTA_EXCEEDED",
        CloudError::Unavailable { .. } => "DRS_UNAVAILABLE",
        CloudError::Unexpected(_) => "CLOUD_ERROR",
    }
}

impl Job {
    async fn get(&self, t: &mut Tally) -> Result<LaunchConfiguration, CloudError> {
        let s = &self.services;
        let (r, a) = with_retry(&s.settings.retry, || {
            s.cloud.get_launch_configuration(&self.group.dr, &self.pair.source_server_id)
        })
        .await;
        s.metrics.retried(a);
        t.spent(a);
        r
    }

    /// Remembers `c` as the configuration Roundtrip last wrote (or found already right): drift is measured
    /// against it.
    async fn record_applied(&self, c: &LaunchConfiguration) {
        let rec = WriteOp::Put {
            table: repo::LAUNCH_CONFIG_APPLIED.into(),
            key: backup_key(&self.group.id, &self.pair.source_server_id),
            value: crate::store::Json::encode(c),
            expect: Expect::Any,
        };
        if let Err(e) = self.services.store.transact(vec![rec]).await {
            tracing::error!(error = %e, source_server_id = %self.pair.source_server_id, "could not record an applied launch configuration");
        }
    }

    /// Writes one update (retrying), records the mutation and the applied configuration, counts it.
    async fn write(&self, t: &mut Tally, u: &LaunchConfigurationUpdate) -> Result<LaunchConfiguration, CloudError> {
        let s = &self.services;
        let (r, a) = with_retry(&s.settings.retry, || s.cloud.update_launch_configuration(&self.group.dr, u)).await;
        s.metrics.retried(a);
        t.spent(a);
        if let Ok(c) = &r {
            t.out.writes += 1;
            // Roundtrip's own writes, even when a later step fails, must never read as drift.
            self.record_applied(c).await;
        }
        // Every AWS mutation is in the audit trail, whatever its outcome.
        let details = serde_json::json!({
            "account_id": self.group.dr.account_id,
            "region": self.group.dr.region,
            "protection_group_id": self.group.id,
            "after": u,
            "error": r.as_ref().err().map(|e| format!("{}: {e}", cloud_code(e))),
        });
        let event = AuditEvent::ok("aws.drs.UpdateLaunchConfiguration", self.pair.source_server_id.as_str(), details)
            .with_outcome(if r.is_ok() { Outcome::Ok } else { Outcome::Failed });
        s.audit.record_or_log(&self.who, event).await;
        r
    }

    /// Prerequisites on the standby (aws-drs-api.md §1.2): refused with every reason, or Ok.
    fn prerequisites(&self, t: &mut Tally) -> bool {
        let (Some(source), Some(standby)) = (&self.source, &self.standby) else {
            if self.source.is_none() {
                t.reason(
                    "SOURCE_SERVER_NOT_FOUND",
                    format!("source server {} is not in DRS", self.pair.source_server_id),
                );
            }
            if self.standby.is_none() {
                t.reason("STANDBY_NOT_FOUND", format!("standby {} does not exist", self.pair.standby_instance_id));
            }
            return false;
        };
        let replication = ["SOURCE_NOT_CONTINUOUS", "REPLICATION_LAGGING"];
        for f in pair_findings(source, standby) {
            if f.severity == Severity::Critical && !replication.contains(&f.code.as_str()) {
                t.reason(&f.code, f.message);
            }
        }
        t.out.reasons.is_empty()
    }

    async fn configure(self, dry_run: bool) -> ServerOutcome {
        let mut t = Tally::new(&self.pair);
        if !self.prerequisites(&mut t) {
            return t.finish(ConfigureStatus::Refused);
        }
        let current = match self.get(&mut t).await {
            Ok(c) => c,
            Err(e) => {
                t.reason(cloud_code(&e), e.to_string());
                return t.finish(ConfigureStatus::Failed);
            }
        };
        let plan = plan_launch_into(&current, &self.pair.standby_instance_id, self.group.launch_disposition);
        t.out.changes = plan.fields.clone();
        let store = &self.services.store;
        let key = backup_key(&self.group.id, &self.pair.source_server_id);
        if !plan.changes() {
            if !dry_run {
                // Already as desired: remember it as applied so drift is detected from now on.
                self.record_applied(&current).await;
            }
            return t.finish(ConfigureStatus::Unchanged);
        }
        if dry_run {
            return t.finish(ConfigureStatus::WouldChange);
        }
        // Keep the configuration from before Roundtrip's first write; an existing backup is older, so it stays.
        let backup = WriteOp::Put {
            table: repo::LAUNCH_CONFIG_BACKUPS.into(),
            key: key.clone(),
            value: crate::store::Json::encode(&current),
            expect: Expect::Absent,
        };
        match store.transact(vec![backup]).await {
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => {
                t.reason(
                    "STORE_FAILED",
                    format!("could not keep the previous configuration, so nothing was written: {e}"),
                );
                return t.finish(ConfigureStatus::Failed);
            }
        }
        if !plan.step1.is_empty()
            && let Err(e) = self.write(&mut t, &plan.step1).await
        {
            t.reason(cloud_code(&e), format!("step 1 failed; nothing was changed: {e}"));
            return t.finish(ConfigureStatus::Failed);
        }
        // `write` records what DRS answered as applied, so success needs nothing more here.
        if !plan.step2.is_empty()
            && let Err(e) = self.write(&mut t, &plan.step2).await
        {
            t.reason(cloud_code(&e), format!("step 2 failed: {e}"));
            if plan.step1.is_empty() {
                return t.finish(ConfigureStatus::Failed);
            }
            let undo = undo_step1(&current, &plan.step1);
            return match self.write(&mut t, &undo).await {
                Ok(_) => t.finish(ConfigureStatus::RolledBack),
                Err(e) => {
                    t.reason(cloud_code(&e), format!("undoing step 1 failed too; roll back the group: {e}"));
                    t.finish(ConfigureStatus::Failed)
                }
            };
        }
        t.finish(ConfigureStatus::Applied)
    }

    async fn rollback(self) -> ServerOutcome {
        let mut t = Tally::new(&self.pair);
        let store = &self.services.store;
        let key = backup_key(&self.group.id, &self.pair.source_server_id);
        let previous: LaunchConfiguration = match store.get(repo::LAUNCH_CONFIG_BACKUPS, &key).await {
            Ok(Some(r)) => match r.value.decode() {
                Ok(c) => c,
                Err(e) => {
                    t.reason("STORE_FAILED", format!("the kept configuration does not decode: {e}"));
                    return t.finish(ConfigureStatus::Failed);
                }
            },
            Ok(None) => return t.finish(ConfigureStatus::NothingToRestore),
            Err(e) => {
                t.reason("STORE_FAILED", e.to_string());
                return t.finish(ConfigureStatus::Failed);
            }
        };
        let current = match self.get(&mut t).await {
            Ok(c) => c,
            Err(e) => {
                t.reason(cloud_code(&e), e.to_string());
                return t.finish(ConfigureStatus::Failed);
            }
        };
        // `drift` puts the live value in `current` and the kept one in `desired`: exactly the rollback's diff.
        t.out.changes = drift(&previous, &current);
        for u in restore(&previous, &current).iter().filter(|u| !u.is_empty()) {
            if let Err(e) = self.write(&mut t, u).await {
                t.reason(
                    cloud_code(&e),
                    format!("restoring failed; the kept configuration stays for another try: {e}"),
                );
                return t.finish(ConfigureStatus::Failed);
            }
        }
        let done = vec![
            WriteOp::Delete { table: repo::LAUNCH_CONFIG_BACKUPS.into(), key: key.clone(), expect: Expect::Any },
            WriteOp::Delete { table: repo::LAUNCH_CONFIG_APPLIED.into(), key: key.clone(), expect: Expect::Any },
        ];
        if let Err(e) = store.transact(done).await {
            tracing::warn!(error = %e, source_server_id = %self.pair.source_server_id, "restored, but the kept configuration could not be dropped");
        }
        t.finish(ConfigureStatus::Restored)
    }
}

impl Services {
    /// Runs a cloud call with the engine's retry policy.
    pub(crate) async fn retried<T, F, Fut>(&self, op: F) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, CloudError>>,
    {
        let (r, spent) = with_retry(&self.settings.retry, op).await;
        self.metrics.retried(spent);
        r
    }

    async fn jobs(
        &self,
        id: &ProtectionGroupId,
        pair_ids: Option<&[PairId]>,
        who: &Principal,
    ) -> Result<(Arc<ProtectionGroup>, Vec<Job>), ServiceError> {
        let group = Arc::new(self.get_group(id).await?);
        let mut pairs = repo::list_pairs(&*self.store, Some(id)).await?;
        if let Some(ids) = pair_ids {
            if let Some(missing) = ids.iter().find(|p| !pairs.iter().any(|x| &x.id == *p)) {
                return Err(ServiceError::PairNotFound(missing.clone()));
            }
            pairs.retain(|p| ids.contains(&p.id));
        }
        let (sources, instances) = tokio::try_join!(
            self.retried(|| self.cloud.describe_source_servers(&group.dr)),
            self.retried(|| self.cloud.describe_instances(&group.dr))
        )?;
        let sources: HashMap<SourceServerId, SourceServer> =
            sources.into_iter().map(|s| (s.source_server_id.clone(), s)).collect();
        let instances: HashMap<_, Ec2Instance> = instances.into_iter().map(|i| (i.instance_id.clone(), i)).collect();
        let who = Arc::new(who.clone());
        let jobs = pairs
            .into_iter()
            .map(|pair| Job {
                services: self.clone(),
                group: group.clone(),
                source: sources.get(&pair.source_server_id).cloned(),
                standby: instances.get(&pair.standby_instance_id).cloned(),
                pair,
                who: who.clone(),
            })
            .collect();
        Ok((group, jobs))
    }

    async fn run_bounded<F, Fut>(&self, jobs: Vec<Job>, f: F) -> Vec<ServerOutcome>
    where
        F: Fn(Job) -> Fut,
        Fut: std::future::Future<Output = ServerOutcome> + Send + 'static,
    {
        let gate = Arc::new(tokio::sync::Semaphore::new(self.settings.concurrency.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for job in jobs {
            let gate = gate.clone();
            let fut = f(job);
            set.spawn(async move {
                let _permit = gate.acquire_owned().await;
                fut.await
            });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            match r {
                Ok(o) => out.push(o),
                Err(e) => tracing::error!(error = %e, "a configuration task failed"),
            }
        }
        out
    }

    /// Previews (`dry_run`) or applies the launch-into configuration of a group's pairs.
    ///
    /// # Errors
    /// [`ServiceError::GroupNotFound`], [`ServiceError::PairNotFound`] for an unknown pair in the subset,
    /// cloud failures while reading the estate. Per-server failures are outcomes, not errors.
    pub async fn configure_launch_into(
        &self,
        id: &ProtectionGroupId,
        req: &ConfigureRequest,
        who: &Principal,
    ) -> Result<ConfigureOutcome, ServiceError> {
        let (_, jobs) = self.jobs(id, req.pair_ids.as_deref(), who).await?;
        let actor = who.actor();
        let dry_run = req.dry_run;
        let results = self.run_bounded(jobs, move |j| j.configure(dry_run)).await;
        let outcome = ConfigureOutcome::new(dry_run, results);
        tracing::info!(protection_group_id = %id, dry_run, writes = outcome.writes, throttled = outcome.throttled, actor, "launch-into configuration");
        if !dry_run {
            self.audit.record_or_log(who, summary("launch_configuration.apply", id, &outcome)).await;
        }
        Ok(outcome)
    }

    /// Restores every server of the group (or the subset) to its configuration before Roundtrip's first write.
    ///
    /// # Errors
    /// As [`Services::configure_launch_into`].
    pub async fn rollback_launch_into(
        &self,
        id: &ProtectionGroupId,
        pair_ids: Option<&[PairId]>,
        who: &Principal,
    ) -> Result<ConfigureOutcome, ServiceError> {
        let (_, jobs) = self.jobs(id, pair_ids, who).await?;
        let actor = who.actor();
        let results = self.run_bounded(jobs, Job::rollback).await;
        let outcome = ConfigureOutcome::new(false, results);
        tracing::info!(protection_group_id = %id, writes = outcome.writes, actor, "launch-into configuration rolled back");
        self.audit.record_or_log(who, summary("launch_configuration.rollback", id, &outcome)).await;
        Ok(outcome)
    }

    /// Where each pair's launch configuration stands: configured, not configured, drifted, unreadable.
    ///
    /// # Errors
    /// [`ServiceError::GroupNotFound`].
    pub async fn launch_config_status(&self, id: &ProtectionGroupId) -> Result<Vec<LaunchConfigStatus>, ServiceError> {
        let group = self.get_group(id).await?;
        let pairs = repo::list_pairs(&*self.store, Some(id)).await?;
        let current = self.read_launch_configs(&group.dr, &pairs).await;
        let applied = self.applied_configs(id).await?;
        let backups = self.store.list(repo::LAUNCH_CONFIG_BACKUPS, &format!("{id}/")).await?;
        let mut out: Vec<LaunchConfigStatus> = pairs
            .iter()
            .map(|p| {
                let cur = current.get(&p.source_server_id);
                let app = applied.get(&p.source_server_id);
                let (state, d, error) = match (cur, app) {
                    (Some(Err(e)), _) => (LaunchConfigState::Unreadable, Vec::new(), Some(e.clone())),
                    (Some(Ok(c)), Some(a)) if !drift(a, c).is_empty() => {
                        (LaunchConfigState::Drifted, drift(a, c), None)
                    }
                    (Some(Ok(c)), Some(_)) if c.launches_into(&p.standby_instance_id, group.launch_disposition) => {
                        (LaunchConfigState::Configured, Vec::new(), None)
                    }
                    _ => (LaunchConfigState::NotConfigured, Vec::new(), None),
                };
                LaunchConfigStatus {
                    pair_id: p.id.clone(),
                    source_server_id: p.source_server_id.clone(),
                    source_name: p.source_name.clone(),
                    standby_instance_id: p.standby_instance_id.clone(),
                    state,
                    current: cur.and_then(|c| c.as_ref().ok().cloned()),
                    applied: app.cloned(),
                    backed_up: backups.iter().any(|b| b.key == backup_key(id, &p.source_server_id)),
                    drift: d,
                    error,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.source_name, &a.source_server_id).cmp(&(&b.source_name, &b.source_server_id)));
        Ok(out)
    }

    /// Reads the launch configuration of every pair, with bounded concurrency and retries.
    pub(crate) async fn read_launch_configs(
        &self,
        dr: &AccountRegion,
        pairs: &[InstancePair],
    ) -> HashMap<SourceServerId, Result<LaunchConfiguration, String>> {
        let gate = Arc::new(tokio::sync::Semaphore::new(self.settings.concurrency.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for p in pairs {
            let (gate, s, dr, id) = (gate.clone(), self.clone(), dr.clone(), p.source_server_id.clone());
            set.spawn(async move {
                let _permit = gate.acquire_owned().await;
                let (r, a) = with_retry(&s.settings.retry, || s.cloud.get_launch_configuration(&dr, &id)).await;
                s.metrics.retried(a);
                (id, r.map_err(|e| e.to_string()))
            });
        }
        let mut out = HashMap::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((id, r)) => {
                    out.insert(id, r);
                }
                Err(e) => tracing::error!(error = %e, "a launch-configuration read failed"),
            }
        }
        out
    }

    /// What Roundtrip applied, by source server.
    pub(crate) async fn applied_configs(
        &self,
        id: &ProtectionGroupId,
    ) -> Result<HashMap<SourceServerId, LaunchConfiguration>, ServiceError> {
        Ok(self
            .store
            .list(repo::LAUNCH_CONFIG_APPLIED, &format!("{id}/"))
            .await?
            .into_iter()
            .filter_map(|r| r.value.decode::<LaunchConfiguration>().ok())
            .map(|c| (c.source_server_id.clone(), c))
            .collect())
    }
}
