//! The embedded store: Roundtrip's default store, one file in the data folder.
//!
//! The file is JSON Lines: a header line, then one line per committed transaction holding the records it
//! wrote (puts with their new versions, deletes). A transaction is acknowledged only after its line is
//! written and `fsync`ed, so a committed transaction survives a crash. On open, lines are replayed in
//! order; a torn last line (a crash mid-write, never acknowledged) is dropped whole, so a transaction lands
//! entirely or not at all. A damaged line anywhere else refuses to open: silently losing history is worse
//! than stopping. The file is compacted (rewritten to one line per live record, atomically by
//! rename) on open and when the log grows long.
//!
//! All records are also held in memory; reads never touch the disk.

use async_trait::async_trait;
use engine::store::{Expect, Json, Record, Store, StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

const HEADER: &str = r#"{"roundtrip_store":1}"#;
/// Transactions appended before the file is compacted.
const COMPACT_AFTER_LINES: usize = 20_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    version: u64,
    value: Json,
}

/// One applied write, as logged.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Logged {
    Put { table: String, key: String, version: u64, value: Json },
    Delete { table: String, key: String },
}

type Tables = BTreeMap<String, BTreeMap<String, Stored>>;

/// The file side of the store; its lock also makes writers take turns.
struct Log {
    file: Option<File>,
    /// Bytes of the file known to be whole; a failed write is cut back to this.
    len: u64,
    /// Set when the file could not be brought back to a known state: every later write is refused.
    broken: Option<String>,
    lines_since_compaction: usize,
}

/// The embedded store. Cheap to share behind an `Arc`.
pub struct EmbeddedStore {
    path: Option<PathBuf>,
    /// The records. A transaction holds the write lock only to apply itself, after its line is on disk, so
    /// reads never wait for a disk flush.
    tables: RwLock<Tables>,
    log: Mutex<Log>,
    /// Held while the store is open: a second process on the same file is refused.
    _lock: Option<File>,
}

impl EmbeddedStore {
    /// A store that lives only in memory (tests, throwaway demos).
    pub fn in_memory() -> Self {
        Self {
            path: None,
            tables: RwLock::new(Tables::new()),
            log: Mutex::new(Log { file: None, len: 0, broken: None, lines_since_compaction: 0 }),
            _lock: None,
        }
    }

    /// Opens (or creates) the store file at `path`, replays it and compacts it.
    ///
    /// # Errors
    /// When the file cannot be read or written, or a line other than the last is damaged.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(path.with_extension("lock"))?;
        if let Err(e) = lock.try_lock() {
            anyhow::bail!("{} is in use by another Roundtrip process ({e}); stop it first", path.display());
        }
        let mut tables = Tables::new();
        if path.exists() {
            let bytes = std::fs::read(path)?;
            // Split on bytes, not text: a crash can cut the last line inside a multi-byte character.
            let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
            if lines.last().is_some_and(|l| l.is_empty()) {
                lines.pop();
            }
            let n = lines.len();
            for (i, line) in lines.into_iter().enumerate() {
                if i == 0 {
                    anyhow::ensure!(line == HEADER.as_bytes(), "{} is not a Roundtrip store file", path.display());
                    continue;
                }
                match serde_json::from_slice::<Vec<Logged>>(line) {
                    Ok(ops) => apply(&mut tables, ops),
                    Err(_) if i + 1 == n => {
                        tracing::warn!(path = %path.display(), "dropping a torn last transaction (never acknowledged)");
                    }
                    Err(e) => anyhow::bail!("{} is damaged at line {}: {e}", path.display(), i + 1),
                }
            }
        }
        let store = Self {
            path: Some(path.to_owned()),
            tables: RwLock::new(tables),
            log: Mutex::new(Log { file: None, len: 0, broken: None, lines_since_compaction: 0 }),
            _lock: Some(lock),
        };
        {
            let mut log = store.log()?;
            store.compact(&mut log)?;
        }
        Ok(store)
    }

    fn log(&self) -> anyhow::Result<std::sync::MutexGuard<'_, Log>> {
        self.log.lock().map_err(|_| anyhow::anyhow!("store lock poisoned by an earlier panic"))
    }

    fn read(&self) -> anyhow::Result<std::sync::RwLockReadGuard<'_, Tables>> {
        self.tables.read().map_err(|_| anyhow::anyhow!("store lock poisoned by an earlier panic"))
    }

    fn write(&self) -> anyhow::Result<std::sync::RwLockWriteGuard<'_, Tables>> {
        self.tables.write().map_err(|_| anyhow::anyhow!("store lock poisoned by an earlier panic"))
    }

    /// Rewrites the file as one line of live records, atomically, and reopens it for appending.
    fn compact(&self, inner: &mut Log) -> anyhow::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let tmp = path.with_extension("compacting");
        {
            let mut f = File::create(&tmp)?;
            writeln!(f, "{HEADER}")?;
            let ops: Vec<Logged> = self
                .read()?
                .iter()
                .flat_map(|(t, recs)| {
                    recs.iter().map(|(k, s)| Logged::Put {
                        table: t.clone(),
                        key: k.clone(),
                        version: s.version,
                        value: s.value.clone(),
                    })
                })
                .collect();
            if !ops.is_empty() {
                serde_json::to_writer(&mut f, &ops)?;
                writeln!(f)?;
            }
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        // From here on the old handle points at a replaced file: reopen or refuse further writes.
        inner.file = None;
        let reopened = (|| -> std::io::Result<(File, u64)> {
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
            let f = OpenOptions::new().append(true).open(path)?;
            let len = f.metadata()?.len();
            Ok((f, len))
        })();
        match reopened {
            Ok((f, len)) => {
                inner.file = Some(f);
                inner.len = len;
                inner.lines_since_compaction = 0;
                Ok(())
            }
            Err(e) => {
                inner.broken = Some(format!("the store file could not be reopened after compaction: {e}"));
                Err(e.into())
            }
        }
    }

    /// The file behind the store, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// Runs a blocking file operation without stalling the runtime's other tasks on a multi-threaded runtime
