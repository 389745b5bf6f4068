//! Identities: local users with argon2id password hashes, console sessions, API tokens, sign-in
//! throttling, and the first admin.
//!
//! Layout:
//! - `users/<user name>` → [`User`] (with its password hash; never sent to a client)
//! - `sessions/<SHA-256 of the session secret>` → [`Session`]
//! - `api_tokens/<token id>` → [`ApiToken`] (with the SHA-256 of its secret)
//!
//! Invariants: secrets (passwords, session ids, token secrets) are stored only as hashes and shown once;
//! a session or token is checked against its user on every use, so disabling a user or changing their role
//! takes effect at once; no change leaves Roundtrip without an enabled admin; every change and every
//! sign-in attempt is in the audit trail. Times are wall-clock time.

use crate::audit::{AuditEvent, AuditLog, Outcome, hex};
use crate::clock::Clock;
use crate::services::ServiceError;
use crate::store::{Expect, Record, Store, StoreError, WriteOp};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use domain::FieldError;
pub use domain::auth::{ApiTokenView, CreatedToken, NewToken, NewUser, UserChange, UserView};
use domain::auth::{AuthMethod, Principal, Role, Username, check_label, check_new_password};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const USERS: &str = "users";
pub const SESSIONS: &str = "sessions";
pub const API_TOKENS: &str = "api_tokens";

/// Prefix of every API token, so scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "rt_";
/// Most API tokens that can exist at once.
pub const MAX_TOKENS: usize = 1_000;

/// A local user as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub username: Username,
    pub role: Role,
    password_hash: String,
    pub disabled: bool,
    /// Set for the bootstrapped admin and after a reset: the user must choose their own password.
    pub must_change_password: bool,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
}

impl User {
    fn view(&self, version: u64) -> UserView {
        UserView {
            username: self.username.to_string(),
            role: self.role,
            disabled: self.disabled,
            must_change_password: self.must_change_password,
            created_at: self.created_at,
            created_by: self.created_by.clone(),
            updated_at: self.updated_at,
            version,
        }
    }

    fn principal(&self) -> Principal {
        Principal {
            subject: self.username.to_string(),
            role: self.role,
            method: AuthMethod::Session,
            token: None,
            must_change_password: self.must_change_password,
        }
    }
}

/// A console session as stored (under the hash of its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub username: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// Sent back in `X-CSRF-Token` by state-changing requests that carry the session cookie.
    pub csrf_token: String,
}

/// An API token as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    /// The user it acts for; the two-person rule sees this user.
    pub owner: String,
    pub role: Role,
    secret_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl ApiToken {
    fn view(&self) -> ApiTokenView {
        ApiTokenView {
            id: self.id.clone(),
            name: self.name.clone(),
            owner: self.owner.clone(),
            role: self.role,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
        }
    }
}

/// Tunables of sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// A session unused for this long ends.
    pub session_idle_minutes: u64,
    /// A session ends this long after sign-in, used or not.
    pub session_absolute_hours: u64,
    /// Failed sign-ins per user name within the window before it is refused.
    pub max_failures_per_user: usize,
    /// Failed sign-ins per client address within the window before it is refused.
    pub max_failures_per_address: usize,
    pub failure_window_minutes: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            max_failures_per_user: 5,
            max_failures_per_address: 20,
            failure_window_minutes: 15,
        }
    }
}

/// A signed-in session: the secret for the cookie, and the CSRF token for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub session_secret: String,
    pub session: Session,
    pub principal: Principal,
}

/// Sign-in, sessions, users and tokens.
#[derive(Clone)]
pub struct Auth {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
    pub settings: AuthSettings,
    /// Recent failure times by `user:<name>` and `addr:<ip>`; per process, which is enough to slow guessing.
    failures: Arc<Mutex<HashMap<String, Vec<i64>>>>,
    /// A hash verified when the user does not exist, so timing does not tell which names exist.
    decoy_hash: Arc<str>,
}

/// `n` random bytes from the operating system, as hex.
///
/// # Panics
/// When the operating system has no randomness, which Roundtrip cannot run without.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the operating system must provide randomness");
    hex(&buf)
}

