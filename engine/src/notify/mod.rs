//! Webhooks: admins register them (their URL and signing secret are stored and never shown again); the
//! engine publishes notices without waiting; a delivery task per webhook posts them in order, retrying each
//! with exponential backoff, and records every failure where the console shows it.
//!
//! Layout: `webhooks/<id>` → [`WebhookRecord`]; `webhook_status/<id>` → [`DeliveryStatus`].
//!
//! Delivery is at least once per process that made the change: a notice is lost if its process stops
//! before delivering it (the queue is in memory).

mod webhooks;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{Expect, Store, StoreError, WriteOp};
use async_trait::async_trait;
pub use domain::notify::{
    DeliveryFailure, DeliveryStatus, Notice, NoticeKind, WebhookFormat, WebhookInput, WebhookView,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

pub const WEBHOOKS: &str = "webhooks";

pub const WEBHOOK_STATUS: &str = "webhook_status";

/// Webhooks an installation may have.
pub const MAX_WEBHOOKS: usize = 20;

/// A stored webhook. Its URL and secret never leave the server.
#[derive(Clone, Serialize, Deserialize)]
pub struct WebhookRecord {
    pub id: String,
    pub name: String,
    pub url: String,
    pub format: WebhookFormat,
    pub events: Vec<NoticeKind>,
    pub secret: Option<String>,
    pub created_by: String,
    pub created_at: i64,
}

impl std::fmt::Debug for WebhookRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("url", &domain::notify::redacted_url(&self.url))
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl WebhookRecord {
    fn wants(&self, kind: NoticeKind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }
}

/// Why a post failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostError {
    /// For people; never the URL (its path may be a secret).
    pub message: String,
    /// Retrying cannot help (e.g. the receiver answered 400 or 404).
    pub permanent: bool,
}

impl PostError {
    pub fn retry(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: false }
    }
}

/// Posts a body to a URL (the server's HTTP client).
#[async_trait]
pub trait Transport: Send + Sync {
    /// `Ok` for a 2xx answer; otherwise what went wrong.
    async fn post(&self, url: &str, headers: Vec<(&'static str, String)>, body: Vec<u8>) -> Result<(), PostError>;
}

/// How deliveries are retried.
#[derive(Debug, Clone, Copy)]
pub struct DeliverySettings {
    /// Attempts per notice, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubled for each one after, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Notices one webhook may have waiting; more are dropped (and recorded as undelivered). Also the
    /// limit of notices waiting to be dispatched to the webhooks.
    pub queue_limit: usize,
    /// How long the list of webhooks is kept before it is read again (changes made in this process are
    /// seen at once).
    pub refresh: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            queue_limit: 1000,
            refresh: Duration::from_secs(30),
        }
    }
}

impl DeliverySettings {
    /// The wait after failed attempt `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.initial_backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(20)).min(self.max_backoff)
    }
}

enum Item {
    All(Notice),
    /// A test notice for one webhook.
    One(String, Notice),
}

/// Publishes notices to the delivery task; does nothing until [`Notifier::start`].
#[derive(Clone, Default)]
pub struct Notifier {
    tx: Arc<OnceLock<mpsc::Sender<Item>>>,
    queued: Arc<AtomicUsize>,
    /// Bumped when this process adds or deletes a webhook: the dispatcher reads the list again.
    generation: Arc<AtomicUsize>,
    metrics: Arc<OnceLock<Arc<Metrics>>>,
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// The headers and body a webhook receives for a notice.
pub fn request(hook: &WebhookRecord, n: &Notice) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let body = serde_json::to_vec(&domain::notify::payload(n, hook.format)).unwrap_or_default();
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("x-roundtrip-event", n.kind.as_str().to_owned()),
        ("x-roundtrip-notice-id", n.id.clone()),
    ];
    if let Some(secret) = &hook.secret {
        headers.push((
            "x-roundtrip-signature",
            format!("sha256={}", crate::audit::hex(&hmac_sha256(secret.as_bytes(), &body))),
        ));
    }
    (headers, body)
}

