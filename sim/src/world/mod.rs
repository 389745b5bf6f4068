//! The simulated world and its persistence: the [`Simulator`] implements the engine's cloud port.
//!
//! State file: `<data>/sim-state.json`, written atomically (temp file, fsync, rename). It records the
//! world and the virtual time at which it was saved, with the real time of the save; on load, virtual time
//! resumes from there plus the real time that passed × the speed factor — as if AWS kept running while
//! the console was down.

mod calls;
mod launch;

use calls::{RateLimit, outcome, record};
use launch::{launch_configuration, validate_update};

use crate::clock::SimClock;
use crate::scenario::Scenario;
pub use crate::state::{ApiCall, Fault, World};
use async_trait::async_trait;
use domain::estate::{AccountRegion, Ec2Instance, ReplicationState, SourceServer, Subnet};
use domain::ids::{InstanceId, SourceServerId};
use domain::launch::{LaunchConfiguration, LaunchConfigurationUpdate};
use domain::readiness::Quotas;
use domain::recovery::{AvailableVolume, DrsJob, JobLogItem, RecoveryInstance};
use engine::clock::{Clock, SystemClock};
use engine::cloud::{Cloud, CloudError, CloudInfo, KnownAccountRegion};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

const STATE_FORMAT: u32 = 1;

/// Most API calls the estate remembers.
const MAX_CALLS: usize = 20_000;

/// What the state file holds.
#[derive(Debug, Serialize, Deserialize)]
struct SavedState {
    format: u32,
    virtual_now_ms: i64,
    saved_at_real_ms: i64,
    speed: f64,
    world: World,
}

/// The simulated AWS estate.
pub struct Simulator {
    world: RwLock<World>,
    clock: Arc<SimClock>,
    state_path: Option<PathBuf>,
    drs_rate: std::sync::Mutex<Option<RateLimit>>,
}

#[async_trait]
impl Cloud for Simulator {
    fn configured_accounts(&self) -> Vec<domain::estate::CloudAccount> {
        let w = self.read();
        w.scenario
            .accounts
            .iter()
            .map(|a| domain::estate::CloudAccount {
                account_id: a.id.clone(),
                name: a.name.clone(),
                role_arn: None,
                regions: w.scenario.regions.clone(),
                external_id_set: false,
                source: "estate".into(),
            })
            .collect()
    }

    fn drs_pace(&self) -> Option<(f64, u32)> {
        let rate = self.drs_rate.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        rate.as_ref().map(|r| (r.per_second, r.burst_calls))
    }

    fn info(&self) -> CloudInfo {
        let w = self.read();
        CloudInfo { kind: "simulated".into(), description: format!("{}: {}", w.scenario.name, w.scenario.description) }
    }

    async fn list_account_regions(&self) -> Result<Vec<KnownAccountRegion>, CloudError> {
        let w = self.read();
        let mut out = Vec::new();
        for a in &w.scenario.accounts {
            for r in &w.scenario.regions {
                out.push(KnownAccountRegion {
                    at: AccountRegion { account_id: a.id.clone(), region: r.clone() },
                    account_name: a.name.clone(),
                });
            }
        }
        Ok(out)
    }

    async fn describe_instances(&self, at: &AccountRegion) -> Result<Vec<Ec2Instance>, CloudError> {
        self.instances(at, None)
    }

    async fn describe_instances_by_id(
        &self,
        at: &AccountRegion,
        ids: &[InstanceId],
    ) -> Result<Vec<Ec2Instance>, CloudError> {
        self.instances(at, Some(&ids.iter().collect()))
    }

    async fn describe_subnets(&self, at: &AccountRegion) -> Result<Vec<Subnet>, CloudError> {
        let w = self.read();
        self.reachable(&w, at)?;
        Ok(w.scenario
            .subnets
            .iter()
            .filter(|s| s.account_id == at.account_id && s.region == at.region)
            .cloned()
            .collect())
    }

    async fn describe_source_servers(&self, at: &AccountRegion) -> Result<Vec<SourceServer>, CloudError> {
        self.source_servers(at, None)
    }

