//! The audit trail: an append-only, hash-chained log of every state-changing action and every AWS mutation
//! Roundtrip performs.
//!
//! Layout: `audit_log/<seq, 12 digits>` → [`AuditEntry`], and `audit_head/head` → the last sequence number
//! and hash. Entry `n` stores the hash of entry `n-1` (`prev_hash`) and its own `hash`: SHA-256 over the
//! previous hash and the entry's canonical JSON (keys sorted, `hash` left out). An append writes the entry
//! (which must not exist) and moves the head (which must still be where it was read) in one transaction,
//! so the chain stays linear even with several server processes on one store.
//!
//! [`AuditLog::verify`] walks the chain from the start: an edited entry no longer hashes to its `hash`, a
//! removed entry leaves a gap in the sequence or breaks the next `prev_hash`, and a removed tail no longer
//! reaches the head. Times are wall-clock time (not the simulated estate's clock), because an auditor reads
//! them against the real world.

use crate::clock::Clock;
use crate::store::{Expect, Record, Store, StoreError, WriteOp};
pub use domain::audit::{AuditEntry, AuditFilter, ChainProblem, ChainReport, Outcome};
use domain::auth::Principal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub const AUDIT_LOG: &str = "audit_log";
pub const AUDIT_HEAD: &str = "audit_head";
const HEAD_KEY: &str = "head";
/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
use domain::audit::MAX_QUERY_LIMIT;

/// What a caller records; the log adds who, when and the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub action: String,
    pub target: String,
    pub outcome: Outcome,
    pub details: Value,
}

impl AuditEvent {
    /// A successful action.
    pub fn ok(action: &str, target: impl Into<String>, details: Value) -> Self {
        Self { action: action.into(), target: target.into(), outcome: Outcome::Ok, details }
    }

    /// An action that was attempted and failed or was refused.
    pub fn with_outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

/// The audit trail over a store.
#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Appends of one process queue here instead of racing for the head.
    lock: Arc<tokio::sync::Mutex<()>>,
}

/// Writes `v` as JSON with object keys sorted at every level, so its hash does not depend on key order.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The hash an entry must carry: SHA-256 of its `prev_hash`, a newline, and its canonical JSON without `hash`.
pub fn entry_hash(e: &AuditEntry) -> String {
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.remove("hash");
    }
    let mut text = String::new();
    canonical(&v, &mut text);
    let mut h = Sha256::new();
    h.update(e.prev_hash.as_bytes());
    h.update(b"\n");
    h.update(text.as_bytes());
    hex(&h.finalize())
}

fn seq_key(seq: u64) -> String {
    format!("{seq:012}")
}

fn decode_entry(r: &Record) -> Result<AuditEntry, String> {
    r.value.decode().map_err(|e| format!("entry {} does not decode: {e}", r.key))
}

