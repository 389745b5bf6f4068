//! Re-arm, the failback's clean-up: re-protect each original, return each DR standby to standby (or
//! terminate it, when an admin asked) and apply the launch-into configuration again.

use super::MAX_FAILBACK_LAG_SECONDS;
use crate::cloud::CloudError;
use crate::error::ServiceError;
use crate::executions::{index_by, launch_id, runs};
use crate::services::Services;
use domain::estate::{InstanceState, ReplicationState};
use domain::execution::{Event, ExecutionRecord, ServerRun};
use domain::ids::{InstanceId, SourceServerId};

impl Services {
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
}
