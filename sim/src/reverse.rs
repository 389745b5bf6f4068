//! Simulated reverse replication (`aws-drs-api.md` §3): `ReverseReplication` on a recovery instance.
//!
//! - On a DR-side recovery instance (its source server replicates in the failover direction), it creates a
//!   new source server in the original region (`replicationDirection = FAILBACK`), whose source is the
//!   recovery instance. That source server is what a failback launches from.
//! - On an origin-side recovery instance (launched from a failback source server), it re-protects: the
//!   forward source server in the DR region replicates again, now from that instance, and the failback
//!   source server stops replicating.
//!
//! Phases (virtual time, drawn per reversal from a hash): the agent installs on the recovery instance in
//! 60–180 s, the initial sync takes 300–900 s, then replication is `CONTINUOUS` with a lag of 2–20 s.
//! Faults on the forward source server: [`Fault::AgentInstallFails`] leaves replication `INITIATING` for
//! good; [`Fault::FailbackStalls`] makes it `STALLED` once synced, with a growing lag.

use crate::state::{Fault, Reversal, World, spread};
use domain::estate::{AccountRegion, InstanceState, ReplicationDirection, ReplicationState, SourceServer};
use domain::ids::{InstanceId, SourceServerId};
use engine::cloud::CloudError;
use std::collections::HashMap;

/// `ReverseReplication{recoveryInstanceID}` in `at`: the source server that now replicates the instance.
///
/// # Errors
/// `NotFound` for an unknown recovery instance; `Conflict` when its replication is already reversed;
/// `Validation` when the instance is not running (its agent must reach DRS).
pub fn reverse(w: &mut World, at: &AccountRegion, id: &InstanceId, now: i64) -> Result<SourceServerId, CloudError> {
    settle(w, now);
    let here = |s: &&SourceServer| at.holds(&s.account_id, &s.region);
    let ri = w
        .recovery_instances
        .iter()
        .find(|r| {
            &r.recovery_instance_id == id
                && w.scenario.source_servers.iter().filter(here).any(|s| s.source_server_id == r.source_server_id)
        })
        .cloned()
        .ok_or_else(|| CloudError::NotFound {
            message: format!("recovery instance {id} does not exist in {}", at.region),
        })?;
    if w.reversals.iter().any(|r| &r.recovery_instance_id == id) {
        return Err(CloudError::Conflict {
            message: format!("the replication of recovery instance {id} is already reversed"),
            resource_id: Some(id.to_string()),
        });
    }
    let running = w.scenario.instances.iter().any(|i| &i.instance_id == id && i.state == InstanceState::Running);
    if !running {
        return Err(CloudError::Validation {
            message: format!("recovery instance {id} must be running: its replication agent has to reach DRS"),
        });
    }
    let Some(source) = w.scenario.source_servers.iter().find(|s| s.source_server_id == ri.source_server_id).cloned()
    else {
        return Err(CloudError::NotFound { message: format!("source server {} does not exist", ri.source_server_id) });
    };
    let seed = format!("{id}/{now}");
    let installs = spread(&format!("{seed}/install"), 60, 180) * 1000;
    let sync = spread(&format!("{seed}/sync"), 300, 900) * 1000;
    let lag = u64::try_from(spread(&format!("{seed}/lag"), 2, 20)).unwrap_or(5);
    let (replicating, counterpart) = match source.replication_direction {
        ReplicationDirection::Failover => {
            // A new source server in the original region, replicating the recovery instance.
            // Never an id DRS has handed out before: reversals leave the list when their recovery instance is
            // deleted (re-arm), while the source servers they created stay.
            let mut n = w.reversals.len() as u64 + 1;
            let new_id = loop {
                let id = SourceServerId::parse(&format!("s-{:017x}", 0x0f00_0000_0000_0000_u64 + n))
                    .map_err(|e| CloudError::Unexpected(anyhow::anyhow!("{}", e.message)))?;
                if !w.scenario.source_servers.iter().any(|s| s.source_server_id == id) {
                    break id;
                }
                n += 1;
            };
            w.scenario.source_servers.push(SourceServer {
                source_server_id: new_id.clone(),
                account_id: source.origin_account_id.clone(),
                region: source.origin_region.clone(),
                origin_account_id: at.account_id.clone(),
                origin_region: at.region.clone(),
                hostname: source.hostname.clone(),
                source_instance_id: Some(id.clone()),
                replication_state: ReplicationState::Initiating,
                lag_seconds: 0,
                backlog_bytes: 0,
                replication_direction: ReplicationDirection::Failback,
                tags: source.tags.clone(),
                architecture: source.architecture,
                platform: source.platform,
                boot_mode: source.boot_mode,
            });
            (new_id, source.source_server_id.clone())
        }
        ReplicationDirection::Failback => {
            // Re-protect: the forward source server replicates again, from this instance.
            let Some(forward) = w
                .reversals
                .iter()
                .find(|r| r.source_server_id == source.source_server_id)
                .map(|r| r.counterpart.clone())
            else {
                return Err(CloudError::Validation {
                    message: format!("no forward source server for {}", source.source_server_id),
                });
            };
            if let Some(s) =
                w.scenario.source_servers.iter_mut().find(|s| s.source_server_id == source.source_server_id)
            {
                s.replication_state = ReplicationState::Stopped;
            }
            if let Some(f) = w.scenario.source_servers.iter_mut().find(|s| s.source_server_id == forward) {
                f.replication_state = ReplicationState::Initiating;
                f.source_instance_id = Some(id.clone());
            }
            (forward, source.source_server_id.clone())
        }
    };
    let forward_fault = |w: &World| {
        let forward = if source.replication_direction == ReplicationDirection::Failover {
            &source.source_server_id
        } else {
            &replicating
        };
        w.faults.get(forward).cloned()
    };
    let fault = forward_fault(w);
    w.reversals_settled = None;
    w.reversals.push(Reversal {
        recovery_instance_id: id.clone(),
        source_server_id: replicating.clone(),
        counterpart,
        started_at: now,
        installed_at: (!matches!(fault, Some(Fault::AgentInstallFails))).then_some(now + installs),
        synced_at: now + installs + sync,
        lag_seconds: lag,
        stalls: matches!(fault, Some(Fault::FailbackStalls)),
    });
    Ok(replicating)
}

