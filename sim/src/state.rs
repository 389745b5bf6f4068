//! The simulated estate's state: the scenario, what has happened to it since (jobs, recovery instances,
//! reversed replications, stopping instances, swapped volumes, every call answered) and the faults planted.
//! The behaviour lives beside it: [`crate::ec2`], [`crate::jobs`] and [`crate::reverse`] change a [`World`];
//! [`crate::world::Simulator`] guards it, persists it and answers the cloud port with it.

use crate::scenario::Scenario;
use domain::estate::{AccountRegion, Ec2Instance};
use domain::ids::{InstanceId, SourceServerId};
use domain::launch::{LaunchConfiguration, LaunchConfigurationUpdate};
use domain::recovery::{AvailableVolume, DrsJob, JobLogItem};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The simulated world: a scenario plus what has happened to it since.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct World {
    pub scenario: Scenario,
    /// Virtual time at which each source server's `lag_seconds` was last observed, so lag grows while
    /// replication is not continuous.
    pub replication_observed_at_ms: i64,
    /// Every source server's DRS launch configuration.
    #[serde(default)]
    pub launch_configurations: BTreeMap<SourceServerId, LaunchConfiguration>,
    /// Faults injected per source server.
    #[serde(default)]
    pub faults: BTreeMap<SourceServerId, Fault>,
    /// Every DRS and EC2 call the estate answered, in order.
    #[serde(default)]
    pub calls: Vec<ApiCall>,
    /// Recovery jobs started since the scenario began.
    #[serde(default)]
    pub launch_jobs: Vec<SimJob>,
    /// Recovery instances those jobs left (one per source server, the latest).
    #[serde(default)]
    pub recovery_instances: Vec<domain::recovery::RecoveryInstance>,
    /// Jobs started so far: the next job's id.
    #[serde(default)]
    pub job_counter: u64,
    /// Instances stopping, and when each will be stopped (virtual ms).
    #[serde(default)]
    pub stopping: BTreeMap<InstanceId, i64>,
    /// When each instance stopped through `StopInstances` last did.
    #[serde(default)]
    pub stopped_at: BTreeMap<InstanceId, i64>,
    /// Volumes attached to no instance, with where they are (the ones launches swapped out).
    #[serde(default)]
    pub available_volumes: Vec<(AccountRegion, AvailableVolume)>,
    /// Volumes created so far by launches: the next volume's id.
    #[serde(default)]
    pub volume_counter: u64,
    /// Reversed replications (failback and re-protect), oldest first.
    #[serde(default)]
    pub reversals: Vec<Reversal>,
    /// When [`crate::reverse::settle`] last brought the reversals up to date, and the next time one of them
    /// moves on; `None` once the list changes.
    #[serde(skip)]
    pub reversals_settled: Option<(i64, i64)>,
    /// Positions of instances and source servers by id (both lists only grow), for lookups of a few ids.
    #[serde(skip)]
    index: Index,
}

#[derive(Debug, Clone, Default)]
struct Index {
    instances: HashMap<InstanceId, usize>,
    source_servers: HashMap<SourceServerId, usize>,
    /// How many of each list's entries the maps hold.
    counted: (usize, usize),
}

/// A fault injected into one source server's DRS calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// `UpdateLaunchConfiguration` that sets a launch-into instance fails with this validation message.
    RejectLaunchInto { message: String },
    /// The next `count` DRS calls for this server fail with HTTP 500.
    ServiceErrors { count: u32 },
    /// The server's launch fails with this reason (`LAUNCH_FAILED` in the job log).
    LaunchFails { message: String },
    /// The server's launch never ends, so its job stays `STARTED`.
    JobStalls,
    /// The server's recovery instance comes up with this private IP instead of its own.
    ComesUpWithIp { ip: std::net::Ipv4Addr },
    /// When its recovery instance's replication is reversed, the agent never finishes installing.
    AgentInstallFails,
    /// Its reversed replication stalls once the initial sync is done (lag grows for good).
    FailbackStalls,
}

/// One call the simulated estate answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCall {
    /// Virtual time, Unix ms.
    pub at_ms: i64,
    /// e.g. `drs:UpdateLaunchConfiguration`.
    pub operation: String,
    pub source_server_id: Option<SourceServerId>,
    /// `ok`, or the error code answered.
    pub outcome: String,
    /// For writes: the fields written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<LaunchConfigurationUpdate>,
}

