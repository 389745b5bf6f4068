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

mod sessions;
mod tokens;
mod users;

use crate::audit::{AuditEvent, AuditLog, hex};
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::store::{Expect, Record, Store, StoreError, WriteOp};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use domain::FieldError;
pub use domain::auth::{ApiTokenView, CreatedToken, NewToken, NewUser, UserChange, UserView};
use domain::auth::{AuthMethod, Principal, Role, Username, check_new_password};
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

    /// One user, or `None`.
    ///
    /// # Errors
    /// Store failures.
    pub async fn user_view(&self, name: &str) -> Result<Option<UserView>, ServiceError> {
        Ok(self.user(name).await?.map(|(u, v)| u.view(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Outcome;
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