    async fn describe_source_servers_by_id(
        &self,
        at: &AccountRegion,
        ids: &[SourceServerId],
    ) -> Result<Vec<SourceServer>, CloudError> {
        self.source_servers(at, Some(&ids.iter().collect()))
    }

    async fn get_launch_configuration(
        &self,
        at: &AccountRegion,
        source: &SourceServerId,
    ) -> Result<LaunchConfiguration, CloudError> {
        let mut w = self.world.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.reachable(&w, at)?;
        self.admit(&mut w, "drs:GetLaunchConfiguration", Some(source))?;
        let config = launch_configuration(&w, at, source);
        record(&mut w, self.clock.now_millis(), "drs:GetLaunchConfiguration", Some(source), outcome(&config), None);
        config
    }

    async fn update_launch_configuration(
        &self,
        at: &AccountRegion,
        update: &LaunchConfigurationUpdate,
    ) -> Result<LaunchConfiguration, CloudError> {
        let mut w = self.world.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.reachable(&w, at)?;
        let Some(source) = update.source_server_id.clone() else {
            return Err(CloudError::Validation { message: "sourceServerID is required".into() });
        };
        self.admit(&mut w, "drs:UpdateLaunchConfiguration", Some(&source))?;
        let result = launch_configuration(&w, at, &source).and_then(|current| {
            let next = current.merged(update);
            validate_update(&w, at, &source, update, &next)?;
            Ok(next)
        });
        let now = self.clock.now_millis();
        record(&mut w, now, "drs:UpdateLaunchConfiguration", Some(&source), outcome(&result), Some(update.clone()));
        let next = result?;
        w.launch_configurations.insert(source, next.clone());
        Ok(next)
    }

    async fn servers_in_active_jobs(&self, at: &AccountRegion) -> Result<Vec<SourceServerId>, CloudError> {
        let (mut w, now) = self.drs_call(at, "drs:DescribeJobs", None)?;
        record(&mut w, now, "drs:DescribeJobs", None, "ok", None);
        Ok(crate::jobs::servers_in_active_jobs(&w, at))
    }

    async fn start_recovery(
        &self,
        at: &AccountRegion,
        servers: &[SourceServerId],
        is_drill: bool,
    ) -> Result<DrsJob, CloudError> {
        let (mut w, now) = self.drs_call(at, "drs:StartRecovery", servers.first())?;
        let result = crate::jobs::start(&mut w, at, servers, is_drill, now);
        record(&mut w, now, "drs:StartRecovery", servers.first(), outcome(&result), None);
        drop(w);
        if result.is_ok() {
            self.persist();
        }
        result
    }

    async fn describe_jobs(&self, at: &AccountRegion, job_ids: &[String]) -> Result<Vec<DrsJob>, CloudError> {
        let (mut w, now) = self.drs_call(at, "drs:DescribeJobs", None)?;
        record(&mut w, now, "drs:DescribeJobs", None, "ok", None);
        Ok(crate::jobs::describe(&w, at, job_ids))
    }

    async fn describe_job_log_items(&self, at: &AccountRegion, job_id: &str) -> Result<Vec<JobLogItem>, CloudError> {
        let (mut w, now) = self.drs_call(at, "drs:DescribeJobLogItems", None)?;
        let result = crate::jobs::log_items(&w, at, job_id, now);
        record(&mut w, now, "drs:DescribeJobLogItems", None, outcome(&result), None);
        result
    }

    async fn describe_recovery_instances(
        &self,
        at: &AccountRegion,
        servers: &[SourceServerId],
    ) -> Result<Vec<RecoveryInstance>, CloudError> {
        let (mut w, now) = self.drs_call(at, "drs:DescribeRecoveryInstances", None)?;
        record(&mut w, now, "drs:DescribeRecoveryInstances", None, "ok", None);
        let asked: HashSet<&SourceServerId> = servers.iter().collect();
        let in_region = |id: &SourceServerId| {
            w.source_server_position(id).is_some_and(|i| {
                let s = &w.scenario.source_servers[i];
                s.account_id == at.account_id && s.region == at.region
            })
        };
        Ok(w.recovery_instances
            .iter()
            .filter(|r| asked.is_empty() || asked.contains(&r.source_server_id))
            .filter(|r| in_region(&r.source_server_id))
            .cloned()
            .collect())
    }

