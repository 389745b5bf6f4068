//! Typed records on top of the store port: how protection groups and pairs are laid out in tables.
//!
//! - `protection_groups/<group id>` → [`ProtectionGroup`]
//! - `group_names/<normalised name>` → the group id, so names stay unique under concurrent creates
//! - `instance_pairs/<group id>/<pair id>` → [`InstancePair`]
//!
//! The `version` field of a stored struct is always taken from the record, never from its JSON.

use crate::store::{Expect, Record, Store, StoreError, WriteOp};
use domain::group::{InstancePair, ProtectionGroup};
use domain::ids::{PairId, ProtectionGroupId};
use domain::matching::normalize_name;

pub const PROTECTION_GROUPS: &str = "protection_groups";
pub const GROUP_NAMES: &str = "group_names";
pub const INSTANCE_PAIRS: &str = "instance_pairs";
/// `<instance id>` → the key of the pair whose standby it is: at most one pair per standby.
pub const STANDBY_CLAIMS: &str = "standby_claims";
/// `<source server id>` → the key of its pair: at most one pair per source server, across groups.
pub const SOURCE_CLAIMS: &str = "source_claims";
/// `<group>/<source server>` → the launch configuration before Roundtrip's first write.
pub const LAUNCH_CONFIG_BACKUPS: &str = "launch_config_backups";
/// `<group>/<source server>` → the launch configuration Roundtrip applied.
pub const LAUNCH_CONFIG_APPLIED: &str = "launch_config_applied";
/// `<group>` → the group's last readiness.
pub const READINESS_LATEST: &str = "readiness_latest";
/// `<group>/<time>` → a change of the group's verdict.
pub const READINESS_HISTORY: &str = "readiness_history";

fn decode<T: serde::de::DeserializeOwned>(r: Record) -> Result<(T, u64), StoreError> {
    let v = r
        .value
        .decode()
        .map_err(|e| StoreError::Unexpected(anyhow::anyhow!("record {} does not decode: {e}", r.key)))?;
    Ok((v, r.version))
}

fn encode<T: serde::Serialize>(v: &T) -> crate::store::Json {
    crate::store::Json::encode(v)
}

/// Store key of a pair.
pub fn pair_key(group: &ProtectionGroupId, pair: &PairId) -> String {
    format!("{group}/{pair}")
}

/// Store key of a group name.
pub fn name_key(name: &str) -> String {
    normalize_name(name)
}

/// Reads one group.
///
/// # Errors
/// Store failures.
pub async fn get_group(store: &dyn Store, id: &ProtectionGroupId) -> Result<Option<ProtectionGroup>, StoreError> {
    match store.get(PROTECTION_GROUPS, id.as_str()).await? {
        None => Ok(None),
        Some(r) => {
            let (mut g, v): (ProtectionGroup, u64) = decode(r)?;
            g.version = v;
            Ok(Some(g))
        }
    }
}

/// Reads every group, ordered by id.
///
/// # Errors
/// Store failures.
pub async fn list_groups(store: &dyn Store) -> Result<Vec<ProtectionGroup>, StoreError> {
    store
        .list(PROTECTION_GROUPS, "")
        .await?
        .into_iter()
        .map(|r| {
            let (mut g, v): (ProtectionGroup, u64) = decode(r)?;
            g.version = v;
            Ok(g)
        })
        .collect()
}

/// Reads the pairs of one group (or of every group, with `None`), ordered by key.
///
/// # Errors
/// Store failures.
pub async fn list_pairs(store: &dyn Store, group: Option<&ProtectionGroupId>) -> Result<Vec<InstancePair>, StoreError> {
    let prefix = group.map(|g| format!("{g}/")).unwrap_or_default();
    store
        .list(INSTANCE_PAIRS, &prefix)
        .await?
        .into_iter()
        .map(|r| {
            let (mut p, v): (InstancePair, u64) = decode(r)?;
            p.version = v;
            Ok(p)
        })
        .collect()
}

/// A put of a group.
pub fn put_group(g: &ProtectionGroup, expect: Expect) -> WriteOp {
    WriteOp::Put { table: PROTECTION_GROUPS.into(), key: g.id.to_string(), value: encode(g), expect }
}

/// A put of a pair.
pub fn put_pair(p: &InstancePair, expect: Expect) -> WriteOp {
    WriteOp::Put {
        table: INSTANCE_PAIRS.into(),
        key: pair_key(&p.protection_group_id, &p.id),
        value: encode(p),
        expect,
    }
}

/// A delete of a pair.
pub fn delete_pair(p: &InstancePair, expect: Expect) -> WriteOp {
    WriteOp::Delete { table: INSTANCE_PAIRS.into(), key: pair_key(&p.protection_group_id, &p.id), expect }
}

/// A condition that the group still has the version read.
pub fn check_group(g: &ProtectionGroup) -> WriteOp {
    WriteOp::Check { table: PROTECTION_GROUPS.into(), key: g.id.to_string(), expect: Expect::Version(g.version) }
}

/// Claims the pair's standby for it; fails the transaction when another pair holds it.
pub fn claim_standby(p: &InstancePair) -> WriteOp {
    WriteOp::Put {
        table: STANDBY_CLAIMS.into(),
        key: p.standby_instance_id.to_string(),
        value: crate::store::Json::encode(&serde_json::json!(pair_key(&p.protection_group_id, &p.id))),
        expect: Expect::Absent,
    }
}

/// Claims the pair's standby and source server.
pub fn claim(p: &InstancePair) -> [WriteOp; 2] {
    [
        claim_standby(p),
        WriteOp::Put {
            table: SOURCE_CLAIMS.into(),
            key: p.source_server_id.to_string(),
            value: crate::store::Json::encode(&serde_json::json!(pair_key(&p.protection_group_id, &p.id))),
            expect: Expect::Absent,
        },
    ]
}

/// Frees a standby.
pub fn release_standby(id: &domain::ids::InstanceId) -> WriteOp {
    WriteOp::Delete { table: STANDBY_CLAIMS.into(), key: id.to_string(), expect: Expect::Any }
}

/// Frees the pair's standby and source server.
pub fn release(p: &InstancePair) -> [WriteOp; 2] {
    [
        release_standby(&p.standby_instance_id),
        WriteOp::Delete { table: SOURCE_CLAIMS.into(), key: p.source_server_id.to_string(), expect: Expect::Any },
    ]
}