impl AuditLog {
    /// An audit trail in `store`, timed by `clock` (wall-clock time in production).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock, lock: Arc::new(tokio::sync::Mutex::new(())) }
    }

    /// Appends one entry for `who`.
    ///
    /// # Errors
    /// Store failures; a head moved by another process is retried a few times first.
    pub async fn record(&self, who: &Principal, event: AuditEvent) -> Result<AuditEntry, StoreError> {
        let _turn = self.lock.lock().await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let head = self.store.get(AUDIT_HEAD, HEAD_KEY).await?;
            let (prev_seq, prev_hash, expect) = match &head {
                None => (0, GENESIS_HASH.to_owned(), Expect::Absent),
                Some(r) => {
                    let h: Head = r
                        .value
                        .decode()
                        .map_err(|e| StoreError::Unexpected(anyhow::anyhow!("audit head does not decode: {e}")))?;
                    (h.seq, h.hash, Expect::Version(r.version))
                }
            };
            let mut entry = AuditEntry {
                seq: prev_seq + 1,
                at: self.clock.now_millis(),
                actor: who.actor(),
                subject: who.subject.clone(),
                method: who.method,
                action: event.action.clone(),
                target: event.target.clone(),
                outcome: event.outcome,
                details: event.details.clone(),
                prev_hash,
                hash: String::new(),
            };
            entry.hash = entry_hash(&entry);
            let ops = vec![
                WriteOp::Put {
                    table: AUDIT_LOG.into(),
                    key: seq_key(entry.seq),
                    value: crate::store::Json::encode(&entry),
                    expect: Expect::Absent,
                },
                WriteOp::Put {
                    table: AUDIT_HEAD.into(),
                    key: HEAD_KEY.into(),
                    value: crate::store::Json::encode(&serde_json::json!(Head {
                        seq: entry.seq,
                        hash: entry.hash.clone()
                    })),
                    expect,
                },
            ];
            match self.store.transact(ops).await {
                Ok(_) => return Ok(entry),
                Err(StoreError::Conflict { .. }) if attempt < 8 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends an entry and logs (rather than returns) a failure: for callers whose action already happened.
    pub async fn record_or_log(&self, who: &Principal, event: AuditEvent) {
        let action = event.action.clone();
        if let Err(e) = self.record(who, event).await {
            tracing::error!(error = %e, action, actor = %who.actor(), "could not append to the audit trail");
        }
    }

    /// Entries matching `filter`, newest first.
    ///
    /// # Errors
    /// Store failures, or an entry that does not decode.
    pub async fn query(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = filter.limit.unwrap_or(500).clamp(1, MAX_QUERY_LIMIT);
        let records = self.store.list(AUDIT_LOG, "").await?;
        let mut out = Vec::new();
        for r in records.iter().rev() {
            let e = decode_entry(r).map_err(|m| StoreError::Unexpected(anyhow::anyhow!(m)))?;
            if filter.matches(&e) {
                out.push(e);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Walks the whole chain and reports every break.
    ///
    /// # Errors
    /// Store failures (a damaged entry is a problem in the report, not an error).
    pub async fn verify(&self) -> Result<ChainReport, StoreError> {
        let records = self.store.list(AUDIT_LOG, "").await?;
        let head: Option<Head> = match self.store.get(AUDIT_HEAD, HEAD_KEY).await? {
            None => None,
            Some(r) => r.value.decode().ok(),
        };
        Ok(verify_chain(&records, head.as_ref().map(|h| (h.seq, h.hash.as_str()))))
    }
}

/// Verifies stored records (ordered by key) against the head `(seq, hash)`.
fn verify_chain(records: &[Record], head: Option<(u64, &str)>) -> ChainReport {
    let mut problems = Vec::new();
    let mut push = |seq: u64, problem: String| {
        if problems.len() < 100 {
            problems.push(ChainProblem { seq, problem });
        }
    };
    let mut expected_seq = 1;
    let mut prev_hash = GENESIS_HASH.to_owned();
    for r in records {
        let e = match decode_entry(r) {
            Ok(e) => e,
            Err(m) => {
                push(expected_seq, m);
                expected_seq += 1;
                continue;
            }
        };
        if r.key != seq_key(e.seq) {
            push(e.seq, format!("entry stored under {} claims sequence number {}", r.key, e.seq));
        }
        if e.seq != expected_seq {
            push(expected_seq, format!("entries {expected_seq} to {} are missing", e.seq.saturating_sub(1)));
        }
        if e.prev_hash != prev_hash {
            push(e.seq, "its prev_hash is not the hash of the entry before it".into());
        }
        if entry_hash(&e) != e.hash {
            push(e.seq, "its content does not match its hash: it was edited".into());
        }
        expected_seq = e.seq + 1;
        prev_hash = e.hash;
    }
    let last = expected_seq - 1;
    match head {
        None if last > 0 => push(last, "the chain has no head record".into()),
        Some((seq, hash)) if seq != last || hash != prev_hash => {
            push(seq, format!("the head says the chain ends at {seq}, but the last intact entry is {last}"));
        }
        _ => {}
    }
    ChainReport {
        intact: problems.is_empty(),
        entries: records.len() as u64,
        head_seq: head.map_or(0, |h| h.0),
        head_hash: head.map_or_else(|| GENESIS_HASH.to_owned(), |h| h.1.to_owned()),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::memory::MemoryStore;
    use serde_json::json;

    async fn log_with(n: usize) -> (AuditLog, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::default());
        let log = AuditLog::new(store.clone(), Arc::new(ManualClock::new(1_000)));
        let alice = Principal::system("test");
        for i in 0..n {
            log.record(
                &alice,
                AuditEvent::ok("protection_group.create", format!("pg-{i}"), json!({"after": {"n": i}})),
            )
            .await
            .unwrap();
        }
        (log, store)
    }

    async fn tamper(store: &MemoryStore, seq: u64, f: impl FnOnce(&mut Value)) {
        let mut m = store.lock();
        let r = m.get_mut(&(AUDIT_LOG.to_owned(), seq_key(seq))).unwrap();
        let mut v = r.value.to_value();
        f(&mut v);
        r.value = v.into();
    }

    #[tokio::test]
    async fn an_untouched_chain_verifies() {
        let (log, _) = log_with(5).await;
        let report = log.verify().await.unwrap();
        assert!(report.intact, "{report:?}");
        assert_eq!((report.entries, report.head_seq), (5, 5));
    }

    #[tokio::test]
    async fn an_empty_chain_verifies() {
        let (log, _) = log_with(0).await;
        assert!(log.verify().await.unwrap().intact);
    }

    #[tokio::test]
    async fn an_edited_entry_is_caught() {
        let (log, store) = log_with(5).await;
        tamper(&store, 3, |v| v["target"] = json!("pg-forged")).await;
        let report = log.verify().await.unwrap();
        assert!(!report.intact);
        assert_eq!(report.problems[0].seq, 3, "{report:?}");
        assert!(report.problems[0].problem.contains("edited"));
    }

    #[tokio::test]
    async fn an_edit_that_also_recomputes_its_own_hash_breaks_the_next_link() {
        let (log, store) = log_with(5).await;
        tamper(&store, 2, |v| {
            v["actor"] = json!("mallory");
            let mut e: AuditEntry = serde_json::from_value(v.clone()).unwrap();
            e.hash = entry_hash(&e);
            *v = serde_json::to_value(e).unwrap();
        })
        .await;
        let report = log.verify().await.unwrap();
        assert!(!report.intact);
        assert_eq!(report.problems[0].seq, 3, "entry 3 no longer links to entry 2: {report:?}");
    }

    #[tokio::test]
    async fn a_removed_entry_is_caught() {
        let (log, store) = log_with(5).await;
        store.lock().remove(&(AUDIT_LOG.to_owned(), seq_key(4)));
        let report = log.verify().await.unwrap();
        assert!(!report.intact);
        assert!(report.problems.iter().any(|p| p.problem.contains("missing")), "{report:?}");
    }

    #[tokio::test]
    async fn a_removed_tail_is_caught_by_the_head() {
        let (log, store) = log_with(5).await;
        store.lock().remove(&(AUDIT_LOG.to_owned(), seq_key(5)));
        let report = log.verify().await.unwrap();
        assert!(!report.intact, "{report:?}");
    }

    #[tokio::test]
    async fn the_hash_does_not_depend_on_key_order() {
        let (log, _) = log_with(1).await;
        let e = log.query(&AuditFilter::default()).await.unwrap().remove(0);
        let mut reordered = e.clone();
        reordered.details = serde_json::from_str(r#"{"after":{"n":0}}"#).unwrap();
        assert_eq!(entry_hash(&reordered), e.hash);
    }

    #[tokio::test]
    async fn concurrent_appends_keep_one_line() {
        let (log, _) = log_with(0).await;
        let who = Principal::system("test");
        let mut set = tokio::task::JoinSet::new();
        for i in 0..20 {
            let log = log.clone();
            let who = who.clone();
            set.spawn(async move { log.record(&who, AuditEvent::ok("x", format!("{i}"), Value::Null)).await });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap().unwrap();
        }
        let report = log.verify().await.unwrap();
        assert!(report.intact && report.entries == 20, "{report:?}");
    }

    #[tokio::test]
    async fn queries_filter_and_return_newest_first() {
        let (log, _) = log_with(5).await;
        log.record(&Principal::system("other"), AuditEvent::ok("auth.login", "alice", Value::Null)).await.unwrap();
        let all = log.query(&AuditFilter::default()).await.unwrap();
        assert_eq!(all.len(), 6);
        assert_eq!(all[0].seq, 6);
        let groups = log
            .query(&AuditFilter { action: Some("protection_group.".into()), limit: Some(2), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(groups.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 4]);
        let by_target = log.query(&AuditFilter { target: Some("pg-3".into()), ..Default::default() }).await.unwrap();
        assert_eq!(by_target.len(), 1);
        let by_actor =
            log.query(&AuditFilter { actor: Some("SYSTEM:OTHER".into()), ..Default::default() }).await.unwrap();
        assert_eq!(by_actor.len(), 1);
    }
}
