//! The webhooks use case: list (with each one's delivery status), add, delete and send a test notice.

use super::{Item, MAX_WEBHOOKS, WEBHOOK_STATUS, WEBHOOKS, WebhookRecord, list_records};
use crate::audit::AuditEvent;
use crate::error::ServiceError;
use crate::services::Services;
use crate::store::{Expect, WriteOp};
use domain::FieldError;
use domain::auth::Principal;
use domain::notify::{DeliveryStatus, Notice, NoticeKind, WebhookInput, WebhookView};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

pub(super) fn view(r: WebhookRecord, status: DeliveryStatus) -> WebhookView {
    WebhookView {
        target: domain::notify::redacted_url(&r.url),
        signed: r.secret.is_some(),
        id: r.id,
        name: r.name,
        format: r.format,
        events: r.events,
        created_by: r.created_by,
        created_at: r.created_at,
        status,
    }
}

pub(super) fn not_found(id: &str) -> ServiceError {
    ServiceError::WebhookNotFound(id.to_owned())
}

impl Services {
    /// Every webhook with its delivery status (no URL path, no secret).
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_webhooks(&self) -> Result<Vec<WebhookView>, ServiceError> {
        let mut status: HashMap<String, DeliveryStatus> = self
            .store
            .list(WEBHOOK_STATUS, "")
            .await?
            .into_iter()
            .filter_map(|r| Some((r.key, r.value.decode().ok()?)))
            .collect();
        let mut out: Vec<WebhookView> = list_records(&*self.store)
            .await?
            .into_iter()
            .map(|r| {
                let s = status.remove(&r.id).unwrap_or_default();
                view(r, s)
            })
            .collect();
        out.sort_by_key(|w| w.created_at);
        Ok(out)
    }

    /// Registers a webhook.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`]: a bad field, a duplicate name (`DUPLICATE_NAME`), or too many webhooks.
    pub async fn create_webhook(&self, who: &Principal, input: &WebhookInput) -> Result<WebhookView, ServiceError> {
        let valid = input.validate().map_err(ServiceError::Invalid)?;
        let existing = list_records(&*self.store).await?;
        if existing.iter().any(|h| h.name.eq_ignore_ascii_case(&valid.name)) {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "name",
                "DUPLICATE_NAME",
                format!("a webhook is already called {}", domain::text::quoted(&valid.name)),
            )]));
        }
        if existing.len() >= MAX_WEBHOOKS {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "name",
                "TOO_MANY_WEBHOOKS",
                format!("at most {MAX_WEBHOOKS} webhooks; delete one first"),
            )]));
        }
        let record = WebhookRecord {
            id: format!("wh-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            name: valid.name,
            url: valid.url,
            format: valid.format,
            events: valid.events,
            secret: valid.secret,
            created_by: who.subject.clone(),
            created_at: self.wall_clock.now_millis(),
        };
        self.store
            .transact(vec![WriteOp::Put {
                table: WEBHOOKS.into(),
                key: record.id.clone(),
                value: crate::store::Json::encode(&record),
                expect: Expect::Absent,
            }])
            .await?;
        self.notifier.generation.fetch_add(1, Ordering::Relaxed);
        let details = serde_json::json!({
            "name": record.name, "target": domain::notify::redacted_url(&record.url), "format": record.format,
            "events": record.events, "signed": record.secret.is_some(),
        });
        self.audit.record_or_log(who, AuditEvent::ok("webhook.create", record.id.as_str(), details)).await;
        Ok(view(record, DeliveryStatus::default()))
    }

    /// Deletes a webhook (notices already queued for it are still delivered).
    ///
    /// # Errors
    /// [`ServiceError::WebhookNotFound`].
    pub async fn delete_webhook(&self, who: &Principal, id: &str) -> Result<(), ServiceError> {
        let Some(r) = self.store.get(WEBHOOKS, id).await? else {
            return Err(not_found(id));
        };
        self.store
            .transact(vec![
                WriteOp::Delete { table: WEBHOOKS.into(), key: id.to_owned(), expect: Expect::Version(r.version) },
                WriteOp::Delete { table: WEBHOOK_STATUS.into(), key: id.to_owned(), expect: Expect::Any },
            ])
            .await?;
        self.notifier.generation.fetch_add(1, Ordering::Relaxed);
        self.audit.record_or_log(who, AuditEvent::ok("webhook.delete", id, serde_json::json!({}))).await;
        Ok(())
    }

    /// Sends a test notice to one webhook (delivered like any other; its result shows in the status).
    ///
    /// # Errors
    /// [`ServiceError::WebhookNotFound`]; `NOTIFICATIONS_OFF` when delivery does not run in this process.
    pub async fn test_webhook(&self, who: &Principal, id: &str) -> Result<(), ServiceError> {
        if self.store.get(WEBHOOKS, id).await?.is_none() {
            return Err(not_found(id));
        }
        if !self.notifier.started() {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "id",
                "NOTIFICATIONS_OFF",
                "webhook delivery does not run in this process",
            )]));
        }
        let at = self.wall_clock.now_millis();
        let n = Notice {
            id: format!("test:{id}:{at}"),
            kind: NoticeKind::ExecutionRequested,
            severity: domain::notify::NoticeSeverity::Info,
            at,
            subject: "test".into(),
            title: format!("Test notice from Roundtrip, sent by {}", who.subject),
            details: serde_json::json!({ "test": true }),
        };
        if !self.notifier.send(Item::One(id.to_owned(), n)) {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "id",
                "NOTIFICATIONS_BUSY",
                "the notification queue is full; try again in a minute",
            )]));
        }
        self.audit.record_or_log(who, AuditEvent::ok("webhook.test", id, serde_json::json!({}))).await;
        Ok(())
    }
}
