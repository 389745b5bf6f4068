//! The store port: versioned JSON records in named tables, written in all-or-nothing transactions.
//!
//! The model is deliberately the intersection of an embedded file and DynamoDB: get by key, list by key
//! prefix, and a transaction of conditional puts and deletes. Every record carries a version that starts at
//! 1 and grows by one with each put; conditions compare it (optimistic concurrency).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One stored record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub version: u64,
    pub value: Json,
}

/// A record's value: JSON text, shared, so a read copies nothing and only its reader decodes it. Encoding a
/// 3,000-server execution as text costs a fraction of building a `serde_json::Value` tree of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Json(Arc<str>);

impl Json {
    /// `v` as JSON (`null` for the values JSON cannot hold, such as maps with non-string keys).
    pub fn encode<T: Serialize + ?Sized>(v: &T) -> Self {
        Self(serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned()).into())
    }

    /// Text read back from a store, checked to be JSON.
    ///
    /// # Errors
    /// When `text` is not JSON.
    pub fn parse(text: String) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<serde::de::IgnoredAny>(&text)?;
        Ok(Self(text.into()))
    }

    /// The value as `T`.
    ///
    /// # Errors
    /// When it does not decode as `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as a `serde_json::Value` tree (`Null` if it does not parse, which [`Json::parse`] prevents).
    pub fn to_value(&self) -> serde_json::Value {
        self.decode().unwrap_or(serde_json::Value::Null)
    }
}

impl From<serde_json::Value> for Json {
    fn from(v: serde_json::Value) -> Self {
        Self(v.to_string().into())
    }
}

/// Compares values, not texts (`{"a":1}` is `json!({"a": 1})`).
impl PartialEq<serde_json::Value> for Json {
    fn eq(&self, other: &serde_json::Value) -> bool {
        &self.to_value() == other
    }
}

impl std::fmt::Debug for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Written as the JSON it holds, not as a string of it.
impl Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(&self.0).map_err(<S::Error as serde::ser::Error>::custom)?;
        raw.serialize(s)
    }
}

/// Read through a `serde_json::Value`, which works inside any format and enum representation (a raw value
/// does not inside an internally tagged enum, such as the embedded store's log lines).
impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(d).map(Self::from)
    }
}

/// The condition a write places on the record's current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expect {
    /// The record must not exist.
    Absent,
    /// The record must exist with exactly this version.
    Version(u64),
    /// No condition.
    Any,
}

/// One write of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Put {
        table: String,
        key: String,
        value: Json,
        expect: Expect,
    },
    Delete {
        table: String,
        key: String,
        expect: Expect,
    },
    /// Writes nothing; the transaction fails unless the record meets `expect`.
    Check {
        table: String,
        key: String,
        expect: Expect,
    },
}

impl WriteOp {
    /// The table and key written.
    pub fn target(&self) -> (&str, &str) {
        match self {
            Self::Put { table, key, .. } | Self::Delete { table, key, .. } | Self::Check { table, key, .. } => {
                (table, key)
            }
        }
    }
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition did not hold; nothing of the transaction was written.
    #[error("{table}/{key}: expected {expected:?}, found version {actual:?}")]
    Conflict { table: String, key: String, expected: Expect, actual: Option<u64> },
    /// The transaction names one record twice.
    #[error("a transaction may write {table}/{key} only once")]
    DuplicateWrite { table: String, key: String },
    /// The store cannot be reached or read.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Versioned records in tables.
#[async_trait]
pub trait Store: Send + Sync {
    /// One record, or `None`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn get(&self, table: &str, key: &str) -> Result<Option<Record>, StoreError>;

    /// The version of one record, or `None`: what [`Store::get`] would say, without its value. Callers
    /// that keep a decoded copy check it is current with this.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn version(&self, table: &str, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.get(table, key).await?.map(|r| r.version))
    }

    /// Every record of `table` whose key starts with `key_prefix`, ordered by key.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn list(&self, table: &str, key_prefix: &str) -> Result<Vec<Record>, StoreError>;

    /// Applies every write or none. A delete without a condition succeeds whether or not the record exists. Returns, per write, the new version (0 for a delete, the current version
    /// for a check).
    ///
    /// # Errors
    /// MUST return [`StoreError::Conflict`] and write nothing when any condition fails; MUST return
    /// [`StoreError::DuplicateWrite`] when two writes name the same record. A transaction that returned
    /// `Ok` MUST survive a crash of the process that follows.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<Vec<u64>, StoreError>;
}

/// A store in memory: for tests and tools that need no durability.
pub mod memory {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::{Mutex, MutexGuard};

    /// Records in a map, behind one lock; transactions are checked whole before anything is applied.
    #[derive(Debug, Default)]
    pub struct MemoryStore(Mutex<BTreeMap<(String, String), Record>>);

    impl MemoryStore {
        /// Direct access to the records, for tests that must damage them.
        pub fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, String), Record>> {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }

    fn expect_of(op: &WriteOp) -> Expect {
        match op {
            WriteOp::Put { expect, .. } | WriteOp::Delete { expect, .. } | WriteOp::Check { expect, .. } => *expect,
        }
    }

    #[async_trait]
    impl Store for MemoryStore {
        async fn get(&self, table: &str, key: &str) -> Result<Option<Record>, StoreError> {
            Ok(self.lock().get(&(table.into(), key.into())).cloned())
        }

        async fn version(&self, table: &str, key: &str) -> Result<Option<u64>, StoreError> {
            Ok(self.lock().get(&(table.into(), key.into())).map(|r| r.version))
        }

        async fn list(&self, table: &str, key_prefix: &str) -> Result<Vec<Record>, StoreError> {
            let m = self.lock();
            Ok(m.iter().filter(|((t, k), _)| t == table && k.starts_with(key_prefix)).map(|(_, r)| r.clone()).collect())
        }

        async fn transact(&self, ops: Vec<WriteOp>) -> Result<Vec<u64>, StoreError> {
            let mut m = self.lock();
            let mut seen = std::collections::HashSet::new();
            for op in &ops {
                let (t, k) = op.target();
                if !seen.insert((t.to_owned(), k.to_owned())) {
                    return Err(StoreError::DuplicateWrite { table: t.into(), key: k.into() });
                }
                let actual = m.get(&(t.into(), k.into())).map(|r| r.version);
                let expected = expect_of(op);
                let holds = match expected {
                    Expect::Any => true,
                    Expect::Absent => actual.is_none(),
                    Expect::Version(v) => actual == Some(v),
                };
                if !holds {
                    return Err(StoreError::Conflict { table: t.into(), key: k.into(), expected, actual });
                }
            }
            let mut out = Vec::with_capacity(ops.len());
            for op in ops {
                match op {
                    WriteOp::Put { table, key, value, .. } => {
                        let version = m.get(&(table.clone(), key.clone())).map_or(1, |r| r.version + 1);
                        m.insert((table, key.clone()), Record { key, version, value });
                        out.push(version);
                    }
                    WriteOp::Delete { table, key, .. } => {
                        m.remove(&(table, key));
                        out.push(0);
                    }
                    WriteOp::Check { table, key, .. } => {
                        out.push(m.get(&(table, key)).map_or(0, |r| r.version));
                    }
                }
            }
            Ok(out)
        }
    }

    #[cfg(test)]
    mod tests {
        #[tokio::test]
        async fn the_memory_store_passes_the_conformance_suite() {
            super::super::conformance::run_all(&super::MemoryStore::default()).await;
        }
    }
}

/// The conformance suite every [`Store`] implementation runs in its tests. Not in the binary: it is built
/// for engine's own tests and, through the `conformance` feature, for the stores' test dependencies.
#[cfg(any(test, feature = "conformance"))]
pub mod conformance {
    use super::*;
    use serde_json::json;

    fn put(table: &str, key: &str, v: serde_json::Value, expect: Expect) -> WriteOp {
        WriteOp::Put { table: table.into(), key: key.into(), value: v.into(), expect }
    }

    /// Runs every check against `store`, which must start empty.
    pub async fn run_all(store: &dyn Store) {
        a_put_creates_version_one_and_bumps_it(store).await;
        conditional_put_conflicts(store).await;
        a_failed_transaction_writes_nothing(store).await;
        deletes_are_conditional(store).await;
        list_is_by_prefix_and_ordered(store).await;
        a_record_is_written_once_per_transaction(store).await;
        a_check_guards_a_transaction(store).await;
    }

    /// A check writes nothing but fails the whole transaction when its condition does not hold.
    pub async fn a_check_guards_a_transaction(store: &dyn Store) {
        store.transact(vec![put("t7", "guard", json!(1), Expect::Absent)]).await.unwrap();
        let check = |expect| WriteOp::Check { table: "t7".into(), key: "guard".into(), expect };
        let e =
            store.transact(vec![check(Expect::Version(2)), put("t7", "x", json!(1), Expect::Any)]).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
        assert!(store.get("t7", "x").await.unwrap().is_none());
        let v = store.transact(vec![check(Expect::Version(1)), put("t7", "x", json!(1), Expect::Any)]).await.unwrap();
        assert_eq!(v, [1, 1]);
        assert_eq!(store.get("t7", "guard").await.unwrap().unwrap().version, 1, "a check does not bump the version");
    }

    /// New records start at version 1; each put adds one.
    pub async fn a_put_creates_version_one_and_bumps_it(store: &dyn Store) {
        let v = store.transact(vec![put("t1", "a", json!({"n": 1}), Expect::Absent)]).await.unwrap();
        assert_eq!(v, [1]);
        let v = store.transact(vec![put("t1", "a", json!({"n": 2}), Expect::Version(1))]).await.unwrap();
        assert_eq!(v, [2]);
        let r = store.get("t1", "a").await.unwrap().unwrap();
        assert_eq!((r.version, r.value.to_value()), (2, json!({"n": 2})));
        assert_eq!(store.version("t1", "a").await.unwrap(), Some(2), "the version alone agrees with get");
        assert_eq!(store.version("t1", "missing").await.unwrap(), None);
        assert!(store.get("t1", "missing").await.unwrap().is_none());
        assert!(store.get("other", "a").await.unwrap().is_none(), "tables are separate");
    }

