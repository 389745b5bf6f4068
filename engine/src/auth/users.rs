//! Users: list, create with a one-time password, change a role, disable, reset a password.

use super::{Auth, USERS, User, hash_password, put};
use crate::audit::AuditEvent;
use crate::error::ServiceError;
use crate::store::{Expect, StoreError, WriteOp};
use domain::auth::{NewUser, UserChange, UserView};
use domain::auth::{Principal, Role, Username, check_new_password};
use serde_json::json;

impl Auth {
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
}
