//! Readiness of protection groups: evaluated on request and in the background, with the last verdict and
//! a history of verdict changes kept in the store ("ready since …", "blocked since … because …").

use crate::error::ServiceError;
use crate::repo;
use crate::services::Services;
use crate::store::{Expect, WriteOp};
use domain::estate::ReplicationState;
use domain::estate::SourceServer;
use domain::group::{InstancePair, ProtectionGroup};
use domain::ids::{ProtectionGroupId, SourceServerId};
use domain::readiness::{GroupReadiness, ReadinessInput, evaluate};
use std::collections::{HashMap, HashSet};

pub use domain::readiness::{ReadinessView, VerdictChange, VerdictSummary};

/// The readiness checks an execution itself fails while it runs: its servers are in DRS jobs and their
/// standbys run.
const FAILED_BY_AN_EXECUTION: [&str; 2] = ["source.no_active_job", "standby.stopped"];

impl Services {
    /// Evaluates every readiness check of a group now, stores the result and records a verdict change.
    ///
    /// # Errors
    /// [`ServiceError::GroupNotFound`], cloud failures while reading the estate.
    pub async fn evaluate_readiness(&self, id: &ProtectionGroupId) -> Result<ReadinessView, ServiceError> {
        let (group, pairs, sources, readiness) = self.readiness_now(id, None).await?;
        let paired: HashSet<_> = pairs.iter().map(|p| &p.source_server_id).collect();
        let lags = sources.iter().filter(|s| paired.contains(&s.source_server_id)).map(|s| s.lag_seconds).collect();
        self.metrics.set_lags(id.as_str(), &group.name, lags);
        // Two evaluations at once (a person's and the background's) must not both record the same change:
        // the latest record is written on the version read with the history, and a loser reads again.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let latest = self.store.version(repo::READINESS_LATEST, id.as_str()).await?;
            let mut history = self.verdict_history(id).await?;
            let mut notice = None;
            let mut ops = vec![WriteOp::Put {
                table: repo::READINESS_LATEST.into(),
                key: id.to_string(),
                value: crate::store::Json::encode(&readiness),
                expect: latest.map_or(Expect::Absent, Expect::Version),
            }];
            if history.first().is_none_or(|h| h.verdict != readiness.verdict) {
                let change = VerdictChange {
                    verdict: readiness.verdict,
                    since: readiness.evaluated_at,
                    score: readiness.score,
                    because: readiness.failing.iter().take(5).cloned().collect(),
                };
                ops.push(WriteOp::Put {
                    table: repo::READINESS_HISTORY.into(),
                    // Time orders the history; the suffix keeps two changes in one millisecond apart.
                    key: format!("{id}/{:020}-{}", readiness.evaluated_at.max(0), uuid::Uuid::new_v4().simple()),
                    value: crate::store::Json::encode(&change),
                    expect: Expect::Absent,
                });
                tracing::info!(protection_group_id = %id, verdict = readiness.verdict.as_str(), score = readiness.score, "readiness changed");
                // An execution of the group's own servers blocks it while it runs (jobs, running standbys):
                // that alone is no news. Any other critical reason is.
                let only_jobs = readiness
                    .group_checks
                    .iter()
                    .chain(readiness.pairs.iter().flat_map(|p| &p.checks))
                    .filter(|c| !c.passed && c.severity == domain::matching::Severity::Critical)
                    .all(|c| FAILED_BY_AN_EXECUTION.contains(&c.id.as_str()));
                let in_execution = only_jobs
                    && self
                        .active_locks()
                        .await
                        .is_ok_and(|(locks, _)| pairs.iter().any(|p| locks.servers.contains_key(&p.source_server_id)));
                if readiness.verdict == domain::readiness::Verdict::Blocked && !in_execution {
                    notice = Some(domain::notify::readiness_blocked(
                        id.as_str(),
                        &group.name,
                        &readiness.failing,
                        readiness.evaluated_at,
                    ));
                }
                history.insert(0, change);
            }
            match self.store.transact(ops).await {
                Err(crate::store::StoreError::Conflict { .. }) if attempts < 5 => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            self.notifier.publish(notice.into_iter().collect());
            return Ok(ReadinessView { readiness, history });
        }
    }

