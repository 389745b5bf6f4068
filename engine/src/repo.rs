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
/// `<group>/<source server>` → the launch configuration before Roundtrip's first write.
pub const LAUNCH_CONFIG_BACKUPS: &str = "launch_config_backups";
/// `<group>/<source server>` → the launch configuration Roundtrip applied.
pub const LAUNCH_CONFIG_APPLIED: &str = "launch_config_applied";
/// `<group>` → the group's last readiness.
pub const READINESS_LATEST: &str = "readiness_latest";
/// `<group>/<time>` → a change of the group's verdict.
pub const READINESS_HISTORY: &str = "readiness_history";
/// `<time>-<uuid>` → one DRS or EC2 write Roundtrip made.
pub const AWS_MUTATIONS: &str = "aws_mutations";

fn decode<T: serde::de::DeserializeOwned>(r: Record) -> Result<(T, u64), StoreError> {
    let v = serde_json::from_value(r.value)
        .map_err(|e| StoreError::Unexpected(anyhow::anyhow!("record {} does not decode: {e}", r.key)))?;
    Ok((v, r.version))
}

fn encode<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
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