/// SHA-256 of a secret, as hex: how session ids, token secrets and share-link secrets are stored.
pub fn secret_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Equality that takes the same time wherever the strings differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hash_password(password: &str) -> Result<String, ServiceError> {
    let salt = SaltString::encode_b64(random_hex(16).as_bytes())
        .map_err(|e| ServiceError::Store(StoreError::Unexpected(anyhow::anyhow!("salt: {e}"))))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Store(StoreError::Unexpected(anyhow::anyhow!("argon2: {e}"))))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

fn decode<T: serde::de::DeserializeOwned>(r: &Record) -> Result<T, ServiceError> {
    r.value.decode().map_err(|e| {
        ServiceError::Store(StoreError::Unexpected(anyhow::anyhow!("record {} does not decode: {e}", r.key)))
    })
}

fn put<T: Serialize>(table: &str, key: &str, v: &T, expect: Expect) -> WriteOp {
    WriteOp::Put { table: table.into(), key: key.into(), value: crate::store::Json::encode(v), expect }
}

fn invalid(field: &str, code: &str, message: &str) -> ServiceError {
    ServiceError::Invalid(vec![FieldError::new(field, code, message)])
}

impl Auth {
    /// Sign-in over `store`, timed by `clock` (wall-clock time in production).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, audit: AuditLog, settings: AuthSettings) -> Self {
        let decoy = hash_password(&random_hex(16)).unwrap_or_default();
        Self { store, clock, audit, settings, failures: Arc::default(), decoy_hash: decoy.into() }
    }

    fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    async fn user(&self, name: &str) -> Result<Option<(User, u64)>, ServiceError> {
        let Ok(name) = Username::parse(name) else { return Ok(None) };
        match self.store.get(USERS, name.as_str()).await? {
            None => Ok(None),
            Some(r) => Ok(Some((decode(&r)?, r.version))),
        }
    }

    async fn all_users(&self) -> Result<Vec<(User, u64)>, ServiceError> {
        self.store.list(USERS, "").await?.iter().map(|r| Ok((decode(r)?, r.version))).collect()
    }

    /// Creates the first admin when there are no users. With `password`, that password (not one-time);
    /// without, a generated one-time password, returned so the caller can print it once.
    ///
    /// # Errors
    /// An invalid name or password; store failures.
    pub async fn bootstrap(&self, username: &str, password: Option<&str>) -> Result<Option<String>, ServiceError> {
        if !self.store.list(USERS, "").await?.is_empty() {
            return Ok(None);
        }
        let name = Username::parse(username).map_err(|e| ServiceError::Invalid(vec![e]))?;
        let (password, generated) = match password {
            Some(p) => {
                check_new_password(name.as_str(), p).map_err(|e| ServiceError::Invalid(vec![e]))?;
                (p.to_owned(), None)
            }
            None => {
                let p = random_hex(12);
                (p.clone(), Some(p))
            }
        };
        let now = self.now();
        let user = User {
            username: name.clone(),
            role: Role::Admin,
            password_hash: hash_password(&password)?,
            disabled: false,
            must_change_password: generated.is_some(),
            created_at: now,
            created_by: "system:bootstrap".into(),
            updated_at: now,
        };
        match self.store.transact(vec![put(USERS, name.as_str(), &user, Expect::Absent)]).await {
            // Another process bootstrapped the same name first: theirs stands.
            Err(StoreError::Conflict { .. }) => return Ok(None),
            r => r?,
        };
        self.audit
            .record_or_log(
                &Principal::system("bootstrap"),
                AuditEvent::ok(
                    "user.bootstrap",
                    name.as_str(),
                    json!({ "after": user.view(1), "one_time": generated.is_some() }),
                ),
            )
            .await;
        Ok(generated)
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.settings.failure_window_minutes * 60_000).unwrap_or(i64::MAX)
    }

    /// Records an attempt for every key unless one of them is at its limit; returns the attempt's time.
    fn begin_attempt(&self, keys: &[&str; 2], now: i64) -> Option<i64> {
        let window = self.window_ms();
        let limits = [self.settings.max_failures_per_user, self.settings.max_failures_per_address];
        let mut f = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget idle keys so guessing at random names cannot grow the map without bound.
        if f.len() > 10_000 {
            f.retain(|_, v| v.last().is_some_and(|t| now - *t < window));
        }
        for (k, limit) in keys.iter().zip(limits) {
            let list = f.entry((*k).to_owned()).or_default();
            list.retain(|t| now - *t < window);
            if list.len() >= limit {
                return None;
            }
        }
        for k in keys {
            f.entry((*k).to_owned()).or_default().push(now);
        }
        Some(now)
    }

    /// Takes back a successful attempt (and, with `clear_user`, the user's earlier failures).
    fn forget_attempt(&self, keys: &[&str; 2], at: i64, clear_user: bool) {
        let mut f = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if clear_user {
            f.remove(keys[0]);
        }
        if let Some(list) = f.get_mut(keys[1])
            && let Some(i) = list.iter().rposition(|t| *t == at)
        {
            list.remove(i);
        }
    }

    /// Whether this is the first refused attempt for these keys in the window (only that one is audited,
    /// so a flood of guesses cannot flood the audit trail).
    fn first_throttled(&self, user_key: &str, addr_key: &str, now: i64) -> bool {
        let window = self.window_ms();
        let mut f = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut first = false;
        for k in [user_key, addr_key] {
            let marker = f.entry(format!("throttled:{k}")).or_default();
            marker.retain(|t| now - *t < window);
            if marker.is_empty() {
                marker.push(now);
                first = true;
            }
        }
        first
    }

    /// Signs a user in from `address` and opens a session.
    ///
    /// # Errors
    /// [`ServiceError::LoginThrottled`] after too many failures for the name or the address;
    /// [`ServiceError::LoginFailed`] for a wrong name, a wrong password or a disabled user (which one is not said).
    pub async fn login(&self, username: &str, password: &str, address: &str) -> Result<SignedIn, ServiceError> {
        let now = self.now();
        // Anything typed as a user name reaches the audit trail and the throttle's keys: bounded first.
        let name = match Username::parse(username) {
            Ok(n) => n.to_string(),
            Err(_) => "<not a valid user name>".to_owned(),
        };
        let address: String = address.chars().take(64).collect();
        let user_key = format!("user:{name}");
        let addr_key = format!("addr:{address}");
        let anonymous = Principal { subject: name.clone(), ..Principal::system("anonymous") };
        let refused = |reason: &str| {
            AuditEvent::ok("auth.login", name.clone(), json!({ "address": address, "reason": reason }))
                .with_outcome(Outcome::Refused)
        };
        // The attempt counts before the slow check, so parallel guesses cannot all slip under the limit.
        let Some(attempt) = self.begin_attempt(&[&user_key, &addr_key], now) else {
            if self.first_throttled(&user_key, &addr_key, now) {
                self.audit.record_or_log(&anonymous, refused("throttled")).await;
            }
            return Err(ServiceError::LoginThrottled { retry_after_secs: self.settings.failure_window_minutes * 60 });
        };
        let found = if password.len() > domain::auth::MAX_PASSWORD_BYTES { None } else { self.user(&name).await? };
        let ok = match &found {
            Some((u, _)) => verify_password(password, &u.password_hash) && !u.disabled,
            None => {
                let _ = verify_password(password, &self.decoy_hash);
                false
            }
        };
        let Some((user, _)) = found.filter(|_| ok) else {
            self.audit.record_or_log(&anonymous, refused("wrong user name or password, or disabled")).await;
            return Err(ServiceError::LoginFailed);
        };
        self.forget_attempt(&[&user_key, &addr_key], attempt, true);
        let secret = random_hex(32);
        let session =
            Session { username: name.clone(), created_at: now, last_seen_at: now, csrf_token: random_hex(24) };
        self.store.transact(vec![put(SESSIONS, &secret_hash(&secret), &session, Expect::Absent)]).await?;
        let principal = user.principal();
        self.audit.record_or_log(&principal, AuditEvent::ok("auth.login", name, json!({ "address": address }))).await;
        Ok(SignedIn { session_secret: secret, session, principal })
    }

    /// Ends every session of `username` but `keep` (a session secret).
    async fn end_sessions(&self, username: &str, keep: Option<&str>) -> Result<usize, ServiceError> {
        let keep = keep.map(secret_hash);
        let mut ops = Vec::new();
        for r in self.store.list(SESSIONS, "").await? {
            let s: Session = decode(&r)?;
            if s.username == username && keep.as_deref() != Some(r.key.as_str()) {
                ops.push(WriteOp::Delete { table: SESSIONS.into(), key: r.key, expect: Expect::Any });
            }
        }
        let n = ops.len();
        if n > 0 {
            self.store.transact(ops).await?;
        }
        Ok(n)
    }

    /// The identity behind a session secret, or `None` when it is unknown, expired, or its user is gone or
    /// disabled. Refreshes the idle timer at most once a minute.
    ///
    /// # Errors
    /// Store failures.
    pub async fn session(&self, secret: &str) -> Result<Option<(Principal, Session)>, ServiceError> {
        if secret.len() != 64 {
            return Ok(None);
        }
        let key = secret_hash(secret);
        let Some(r) = self.store.get(SESSIONS, &key).await? else { return Ok(None) };
        let mut s: Session = decode(&r)?;
        let now = self.now();
        let idle = i64::try_from(self.settings.session_idle_minutes * 60_000).unwrap_or(i64::MAX);
        let absolute = i64::try_from(self.settings.session_absolute_hours * 3_600_000).unwrap_or(i64::MAX);
        if now - s.last_seen_at >= idle || now - s.created_at >= absolute {
            let _ =
                self.store.transact(vec![WriteOp::Delete { table: SESSIONS.into(), key, expect: Expect::Any }]).await;
            return Ok(None);
        }
        let Some((user, _)) = self.user(&s.username).await? else { return Ok(None) };
        if user.disabled {
            return Ok(None);
        }
        if now - s.last_seen_at >= 60_000 {
            s.last_seen_at = now;
            // A lost race with another request touching the same session is harmless.
            let _ = self.store.transact(vec![put(SESSIONS, &key, &s, Expect::Version(r.version))]).await;
        }
        Ok(Some((user.principal(), s)))
    }

    /// Ends a session.
    ///
    /// # Errors
    /// Store failures.
    pub async fn logout(&self, secret: &str, who: &Principal) -> Result<(), ServiceError> {
        let key = secret_hash(secret);
        self.store.transact(vec![WriteOp::Delete { table: SESSIONS.into(), key, expect: Expect::Any }]).await?;
        self.audit.record_or_log(who, AuditEvent::ok("auth.logout", who.subject.clone(), json!({}))).await;
        Ok(())
    }

    /// Changes the signed-in user's own password after checking the current one.
    ///
    /// # Errors
    /// [`ServiceError::LoginFailed`] for a wrong current password; [`ServiceError::Invalid`] for a weak new one.
    pub async fn change_password(
        &self,
        who: &Principal,
        current: &str,
        new: &str,
        keep_session: Option<&str>,
    ) -> Result<UserView, ServiceError> {
        if who.method != AuthMethod::Session {
            return Err(ServiceError::Forbidden("only a signed-in user can change their own password".into()));
        }
        let (mut user, version) =
            self.user(&who.subject).await?.ok_or_else(|| ServiceError::UserNotFound(who.subject.clone()))?;
        if !verify_password(current, &user.password_hash) {
            self.audit
                .record_or_log(
                    who,
                    AuditEvent::ok("user.change_password", who.subject.clone(), json!({}))
                        .with_outcome(Outcome::Refused),
                )
                .await;
            return Err(ServiceError::LoginFailed);
        }
        check_new_password(user.username.as_str(), new).map_err(|e| ServiceError::Invalid(vec![e]))?;
        if current == new {
            return Err(invalid(
                "new_password",
                "PASSWORD_UNCHANGED",
                "choose a password different from the current one",
            ));
        }
        user.password_hash = hash_password(new)?;
        user.must_change_password = false;
        user.updated_at = self.now();
        let v = self.store.transact(vec![put(USERS, user.username.as_str(), &user, Expect::Version(version))]).await?;
        // A stolen session must not outlive the password it was stolen with.
        let ended = self.end_sessions(user.username.as_str(), keep_session).await?;
        let details = json!({ "other_sessions_ended": ended });
        self.audit.record_or_log(who, AuditEvent::ok("user.change_password", who.subject.clone(), details)).await;
        Ok(user.view(v[0]))
    }

    /// One user, or `None`.
    ///
    /// # Errors
    /// Store failures.
    pub async fn user_view(&self, name: &str) -> Result<Option<UserView>, ServiceError> {
        Ok(self.user(name).await?.map(|(u, v)| u.view(v)))
    }

    /// Every user, by name.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_users(&self) -> Result<Vec<UserView>, ServiceError> {
        Ok(self.all_users().await?.iter().map(|(u, v)| u.view(*v)).collect())
    }

    /// Creates a user.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] with every bad field; [`ServiceError::DuplicateUser`].
    pub async fn create_user(&self, who: &Principal, input: &NewUser) -> Result<UserView, ServiceError> {
        let mut errors = Vec::new();
        let name = Username::parse(&input.username).map_err(|e| errors.push(e)).ok();
        let role = Role::parse(&input.role).map_err(|e| errors.push(e)).ok();
        if let Some(n) = &name
            && let Err(e) = check_new_password(n.as_str(), &input.password)
        {
            errors.push(e);
        }
        let (Some(name), Some(role), true) = (name, role, errors.is_empty()) else {
            return Err(ServiceError::Invalid(errors));
        };
        let now = self.now();
        let user = User {
            username: name.clone(),
            role,
            password_hash: hash_password(&input.password)?,
            disabled: false,
            must_change_password: true,
            created_at: now,
            created_by: who.subject.clone(),
            updated_at: now,
        };
        match self.store.transact(vec![put(USERS, name.as_str(), &user, Expect::Absent)]).await {
            Err(StoreError::Conflict { .. }) => return Err(ServiceError::DuplicateUser(name.to_string())),
            r => r?,
        };
        let view = user.view(1);
        self.audit.record_or_log(who, AuditEvent::ok("user.create", name.as_str(), json!({ "after": view }))).await;
        Ok(view)
    }

    /// Changes a user's role, enables or disables them, or resets their password.
    ///
    /// # Errors
    /// [`ServiceError::UserNotFound`], [`ServiceError::VersionConflict`], [`ServiceError::LastAdmin`] when no
    /// enabled admin would be left, [`ServiceError::Invalid`].
    pub async fn update_user(
        &self,
        who: &Principal,
        name: &str,
        change: &UserChange,
    ) -> Result<UserView, ServiceError> {
        let (before, version) = self.user(name).await?.ok_or_else(|| ServiceError::UserNotFound(name.to_owned()))?;
        if let Some(expected) = change.expected_version
            && expected != version
        {
            return Err(ServiceError::VersionConflict { expected, actual: Some(version) });
        }
        let mut user = before.clone();
        if let Some(r) = &change.role {
            user.role = Role::parse(r).map_err(|e| ServiceError::Invalid(vec![e]))?;
        }
        if let Some(d) = change.disabled {
            user.disabled = d;
        }
        if let Some(p) = &change.reset_password {
            check_new_password(user.username.as_str(), p).map_err(|e| ServiceError::Invalid(vec![e]))?;
            user.password_hash = hash_password(p)?;
            user.must_change_password = true;
        }
        let was_admin = before.role == Role::Admin && !before.disabled;
        let is_admin = user.role == Role::Admin && !user.disabled;
        let mut ops = vec![put(USERS, user.username.as_str(), &user, Expect::Version(version))];
        if was_admin && !is_admin {
            let others: Vec<(User, u64)> = self
                .all_users()
                .await?
                .into_iter()
                .filter(|(u, _)| u.username != user.username && u.role == Role::Admin && !u.disabled)
                .collect();
            let Some((other, v)) = others.first() else { return Err(ServiceError::LastAdmin) };
            // The admin that remains must still be one when this lands.
            ops.push(WriteOp::Check {
                table: USERS.into(),
                key: other.username.to_string(),
                expect: Expect::Version(*v),
            });
        }
        user.updated_at = self.now();
        ops[0] = put(USERS, user.username.as_str(), &user, Expect::Version(version));
        let v = self.store.transact(ops).await.map_err(|e| match e {
            StoreError::Conflict { actual, .. } => ServiceError::VersionConflict { expected: version, actual },
            e => e.into(),
        })?;
        let view = user.view(v[0]);
        if change.reset_password.is_some() || user.disabled {
            self.end_sessions(user.username.as_str(), None).await?;
        }
        let details = json!({
            "before": before.view(version),
            "after": view,
            "password_reset": change.reset_password.is_some(),
        });
        self.audit.record_or_log(who, AuditEvent::ok("user.update", user.username.as_str(), details)).await;
        Ok(view)
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::memory::MemoryStore;

    struct Fixture {
        auth: Auth,
        clock: Arc<ManualClock>,
        audit: AuditLog,
    }

    async fn fixture() -> Fixture {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let audit = AuditLog::new(store.clone(), clock.clone());
        let auth = Auth::new(store, clock.clone(), audit.clone(), AuthSettings::default());
        auth.bootstrap("admin", Some("first-boot passphrase")).await.unwrap();
        Fixture { auth, clock, audit }
    }

    fn admin() -> Principal {
        Principal { subject: "admin".into(), ..Principal::system("x") }
    }

    #[tokio::test]
    async fn bootstrap_without_a_password_generates_a_one_time_password_once() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let clock = Arc::new(ManualClock::new(0));
        let audit = AuditLog::new(store.clone(), clock.clone());
        let auth = Auth::new(store, clock, audit, AuthSettings::default());
        let p = auth.bootstrap("admin", None).await.unwrap().expect("a generated password");
        assert_eq!(auth.bootstrap("admin", None).await.unwrap(), None, "only while there are no users");
        let s = auth.login("admin", &p, "127.0.0.1").await.unwrap();
        assert!(s.principal.must_change_password);
    }

    #[tokio::test]
    async fn a_wrong_password_fails_and_repeated_failures_are_throttled() {
        let f = fixture().await;
        for _ in 0..5 {
            assert!(matches!(f.auth.login("admin", "nope", "10.0.0.1").await, Err(ServiceError::LoginFailed)));
        }
        let e = f.auth.login("admin", "first-boot passphrase", "10.0.0.2").await.unwrap_err();
        assert!(matches!(e, ServiceError::LoginThrottled { .. }), "the user name is throttled from any address");
        f.clock.advance(15 * 60_000);
        f.auth.login("admin", "first-boot passphrase", "10.0.0.2").await.unwrap();
    }

    #[tokio::test]
    async fn one_address_guessing_many_names_is_throttled() {
        let f = fixture().await;
        for i in 0..20 {
            let _ = f.auth.login(&format!("user{i}"), "nope", "10.9.9.9").await;
        }
        let e = f.auth.login("admin", "first-boot passphrase", "10.9.9.9").await.unwrap_err();
        assert!(matches!(e, ServiceError::LoginThrottled { .. }));
        f.auth.login("admin", "first-boot passphrase", "10.0.0.1").await.unwrap();
    }

    #[tokio::test]
    async fn sessions_end_when_idle_or_too_old_and_when_the_user_is_disabled() {
        let f = fixture().await;
        let s = f.auth.login("admin", "first-boot passphrase", "a").await.unwrap();
        assert!(f.auth.session(&s.session_secret).await.unwrap().is_some());
        f.clock.advance(29 * 60_000);
        assert!(f.auth.session(&s.session_secret).await.unwrap().is_some(), "use refreshes the idle timer");
        f.clock.advance(29 * 60_000);
        assert!(f.auth.session(&s.session_secret).await.unwrap().is_some());
        f.clock.advance(31 * 60_000);
        assert!(f.auth.session(&s.session_secret).await.unwrap().is_none(), "idle for 31 minutes");

        let s = f.auth.login("admin", "first-boot passphrase", "a").await.unwrap();
        for _ in 0..25 {
            f.clock.advance(29 * 60_000);
            let _ = f.auth.session(&s.session_secret).await.unwrap();
        }
        assert!(f.auth.session(&s.session_secret).await.unwrap().is_none(), "older than 12 hours");

        let bob = NewUser { username: "bob".into(), role: "operator".into(), password: "a long passphrase one".into() };
        f.auth.create_user(&admin(), &bob).await.unwrap();
        let s = f.auth.login("bob", "a long passphrase one", "a").await.unwrap();
        f.auth.update_user(&admin(), "bob", &UserChange { disabled: Some(true), ..Default::default() }).await.unwrap();
        assert!(f.auth.session(&s.session_secret).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_last_admin_cannot_be_demoted_or_disabled() {
        let f = fixture().await;
        let demote = UserChange { role: Some("viewer".into()), ..Default::default() };
        assert!(matches!(f.auth.update_user(&admin(), "admin", &demote).await, Err(ServiceError::LastAdmin)));
        let carol =
            NewUser { username: "carol".into(), role: "admin".into(), password: "a long passphrase two".into() };
        f.auth.create_user(&admin(), &carol).await.unwrap();
        f.auth.update_user(&admin(), "admin", &demote).await.unwrap();
    }

    #[tokio::test]
    async fn a_token_works_until_revoked_and_acts_for_its_owner() {
        let f = fixture().await;
        let t = f
            .auth
            .create_token(&admin(), &NewToken { name: "ci".into(), role: "operator".into(), expires_in_days: None })
            .await
            .unwrap();
        let p = f.auth.authenticate_token(&t.token).await.unwrap().expect("valid token");
        assert_eq!((p.subject.as_str(), p.role, p.method), ("admin", Role::Operator, AuthMethod::Token));
        assert!(f.auth.authenticate_token(&format!("{}x", t.token)).await.unwrap().is_none(), "a wrong secret");
        f.auth.revoke_token(&admin(), &t.details.id).await.unwrap();
        assert!(f.auth.authenticate_token(&t.token).await.unwrap().is_none(), "revoked");
    }

    #[tokio::test]
    async fn a_token_expires() {
        let f = fixture().await;
        let t = f
            .auth
            .create_token(&admin(), &NewToken { name: "short".into(), role: "viewer".into(), expires_in_days: Some(1) })
            .await
            .unwrap();
        assert!(f.auth.authenticate_token(&t.token).await.unwrap().is_some());
        f.clock.advance(86_400_000);
        assert!(f.auth.authenticate_token(&t.token).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_changed_password_clears_the_one_time_flag_and_the_old_one_stops_working() {
        let f = fixture().await;
        let bob = NewUser { username: "bob".into(), role: "approver".into(), password: "a one-time secret".into() };
        f.auth.create_user(&admin(), &bob).await.unwrap();
        let s = f.auth.login("bob", "a one-time secret", "a").await.unwrap();
        assert!(s.principal.must_change_password);
        let e = f.auth.change_password(&s.principal, "wrong", "bob's own password!", None).await.unwrap_err();
        assert!(matches!(e, ServiceError::LoginFailed));
        f.auth.change_password(&s.principal, "a one-time secret", "my own password!", None).await.unwrap();
        assert!(matches!(f.auth.login("bob", "a one-time secret", "a").await, Err(ServiceError::LoginFailed)));
        let s = f.auth.login("bob", "my own password!", "a").await.unwrap();
        assert!(!s.principal.must_change_password);
    }

    #[tokio::test]
    async fn every_sign_in_and_change_is_audited_and_no_secret_is() {
        let f = fixture().await;
        let _ = f.auth.login("admin", "wrong password", "a").await;
        f.auth.login("admin", "first-boot passphrase", "a").await.unwrap();
        f.auth
            .create_token(&admin(), &NewToken { name: "ci".into(), role: "viewer".into(), expires_in_days: None })
            .await
            .unwrap();
        let entries = f.audit.query(&Default::default()).await.unwrap();
        let actions: Vec<(&str, Outcome)> = entries.iter().rev().map(|e| (e.action.as_str(), e.outcome)).collect();
        assert_eq!(
            actions,
            [
                ("user.bootstrap", Outcome::Ok),
                ("auth.login", Outcome::Refused),
                ("auth.login", Outcome::Ok),
                ("token.create", Outcome::Ok)
            ]
        );
        let text = serde_json::to_string(&entries).unwrap();
        assert!(!text.contains("first-boot passphrase") && !text.contains("argon2") && !text.contains("secret_hash"));
        assert!(f.audit.verify().await.unwrap().intact);
    }
}
