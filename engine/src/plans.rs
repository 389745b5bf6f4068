//! Recovery plans: create, read, replace and delete, validated against the groups' pairs and their
//! launch-into configuration on every save.
//!
//! Layout: `recovery_plans/<plan id>` → [`RecoveryPlan`]; `plan_names/<normalised name>` → the plan id, so
//! names stay unique under concurrent creates (as group names do).

use crate::audit::AuditEvent;
use crate::error::ServiceError;
use crate::repo;
use crate::services::Services;
use crate::store::{Expect, StoreError, WriteOp};
use domain::auth::Principal;
use domain::ids::ProtectionGroupId;
use domain::launch::LaunchConfigState;
use domain::matching::normalize_name;
use domain::plan::{PlanContext, derive_waves, validate_plan};
pub use domain::plan::{RecoveryPlan, RecoveryPlanInput, Wave};
use std::collections::HashSet;

pub const RECOVERY_PLANS: &str = "recovery_plans";
pub const PLAN_NAMES: &str = "plan_names";

fn decode(r: crate::store::Record) -> Result<RecoveryPlan, ServiceError> {
    let version = r.version;
    let mut p: RecoveryPlan = r.value.decode().map_err(|e| {
        ServiceError::Store(StoreError::Unexpected(anyhow::anyhow!("plan {} does not decode: {e}", r.key)))
    })?;
    p.version = version;
    Ok(p)
}

fn put(p: &RecoveryPlan, expect: Expect) -> WriteOp {
    WriteOp::Put { table: RECOVERY_PLANS.into(), key: p.id.clone(), value: crate::store::Json::encode(p), expect }
}

fn name_op(name: &str, id: &str, expect: Expect) -> WriteOp {
    WriteOp::Put {
        table: PLAN_NAMES.into(),
        key: normalize_name(name),
        value: crate::store::Json::encode(&serde_json::json!(id)),
        expect,
    }
}

