//! The scenario file: a TOML description of a simulated estate (`docs/scenarios.md` documents it).
//!
//! A scenario is checked whole when it loads: every id unique, every reference resolvable, every tag
//! within AWS's limits. A scenario that fails a check is refused with a message naming the offending item.

use domain::estate::{Ec2Instance, SourceServer, Subnet, check_tags};
use domain::ids::{AccountId, Region, SourceServerId};
use domain::launch::LaunchConfiguration;
use domain::readiness::Quotas;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Settings of the simulation itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationSettings {
    /// Virtual seconds per real second (1 = real time). The server's `--speed` overrides it.
    #[serde(default = "one")]
    pub speed: f64,
    /// Virtual time at which the scenario starts, Unix milliseconds; the real time of the first start when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<i64>,
}

fn one() -> f64 {
    1.0
}

impl Default for SimulationSettings {
    fn default() -> Self {
        Self { speed: one(), start_ms: None }
    }
}

/// How the simulated DRS API behaves under load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiSettings {
    /// DRS requests per second before `ThrottlingException` (none = unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drs_requests_per_second: Option<f64>,
    /// Requests allowed in a burst above the rate.
    #[serde(default = "default_burst")]
    pub drs_burst: u32,
}

fn default_burst() -> u32 {
    10
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self { drs_requests_per_second: None, drs_burst: default_burst() }
    }
}

/// A DRS job that is running when the scenario starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioJob {
    pub job_id: String,
    pub account_id: AccountId,
    pub region: Region,
    /// `PENDING`, `STARTED` or `COMPLETED`.
    pub status: String,
    pub source_server_ids: Vec<SourceServerId>,
}

/// An AWS account of the estate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioAccount {
    pub id: AccountId,
    pub name: String,
}

pub use domain::estate::{InstanceProfile, SecurityGroup};

/// A whole simulated estate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub simulation: SimulationSettings,
    pub accounts: Vec<ScenarioAccount>,
    pub regions: Vec<Region>,
    #[serde(default)]
    pub subnets: Vec<Subnet>,
    #[serde(default)]
    pub security_groups: Vec<SecurityGroup>,
    /// IAM instance profiles per account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_profiles: Vec<InstanceProfile>,
    /// Account and regions where DRS has not been initialised (`InitializeService`); every other one is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uninitialized_drs: Vec<domain::estate::AccountRegion>,
    #[serde(default)]
    pub instances: Vec<Ec2Instance>,
    #[serde(default)]
    pub source_servers: Vec<SourceServer>,
    /// Launch configurations that differ from DRS's defaults.
    #[serde(default)]
    pub launch_configurations: Vec<LaunchConfiguration>,
    #[serde(default)]
    pub jobs: Vec<ScenarioJob>,
    #[serde(default)]
    pub quotas: Quotas,
    #[serde(default)]
    pub api: ApiSettings,
}

/// Why a scenario was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("the scenario is not valid TOML of the expected shape: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("the scenario is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the scenario is inconsistent: {0}")]
    Invalid(String),
}

impl Scenario {
    /// Parses and checks a scenario.
    ///
    /// # Errors
    /// [`ScenarioError::Parse`] for bad TOML or shapes, [`ScenarioError::Invalid`] for broken references.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let s: Scenario = toml::from_str(text)?;
        s.check().map_err(ScenarioError::Invalid)?;
        Ok(s)
    }

    /// Parses and checks a scenario written as JSON (the same shape as the TOML): a generated estate of
    /// thousands of servers reads in a fraction of the memory TOML takes.
    ///
    /// # Errors
    /// [`ScenarioError::Json`] for bad JSON or shapes, [`ScenarioError::Invalid`] for broken references.
    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        let s: Scenario = serde_json::from_str(text)?;
        s.check().map_err(ScenarioError::Invalid)?;
        Ok(s)
    }

    /// The scenario as TOML.
    ///
    /// # Errors
    /// Only if serialisation fails, which a checked scenario does not.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }

    /// Checks what a saved estate must still satisfy however it changed: every tag and hostname within
    /// AWS's limits (the estate is untrusted input).
    ///
    /// # Errors
    /// A message naming the first offending item.
    pub fn check_limits(&self) -> Result<(), String> {
        for i in &self.instances {
            check_tags(&i.tags).map_err(|m| format!("instance {}: {m}", i.instance_id))?;
        }
        for s in &self.source_servers {
            check_tags(&s.tags).map_err(|m| format!("source server {}: {m}", s.source_server_id))?;
            if s.hostname.chars().count() > 255 {
                return Err(format!("source server {}: hostname over 255 characters", s.source_server_id));
            }
        }
        Ok(())
    }

    /// Checks references and uniqueness.
    ///
    /// # Errors
    /// A message naming the first problem.
    pub fn check(&self) -> Result<(), String> {
        let accounts: HashSet<&AccountId> = self.accounts.iter().map(|a| &a.id).collect();
        if accounts.len() != self.accounts.len() {
            return Err("an account id is listed twice".into());
        }
        let regions: HashSet<&Region> = self.regions.iter().collect();
        let at = |what: &str, a: &AccountId, r: &Region| -> Result<(), String> {
            if !accounts.contains(a) {
                return Err(format!("{what} names account {a}, which the scenario does not declare"));
            }
            if !regions.contains(r) {
                return Err(format!("{what} names region {r}, which the scenario does not declare"));
            }
            Ok(())
        };
        let mut subnets = HashSet::new();
        for s in &self.subnets {
            at(&format!("subnet {}", s.subnet_id), &s.account_id, &s.region)?;
            if !subnets.insert(&s.subnet_id) {
                return Err(format!("subnet {} is listed twice", s.subnet_id));
            }
        }
        let mut ids = HashSet::new();
        for i in &self.instances {
            at(&format!("instance {}", i.instance_id), &i.account_id, &i.region)?;
            if !ids.insert(&i.instance_id) {
                return Err(format!("instance {} is listed twice", i.instance_id));
            }
            if !subnets.contains(&i.subnet_id) {
                return Err(format!("instance {} names subnet {}, which does not exist", i.instance_id, i.subnet_id));
            }
            check_tags(&i.tags).map_err(|m| format!("instance {}: {m}", i.instance_id))?;
        }
        let mut sids = HashSet::new();
        for s in &self.source_servers {
            at(&format!("source server {}", s.source_server_id), &s.account_id, &s.region)?;
            at(&format!("source server {} (origin)", s.source_server_id), &s.origin_account_id, &s.origin_region)?;
            if !sids.insert(&s.source_server_id) {
                return Err(format!("source server {} is listed twice", s.source_server_id));
            }
            if let Some(i) = &s.source_instance_id
                && !ids.contains(i)
            {
                return Err(format!(
                    "source server {} names source instance {i}, which does not exist",
                    s.source_server_id
                ));
            }
            check_tags(&s.tags).map_err(|m| format!("source server {}: {m}", s.source_server_id))?;
            if s.hostname.chars().count() > 255 {
                return Err(format!("source server {}: hostname over 255 characters", s.source_server_id));
            }
        }
        for c in &self.launch_configurations {
            if !sids.contains(&c.source_server_id) {
                return Err(format!(
                    "a launch configuration names source server {}, which does not exist",
                    c.source_server_id
                ));
            }
        }
        if let Some(r) = self.api.drs_requests_per_second
            && !(r.is_finite() && r > 0.0)
        {
            return Err(format!("api.drs_requests_per_second must be a positive number, not {r}"));
        }
        for j in &self.jobs {
            at(&format!("job {}", j.job_id), &j.account_id, &j.region)?;
        }
        Ok(())
    }
}