    async fn stop_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError> {
        let (mut w, now) = self.ec2_call(at)?;
        let result = crate::ec2::stop(&mut w, at, instances, now);
        record(&mut w, now, "ec2:StopInstances", None, outcome(&result), None);
        drop(w);
        self.persist();
        result
    }

    async fn disconnect_recovery_instance(&self, at: &AccountRegion, id: &InstanceId) -> Result<(), CloudError> {
        let (mut w, now) = self.drs_call(at, "drs:DisconnectRecoveryInstance", None)?;
        let reversed = crate::reverse::is_reversed(&w, id);
        let result = match recovery_instance_in(&mut w, at, id) {
            // The cross-region failback guide: an instance whose replication was reversed cannot be
            // disconnected, only deleted (aws-drs-api.md §1.5, §3.2).
            Some(_) if reversed => Err(CloudError::Conflict {
                message: format!(
                    "recovery instance {id} has reversed replication: delete it instead of disconnecting it"
                ),
                resource_id: Some(id.to_string()),
            }),
            Some(r) => {
                r.disconnected = true;
                Ok(())
            }
            None => Err(CloudError::NotFound { message: format!("recovery instance {id} does not exist") }),
        };
        record(&mut w, now, "drs:DisconnectRecoveryInstance", None, outcome(&result), None);
        drop(w);
        self.persist();
        result
    }

    async fn delete_recovery_instance(&self, at: &AccountRegion, id: &InstanceId) -> Result<(), CloudError> {
        let (mut w, now) = self.drs_call(at, "drs:DeleteRecoveryInstance", None)?;
        let reversed = crate::reverse::is_reversed(&w, id);
        let result = match recovery_instance_in(&mut w, at, id).map(|r| r.disconnected || reversed) {
            Some(true) => {
                w.recovery_instances.retain(|r| &r.recovery_instance_id != id);
                // Gone from DRS: its replication may be reversed again on a later round trip.
                w.reversals.retain(|r| &r.recovery_instance_id != id);
                w.reversals_settled = None;
                Ok(())
            }
            Some(false) => Err(CloudError::Conflict {
                message: format!("recovery instance {id} must be disconnected before it is deleted"),
                resource_id: Some(id.to_string()),
            }),
            None => Err(CloudError::NotFound { message: format!("recovery instance {id} does not exist") }),
        };
        record(&mut w, now, "drs:DeleteRecoveryInstance", None, outcome(&result), None);
        drop(w);
        self.persist();
        result
    }

    async fn reverse_replication(&self, at: &AccountRegion, id: &InstanceId) -> Result<SourceServerId, CloudError> {
        let (mut w, now) = self.drs_call(at, "drs:ReverseReplication", None)?;
        let result = crate::reverse::reverse(&mut w, at, id, now);
        record(&mut w, now, "drs:ReverseReplication", result.as_ref().ok(), outcome(&result), None);
        drop(w);
        self.persist();
        result
    }

    async fn create_tags(&self, at: &AccountRegion, id: &InstanceId, key: &str, value: &str) -> Result<(), CloudError> {
        let (mut w, now) = self.ec2_call(at)?;
        let result = match w
            .scenario
            .instances
            .iter_mut()
            .find(|i| &i.instance_id == id && at.holds(&i.account_id, &i.region))
        {
            Some(i) => {
                i.tags.insert(key.to_owned(), value.to_owned());
                Ok(())
            }
            None => Err(CloudError::NotFound { message: format!("InvalidInstanceID.NotFound: {id}") }),
        };
        record(&mut w, now, "ec2:CreateTags", None, outcome(&result), None);
        drop(w);
        self.persist();
        result
    }

    async fn start_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError> {
        let (mut w, now) = self.ec2_call(at)?;
        let result = crate::ec2::start(&mut w, at, instances);
        record(&mut w, now, "ec2:StartInstances", None, outcome(&result), None);
        drop(w);
        self.persist();
        result
    }