/// (inline on any other).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn apply(tables: &mut Tables, ops: Vec<Logged>) {
    for op in ops {
        match op {
            Logged::Put { table, key, version, value } => {
                tables.entry(table).or_default().insert(key, Stored { version, value });
            }
            Logged::Delete { table, key } => {
                if let Some(t) = tables.get_mut(&table) {
                    t.remove(&key);
                }
            }
        }
    }
}

fn check(expect: Expect, current: Option<u64>) -> bool {
    match expect {
        Expect::Any => true,
        Expect::Absent => current.is_none(),
        Expect::Version(v) => current == Some(v),
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, table: &str, key: &str) -> Result<Option<Record>, StoreError> {
        let tables = self.read()?;
        Ok(tables.get(table).and_then(|t| t.get(key)).map(|s| Record {
            key: key.to_owned(),
            version: s.version,
            value: s.value.clone(),
        }))
    }

    async fn version(&self, table: &str, key: &str) -> Result<Option<u64>, StoreError> {
        let tables = self.read()?;
        Ok(tables.get(table).and_then(|t| t.get(key)).map(|s| s.version))
    }

    async fn list(&self, table: &str, key_prefix: &str) -> Result<Vec<Record>, StoreError> {
        let tables = self.read()?;
        let Some(t) = tables.get(table) else { return Ok(Vec::new()) };
        Ok(t.range(key_prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(key_prefix))
            .map(|(k, s)| Record { key: k.clone(), version: s.version, value: s.value.clone() })
            .collect())
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<Vec<u64>, StoreError> {
        // Writers take turns on the log; the records stay readable until this one is on disk.
        let mut inner = self.log()?;
        if let Some(why) = &inner.broken {
            return Err(StoreError::Unavailable(format!("{why}; restart the server")));
        }
        let tables = self.read()?;
        let mut seen = HashSet::new();
        let mut logged = Vec::with_capacity(ops.len());
        let mut versions = Vec::with_capacity(ops.len());
        for op in &ops {
            let (table, key) = op.target();
            if !seen.insert((table, key)) {
                return Err(StoreError::DuplicateWrite { table: table.into(), key: key.into() });
            }
            let current = tables.get(table).and_then(|t| t.get(key)).map(|s| s.version);
            let expect = match op {
                WriteOp::Put { expect, .. } | WriteOp::Delete { expect, .. } | WriteOp::Check { expect, .. } => *expect,
            };
            if !check(expect, current) {
                return Err(StoreError::Conflict {
                    table: table.into(),
                    key: key.into(),
                    expected: expect,
                    actual: current,
                });
            }
            match op {
                WriteOp::Put { table, key, value, .. } => {
                    let version = current.unwrap_or(0) + 1;
                    versions.push(version);
                    logged.push(Logged::Put { table: table.clone(), key: key.clone(), version, value: value.clone() });
                }
                WriteOp::Delete { table, key, .. } => {
                    versions.push(0);
                    logged.push(Logged::Delete { table: table.clone(), key: key.clone() });
                }
                WriteOp::Check { .. } => versions.push(current.unwrap_or(0)),
            }
        }
        drop(tables);
        if self.path.is_some() && !logged.is_empty() {
            let mut line = serde_json::to_vec(&logged).map_err(|e| StoreError::Unexpected(e.into()))?;
            line.push(b'\n');
            let len = inner.len;
            let Some(file) = inner.file.as_mut() else {
                return Err(StoreError::Unavailable("the store file is not open; restart the server".into()));
            };
            if let Err(e) = blocking(|| file.write_all(&line).and_then(|()| file.sync_data())) {
                // Cut the file back to its last whole transaction, so nothing half-written stays behind.
                if let Err(t) = file.set_len(len).and_then(|()| file.sync_data()) {
                    inner.broken = Some(format!("a failed write could not be cut back ({t})"));
                }
                return Err(StoreError::Unavailable(format!("cannot write the store file: {e}")));
            }
            inner.len = len + line.len() as u64;
            inner.lines_since_compaction += 1;
        }
        apply(&mut *self.write()?, logged);
        if inner.lines_since_compaction >= COMPACT_AFTER_LINES
            && let Err(e) = self.compact(&mut inner)
        {
            // The log is intact; compaction is only an optimisation, so a failure is logged, not returned.
            tracing::warn!(error = %e, "store compaction failed");
        }
        Ok(versions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::store::conformance;
    use serde_json::json;

    #[tokio::test]
    async fn the_in_memory_store_conforms() {
        conformance::run_all(&EmbeddedStore::in_memory()).await;
    }

    #[tokio::test]
    async fn the_file_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        conformance::run_all(&EmbeddedStore::open(&dir.path().join("store.jsonl")).unwrap()).await;
    }

    fn put(key: &str, v: serde_json::Value) -> WriteOp {
        WriteOp::Put { table: "t".into(), key: key.into(), value: v.into(), expect: Expect::Any }
    }

    #[tokio::test]
    async fn committed_transactions_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.jsonl");
        {
            let s = EmbeddedStore::open(&path).unwrap();
            s.transact(vec![put("a", json!(1)), put("b", json!(2))]).await.unwrap();
            s.transact(vec![put("a", json!(3))]).await.unwrap();
            s.transact(vec![WriteOp::Delete { table: "t".into(), key: "b".into(), expect: Expect::Any }])
                .await
                .unwrap();
        }
        let s = EmbeddedStore::open(&path).unwrap();
        let a = s.get("t", "a").await.unwrap().unwrap();
        assert_eq!((a.version, a.value.to_value()), (2, json!(3)));
        assert!(s.get("t", "b").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_torn_last_transaction_is_dropped_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.jsonl");
        {
            let s = EmbeddedStore::open(&path).unwrap();
            s.transact(vec![put("a", json!(1))]).await.unwrap();
        }
        // A crash half-way through writing a two-record transaction.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"[{"op":"put","table":"t","key":"b","version":1,"value":2},{"op":"put","tab"#).unwrap();
        drop(f);
        let s = EmbeddedStore::open(&path).unwrap();
        assert!(s.get("t", "b").await.unwrap().is_none());
        assert_eq!(s.get("t", "a").await.unwrap().unwrap().value, json!(1));
        s.transact(vec![put("c", json!(3))]).await.unwrap();
        drop(s);
        assert!(EmbeddedStore::open(&path).unwrap().get("t", "c").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_second_process_cannot_open_a_store_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.jsonl");
        let first = EmbeddedStore::open(&path).unwrap();
        let err = EmbeddedStore::open(&path).err().expect("must refuse");
        assert!(err.to_string().contains("in use"), "{err}");
        drop(first);
        assert!(EmbeddedStore::open(&path).is_ok(), "free again once closed");
    }

    #[tokio::test]
    async fn a_last_line_torn_inside_a_character_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.jsonl");
        {
            let s = EmbeddedStore::open(&path).unwrap();
            s.transact(vec![put("a", json!("ünïcödé"))]).await.unwrap();
        }
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        let line = serde_json::to_vec(&json!([{"op":"put","table":"t","key":"b","version":1,"value":"é"}])).unwrap();
        let cut = line.iter().position(|b| *b == 0xC3).unwrap() + 1; // inside the two bytes of "é"
        f.write_all(&line[..cut]).unwrap();
        drop(f);
        let s = EmbeddedStore::open(&path).unwrap();
        assert_eq!(s.get("t", "a").await.unwrap().unwrap().value, json!("ünïcödé"));
        assert!(s.get("t", "b").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn damage_before_the_last_line_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.jsonl");
        std::fs::write(&path, format!("{HEADER}\nnot json\n[]\n")).unwrap();
        let err = EmbeddedStore::open(&path).err().expect("must refuse");
        assert!(err.to_string().contains("damaged at line 2"), "{err}");
    }
}