    /// Readiness of a group now, not stored; with `only`, the launch configurations of those servers alone
    /// are read (the others' checks then say they could not be read).
    async fn readiness_now(
        &self,
        id: &ProtectionGroupId,
        only: Option<&HashSet<SourceServerId>>,
    ) -> Result<(ProtectionGroup, Vec<InstancePair>, Vec<SourceServer>, GroupReadiness), ServiceError> {
        let group = self.get_group(id).await?;
        let pairs = repo::list_pairs(&*self.store, Some(id)).await?;
        let dr = &group.dr;
        let (sources, instances, subnets, active, quotas) = tokio::try_join!(
            self.retried(|| self.cloud.describe_source_servers(dr)),
            self.retried(|| self.cloud.describe_instances(dr)),
            self.retried(|| self.cloud.describe_subnets(dr)),
            self.retried(|| self.cloud.servers_in_active_jobs(dr)),
            self.retried(|| self.cloud.quotas(dr)),
        )?;
        // A wave's check reads only its own servers' launch configurations (DRS's rate is the limit).
        let to_read: Vec<_> = match only {
            Some(only) => pairs.iter().filter(|p| only.contains(&p.source_server_id)).cloned().collect(),
            None => pairs.clone(),
        };
        let launch = self.read_launch_configs(dr, &to_read).await;
        let launch_configs = launch.into_iter().filter_map(|(k, v)| v.ok().map(|v| (k, v))).collect::<HashMap<_, _>>();
        let applied = self.applied_configs(id).await?;
        let paired: HashSet<_> = pairs.iter().map(|p| &p.source_server_id).collect();
        let unpaired = sources.iter().filter(|s| group.protects(s) && !paired.contains(&s.source_server_id)).count();
        let replicating = sources
            .iter()
            .filter(|s| !matches!(s.replication_state, ReplicationState::Stopped | ReplicationState::Disconnected))
            .count();
        let active: HashSet<_> = active.into_iter().collect();
        let readiness = evaluate(&ReadinessInput {
            group: id,
            primary: &group.primary,
            dr: &group.dr,
            pairs: &pairs,
            sources: &sources,
            instances: &instances,
            subnets: &subnets,
            launch_configs: &launch_configs,
            applied: &applied,
            servers_in_active_jobs: &active,
            quotas,
            replicating_servers: replicating,
            unpaired_sources: unpaired,
            lag_threshold_seconds: group.lag_threshold_seconds,
            launch_disposition: group.launch_disposition,
            now: self.clock.now_millis(),
        });
        Ok((group, pairs, sources, readiness))
    }

    /// Readiness of some of a group's servers now, for a wave about to start (not stored).
    ///
    /// # Errors
    /// As [`Services::evaluate_readiness`].
    pub(crate) async fn readiness_of(
        &self,
        id: &ProtectionGroupId,
        servers: &HashSet<SourceServerId>,
    ) -> Result<GroupReadiness, ServiceError> {
        Ok(self.readiness_now(id, Some(servers)).await?.3)
    }

    async fn verdict_history(&self, id: &ProtectionGroupId) -> Result<Vec<VerdictChange>, ServiceError> {
        let mut h: Vec<VerdictChange> = self
            .store
            .list(repo::READINESS_HISTORY, &format!("{id}/"))
            .await?
            .into_iter()
            .filter_map(|r| r.value.decode().ok())
            .collect();
        h.reverse();
        Ok(h)
    }

    /// The last stored readiness of a group (evaluated now if there is none yet) and its history.
    ///
    /// # Errors
    /// As [`Services::evaluate_readiness`].
    pub async fn readiness(&self, id: &ProtectionGroupId) -> Result<ReadinessView, ServiceError> {
        self.get_group(id).await?;
        match self.store.get(repo::READINESS_LATEST, id.as_str()).await? {
            Some(r) => match r.value.decode() {
                Ok(readiness) => Ok(ReadinessView { readiness, history: self.verdict_history(id).await? }),
                Err(_) => self.evaluate_readiness(id).await,
            },
            None => self.evaluate_readiness(id).await,
        }
    }

    /// The last verdict of every group that has one.
    ///
    /// # Errors
    /// Store failures.
    pub async fn verdicts(&self) -> Result<Vec<VerdictSummary>, ServiceError> {
        let groups = repo::list_groups(&*self.store).await?;
        let mut out = Vec::new();
        for g in groups {
            let Some(rec) = self.store.get(repo::READINESS_LATEST, g.id.as_str()).await? else { continue };
            let Ok(r) = rec.value.decode::<GroupReadiness>() else { continue };
            let history = self.verdict_history(&g.id).await?;
            out.push(VerdictSummary {
                protection_group_id: g.id,
                name: g.name,
                verdict: r.verdict,
                score: r.score,
                evaluated_at: r.evaluated_at,
                since: history.first().map_or(r.evaluated_at, |h| h.since),
                because: r.failing.iter().take(3).cloned().collect(),
                group_findings: r.group_checks.into_iter().filter(|c| !c.passed).collect(),
            });
        }
        Ok(out)
    }

    /// Evaluates a group's readiness now at a person's request, and records that in the audit trail.
    ///
    /// # Errors
    /// As [`Services::evaluate_readiness`].
    pub async fn evaluate_readiness_for(
        &self,
        who: &domain::auth::Principal,
        id: &ProtectionGroupId,
    ) -> Result<ReadinessView, ServiceError> {
        let view = self.evaluate_readiness(id).await?;
        let r = &view.readiness;
        let details = serde_json::json!({ "verdict": r.verdict, "score": r.score, "failing": r.failing });
        self.audit.record_or_log(who, crate::audit::AuditEvent::ok("readiness.evaluate", id.as_str(), details)).await;
        Ok(view)
    }

    /// Evaluates every group once; returns how many were evaluated. A failing group is logged and skipped.
    pub async fn evaluate_all_readiness(&self) -> usize {
        let Ok(groups) = repo::list_groups(&*self.store).await else { return 0 };
        let mut n = 0;
        for g in groups {
            match self.evaluate_readiness(&g.id).await {
                Ok(_) => n += 1,
                Err(e) => tracing::warn!(protection_group_id = %g.id, error = %e, "readiness evaluation failed"),
            }
        }
        n
    }
}