    async fn terminate_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError> {
        let (mut w, now) = self.ec2_call(at)?;
        let known = instances
            .iter()
            .all(|id| w.scenario.instances.iter().any(|i| &i.instance_id == id && at.holds(&i.account_id, &i.region)));
        let result = if known {
            for i in w.scenario.instances.iter_mut().filter(|i| instances.contains(&i.instance_id)) {
                i.state = domain::estate::InstanceState::Terminated;
            }
            Ok(())
        } else {
            Err(CloudError::NotFound { message: "InvalidInstanceID.NotFound".into() })
        };
        record(&mut w, now, "ec2:TerminateInstances", None, outcome(&result), None);
        drop(w);
        self.persist();
        result
    }

    async fn delete_volume(&self, at: &AccountRegion, volume_id: &str) -> Result<(), CloudError> {
        let (mut w, now) = self.ec2_call(at)?;
        let before = w.available_volumes.len();
        w.available_volumes.retain(|(a, v)| !(a == at && v.volume_id == volume_id));
        let result = if w.available_volumes.len() < before {
            Ok(())
        } else {
            Err(CloudError::NotFound { message: format!("InvalidVolume.NotFound: {volume_id}") })
        };
        record(&mut w, now, "ec2:DeleteVolume", None, outcome(&result), None);
        drop(w);
        self.persist();
        result
    }

    async fn describe_security_groups(
        &self,
        at: &AccountRegion,
    ) -> Result<Vec<domain::estate::SecurityGroup>, CloudError> {
        let w = self.read();
        self.reachable(&w, at)?;
        Ok(w.scenario.security_groups.iter().filter(|g| at.holds(&g.account_id, &g.region)).cloned().collect())
    }

    async fn describe_instance_profiles(
        &self,
        at: &AccountRegion,
    ) -> Result<Vec<domain::estate::InstanceProfile>, CloudError> {
        let w = self.read();
        self.reachable(&w, at)?;
        Ok(w.scenario.instance_profiles.iter().filter(|p| p.account_id == at.account_id).cloned().collect())
    }

    async fn drs_initialized(&self, at: &AccountRegion) -> Result<bool, CloudError> {
        let w = self.read();
        self.reachable(&w, at)?;
        Ok(!w.scenario.uninitialized_drs.contains(at))
    }

    async fn describe_available_volumes(&self, at: &AccountRegion) -> Result<Vec<AvailableVolume>, CloudError> {
        let (w, _) = self.ec2_call(at)?;
        Ok(w.available_volumes.iter().filter(|(a, _)| a == at).map(|(_, v)| v.clone()).collect())
    }

    async fn quotas(&self, at: &AccountRegion) -> Result<Quotas, CloudError> {
        let w = self.read();
        self.reachable(&w, at)?;
        Ok(w.scenario.quotas)
    }
}

/// Brings stops, launches and reversed replications up to `now`.
fn settle_all(w: &mut World, now: i64) {
    crate::ec2::settle(w, now);
    crate::jobs::settle(w, now);
    crate::reverse::settle(w, now);
}

/// The recovery instance `id`, when its source server is in `at`.
fn recovery_instance_in<'a>(w: &'a mut World, at: &AccountRegion, id: &InstanceId) -> Option<&'a mut RecoveryInstance> {
    let here = |w: &World, server: &SourceServerId| {
        w.source_server_position(server).is_some_and(|i| {
            let s = &w.scenario.source_servers[i];
            at.holds(&s.account_id, &s.region)
        })
    };
    let i = w.recovery_instances.iter().position(|r| &r.recovery_instance_id == id && here(w, &r.source_server_id))?;
    w.recovery_instances.get_mut(i)
}

impl Simulator {
    /// A simulator on `scenario` with `clock`, kept in memory only (tests).
    pub fn new(scenario: Scenario, clock: Arc<SimClock>) -> Self {
        let now = clock.now_millis();
        let rate = scenario.api.drs_requests_per_second.map(|r| RateLimit::new(r, scenario.api.drs_burst));
        Self {
            world: RwLock::new(World::new(scenario, now)),
            clock,
            state_path: None,
            drs_rate: std::sync::Mutex::new(rate),
        }
    }

