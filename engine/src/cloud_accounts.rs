//! Accounts registered in the console by admins (real AWS): stored with their External ID, which is never
//! shown again, handed to the cloud adapter at start and on every change, and audited.

use crate::cloud::RegisteredAccount;
use crate::error::ServiceError;
use crate::services::Services;
use crate::store::{Expect, WriteOp};
use domain::auth::Principal;
use domain::error::FieldError;
use domain::estate::{CloudAccount, CloudAccountInput};
use serde_json::json;

const TABLE: &str = "cloud_accounts";

impl Services {
    async fn registered_accounts(&self) -> Result<Vec<RegisteredAccount>, ServiceError> {
        let mut out = Vec::new();
        for r in self.store.list(TABLE, "").await? {
            out.push(
                r.value
                    .decode()
                    .map_err(|e| ServiceError::Store(crate::store::StoreError::Unexpected(anyhow::anyhow!(e))))?,
            );
        }
        Ok(out)
    }

    /// Hands the stored accounts to the cloud adapter (at start).
    ///
    /// # Errors
    /// Store failures; the adapter's refusal.
    pub async fn load_registered_cloud_accounts(&self) -> Result<usize, ServiceError> {
        let accounts = self.registered_accounts().await?;
        let n = accounts.len();
        self.cloud.set_registered_accounts(accounts)?;
        Ok(n)
    }

    /// Every account: the configured ones, then the registered ones.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_cloud_accounts(&self) -> Result<Vec<CloudAccount>, ServiceError> {
        let mut out = self.cloud.configured_accounts();
        out.extend(self.registered_accounts().await?.into_iter().map(|a| CloudAccount {
            external_id_set: a.external_id.is_some(),
            account_id: a.account_id,
            name: a.name,
            role_arn: a.role_arn,
            regions: a.regions,
            source: "console".into(),
        }));
        Ok(out)
    }

    /// Registers an account, or changes a registered one (an empty External ID keeps the stored one).
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] for bad fields, a configured account, or a cloud whose accounts are fixed.
    pub async fn save_cloud_account(
        &self,
        who: &Principal,
        input: &CloudAccountInput,
    ) -> Result<CloudAccount, ServiceError> {
        let valid = input.validate().map_err(ServiceError::Invalid)?;
        if self.cloud.configured_accounts().iter().any(|a| a.account_id == valid.account_id && a.source != "console") {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "account_id",
                "ACCOUNT_CONFIGURED",
                "this account comes from the settings (or the estate); change it there",
            )]));
        }
        let mut all = self.registered_accounts().await?;
        let stored = all.iter().position(|a| a.account_id == valid.account_id);
        let account = RegisteredAccount {
            external_id: valid.external_id.clone().or_else(|| stored.and_then(|i| all[i].external_id.clone())),
            account_id: valid.account_id.clone(),
            name: valid.name.clone(),
            role_arn: valid.role_arn.clone(),
            regions: valid.regions.clone(),
        };
        match stored {
            Some(i) => all[i] = account.clone(),
            None => all.push(account.clone()),
        }
        // The adapter first: an account it refuses is never stored.
        self.cloud
            .set_registered_accounts(all)
            .map_err(|e| ServiceError::Invalid(vec![FieldError::new("account_id", "ACCOUNTS_FIXED", e.to_string())]))?;
        let value = crate::store::Json::encode(&account);
        self.store
            .transact(vec![WriteOp::Put {
                table: TABLE.into(),
                key: account.account_id.as_str().to_owned(),
                value,
                expect: Expect::Any,
            }])
            .await?;
        let details = json!({ "name": account.name, "role_arn": account.role_arn, "regions": account.regions,
                               "external_id_set": account.external_id.is_some(), "changed": stored.is_some() });
        self.audit
            .record_or_log(
                who,
                crate::audit::AuditEvent::ok("cloud.account.save", account.account_id.as_str(), details),
            )
            .await;
        Ok(CloudAccount {
            external_id_set: account.external_id.is_some(),
            account_id: account.account_id,
            name: account.name,
            role_arn: account.role_arn,
            regions: account.regions,
            source: "console".into(),
        })
    }

    /// Removes a registered account.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] when it is not a registered account.
    pub async fn delete_cloud_account(&self, who: &Principal, account_id: &str) -> Result<(), ServiceError> {
        let mut all = self.registered_accounts().await?;
        let Some(i) = all.iter().position(|a| a.account_id.as_str() == account_id) else {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "account_id",
                "ACCOUNT_NOT_REGISTERED",
                "no account registered in the console has this id",
            )]));
        };
        all.remove(i);
        self.cloud.set_registered_accounts(all)?;
        self.store
            .transact(vec![WriteOp::Delete { table: TABLE.into(), key: account_id.to_owned(), expect: Expect::Any }])
            .await?;
        self.audit
            .record_or_log(who, crate::audit::AuditEvent::ok("cloud.account.delete", account_id, json!({})))
            .await;
        Ok(())
    }
}