    /// A put whose expectation fails is refused with `Conflict`.
    pub async fn conditional_put_conflicts(store: &dyn Store) {
        store.transact(vec![put("t2", "a", json!(1), Expect::Absent)]).await.unwrap();
        let e = store.transact(vec![put("t2", "a", json!(2), Expect::Absent)]).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict { actual: Some(1), .. }), "{e:?}");
        let e = store.transact(vec![put("t2", "a", json!(2), Expect::Version(7))]).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
        let e = store.transact(vec![put("t2", "b", json!(2), Expect::Version(1))]).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict { actual: None, .. }), "{e:?}");
        assert_eq!(store.get("t2", "a").await.unwrap().unwrap().value, json!(1));
        let v = store.transact(vec![put("t2", "a", json!(3), Expect::Any)]).await.unwrap();
        assert_eq!(v, [2]);
    }

    /// When one write of a transaction fails its condition, none is applied.
    pub async fn a_failed_transaction_writes_nothing(store: &dyn Store) {
        store.transact(vec![put("t3", "x", json!("x1"), Expect::Absent)]).await.unwrap();
        let e = store
            .transact(vec![put("t3", "y", json!("y1"), Expect::Absent), put("t3", "x", json!("x2"), Expect::Absent)])
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict { .. }));
        assert!(store.get("t3", "y").await.unwrap().is_none(), "y must not be written");
        assert_eq!(store.get("t3", "x").await.unwrap().unwrap().value, json!("x1"));
    }

    /// Deletes honour their condition and remove the record.
    pub async fn deletes_are_conditional(store: &dyn Store) {
        store.transact(vec![put("t4", "d", json!(1), Expect::Absent)]).await.unwrap();
        let del = |expect| WriteOp::Delete { table: "t4".into(), key: "d".into(), expect };
        assert!(matches!(store.transact(vec![del(Expect::Version(9))]).await, Err(StoreError::Conflict { .. })));
        assert_eq!(store.transact(vec![del(Expect::Version(1))]).await.unwrap(), [0]);
        assert!(store.get("t4", "d").await.unwrap().is_none());
        assert_eq!(store.version("t4", "d").await.unwrap(), None, "a deleted record has no version");
        assert!(matches!(store.transact(vec![del(Expect::Version(1))]).await, Err(StoreError::Conflict { .. })));
        assert_eq!(
            store.transact(vec![del(Expect::Any)]).await.unwrap(),
            [0],
            "an unconditional delete of nothing is fine"
        );
    }

    /// `list` returns matching keys in key order.
    pub async fn list_is_by_prefix_and_ordered(store: &dyn Store) {
        let ops = ["g2/b", "g1/b", "g1/a", "g10/a"].iter().map(|k| put("t5", k, json!(k), Expect::Absent)).collect();
        store.transact(ops).await.unwrap();
        let keys: Vec<String> = store.list("t5", "g1/").await.unwrap().into_iter().map(|r| r.key).collect();
        assert_eq!(keys, ["g1/a", "g1/b"]);
        assert_eq!(store.list("t5", "").await.unwrap().len(), 4);
    }

    /// Two writes to one record in one transaction are refused.
    pub async fn a_record_is_written_once_per_transaction(store: &dyn Store) {
        let e = store
            .transact(vec![put("t6", "k", json!(1), Expect::Any), put("t6", "k", json!(2), Expect::Any)])
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::DuplicateWrite { .. }), "{e:?}");
        assert!(store.get("t6", "k").await.unwrap().is_none());
    }
}

#[cfg(test)]
mod json_tests {
    use super::Json;
    use serde_json::json;

    #[test]
    fn a_value_is_written_as_the_json_it_holds_and_read_back() {
        let j = Json::encode(&json!({ "a": [1, "x <é>"] }));
        assert_eq!(j, json!({ "a": [1, "x <é>"] }), "compared as values");
        assert_eq!(serde_json::to_string(&vec![j.clone()]).unwrap(), r#"[{"a":[1,"x <é>"]}]"#, "not a string of JSON");
        let back: Vec<Json> = serde_json::from_str(r#"[ {"a" : [1, "x <é>"]} ]"#).unwrap();
        assert_eq!(back[0], j);
        assert_eq!(j.decode::<serde_json::Value>().unwrap()["a"][1], "x <é>");
        assert!(Json::parse("{\"torn\": ".into()).is_err(), "text read back must be whole JSON");
        assert_eq!(Json::parse("[1, 2]".into()).unwrap().to_value(), json!([1, 2]));
    }
}