    /// Opens the simulated estate kept in `data_dir`: resumes its saved state if there is one, otherwise
    /// starts the scenario `scenario` loads (read only then) and saves it. `speed` overrides the saved or
    /// scenario speed factor.
    ///
    /// # Errors
    /// When the state file exists but cannot be read, or the data folder cannot be written.
    pub fn open(
        data_dir: &Path,
        scenario: impl FnOnce() -> anyhow::Result<Scenario>,
        speed: Option<f64>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("sim-state.json");
        let sim = if path.exists() {
            let text = std::fs::read_to_string(&path)?;
            let saved: SavedState = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is not a simulator state file: {e}", path.display()))?;
            saved.world.scenario.check_limits().map_err(|e| anyhow::anyhow!("{} is invalid: {e}", path.display()))?;
            anyhow::ensure!(
                saved.format == STATE_FORMAT,
                "{} has format {}, expected {STATE_FORMAT}",
                path.display(),
                saved.format
            );
            let speed = speed.unwrap_or(saved.speed);
            let downtime = (SystemClock.now_millis() - saved.saved_at_real_ms).max(0);
            let resumed = saved.virtual_now_ms.saturating_add((downtime as f64 * speed) as i64);
            tracing::info!(
                scenario = %saved.world.scenario.name,
                downtime_s = downtime / 1000,
                "simulated estate resumed from its saved state"
            );
            let api = saved.world.scenario.api.clone();
            Self {
                world: RwLock::new(saved.world),
                clock: Arc::new(SimClock::scaled(speed, resumed)),
                state_path: Some(path),
                drs_rate: std::sync::Mutex::new(api.drs_requests_per_second.map(|r| RateLimit::new(r, api.drs_burst))),
            }
        } else {
            let scenario = scenario()?;
            let speed = speed.unwrap_or(scenario.simulation.speed);
            let start = scenario.simulation.start_ms.unwrap_or_else(|| SystemClock.now_millis());
            let clock = Arc::new(SimClock::scaled(speed, start));
            tracing::info!(scenario = %scenario.name, "simulated estate started from its scenario");
            let mut sim = Self::new(scenario, clock);
            sim.state_path = Some(path);
            sim
        };
        sim.save()?;
        Ok(sim)
    }

    /// The virtual clock.
    pub fn clock(&self) -> Arc<SimClock> {
        self.clock.clone()
    }

