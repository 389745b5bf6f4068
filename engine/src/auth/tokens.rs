//! API tokens: created with the secret shown once and stored hashed, listed, revoked, and checked on each
//! request (never above their owner's current role, never past their owner's password reset).

use super::{
    API_TOKENS, ApiToken, Auth, MAX_TOKENS, TOKEN_PREFIX, constant_time_eq, decode, invalid, put, random_hex,
    secret_hash,
};
use crate::audit::AuditEvent;
use crate::error::ServiceError;
use crate::store::Expect;
use domain::FieldError;
use domain::auth::{ApiTokenView, CreatedToken, NewToken};
use domain::auth::{AuthMethod, Principal, Role, check_label};
use serde_json::json;

impl Auth {
    /// Creates an API token owned by `who`; its secret is returned once and stored only as a hash.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] for a bad name, role or expiry, or too many tokens.
    pub async fn create_token(&self, who: &Principal, input: &NewToken) -> Result<CreatedToken, ServiceError> {
        if self.user(&who.subject).await?.is_none() {
            return Err(ServiceError::Forbidden(
                "API tokens act for a local user; sign in with a local account to create one".into(),
            ));
        }
        let mut errors = Vec::new();
        let name = check_label("name", &input.name).map_err(|e| errors.push(e)).ok();
        let role = Role::parse(&input.role).map_err(|e| errors.push(e)).ok();
        if input.expires_in_days.is_some_and(|d| d == 0 || d > 3650) {
            errors.push(FieldError::new("expires_in_days", "OUT_OF_RANGE", "expires_in_days must be 1 to 3650"));
        }
        let (Some(name), Some(role), true) = (name, role, errors.is_empty()) else {
            return Err(ServiceError::Invalid(errors));
        };
        if self.store.list(API_TOKENS, "").await?.len() >= MAX_TOKENS {
            return Err(invalid("name", "TOO_MANY_TOKENS", "revoke unused tokens first (at most 1000 exist at once)"));
        }
        let now = self.now();
        let id = random_hex(6);
        let secret = random_hex(24);
        let token = ApiToken {
            id: id.clone(),
            name,
            owner: who.subject.clone(),
            role,
            secret_hash: secret_hash(&secret),
            created_at: now,
            expires_at: input.expires_in_days.map(|d| now + i64::from(d) * 86_400_000),
            revoked_at: None,
            last_used_at: None,
        };
        self.store.transact(vec![put(API_TOKENS, &id, &token, Expect::Absent)]).await?;
        let details = token.view();
        self.audit.record_or_log(who, AuditEvent::ok("token.create", id.clone(), json!({ "after": details }))).await;
        Ok(CreatedToken { token: format!("{TOKEN_PREFIX}{id}_{secret}"), details })
    }

    /// Every token, newest first.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_tokens(&self) -> Result<Vec<ApiTokenView>, ServiceError> {
        let mut out: Vec<ApiTokenView> = self
            .store
            .list(API_TOKENS, "")
            .await?
            .iter()
            .map(|r| decode::<ApiToken>(r).map(|t| t.view()))
            .collect::<Result<_, _>>()?;
        out.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        Ok(out)
    }

    /// Revokes a token; it is refused from then on.
    ///
    /// # Errors
    /// [`ServiceError::TokenNotFound`].
    pub async fn revoke_token(&self, who: &Principal, id: &str) -> Result<ApiTokenView, ServiceError> {
        let r = self.store.get(API_TOKENS, id).await?.ok_or_else(|| ServiceError::TokenNotFound(id.to_owned()))?;
        let mut t: ApiToken = decode(&r)?;
        if t.revoked_at.is_none() {
            t.revoked_at = Some(self.now());
            self.store.transact(vec![put(API_TOKENS, id, &t, Expect::Version(r.version))]).await?;
            self.audit.record_or_log(who, AuditEvent::ok("token.revoke", id, json!({ "name": t.name }))).await;
        }
        Ok(t.view())
    }

    /// The identity behind an API token, or `None` when it is malformed, unknown, revoked, expired, or its
    /// owner is disabled.
    ///
    /// # Errors
    /// Store failures.
    pub async fn authenticate_token(&self, token: &str) -> Result<Option<Principal>, ServiceError> {
        let Some((id, secret)) = token.strip_prefix(TOKEN_PREFIX).and_then(|t| t.split_once('_')) else {
            return Ok(None);
        };
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let Some(r) = self.store.get(API_TOKENS, id).await? else { return Ok(None) };
        let mut t: ApiToken = decode(&r)?;
        let now = self.now();
        if !constant_time_eq(&secret_hash(secret), &t.secret_hash)
            || t.revoked_at.is_some()
            || t.expires_at.is_some_and(|e| now >= e)
        {
            return Ok(None);
        }
        // A token acts for its owner as the owner is now: never for a user who is gone, disabled or on a
        // one-time password, and never beyond the owner's current role.
        let owner_role = match self.user(&t.owner).await? {
            Some((u, _)) if !u.disabled && !u.must_change_password => u.role,
            _ => return Ok(None),
        };
        if t.last_used_at.is_none_or(|l| now - l >= 60_000) {
            t.last_used_at = Some(now);
            let _ = self.store.transact(vec![put(API_TOKENS, id, &t, Expect::Version(r.version))]).await;
        }
        Ok(Some(Principal {
            subject: t.owner,
            role: t.role.meet(owner_role),
            method: AuthMethod::Token,
            token: Some(t.name),
            must_change_password: false,
        }))
    }
}