impl World {
    pub(crate) fn new(scenario: Scenario, now: i64) -> Self {
        let launch_configurations =
            scenario.launch_configurations.iter().map(|c| (c.source_server_id.clone(), c.clone())).collect();
        Self {
            scenario,
            replication_observed_at_ms: now,
            launch_configurations,
            faults: BTreeMap::new(),
            calls: Vec::new(),
            launch_jobs: Vec::new(),
            recovery_instances: Vec::new(),
            job_counter: 0,
            stopping: BTreeMap::new(),
            stopped_at: BTreeMap::new(),
            available_volumes: Vec::new(),
            volume_counter: 0,
            reversals: Vec::new(),
            reversals_settled: None,
            index: Index::default(),
        }
    }

    /// Brings the id indexes up to date with the lists: entries appended since are added (a lookup checks
    /// what it finds, so an entry moved by a test's edit is searched for instead).
    pub(crate) fn reindex(&mut self) {
        fn add<K: Clone + Eq + std::hash::Hash, T>(
            m: &mut HashMap<K, usize>,
            counted: &mut usize,
            items: &[T],
            key: impl Fn(&T) -> &K,
        ) {
            if *counted > items.len() {
                m.clear();
                *counted = 0;
            }
            for (i, item) in items.iter().enumerate().skip(*counted) {
                m.entry(key(item).clone()).or_insert(i);
            }
            *counted = items.len();
        }
        let ix = &mut self.index;
        add(&mut ix.instances, &mut ix.counted.0, &self.scenario.instances, |i| &i.instance_id);
        add(&mut ix.source_servers, &mut ix.counted.1, &self.scenario.source_servers, |s| &s.source_server_id);
    }

    /// The instance `id` (through the index when it holds it, else by a search).
    pub(crate) fn instance(&self, id: &InstanceId) -> Option<&Ec2Instance> {
        match self.index.instances.get(id).and_then(|&i| self.scenario.instances.get(i)) {
            Some(i) if &i.instance_id == id => Some(i),
            _ => self.scenario.instances.iter().find(|i| &i.instance_id == id),
        }
    }

    /// Where instance `id` stands in the scenario's list, as far as the index knows (`usize::MAX` if not).
    pub(crate) fn instance_order(&self, id: &InstanceId) -> usize {
        self.index.instances.get(id).copied().unwrap_or(usize::MAX)
    }

    /// The position of source server `id` in the scenario's list.
    pub(crate) fn source_server_position(&self, id: &SourceServerId) -> Option<usize> {
        let list = &self.scenario.source_servers;
        match self.index.source_servers.get(id) {
            Some(&i) if list.get(i).is_some_and(|s| &s.source_server_id == id) => Some(i),
            _ => list.iter().position(|s| &s.source_server_id == id),
        }
    }

    /// Calls of one operation.
    pub fn calls_of(&self, operation: &str) -> Vec<&ApiCall> {
        self.calls.iter().filter(|c| c.operation == operation).collect()
    }
}

/// A job as the simulated estate keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimJob {
    pub job: DrsJob,
    pub account_id: domain::ids::AccountId,
    pub region: domain::ids::Region,
    /// Per server, when its launch ends (virtual ms), or `None` when it never ends (a stalled job).
    pub done_at: Vec<Option<i64>>,
    /// Per server, the launch-into target its launch configuration named when the job started.
    #[serde(default)]
    pub targets: Vec<Option<InstanceId>>,
    pub log: Vec<JobLogItem>,
}

/// One `ReverseReplication` the estate is carrying out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reversal {
    /// The recovery instance whose replication was reversed.
    pub recovery_instance_id: InstanceId,
    /// The source server that now replicates it.
    pub source_server_id: SourceServerId,
    /// The source server of the other direction (for a failback source server: the forward one).
    pub counterpart: SourceServerId,
    pub started_at: i64,
    /// When the agent finished installing, or `None` when it never does.
    pub installed_at: Option<i64>,
    pub synced_at: i64,
    pub lag_seconds: u64,
    pub stalls: bool,
}

/// A stable pseudo-random number in `lo..=hi` for `seed` (FNV-1a: the same across runs and platforms).
pub(crate) fn spread(seed: &str, lo: i64, hi: i64) -> i64 {
    let h = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    lo + i64::try_from(h % u64::try_from(hi - lo + 1).unwrap_or(1)).unwrap_or(0)
}