    /// Saves the world to the data folder, atomically. A no-op for an in-memory simulator.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self) -> anyhow::Result<()> {
        let Some(path) = &self.state_path else { return Ok(()) };
        let world = self.read().clone();
        let state = SavedState {
            format: STATE_FORMAT,
            virtual_now_ms: self.clock.now_millis(),
            saved_at_real_ms: SystemClock.now_millis(),
            speed: self.clock.speed(),
            world,
        };
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            serde_json::to_writer(&mut f, &state)?;
            f.flush()?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// Saves after starting a job, as AWS would keep it even if the console died the next moment (a killed
    /// server must find its jobs). Launch-configuration writes are saved at shutdown only: saving the whole
    /// estate on each of hundreds of writes costs more than it protects. A failure is logged; the next save
    /// catches up. On a multi-threaded runtime the save tells tokio it blocks, so the worker's other tasks
    /// (the console's requests, in a server) move to another thread instead of waiting for it.
    fn persist(&self) {
        let save = || self.save();
        let saved = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(save)
            }
            _ => save(),
        };
        if let Err(e) = saved {
            tracing::error!(error = %e, "the simulated estate could not be saved");
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, World> {
        // Readers never leave the world half-changed, so a poisoned lock still guards consistent data.
        self.world.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the world (tests and, later, simulated AWS mutations).
    pub fn with_world<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        let mut w = self.world.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut w)
    }

    /// `DescribeInstances` in `at`, of the instances `only` when given.
    fn instances(
        &self,
        at: &AccountRegion,
        only: Option<&HashSet<&InstanceId>>,
    ) -> Result<Vec<Ec2Instance>, CloudError> {
        // Launches that have happened by now show in EC2 whether or not anyone asked DRS.
        let (w, _) = self.ec2_call(at)?;
        let here = |i: &&Ec2Instance| i.account_id == at.account_id && i.region == at.region;
        Ok(match only {
            Some(ids) => {
                let mut found: Vec<&Ec2Instance> = ids.iter().filter_map(|id| w.instance(id)).filter(here).collect();
                // In the listing's order, as EC2 would return them.
                found.sort_by_key(|i| w.instance_order(&i.instance_id));
                found.into_iter().cloned().collect()
            }
            None => w.scenario.instances.iter().filter(here).cloned().collect(),
        })
    }

    /// `DescribeSourceServers` in `at`, of the source servers `only` when given.
    fn source_servers(
        &self,
        at: &AccountRegion,
        only: Option<&HashSet<&SourceServerId>>,
    ) -> Result<Vec<SourceServer>, CloudError> {
        let (w, now) = self.ec2_call(at)?;
        let elapsed_s = u64::try_from((now - w.replication_observed_at_ms) / 1000).unwrap_or(0);
        let list = &w.scenario.source_servers;
        let listed: Vec<&SourceServer> = match only {
            Some(ids) => {
                let mut positions: Vec<usize> = ids.iter().filter_map(|id| w.source_server_position(id)).collect();
                positions.sort_unstable();
                positions.dedup();
                positions.into_iter().map(|i| &list[i]).collect()
            }
            None => list.iter().collect(),
        };
        Ok(listed
            .into_iter()
            .filter(|s| s.account_id == at.account_id && s.region == at.region)
            .map(|s| {
                let mut s = s.clone();
                // Replication that is not flowing falls further behind as time passes.
                if matches!(
                    s.replication_state,
                    ReplicationState::Stalled | ReplicationState::Paused | ReplicationState::Disconnected
                ) {
                    s.lag_seconds = s.lag_seconds.saturating_add(elapsed_s);
                }
                // Its source instance's state drains its replication once stopped.
                let state = s.source_instance_id.as_ref().and_then(|i| w.instance(i)).map(|i| i.state);
                crate::ec2::drain(&w, state, &mut s, now);
                s
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{DR_ACCOUNT, DR_REGION, GenerateOptions, generate};
    use domain::ids::{AccountId, Region};

    fn dr() -> AccountRegion {
        AccountRegion { account_id: AccountId::parse(DR_ACCOUNT).unwrap(), region: Region::parse(DR_REGION).unwrap() }
    }

    #[tokio::test]
    async fn stalled_replication_falls_behind_as_virtual_time_passes() {
        let clock = Arc::new(SimClock::manual(0));
        let sim = Simulator::new(generate(GenerateOptions { servers: 20, seed: 1, problems: true }), clock.clone());
        let lag = |v: Vec<SourceServer>| {
            v.iter().find(|s| s.replication_state == ReplicationState::Stalled).unwrap().lag_seconds
        };
        let before = lag(sim.describe_source_servers(&dr()).await.unwrap());
        clock.advance(600_000);
        let after = lag(sim.describe_source_servers(&dr()).await.unwrap());
        assert_eq!(after, before + 600);
    }

    #[tokio::test]
    async fn an_account_outside_the_estate_is_denied() {
        let sim = Simulator::new(
            generate(GenerateOptions { servers: 5, seed: 1, problems: false }),
            Arc::new(SimClock::manual(0)),
        );
        let at = AccountRegion {
            account_id: AccountId::parse("999999999999").unwrap(),
            region: Region::parse(DR_REGION).unwrap(),
        };
        assert!(matches!(sim.describe_instances(&at).await, Err(CloudError::AccessDenied { .. })));
    }

    #[tokio::test]
    async fn a_reopened_estate_resumes_where_it_was_saved_and_keeps_its_changes() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = generate(GenerateOptions { servers: 5, seed: 1, problems: false });
        let first = Simulator::open(dir.path(), || Ok(scenario.clone()), Some(1.0)).unwrap();
        first.clock().advance(3_600_000);
        first.with_world(|w| w.scenario.instances.retain(|i| i.tags.get("Name").is_none_or(|n| n != "shop-web-01")));
        first.save().unwrap();
        let t = first.clock().now_millis();
        drop(first);
        let second = Simulator::open(dir.path(), || anyhow::bail!("the scenario is not read again"), None).unwrap();
        assert!(second.clock().now_millis() >= t, "virtual time never goes back across a restart");
        assert_eq!(second.read().scenario.instances.len(), 8, "changes to the world survive");
    }
}