/// Brings every reversed replication's state up to `now`.
pub fn settle(w: &mut World, now: i64) {
    if w.reversals.is_empty() {
        return;
    }
    // Nothing moves between a reversal's install and sync times.
    if w.reversals_settled.is_some_and(|(at, next)| at <= now && now < next) {
        return;
    }
    let next = w
        .reversals
        .iter()
        .filter_map(|r| {
            // A stalled replication's lag grows by the second.
            if r.stalls && r.installed_at.is_some() && now >= r.synced_at {
                return Some(now + 1);
            }
            [r.installed_at, Some(r.synced_at)].into_iter().flatten().filter(|t| *t > now).min()
        })
        .min()
        .unwrap_or(i64::MAX);
    w.reversals_settled = Some((now, next));
    let reversals: HashMap<&SourceServerId, &Reversal> = w.reversals.iter().map(|r| (&r.source_server_id, r)).collect();
    for s in &mut w.scenario.source_servers {
        // The last reversal of a source server wins, as the list is in call order.
        let Some(r) = reversals.get(&s.source_server_id) else { continue };
        if s.replication_state == ReplicationState::Stopped && s.replication_direction == ReplicationDirection::Failback
        {
            continue;
        }
        let (state, lag) = match r.installed_at {
            None => (ReplicationState::Initiating, 0),
            Some(t) if now < t => (ReplicationState::Initiating, 0),
            Some(_) if now < r.synced_at => (ReplicationState::InitialSync, 0),
            Some(_) if r.stalls => {
                (ReplicationState::Stalled, u64::try_from((now - r.synced_at) / 1000).unwrap_or(0) + r.lag_seconds)
            }
            Some(_) => (ReplicationState::Continuous, r.lag_seconds),
        };
        s.replication_state = state;
        s.lag_seconds = lag;
    }
}

/// Whether the replication of recovery instance `id` was reversed (then DRS deletes it without a disconnect).
pub fn is_reversed(w: &World, id: &InstanceId) -> bool {
    w.reversals.iter().any(|r| &r.recovery_instance_id == id)
}

#[cfg(test)]
mod tests {
    use crate::jobs::tests::{MIN, dr, estate, instance};
    use crate::state::Fault;
    use domain::estate::{AccountRegion, InstanceState, ReplicationDirection, ReplicationState};
    use domain::recovery::LaunchStatus;
    use engine::cloud::{Cloud, CloudError};

    fn origin() -> AccountRegion {
        AccountRegion { account_id: "111111111111".parse().unwrap(), region: "us-east-1".parse().unwrap() }
    }

    #[tokio::test]
    async fn a_failback_round_trip_returns_to_the_original_instance_and_re_protects_it() {
        let (sim, clock, pairs) = estate(1);
        let (forward, standby) = pairs[0].clone();
        let original = sim
            .describe_source_servers(&dr())
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.source_server_id == forward)
            .unwrap()
            .source_instance_id
            .unwrap();
        let original_ip = instance(&sim, &original).private_ip;
        sim.start_recovery(&dr(), std::slice::from_ref(&forward), false).await.unwrap();
        clock.advance(10 * MIN);
        assert_eq!(instance(&sim, &standby).state, InstanceState::Running);

