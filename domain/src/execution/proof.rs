//! The round-trip proof: per server, where it ran before failover, after failover and after failback.

use super::record::ExecutionRecord;
use super::state::{ServerRun, ServerState};
use crate::ids::{InstanceId, SourceServerId};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Where a server ran: instance and private IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub instance_id: InstanceId,
    pub private_ip: Ipv4Addr,
}

/// Whether a server's identity survived the round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofVerdict {
    /// Back on the original instance with its original private IP, after running on its standby.
    Identical,
    /// The failback did not come back as the original instance with its IP.
    Mismatch,
    /// Not back yet.
    Incomplete,
}

/// One server's round trip: before failover, after failover, after failback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofRow {
    pub name: String,
    pub source_server_id: SourceServerId,
    pub before_failover: Placement,
    pub after_failover: Option<Placement>,
    /// Identity verification's result: the instance and IP it proved.
    pub after_failback: Option<Placement>,
    pub verdict: ProofVerdict,
    pub error: Option<String>,
}

/// The round-trip proof of a failback, against the recovery it reversed. Each placement is one identity
/// verification proved (instance id, private IP, running), not a value read back later.
pub fn round_trip_proof(recovery: &ExecutionRecord, failback: &ExecutionRecord) -> Vec<ProofRow> {
    let forward: Vec<&ServerRun> = recovery.state.waves.iter().flat_map(|w| w.servers.iter()).collect();
    failback
        .state
        .waves
        .iter()
        .flat_map(|w| w.servers.iter())
        .map(|back| {
            let before = Placement { instance_id: back.standby_instance_id.clone(), private_ip: back.expected_ip };
            let after_failover = forward
                .iter()
                .find(|f| f.source_server_id == back.source_server_id && f.state == ServerState::Verified)
                .map(|f| Placement { instance_id: f.standby_instance_id.clone(), private_ip: f.expected_ip });
            let home = back.state == ServerState::Verified;
            let verdict = match (home, &after_failover, back.state) {
                (true, Some(_), _) => ProofVerdict::Identical,
                (_, _, ServerState::Failed) => ProofVerdict::Mismatch,
                _ => ProofVerdict::Incomplete,
            };
            ProofRow {
                name: back.name.clone(),
                source_server_id: back.source_server_id.clone(),
                after_failback: home.then(|| before.clone()),
                before_failover: before,
                after_failover,
                verdict,
                error: back.error.clone(),
            }
        })
        .collect()
}