impl Services {
    /// Every plan, by name.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list_plans(&self) -> Result<Vec<RecoveryPlan>, ServiceError> {
        let mut plans: Vec<RecoveryPlan> =
            self.store.list(RECOVERY_PLANS, "").await?.into_iter().map(decode).collect::<Result<_, _>>()?;
        plans.sort_by_key(|p| p.name.to_lowercase());
        Ok(plans)
    }

    /// One plan.
    ///
    /// # Errors
    /// [`ServiceError::PlanNotFound`].
    pub async fn get_plan(&self, id: &str) -> Result<RecoveryPlan, ServiceError> {
        let r = self.store.get(RECOVERY_PLANS, id).await?.ok_or_else(|| ServiceError::PlanNotFound(id.to_owned()))?;
        decode(r)
    }

    /// The waves of `input`, derived from the `dr:wave` tags when it gives none, checked against the estate.
    async fn resolve_plan(&self, input: &RecoveryPlanInput) -> Result<Vec<Wave>, ServiceError> {
        let mut known = HashSet::new();
        let mut pairs = Vec::new();
        let mut configured = HashSet::new();
        for g in unique(&input.protection_group_ids) {
            match self.get_group(g).await {
                Ok(_) => {}
                // Reported by validation as a group that does not exist.
                Err(ServiceError::GroupNotFound(_)) => continue,
                Err(e) => return Err(e),
            }
            known.insert(g.clone());
            pairs.extend(repo::list_pairs(&*self.store, Some(g)).await?);
            for s in self.launch_config_status(g).await? {
                if s.state == LaunchConfigState::Configured {
                    configured.insert(s.pair_id);
                }
            }
        }
        if input.description.chars().count() > domain::group::MAX_DESCRIPTION_CHARS {
            return Err(ServiceError::Invalid(vec![domain::FieldError::new(
                "description",
                "TOO_LONG",
                format!("the description has at most {} characters", domain::group::MAX_DESCRIPTION_CHARS),
            )]));
        }
        let waves = input.waves.clone().unwrap_or_else(|| derive_waves(&pairs));
        let ctx = PlanContext { pairs: &pairs, known_groups: &known, configured: &configured };
        validate_plan(&input.name, &input.protection_group_ids, &waves, input.rto_target_minutes, &ctx)
            .map_err(ServiceError::Invalid)?;
        Ok(waves)
    }

    /// Creates a plan.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] with every problem; [`ServiceError::DuplicateName`].
    pub async fn create_plan(&self, who: &Principal, input: &RecoveryPlanInput) -> Result<RecoveryPlan, ServiceError> {
        let waves = self.resolve_plan(input).await?;
        let now = self.wall_clock.now_millis();
        let mut plan = RecoveryPlan {
            id: format!("plan-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
            name: input.name.trim().to_owned(),
            description: input.description.trim().to_owned(),
            protection_group_ids: input.protection_group_ids.clone(),
            waves,
            rto_target_minutes: input.rto_target_minutes,
            created_at: now,
            created_by: who.subject.clone(),
            updated_at: now,
            version: 1,
        };
        match self.store.transact(vec![name_op(&plan.name, &plan.id, Expect::Absent), put(&plan, Expect::Absent)]).await
        {
            Err(StoreError::Conflict { table, .. }) if table == PLAN_NAMES => {
                return Err(ServiceError::DuplicateName(plan.name));
            }
            r => plan.version = r?[1],
        }
        self.audit
            .record_or_log(
                who,
                AuditEvent::ok("recovery_plan.create", plan.id.as_str(), serde_json::json!({ "after": plan })),
            )
            .await;
        Ok(plan)
    }

    /// Replaces a plan's name, groups and waves.
    ///
    /// # Errors
    /// As [`Services::create_plan`], plus [`ServiceError::PlanNotFound`] and [`ServiceError::VersionConflict`].
    pub async fn update_plan(
        &self,
        who: &Principal,
        id: &str,
        input: &RecoveryPlanInput,
        expected_version: Option<u64>,
    ) -> Result<RecoveryPlan, ServiceError> {
        let current = self.get_plan(id).await?;
        if let Some(expected) = expected_version
            && expected != current.version
        {
            return Err(ServiceError::VersionConflict { expected, actual: Some(current.version) });
        }
        let waves = self.resolve_plan(input).await?;
        let mut plan = RecoveryPlan {
            name: input.name.trim().to_owned(),
            description: input.description.trim().to_owned(),
            protection_group_ids: input.protection_group_ids.clone(),
            waves,
            rto_target_minutes: input.rto_target_minutes,
            updated_at: self.wall_clock.now_millis(),
            ..current.clone()
        };
        let mut ops = Vec::new();
        if normalize_name(&plan.name) != normalize_name(&current.name) {
            ops.push(name_op(&plan.name, id, Expect::Absent));
            ops.push(WriteOp::Delete {
                table: PLAN_NAMES.into(),
                key: normalize_name(&current.name),
                expect: Expect::Any,
            });
        }
        ops.push(put(&plan, Expect::Version(current.version)));
        match self.store.transact(ops).await {
            Err(StoreError::Conflict { table, .. }) if table == PLAN_NAMES => {
                return Err(ServiceError::DuplicateName(plan.name));
            }
            Err(StoreError::Conflict { actual, .. }) => {
                return Err(ServiceError::VersionConflict { expected: current.version, actual });
            }
            r => plan.version = *r?.last().unwrap_or(&current.version),
        }
        let details = serde_json::json!({ "before": current, "after": plan });
        self.audit.record_or_log(who, AuditEvent::ok("recovery_plan.update", id, details)).await;
        Ok(plan)
    }

    /// Deletes a plan.
    ///
    /// # Errors
    /// [`ServiceError::PlanNotFound`], [`ServiceError::VersionConflict`].
    pub async fn delete_plan(
        &self,
        who: &Principal,
        id: &str,
        expected_version: Option<u64>,
    ) -> Result<(), ServiceError> {
        let current = self.get_plan(id).await?;
        let expect = Expect::Version(expected_version.unwrap_or(current.version));
        let ops = vec![
            WriteOp::Delete { table: PLAN_NAMES.into(), key: normalize_name(&current.name), expect: Expect::Any },
            WriteOp::Delete { table: RECOVERY_PLANS.into(), key: id.to_owned(), expect },
        ];
        self.store.transact(ops).await.map_err(|e| match e {
            StoreError::Conflict { actual, .. } => {
                ServiceError::VersionConflict { expected: expected_version.unwrap_or(current.version), actual }
            }
            e => e.into(),
        })?;
        self.audit
            .record_or_log(who, AuditEvent::ok("recovery_plan.delete", id, serde_json::json!({ "before": current })))
            .await;
        Ok(())
    }
}

fn unique(ids: &[ProtectionGroupId]) -> Vec<&ProtectionGroupId> {
    let mut seen = HashSet::new();
    ids.iter().filter(|g| seen.insert(*g)).collect()
}
