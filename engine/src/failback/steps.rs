//! The failback's steps per server: reverse the replication (claimed, and reconciled after a crash), wait
//! until it is continuous, point the new source server at the original, and launch into it.

use super::{AGENT_INSTALL_TIMEOUT_MS, MAX_FAILBACK_LAG_SECONDS};
use crate::cloud::CloudError;
use crate::error::ServiceError;
use crate::executions::{index_by, launch_id, runs};
use crate::services::Services;
use domain::estate::{
    AWSDRS_TAG_KEY, AWSDRS_TAG_VALUE, AccountRegion, InstanceState, ReplicationDirection, ReplicationState,
};
use domain::execution::{Event, ExecutionRecord, ServerRun};
use domain::ids::{InstanceId, SourceServerId};
use domain::launch::{LaunchConfigurationUpdate, RightSizing};

impl Services {
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

    /// Points `source` at `target` in DRS's two documented steps (copy private IP, copy tags and right-sizing
    /// off; then the launch-into instance), each write audited.
    pub(super) async fn launch_into(
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
