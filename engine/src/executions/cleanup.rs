//! After a drill (and a failback's re-arm): standbys back to standby, recovery instances released, and the
//! volumes launches swapped out, listed under their retention.

use super::{index_by, refused, runs};
use crate::audit::AuditEvent;
use crate::error::ServiceError;
use crate::repo;
use crate::services::Services;
use domain::auth::Principal;
use domain::estate::{AccountRegion, InstanceState};
use domain::execution::Event;
use domain::execution::ExecutionRecord;
use domain::ids::{InstanceId, SourceServerId};
use std::collections::HashSet;

impl Services {
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

    /// Drill clean-up: each standby leaves DRS's recovery instances (disconnect, then delete; never
    /// `TerminateRecoveryInstances`) and is stopped again. A server is cleaned up once DRS no longer lists
    /// its standby and the standby is stopped (or gone, which the log reports).
    pub(super) async fn clean_up(
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