        // Reverse: a failback source server appears in the original region and replicates the standby.
        let back = sim.reverse_replication(&dr(), &standby).await.unwrap();
        let e = sim.reverse_replication(&dr(), &standby).await.unwrap_err();
        assert!(matches!(e, CloudError::Conflict { .. }), "{e:?}");
        let state = |id: &domain::ids::SourceServerId, at: AccountRegion| {
            let sim = &sim;
            let id = id.clone();
            async move {
                sim.describe_source_servers(&at).await.unwrap().into_iter().find(|s| s.source_server_id == id).unwrap()
            }
        };
        let a2 = state(&back, origin()).await;
        assert_eq!(
            (a2.replication_direction, a2.replication_state),
            (ReplicationDirection::Failback, ReplicationState::Initiating)
        );
        assert_eq!(a2.source_instance_id.as_ref(), Some(&standby));
        clock.advance(20 * MIN);
        assert_eq!(state(&back, origin()).await.replication_state, ReplicationState::Continuous);

        // Launch back into the original, stopped and tagged first (DRS cannot stop it).
        sim.create_tags(&origin(), &original, "AWSDRS", "AllowLaunchingIntoThisInstance").await.unwrap();
        sim.stop_instances(&origin(), std::slice::from_ref(&original)).await.unwrap();
        clock.advance(MIN);
        let mut update = domain::launch::LaunchConfigurationUpdate::for_server(back.clone());
        update.launch_into_instance_id = Some(Some(original.clone()));
        update.copy_private_ip = Some(false);
        update.copy_tags = Some(false);
        update.right_sizing = Some(domain::launch::RightSizing::None);
        sim.update_launch_configuration(&origin(), &update).await.unwrap();
        let job = sim.start_recovery(&origin(), std::slice::from_ref(&back), false).await.unwrap();
        clock.advance(10 * MIN);
        let job = sim.describe_jobs(&origin(), &[job.job_id]).await.unwrap().remove(0);
        assert_eq!(job.servers[0].launch_status, LaunchStatus::Launched);
        let after = instance(&sim, &original);
        assert_eq!(
            (after.state, after.private_ip),
            (InstanceState::Running, original_ip),
            "the same instance, the same IP"
        );

        // Re-protect: the forward source server replicates again, from the original; the DR-side recovery
        // instance, reversed, can only be deleted.
        assert_eq!(sim.reverse_replication(&origin(), &original).await.unwrap(), forward);
        clock.advance(20 * MIN);
        assert_eq!(state(&forward, dr()).await.replication_state, ReplicationState::Continuous);
        assert_eq!(state(&back, origin()).await.replication_state, ReplicationState::Stopped);
        let e = sim.disconnect_recovery_instance(&dr(), &standby).await.unwrap_err();
        assert!(matches!(e, CloudError::Conflict { .. }), "{e:?}");
        sim.delete_recovery_instance(&dr(), &standby).await.unwrap();
    }

    #[tokio::test]
    async fn reversed_replication_faults_show_as_an_agent_that_never_installs_or_a_stall() {
        let (sim, clock, pairs) = estate(2);
        for (s, _) in &pairs {
            sim.start_recovery(&dr(), std::slice::from_ref(s), false).await.unwrap();
        }
        clock.advance(10 * MIN);
        sim.set_fault(&pairs[0].0, Some(Fault::AgentInstallFails));
        sim.set_fault(&pairs[1].0, Some(Fault::FailbackStalls));
        let a = sim.reverse_replication(&dr(), &pairs[0].1).await.unwrap();
        let b = sim.reverse_replication(&dr(), &pairs[1].1).await.unwrap();
        clock.advance(60 * MIN);
        let servers = sim.describe_source_servers(&origin()).await.unwrap();
        let of = |id| servers.iter().find(|s| &s.source_server_id == id).unwrap();
        assert_eq!(of(&a).replication_state, ReplicationState::Initiating);
        assert_eq!(of(&b).replication_state, ReplicationState::Stalled);
        assert!(of(&b).lag_seconds > 30 * 60, "{}", of(&b).lag_seconds);
        // A stopped recovery instance cannot be reversed: its agent has to reach DRS.
        sim.stop_instances(&dr(), std::slice::from_ref(&pairs[0].1)).await.unwrap();
        clock.advance(MIN);
        let e = sim.reverse_replication(&dr(), &pairs[0].1).await.unwrap_err();
        assert!(matches!(e, CloudError::Conflict { .. } | CloudError::Validation { .. }), "{e:?}");
    }
}
