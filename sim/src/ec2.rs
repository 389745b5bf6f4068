//! Simulated EC2 around a recovery: instances that take time to stop, replication that ships its last
//! data once a source instance has stopped, and the volumes a launch into an instance swaps out.
//!
//! Timings (virtual): `StopInstances` moves a running instance to `stopping` and, [`STOP_MS`] later, to
//! `stopped` (EC2 documents no bound; 10–60 s is typical for a clean OS shutdown). A stopped source's last
//! writes reach DRS's staging area [`DRAIN_MS`] after it stopped: until then its lag is unchanged and its
//! backlog is [`DRAIN_BACKLOG_BYTES`]; afterwards both are zero.

use crate::state::World;
use domain::estate::{AccountRegion, InstanceState, SourceServer};
use domain::ids::InstanceId;
use domain::recovery::AvailableVolume;
use engine::cloud::CloudError;

/// How long a clean stop takes.
pub const STOP_MS: i64 = 20_000;
/// How long after its source stopped replication has shipped the last data.
pub const DRAIN_MS: i64 = 15_000;
/// What a source stopping or just stopped still has to replicate.
pub const DRAIN_BACKLOG_BYTES: u64 = 64 * 1024 * 1024;

/// `StopInstances`: every id must exist in `at`; running instances begin to stop, stopped ones stay.
///
/// # Errors
/// `NotFound` (`InvalidInstanceID.NotFound`) for an unknown id, `Validation`
/// (`IncorrectInstanceState`) for a terminated one; nothing changes then.
pub fn stop(w: &mut World, at: &AccountRegion, ids: &[InstanceId], now: i64) -> Result<(), CloudError> {
    settle(w, now);
    for id in ids {
        let Some(i) = w.scenario.instances.iter().find(|i| &i.instance_id == id && at.holds(&i.account_id, &i.region))
        else {
            return Err(CloudError::NotFound { message: format!("InvalidInstanceID.NotFound: {id}") });
        };
        if matches!(i.state, InstanceState::Terminated | InstanceState::ShuttingDown) {
            return Err(CloudError::Validation {
                message: format!("IncorrectInstanceState: {id} is {}", i.state.as_str()),
            });
        }
    }
    for i in w.scenario.instances.iter_mut().filter(|i| ids.contains(&i.instance_id)) {
        if matches!(i.state, InstanceState::Running | InstanceState::Pending) {
            i.state = InstanceState::Stopping;
            w.stopping.insert(i.instance_id.clone(), now + STOP_MS);
        }
    }
    Ok(())
}

/// `StartInstances`: stopped instances start (a failed failback drill restarts its original, for instance).
///
/// # Errors
/// As [`stop`].
pub fn start(w: &mut World, at: &AccountRegion, ids: &[InstanceId]) -> Result<(), CloudError> {
    for id in ids {
        let Some(i) = w.scenario.instances.iter().find(|i| &i.instance_id == id && at.holds(&i.account_id, &i.region))
        else {
            return Err(CloudError::NotFound { message: format!("InvalidInstanceID.NotFound: {id}") });
        };
        if matches!(i.state, InstanceState::Terminated | InstanceState::ShuttingDown | InstanceState::Stopping) {
            return Err(CloudError::Validation {
                message: format!("IncorrectInstanceState: {id} is {}", i.state.as_str()),
            });
        }
    }
    for i in w.scenario.instances.iter_mut().filter(|i| ids.contains(&i.instance_id)) {
        i.state = InstanceState::Running;
        w.stopping.remove(&i.instance_id);
    }
    Ok(())
}

/// Completes the stops whose time has come.
pub fn settle(w: &mut World, now: i64) {
    let done: Vec<(InstanceId, i64)> =
        w.stopping.iter().filter(|(_, t)| **t <= now).map(|(i, t)| (i.clone(), *t)).collect();
    for (id, t) in done {
        w.stopping.remove(&id);
        if let Some(i) = w.scenario.instances.iter_mut().find(|i| i.instance_id == id)
            && i.state == InstanceState::Stopping
        {
            i.state = InstanceState::Stopped;
            w.stopped_at.insert(id, t);
        }
    }
}

/// A source server's lag and backlog as its source instance's `state` makes them.
pub fn drain(w: &World, state: Option<InstanceState>, s: &mut SourceServer, now: i64) {
    let Some(src) = &s.source_instance_id else { return };
    let Some(state) = state else { return };
    match (state, w.stopped_at.get(src)) {
        (InstanceState::Stopped, Some(t)) if now >= t + DRAIN_MS => {
            s.lag_seconds = 0;
            s.backlog_bytes = 0;
        }
        (InstanceState::Stopping, _) | (InstanceState::Stopped, Some(_)) => s.backlog_bytes = DRAIN_BACKLOG_BYTES,
        _ => {}
    }
}

/// A launch into `target` swaps its volumes: the ones it had become available volumes (kept, not
/// deleted: aws-drs-api.md §1.3), and it gets new ones recovered from the source.
pub fn swap_volumes(w: &mut World, target: &InstanceId, now: i64) {
    let Some(i) = w.scenario.instances.iter_mut().find(|i| &i.instance_id == target) else { return };
    let old = std::mem::take(&mut i.volumes);
    for v in &old {
        w.volume_counter += 1;
        i.volumes.push(domain::estate::Volume {
            volume_id: format!("vol-{:017x}", 0xd500_0000_0000 + w.volume_counter),
            device_name: v.device_name.clone(),
            size_gib: v.size_gib,
        });
    }
    let at = AccountRegion { account_id: i.account_id.clone(), region: i.region.clone() };
    w.available_volumes.extend(old.into_iter().map(|v| {
        let volume = AvailableVolume {
            volume_id: v.volume_id,
            size_gib: v.size_gib,
            since: now,
            last_instance_id: Some(target.clone()),
            device_name: Some(v.device_name),
        };
        (at.clone(), volume)
    }));
}
