//! Sign-in and sessions: throttled attempts per user name and address, sessions with idle and absolute
//! limits, sign-out, and changing one's own password (which ends one's other sessions).

use super::{
    Auth, SESSIONS, Session, SignedIn, USERS, decode, hash_password, invalid, put, random_hex, secret_hash,
    verify_password,
};
use crate::audit::{AuditEvent, Outcome};
use crate::error::ServiceError;
use crate::store::{Expect, WriteOp};
use domain::auth::UserView;
use domain::auth::{AuthMethod, Principal, Username, check_new_password};
use serde_json::json;

impl Auth {
    pub(super) fn window_ms(&self) -> i64 {
        i64::try_from(self.settings.failure_window_minutes * 60_000).unwrap_or(i64::MAX)
    }

    /// Records an attempt for every key unless one of them is at its limit; returns the attempt's time.
    pub(super) fn begin_attempt(&self, keys: &[&str; 2], now: i64) -> Option<i64> {
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
    pub(super) fn forget_attempt(&self, keys: &[&str; 2], at: i64, clear_user: bool) {
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
    pub(super) fn first_throttled(&self, user_key: &str, addr_key: &str, now: i64) -> bool {
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
    pub(super) async fn end_sessions(&self, username: &str, keep: Option<&str>) -> Result<usize, ServiceError> {
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
}
