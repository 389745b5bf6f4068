//! The two-person rule as a service: executions (failover, failback) call [`Auth::authorize_approval`]
//! before recording an approval or resuming a gate.
//!
//! Beyond the pure rule of [`domain::auth::check_approval`] (a different person, with a role that approves,
//! not on a one-time password), the approver must still be an enabled user at the moment of approval when
//! they are a local user; OIDC identities are vouched for by their issuer.

use crate::auth::Auth;
use crate::error::ServiceError;
use domain::auth::{AuthMethod, Principal, check_approval};

impl Auth {
    /// Whether `approver` may approve what `requested_by` (a subject) requested.
    ///
    /// # Errors
    /// [`ServiceError::ApprovalRefused`] with the reason; [`ServiceError::Forbidden`] when the approver's
    /// account is gone or disabled.
    pub async fn authorize_approval(&self, requested_by: &str, approver: &Principal) -> Result<(), ServiceError> {
        check_approval(requested_by, approver)?;
        if matches!(approver.method, AuthMethod::Session | AuthMethod::Token) {
            match self.user_view(&approver.subject).await? {
                Some(u) if !u.disabled => {}
                _ => return Err(ServiceError::Forbidden(format!("{} is not an enabled user", approver.subject))),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::audit::AuditLog;
    use crate::auth::{Auth, AuthSettings, NewUser, UserChange};
    use crate::clock::ManualClock;
    use crate::error::ServiceError;
    use crate::store::memory::MemoryStore;
    use domain::auth::{AuthMethod, Principal, Role};
    use std::sync::Arc;

    fn as_user(name: &str, role: Role, method: AuthMethod) -> Principal {
        Principal { subject: name.into(), role, method, token: None, must_change_password: false }
    }

    async fn auth_with_users() -> Auth {
        let store = Arc::new(MemoryStore::default());
        let clock = Arc::new(ManualClock::new(0));
        let auth = Auth::new(store.clone(), clock.clone(), AuditLog::new(store, clock), AuthSettings::default());
        auth.bootstrap("root", Some("bootstrap passphrase")).await.unwrap();
        let root = as_user("root", Role::Admin, AuthMethod::Session);
        for (name, role) in [("alice", "operator"), ("bob", "approver")] {
            let input = NewUser { username: name.into(), role: role.into(), password: "a long passphrase".into() };
            auth.create_user(&root, &input).await.unwrap();
        }
        auth
    }

    #[tokio::test]
    async fn a_second_enabled_approver_may_approve() {
        let auth = auth_with_users().await;
        auth.authorize_approval("alice", &as_user("bob", Role::Approver, AuthMethod::Session)).await.unwrap();
    }

    #[tokio::test]
    async fn the_requester_may_not_approve_even_with_an_admin_token() {
        let auth = auth_with_users().await;
        let e = auth.authorize_approval("root", &as_user("root", Role::Admin, AuthMethod::Token)).await.unwrap_err();
        assert_eq!(e.code(), domain::ErrorCode::SelfApproval);
    }

    #[tokio::test]
    async fn a_disabled_approver_may_not_approve() {
        let auth = auth_with_users().await;
        let root = as_user("root", Role::Admin, AuthMethod::Session);
        auth.update_user(&root, "bob", &UserChange { disabled: Some(true), ..Default::default() }).await.unwrap();
        let e = auth.authorize_approval("alice", &as_user("bob", Role::Approver, AuthMethod::Session)).await;
        assert!(matches!(e, Err(ServiceError::Forbidden(_))), "{e:?}");
    }

    #[tokio::test]
    async fn an_operator_may_not_approve() {
        let auth = auth_with_users().await;
        let e = auth.authorize_approval("bob", &as_user("alice", Role::Operator, AuthMethod::Session)).await;
        assert_eq!(e.unwrap_err().code(), domain::ErrorCode::Forbidden);
    }

    #[tokio::test]
    async fn an_oidc_approver_is_checked_by_the_rule_alone() {
        let auth = auth_with_users().await;
        auth.authorize_approval("alice", &as_user("carol@idp", Role::Approver, AuthMethod::Oidc)).await.unwrap();
    }
}
