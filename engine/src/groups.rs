//! Protection groups: list, read, create, change and delete (with their pairs, in one transaction), each
//! checked against the accounts and regions Roundtrip can reach.

use crate::audit::AuditEvent;
use crate::error::ServiceError;
use crate::repo;
use crate::services::{Services, check_version};
use crate::store::{Expect, StoreError, WriteOp};
use domain::auth::Principal;
use domain::error::FieldError;
use domain::estate::AccountRegion;
use domain::group::GroupSummary;
use domain::group::{GroupSpec, ProtectionGroup, ProtectionGroupInput};
use domain::ids::ProtectionGroupId;
use std::collections::{HashMap, HashSet};

pub(crate) fn name_claim(name: &str, id: &ProtectionGroupId, expect: Expect) -> WriteOp {
    WriteOp::Put {
        table: repo::GROUP_NAMES.into(),
        key: repo::name_key(name),
        value: crate::store::Json::encode(&serde_json::json!(id)),
        expect,
    }
}

impl Services {
    /// Every protection group with its pair count, ordered by name.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_groups(&self) -> Result<Vec<GroupSummary>, ServiceError> {
        let groups = repo::list_groups(&*self.store).await?;
        let mut counts: HashMap<ProtectionGroupId, usize> = HashMap::new();
        for p in repo::list_pairs(&*self.store, None).await? {
            *counts.entry(p.protection_group_id).or_default() += 1;
        }
        let mut out: Vec<GroupSummary> = groups
            .into_iter()
            .map(|g| GroupSummary { pairs: counts.get(&g.id).copied().unwrap_or(0), group: g })
            .collect();
        out.sort_by(|a, b| (a.group.name.to_lowercase(), &a.group.id).cmp(&(b.group.name.to_lowercase(), &b.group.id)));
        Ok(out)
    }

    /// One protection group.
    ///
    /// # Errors
    /// [`ServiceError::GroupNotFound`].
    pub async fn get_group(&self, id: &ProtectionGroupId) -> Result<ProtectionGroup, ServiceError> {
        repo::get_group(&*self.store, id).await?.ok_or_else(|| ServiceError::GroupNotFound(id.clone()))
    }

    pub(crate) async fn check_reachable(&self, spec: &GroupSpec) -> Result<(), ServiceError> {
        let known: HashSet<AccountRegion> =
            self.cloud.list_account_regions().await?.into_iter().map(|k| k.at).collect();
        let mut errs = Vec::new();
        for (field, at) in [("primary", &spec.primary), ("dr", &spec.dr)] {
            if !known.contains(at) {
                errs.push(FieldError::new(
                    field,
                    "UNKNOWN_ACCOUNT_REGION",
                    format!(
                        "Roundtrip cannot reach account {} in {}; register the account or pick another",
                        at.account_id, at.region
                    ),
                ));
            }
        }
        if spec.primary == spec.dr {
            errs.push(FieldError::new(
                "dr",
                "SAME_AS_PRIMARY",
                "the DR account and region must differ from the primary ones",
            ));
        }
        if errs.is_empty() { Ok(()) } else { Err(ServiceError::Invalid(errs)) }
    }

    /// Creates a protection group.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] with every bad field; [`ServiceError::DuplicateName`].
    pub async fn create_group(
        &self,
        who: &Principal,
        input: &ProtectionGroupInput,
    ) -> Result<ProtectionGroup, ServiceError> {
        let spec = input.validate().map_err(ServiceError::Invalid)?;
        self.check_reachable(&spec).await?;
        let now = self.clock.now_millis();
        let id = ProtectionGroupId::parse(&format!("pg-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]))
            .map_err(|e| ServiceError::Store(StoreError::Unexpected(anyhow::anyhow!(e))))?;
        let mut group = ProtectionGroup::new(id, spec, now);
        let ops = vec![name_claim(&group.name, &group.id, Expect::Absent), repo::put_group(&group, Expect::Absent)];
        match self.store.transact(ops).await {
            Ok(v) => {
                group.version = v[1];
                tracing::info!(protection_group_id = %group.id, name = %group.name, "protection group created");
                let details = serde_json::json!({ "after": group });
                self.audit
                    .record_or_log(who, AuditEvent::ok("protection_group.create", group.id.as_str(), details))
                    .await;
                Ok(group)
            }
            Err(StoreError::Conflict { table, .. }) if table == repo::GROUP_NAMES => {
                Err(ServiceError::DuplicateName(group.name))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a protection group's settings. Its pairs stay.
    ///
    /// # Errors
    /// As [`Services::create_group`], plus [`ServiceError::GroupNotFound`] and
    /// [`ServiceError::VersionConflict`] when `expected_version` is given and differs.
    pub async fn update_group(
        &self,
        who: &Principal,
        id: &ProtectionGroupId,
        input: &ProtectionGroupInput,
        expected_version: Option<u64>,
    ) -> Result<ProtectionGroup, ServiceError> {
        let spec = input.validate().map_err(ServiceError::Invalid)?;
        let current = self.get_group(id).await?;
        check_version(expected_version, current.version)?;
        self.check_reachable(&spec).await?;
        let mut ops = Vec::new();
        if repo::name_key(&spec.name) != repo::name_key(&current.name) {
            ops.push(name_claim(&spec.name, id, Expect::Absent));
            ops.push(WriteOp::Delete {
                table: repo::GROUP_NAMES.into(),
                key: repo::name_key(&current.name),
                expect: Expect::Any,
            });
        }
        let mut group = current.with_spec(spec, self.clock.now_millis());
        ops.push(repo::put_group(&group, Expect::Version(current.version)));
        match self.store.transact(ops).await {
            Ok(v) => {
                group.version = *v.last().unwrap_or(&current.version);
                let details = serde_json::json!({ "before": current, "after": group });
                self.audit.record_or_log(who, AuditEvent::ok("protection_group.update", id.as_str(), details)).await;
                Ok(group)
            }
            Err(StoreError::Conflict { table, .. }) if table == repo::GROUP_NAMES => {
                Err(ServiceError::DuplicateName(group.name))
            }
            Err(StoreError::Conflict { actual, .. }) => {
                Err(ServiceError::VersionConflict { expected: current.version, actual })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a protection group and all its pairs, in one transaction.
    ///
    /// # Errors
    /// [`ServiceError::GroupNotFound`], [`ServiceError::VersionConflict`].
    pub async fn delete_group(
        &self,
        who: &Principal,
        id: &ProtectionGroupId,
        expected_version: Option<u64>,
    ) -> Result<(), ServiceError> {
        let current = self.get_group(id).await?;
        check_version(expected_version, current.version)?;
        let kept = self.store.list(repo::LAUNCH_CONFIG_BACKUPS, &format!("{id}/")).await?.len();
        if kept > 0 {
            return Err(ServiceError::LaunchConfigurationApplied(kept));
        }
        let using: Vec<String> = self
            .list_plans()
            .await?
            .into_iter()
            .filter(|p| p.protection_group_ids.contains(id))
            .map(|p| p.name)
            .collect();
        if !using.is_empty() {
            return Err(ServiceError::InRecoveryPlan(using));
        }
        let pairs = repo::list_pairs(&*self.store, Some(id)).await?;
        let mut ops: Vec<WriteOp> = Vec::new();
        for p in &pairs {
            ops.push(repo::delete_pair(p, Expect::Version(p.version)));
            ops.extend(repo::release(p));
        }
        ops.push(WriteOp::Delete {
            table: repo::GROUP_NAMES.into(),
            key: repo::name_key(&current.name),
            expect: Expect::Any,
        });
        ops.push(WriteOp::Delete {
            table: repo::PROTECTION_GROUPS.into(),
            key: id.to_string(),
            expect: Expect::Version(current.version),
        });
        self.store.transact(ops).await.map_err(|e| match e {
            StoreError::Conflict { actual, .. } => ServiceError::VersionConflict { expected: current.version, actual },
            e => e.into(),
        })?;
        tracing::info!(protection_group_id = %id, pairs = pairs.len(), "protection group deleted");
        let details = serde_json::json!({ "before": current, "pairs_removed": pairs.len() });
        self.audit.record_or_log(who, AuditEvent::ok("protection_group.delete", id.as_str(), details)).await;
        Ok(())
    }
}
