//! The simulated world and its persistence: the [`Simulator`] implements the engine's cloud port.
//!
//! State file: `<data>/sim-state.json`, written atomically (temp file, fsync, rename). It records the
//! world and the virtual time at which it was saved, with the real time of the save; on load, virtual time
//! resumes from there plus the real time that passed × the speed factor — as if AWS kept running while
//! the console was down.

use crate::clock::SimClock;
use crate::scenario::Scenario;
use async_trait::async_trait;
use domain::estate::{AccountRegion, Ec2Instance, ReplicationState, SourceServer, Subnet};
use engine::clock::{Clock, SystemClock};
use engine::cloud::{Cloud, CloudError, CloudInfo, KnownAccountRegion};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

const STATE_FORMAT: u32 = 1;

/// What the state file holds.
#[derive(Debug, Serialize, Deserialize)]
struct SavedState {
    format: u32,
    virtual_now_ms: i64,
    saved_at_real_ms: i64,
    speed: f64,
    world: World,
}

/// The simulated world: a scenario plus what has happened to it since.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct World {
    pub scenario: Scenario,
    /// Virtual time at which each source server's `lag_seconds` was last observed, so lag grows while
    /// replication is not continuous.
    pub replication_observed_at_ms: i64,
}

/// The simulated AWS estate.
pub struct Simulator {
    world: RwLock<World>,
    clock: Arc<SimClock>,
    state_path: Option<PathBuf>,
}

impl Simulator {
    /// A simulator on `scenario` with `clock`, kept in memory only (tests).
    pub fn new(scenario: Scenario, clock: Arc<SimClock>) -> Self {
        let now = clock.now_millis();
        Self { world: RwLock::new(World { scenario, replication_observed_at_ms: now }), clock, state_path: None }
    }

    /// Opens the simulated estate kept in `data_dir`: resumes its saved state if there is one, otherwise
    /// starts `scenario` and saves it. `speed` overrides the saved or scenario speed factor.
    ///
    /// # Errors
    /// When the state file exists but cannot be read, or the data folder cannot be written.
    pub fn open(data_dir: &Path, scenario: Scenario, speed: Option<f64>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("sim-state.json");
        let sim = if path.exists() {
            let text = std::fs::read_to_string(&path)?;
            let saved: SavedState = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{} is not a simulator state file: {e}", path.display()))?;
            anyhow::ensure!(
                saved.format == STATE_FORMAT,
                "{} has format {}, expected {STATE_FORMAT}",
                path.display(),
                saved.format
            );
            let speed = speed.unwrap_or(saved.speed);
            let downtime = (SystemClock.now_millis() - saved.saved_at_real_ms).max(0);
            let resumed = saved.virtual_now_ms + (downtime as f64 * speed) as i64;
            tracing::info!(
                scenario = %saved.world.scenario.name,
                downtime_s = downtime / 1000,
                "simulated estate resumed from its saved state"
            );
            Self {
                world: RwLock::new(saved.world),
                clock: Arc::new(SimClock::scaled(speed, resumed)),
                state_path: Some(path),
            }
        } else {
            let speed = speed.unwrap_or(scenario.simulation.speed);
            let clock = Arc::new(SimClock::scaled(speed, scenario.simulation.start_ms));
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

    fn read(&self) -> std::sync::RwLockReadGuard<'_, World> {
        // Readers never leave the world half-changed, so a poisoned lock still guards consistent data.
        self.world.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes the world (tests and, later, simulated AWS mutations).
    pub fn with_world<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        let mut w = self.world.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut w)
    }

    fn reachable(&self, w: &World, at: &AccountRegion) -> Result<(), CloudError> {
        if !w.scenario.accounts.iter().any(|a| a.id == at.account_id) {
            return Err(CloudError::AccessDenied {
                message: format!(
                    "no role to assume in account {}: it is not part of the simulated estate",
                    at.account_id
                ),
            });
        }
        if !w.scenario.regions.contains(&at.region) {
            return Err(CloudError::Validation {
                message: format!("region {} is not part of the simulated estate", at.region),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Cloud for Simulator {
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
        let w = self.read();
        self.reachable(&w, at)?;
        Ok(w.scenario
            .instances
            .iter()
            .filter(|i| i.account_id == at.account_id && i.region == at.region)
            .cloned()
            .collect())
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
        let w = self.read();
        self.reachable(&w, at)?;
        let elapsed_s = u64::try_from((self.clock.now_millis() - w.replication_observed_at_ms) / 1000).unwrap_or(0);
        Ok(w.scenario
            .source_servers
            .iter()
            .filter(|s| s.account_id == at.account_id && s.region == at.region)
            .map(|s| {
                let mut s = s.clone();
                // Replication that is not flowing falls further behind as time passes.
                if matches!(
                    s.replication_state,
                    ReplicationState::Stalled | ReplicationState::Paused | ReplicationState::Disconnected
                ) {
                    s.lag_seconds += elapsed_s;
                }
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
        let first = Simulator::open(dir.path(), scenario.clone(), Some(1.0)).unwrap();
        first.clock().advance(3_600_000);
        first.with_world(|w| w.scenario.instances.retain(|i| i.tags.get("Name").is_none_or(|n| n != "shop-web-01")));
        first.save().unwrap();
        let t = first.clock().now_millis();
        drop(first);
        let second = Simulator::open(dir.path(), scenario, None).unwrap();
        assert!(second.clock().now_millis() >= t, "virtual time never goes back across a restart");
        assert_eq!(second.read().scenario.instances.len(), 8, "changes to the world survive");
    }
}