impl Notifier {
    /// Queues notices for delivery; never waits. When the queue is full the notice is dropped, logged
    /// and counted as undelivered.
    pub fn publish(&self, notices: Vec<Notice>) {
        for n in notices {
            self.send(Item::All(n));
        }
    }

    fn send(&self, item: Item) -> bool {
        let Some(tx) = self.tx.get() else { return false };
        self.queued.fetch_add(1, Ordering::Relaxed);
        match tx.try_send(item) {
            Ok(()) => true,
            Err(e) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                let id = match e.into_inner() {
                    Item::All(n) | Item::One(_, n) => n.id,
                };
                tracing::warn!(notice = %id, "the notification queue is full; a notice was dropped");
                if let Some(m) = self.metrics.get() {
                    m.webhook("undelivered");
                }
                false
            }
        }
    }

    /// Notices waiting for delivery.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Whether delivery runs.
    pub fn started(&self) -> bool {
        self.tx.get().is_some()
    }

    /// Starts delivering (once; later calls do nothing).
    pub fn start(
        &self,
        store: Arc<dyn Store>,
        transport: Arc<dyn Transport>,
        metrics: Arc<Metrics>,
        wall_clock: Arc<dyn Clock>,
        settings: DeliverySettings,
    ) {
        let (tx, mut rx) = mpsc::channel::<Item>(settings.queue_limit.max(1) * 10);
        if self.tx.set(tx).is_err() {
            return;
        }
        let _ = self.metrics.set(metrics.clone());
        let queued = self.queued.clone();
        let generation = self.generation.clone();
        // The store is held weakly: the delivery tasks must not keep it (and the embedded store's file lock)
        // alive once the services are gone.
        let store = Arc::downgrade(&store);
        tokio::spawn(async move {
            let ctx = Arc::new(Worker { store, transport, metrics, wall_clock, settings, queued: queued.clone() });
            let mut workers: HashMap<String, mpsc::Sender<(WebhookRecord, Notice)>> = HashMap::new();
            // The webhooks, read again after `refresh` or when this process changed them.
            let mut cache: Option<(Vec<WebhookRecord>, tokio::time::Instant, usize)> = None;
            while let Some(item) = rx.recv().await {
                let (only, notice) = match item {
                    Item::All(n) => (None, n),
                    Item::One(id, n) => (Some(id), n),
                };
                let now_gen = generation.load(Ordering::Relaxed);
                let stale = cache.as_ref().is_none_or(|(_, at, g)| at.elapsed() > settings.refresh || *g != now_gen);
                if stale {
                    let Some(store) = ctx.store.upgrade() else { break };
                    match list_records(&*store).await {
                        Ok(h) => {
                            // A deleted webhook's task ends once its queue is drained.
                            workers.retain(|id, _| h.iter().any(|w| &w.id == id));
                            cache = Some((h, tokio::time::Instant::now(), now_gen));
                        }
                        Err(e) if cache.is_some() => {
                            tracing::warn!(error = %e, "webhooks could not be read again; using the last list");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, notice = %notice.id, "webhooks could not be read; a notice was not delivered");
                            ctx.metrics.webhook("undelivered");
                            queued.fetch_sub(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                }
                let hooks = cache.as_ref().map(|(h, _, _)| h.clone()).unwrap_or_default();
                for hook in hooks.into_iter().filter(|h| match &only {
                    Some(id) => &h.id == id,
                    None => h.wants(notice.kind),
                }) {
                    let tx = workers.entry(hook.id.clone()).or_insert_with(|| ctx.clone().spawn(settings.queue_limit));
                    queued.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = tx.try_send((hook, notice.clone())) {
                        queued.fetch_sub(1, Ordering::Relaxed);
                        let (hook, n) = match e {
                            mpsc::error::TrySendError::Full(x) | mpsc::error::TrySendError::Closed(x) => x,
                        };
                        ctx.failed(&hook, &n, 0, "the delivery queue is full; notice dropped".into(), true).await;
                    }
                }
                queued.fetch_sub(1, Ordering::Relaxed);
            }
        });
    }
}

struct Worker {
    store: std::sync::Weak<dyn Store>,
    transport: Arc<dyn Transport>,
    metrics: Arc<Metrics>,
    wall_clock: Arc<dyn Clock>,
    settings: DeliverySettings,
    queued: Arc<AtomicUsize>,
}

impl Worker {
    /// One webhook's delivery task: its notices one at a time, in order.
    fn spawn(self: Arc<Self>, limit: usize) -> mpsc::Sender<(WebhookRecord, Notice)> {
        let (tx, mut rx) = mpsc::channel::<(WebhookRecord, Notice)>(limit.max(1));
        tokio::spawn(async move {
            while let Some((hook, n)) = rx.recv().await {
                self.deliver(&hook, &n).await;
                self.queued.fetch_sub(1, Ordering::Relaxed);
            }
        });
        tx
    }

    async fn deliver(&self, hook: &WebhookRecord, n: &Notice) {
        let (headers, body) = request(hook, n);
        for attempt in 1..=self.settings.max_attempts.max(1) {
            match self.transport.post(&hook.url, headers.clone(), body.clone()).await {
                Ok(()) => {
                    self.metrics.webhook("delivered");
                    let at = self.wall_clock.now_millis();
                    self.update(&hook.id, |s| {
                        s.delivered += 1;
                        s.last_delivered_at = Some(at);
                    })
                    .await;
                    return;
                }
                Err(e) => {
                    let last = e.permanent || attempt == self.settings.max_attempts.max(1);
                    // The URL's path may be a secret: never let it into a message anyone can read.
                    let message = e.message.replace(&hook.url, &domain::notify::redacted_url(&hook.url));
                    self.failed(hook, n, attempt, message, last).await;
                    if last {
                        return;
                    }
                    tokio::time::sleep(self.settings.backoff(attempt)).await;
                    // Deleted meanwhile: its notices go nowhere.
                    let Some(store) = self.store.upgrade() else { return };
                    if matches!(store.get(WEBHOOKS, &hook.id).await, Ok(None)) {
                        return;
                    }
                }
            }
        }
    }

    async fn failed(&self, hook: &WebhookRecord, n: &Notice, attempt: u32, error: String, gave_up: bool) {
        self.metrics.webhook(if gave_up { "undelivered" } else { "failed_attempt" });
        tracing::warn!(webhook = %hook.name, notice = %n.id, attempt, gave_up, error = %error, "webhook delivery failed");
        let f = DeliveryFailure {
            at: self.wall_clock.now_millis(),
            notice_id: n.id.clone(),
            notice_kind: n.kind,
            attempt,
            error: error.chars().take(300).collect(),
            gave_up,
        };
        self.update(&hook.id, move |s| s.failed(f.clone())).await;
    }

    /// Read-modify-write of a webhook's status (a few tries on a race with another process); nothing for
    /// a webhook deleted meanwhile.
    async fn update(&self, id: &str, f: impl Fn(&mut DeliveryStatus)) {
        let Some(store) = self.store.upgrade() else { return };
        if matches!(store.get(WEBHOOKS, id).await, Ok(None)) {
            return;
        }
        for _ in 0..5 {
            let (mut status, expect) = match store.get(WEBHOOK_STATUS, id).await {
                Ok(Some(r)) => (r.value.decode().unwrap_or_default(), Expect::Version(r.version)),
                Ok(None) => (DeliveryStatus::default(), Expect::Absent),
                Err(e) => {
                    tracing::warn!(error = %e, "a webhook's delivery status could not be read");
                    return;
                }
            };
            f(&mut status);
            let op = WriteOp::Put {
                table: WEBHOOK_STATUS.into(),
                key: id.to_owned(),
                value: crate::store::Json::encode(&status),
                expect,
            };
            match store.transact(vec![op]).await {
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "a webhook's delivery status could not be written");
                    return;
                }
                Ok(_) => return,
            }
        }
    }
}

async fn list_records(store: &dyn Store) -> Result<Vec<WebhookRecord>, StoreError> {
    Ok(store.list(WEBHOOKS, "").await?.into_iter().filter_map(|r| r.value.decode().ok()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(crate::audit::hex(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(crate::audit::hex(&mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let s = DeliverySettings {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            ..Default::default()
        };
        let waits: Vec<u64> = (1..=6).map(|a| s.backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
    }
}
