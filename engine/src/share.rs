//! Share links for stakeholders: created, re-worded and revoked by operators; resolved without sign-in.
//!
//! Layout: `share_links/<id>` → the link with the SHA-256 of its secret. A token is `sl_<id>_<secret>`
//! (48 random hex characters of secret); only its hash is stored, so the store alone cannot rebuild a link.
//! A link resolves only while it is neither revoked nor expired, and it exposes only its scope's
//! [`StakeholderStatus`].

use crate::audit::AuditEvent;
use crate::auth::{constant_time_eq, random_hex, secret_hash};
use crate::error::ServiceError;
use crate::repo;
use crate::services::Services;
use crate::store::{Expect, Record, StoreError, WriteOp};
use domain::FieldError;
use domain::auth::{MAX_MESSAGE_CHARS, Principal, check_label};
pub use domain::share::{
    ApplicationStatus, CreatedShareLink, NewShareLink, ShareLinkChange, ShareLinkView, ShareScope, StakeholderStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub const SHARE_LINKS: &str = "share_links";
/// Prefix of every share-link token.
pub const SHARE_PREFIX: &str = "sl_";
/// Most share links that can exist at once.
pub const MAX_SHARE_LINKS: usize = 500;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShareLink {
    id: String,
    name: String,
    scope: ShareScope,
    message: String,
    created_by: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    secret_hash: String,
}

impl ShareLink {
    fn view(&self, version: u64) -> ShareLinkView {
        ShareLinkView {
            id: self.id.clone(),
            name: self.name.clone(),
            scope: self.scope.clone(),
            message: self.message.clone(),
            created_by: self.created_by.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            version,
        }
    }
}

fn decode(r: &Record) -> Result<ShareLink, ServiceError> {
    r.value.decode().map_err(|e| {
        ServiceError::Store(StoreError::Unexpected(anyhow::anyhow!("share link {} does not decode: {e}", r.key)))
    })
}

fn put(l: &ShareLink, expect: Expect) -> WriteOp {
    WriteOp::Put { table: SHARE_LINKS.into(), key: l.id.clone(), value: crate::store::Json::encode(l), expect }
}

fn check_message(m: &str) -> Result<String, FieldError> {
    let m = m.trim();
    if m.chars().count() > MAX_MESSAGE_CHARS || m.chars().any(|c| c.is_control() && c != '\n') {
        return Err(FieldError::new(
            "message",
            "INVALID_MESSAGE",
            format!("the message is at most {MAX_MESSAGE_CHARS} characters, without control characters"),
        ));
    }
    Ok(m.to_owned())
}

impl Services {
    /// Creates a share link; its token is returned once.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] for a bad name, message or expiry, an execution that does not exist, or too
    /// many links.
    pub async fn create_share_link(
        &self,
        who: &Principal,
        input: &NewShareLink,
    ) -> Result<CreatedShareLink, ServiceError> {
        let mut errors = Vec::new();
        let name = check_label("name", &input.name).map_err(|e| errors.push(e)).ok();
        let message = check_message(&input.message).map_err(|e| errors.push(e)).ok();
        if input.expires_in_hours.is_some_and(|h| h == 0 || h > 24 * 365) {
            errors.push(FieldError::new("expires_in_hours", "OUT_OF_RANGE", "expires_in_hours must be 1 to 8760"));
        }
        if let ShareScope::Execution { execution_id } = &input.scope
            && self.store.get(crate::executions::EXECUTIONS, execution_id).await?.is_none()
        {
            errors.push(FieldError::new(
                "scope.execution_id",
                "EXECUTION_NOT_FOUND",
                format!("execution {:?} does not exist", execution_id.chars().take(64).collect::<String>()),
            ));
        }
        let (Some(name), Some(message), true) = (name, message, errors.is_empty()) else {
            return Err(ServiceError::Invalid(errors));
        };
        if self.store.list(SHARE_LINKS, "").await?.len() >= MAX_SHARE_LINKS {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "name",
                "TOO_MANY_SHARE_LINKS",
                format!("revoke unused share links first (at most {MAX_SHARE_LINKS} exist at once)"),
            )]));
        }
        let now = self.wall_clock.now_millis();
        let id = random_hex(6);
        let secret = random_hex(24);
        let link = ShareLink {
            id: id.clone(),
            name,
            scope: input.scope.clone(),
            message,
            created_by: who.subject.clone(),
            created_at: now,
            expires_at: input.expires_in_hours.map(|h| now + i64::from(h) * 3_600_000),
            revoked_at: None,
            secret_hash: secret_hash(&secret),
        };
        self.store.transact(vec![put(&link, Expect::Absent)]).await?;
        let details = link.view(1);
        self.audit
            .record_or_log(who, AuditEvent::ok("share_link.create", id.clone(), json!({ "after": details })))
            .await;
        let token = format!("{SHARE_PREFIX}{id}_{secret}");
        Ok(CreatedShareLink { path: format!("/status/{token}"), token, details })
    }

    /// Every share link, newest first.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_share_links(&self) -> Result<Vec<ShareLinkView>, ServiceError> {
        let mut out: Vec<ShareLinkView> = self
            .store
            .list(SHARE_LINKS, "")
            .await?
            .iter()
            .map(|r| decode(r).map(|l| l.view(r.version)))
            .collect::<Result<_, _>>()?;
        out.sort_by_key(|l| std::cmp::Reverse(l.created_at));
        Ok(out)
    }

    async fn share_link(&self, id: &str) -> Result<(ShareLink, u64), ServiceError> {
        let r = self.store.get(SHARE_LINKS, id).await?.ok_or(ServiceError::ShareLinkNotFound)?;
        Ok((decode(&r)?, r.version))
    }

    /// Changes the message stakeholders see.
    ///
    /// # Errors
    /// [`ServiceError::ShareLinkNotFound`], [`ServiceError::VersionConflict`], [`ServiceError::Invalid`].
    pub async fn update_share_link(
        &self,
        who: &Principal,
        id: &str,
        change: &ShareLinkChange,
    ) -> Result<ShareLinkView, ServiceError> {
        let (mut link, version) = self.share_link(id).await?;
        if let Some(expected) = change.expected_version
            && expected != version
        {
            return Err(ServiceError::VersionConflict { expected, actual: Some(version) });
        }
        let message = check_message(&change.message).map_err(|e| ServiceError::Invalid(vec![e]))?;
        let before = std::mem::replace(&mut link.message, message);
        let v = self.store.transact(vec![put(&link, Expect::Version(version))]).await.map_err(|e| match e {
            StoreError::Conflict { actual, .. } => ServiceError::VersionConflict { expected: version, actual },
            e => e.into(),
        })?;
        let details = json!({ "before": { "message": before }, "after": { "message": link.message } });
        self.audit.record_or_log(who, AuditEvent::ok("share_link.update", id, details)).await;
        Ok(link.view(v[0]))
    }

    /// Revokes a share link: it stops resolving at once.
    ///
    /// # Errors
    /// [`ServiceError::ShareLinkNotFound`].
    pub async fn revoke_share_link(&self, who: &Principal, id: &str) -> Result<ShareLinkView, ServiceError> {
        let (mut link, version) = self.share_link(id).await?;
        if link.revoked_at.is_some() {
            return Ok(link.view(version));
        }
        link.revoked_at = Some(self.wall_clock.now_millis());
        let v = self.store.transact(vec![put(&link, Expect::Version(version))]).await?;
        self.audit.record_or_log(who, AuditEvent::ok("share_link.revoke", id, json!({ "name": link.name }))).await;
        Ok(link.view(v[0]))
    }

    /// What a share-link token shows, or [`ServiceError::ShareLinkNotFound`] when the token is malformed,
    /// unknown, revoked or expired (one answer for all, so a guesser learns nothing).
    ///
    /// # Errors
    /// [`ServiceError::ShareLinkNotFound`]; store failures.
    pub async fn stakeholder_status(&self, token: &str) -> Result<StakeholderStatus, ServiceError> {
        let (id, secret) = token
            .strip_prefix(SHARE_PREFIX)
            .and_then(|t| t.split_once('_'))
            .filter(|(id, s)| id.len() == 12 && s.len() == 48 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(ServiceError::ShareLinkNotFound)?;
        let (link, _) = self.share_link(id).await?;
        let now = self.wall_clock.now_millis();
        if !constant_time_eq(&secret_hash(secret), &link.secret_hash)
            || link.revoked_at.is_some()
            || link.expires_at.is_some_and(|e| now >= e)
        {
            return Err(ServiceError::ShareLinkNotFound);
        }
        let (applications, execution) = match &link.scope {
            ShareScope::Estate => (self.application_statuses().await?, None),
            ShareScope::Execution { execution_id } => (Vec::new(), Some(self.execution_progress(execution_id).await?)),
        };
        Ok(StakeholderStatus {
            title: link.name,
            message: link.message,
            generated_at: now,
            applications,
            execution,
            expires_at: link.expires_at,
        })
    }

    /// An execution as stakeholders see it: counts and times only.
    async fn execution_progress(&self, id: &str) -> Result<domain::share::ExecutionProgress, ServiceError> {
        let v = self.execution_view(id).await.map_err(|e| match e {
            ServiceError::ExecutionNotFound(_) => ServiceError::ShareLinkNotFound,
            e => e,
        })?;
        Ok(domain::share::ExecutionProgress {
            plan: v.execution.plan_name,
            drill: v.execution.state.mode == domain::execution::Mode::Drill,
            failback: v.execution.state.mode == domain::execution::Mode::Failback,
            phase: v.status.phase,
            progress_percent: v.status.progress_percent,
            elapsed_ms: v.status.elapsed_ms,
            remaining_ms: v.status.remaining_ms,
            rto_ms: v.status.rto_ms,
            rto_target_ms: v.status.rto_target_ms,
            waves: v
                .status
                .waves
                .into_iter()
                .map(|w| domain::share::WaveProgress {
                    name: w.name,
                    state: w.state,
                    servers: w.servers,
                    verified: w.verified,
                    failed: w.failed,
                })
                .collect(),
        })
    }

    /// Every protection group's name and last verdict: nothing else of it.
    async fn application_statuses(&self) -> Result<Vec<ApplicationStatus>, ServiceError> {
        let verdicts = self.verdicts().await?;
        let mut out: Vec<ApplicationStatus> = repo::list_groups(&*self.store)
            .await?
            .into_iter()
            .map(|g| {
                let v = verdicts.iter().find(|v| v.protection_group_id == g.id);
                ApplicationStatus {
                    name: g.name,
                    verdict: v.map(|v| v.verdict),
                    score: v.map(|v| v.score),
                    evaluated_at: v.map(|v| v.evaluated_at),
                    since: v.map(|v| v.since),
                }
            })
            .collect();
        out.sort_by_key(|a| a.name.to_lowercase());
        Ok(out)
    }
}
