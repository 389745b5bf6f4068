//! The use cases: protection groups, matching, pairs and their validation.
//!
//! REST handlers and console server functions parse their input, call one method here and map the
//! result. Every method reads the estate through the cloud port and persists through the store port; a
//! write either lands whole (one store transaction) or not at all.

use crate::audit::{AuditEvent, AuditLog};
use crate::auth::{Auth, AuthSettings};
use crate::clock::Clock;
use crate::cloud::{Cloud, CloudError, CloudInfo, KnownAccountRegion};
use crate::repo;
use crate::store::{Expect, Store, StoreError, WriteOp};
use domain::ErrorCode;
use domain::auth::Principal;
use domain::error::FieldError;
use domain::estate::{AccountRegion, EstateOverview, SourceServer, summarize_slice};
pub use domain::group::{AcceptOutcome, GroupMatch, GroupSummary};
use domain::group::{
    GroupSpec, InstancePair, PairOrigin, PairRequest, ProtectionGroup, ProtectionGroupInput, SourceSelection,
};
use domain::ids::{InstanceId, PairId, ProtectionGroupId, SourceServerId};
use domain::matching::{Finding, MatchReport, Severity, SourceNameKey, match_estate, pair_findings};
use domain::validation::{DrView, ValidationReport, validate_ips, validate_pairs};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Most pairs one request may accept.
pub const MAX_PAIRS_PER_REQUEST: usize = 10_000;

/// Why a pair request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairRejection {
    pub source_server_id: SourceServerId,
    pub standby_instance_id: InstanceId,
    /// Each reason has a stable code and a message.
    pub reasons: Vec<FieldError>,
}

/// What went wrong in a use case.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the request has invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("protection group {0} does not exist")]
    GroupNotFound(ProtectionGroupId),
    #[error("pair {0} does not exist in this protection group")]
    PairNotFound(PairId),
    #[error("the record changed since it was read (expected version {expected}, found {actual:?}); reload and retry")]
    VersionConflict { expected: u64, actual: Option<u64> },
    #[error("a protection group named {} already exists", domain::text::quoted(.0))]
    DuplicateName(String),
    #[error("{} pair(s) cannot be accepted; nothing was written", .0.len())]
    PairRejected(Vec<PairRejection>),
    #[error(
        "Roundtrip changed the DRS launch configuration of {0} source server(s) in this group; roll the configuration back before deleting it, so nothing is left pointing at standbys"
    )]
    LaunchConfigurationApplied(usize),
    #[error("cloud call failed: {0}")]
    Cloud(#[from] CloudError),
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
    #[error("sign in first")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("the user name or password is wrong")]
    LoginFailed,
    #[error("too many failed sign-ins; wait {retry_after_secs} seconds and retry")]
    LoginThrottled { retry_after_secs: u64 },
    #[error("change your one-time password first")]
    PasswordChangeRequired,
    #[error("user {} does not exist", domain::text::quoted(.0))]
    UserNotFound(String),
    #[error("a user named {} already exists", domain::text::quoted(.0))]
    DuplicateUser(String),
    #[error("API token {0:?} does not exist")]
    TokenNotFound(String),
    #[error("this share link does not exist, was revoked or has expired")]
    ShareLinkNotFound,
    #[error("this would leave no enabled admin; make another user admin first")]
    LastAdmin,
    #[error("{0}")]
    ApprovalRefused(#[from] domain::auth::ApprovalRefusal),
    #[error("recovery plan {0} does not exist")]
    PlanNotFound(String),
    #[error("execution {0} does not exist")]
    ExecutionNotFound(String),
    #[error("no webhook {0}")]
    WebhookNotFound(String),
    #[error("recovery plan(s) {} use this; change or delete them first", .0.join(", "))]
    InRecoveryPlan(Vec<String>),
    #[error("{0}")]
    NotAwaiting(#[from] domain::execution::NotAwaiting),
}

impl ServiceError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(_) => ErrorCode::ValidationFailed,
            Self::GroupNotFound(_) => ErrorCode::ProtectionGroupNotFound,
            Self::PairNotFound(_) => ErrorCode::PairNotFound,
            Self::VersionConflict { .. } => ErrorCode::VersionConflict,
            Self::DuplicateName(_) => ErrorCode::DuplicateName,
            Self::PairRejected(_) => ErrorCode::PairRejected,
            Self::LaunchConfigurationApplied(_) => ErrorCode::LaunchConfigurationApplied,
            Self::Cloud(CloudError::Throttled { .. }) => ErrorCode::Throttled,
            Self::Cloud(CloudError::Unavailable { .. }) => ErrorCode::CloudError,
            Self::Cloud(_) => ErrorCode::CloudError,
            Self::Store(StoreError::Conflict { .. }) => ErrorCode::VersionConflict,
            Self::Store(_) => ErrorCode::Internal,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::LoginFailed => ErrorCode::LoginFailed,
            Self::LoginThrottled { .. } => ErrorCode::LoginThrottled,
            Self::PasswordChangeRequired => ErrorCode::PasswordChangeRequired,
            Self::UserNotFound(_) => ErrorCode::UserNotFound,
            Self::DuplicateUser(_) => ErrorCode::DuplicateUser,
            Self::TokenNotFound(_) => ErrorCode::TokenNotFound,
            Self::ShareLinkNotFound => ErrorCode::ShareLinkNotFound,
            Self::LastAdmin => ErrorCode::LastAdmin,
            Self::ApprovalRefused(domain::auth::ApprovalRefusal::SelfApproval { .. }) => ErrorCode::SelfApproval,
            Self::ApprovalRefused(domain::auth::ApprovalRefusal::PasswordChangeRequired { .. }) => {
                ErrorCode::PasswordChangeRequired
            }
            Self::ApprovalRefused(_) => ErrorCode::Forbidden,
            Self::PlanNotFound(_) => ErrorCode::RecoveryPlanNotFound,
            Self::ExecutionNotFound(_) => ErrorCode::ExecutionNotFound,
            Self::WebhookNotFound(_) => ErrorCode::WebhookNotFound,
            Self::InRecoveryPlan(_) => ErrorCode::InRecoveryPlan,
            Self::NotAwaiting(domain::execution::NotAwaiting::Approval { .. }) => ErrorCode::NotAwaitingApproval,
            Self::NotAwaiting(domain::execution::NotAwaiting::Gate { .. }) => ErrorCode::NotAwaitingGate,
            Self::NotAwaiting(domain::execution::NotAwaiting::Ended { .. }) => ErrorCode::ExecutionEnded,
        }
    }

    /// Structured details for the client (never internals).
    pub fn details(&self) -> serde_json::Value {
        match self {
            Self::Invalid(fields) => serde_json::json!({ "fields": fields }),
            Self::GroupNotFound(id) => serde_json::json!({ "protection_group_id": id }),
            Self::PairNotFound(id) => serde_json::json!({ "pair_id": id }),
            Self::VersionConflict { expected, actual } => serde_json::json!({ "expected": expected, "actual": actual }),
            Self::DuplicateName(name) => serde_json::json!({ "name": name }),
            Self::PairRejected(rejections) => serde_json::json!({ "rejections": rejections }),
            Self::LaunchConfigurationApplied(n) => serde_json::json!({ "servers": n }),
            Self::LoginThrottled { retry_after_secs } => serde_json::json!({ "retry_after_secs": retry_after_secs }),
            Self::UserNotFound(u) | Self::DuplicateUser(u) => serde_json::json!({ "username": u }),
            Self::TokenNotFound(id) => serde_json::json!({ "token_id": id }),
            Self::PlanNotFound(id) => serde_json::json!({ "recovery_plan_id": id }),
            Self::ExecutionNotFound(id) => serde_json::json!({ "execution_id": id }),
            Self::WebhookNotFound(id) => serde_json::json!({ "webhook_id": id }),
            Self::InRecoveryPlan(plans) => serde_json::json!({ "recovery_plans": plans }),
            Self::ApprovalRefused(r) => serde_json::json!({ "reason": r.code() }),
            Self::NotAwaiting(n) => serde_json::json!({ "phase": n.phase().as_str() }),
            _ => serde_json::json!({}),
        }
    }

    /// A message safe to show a client: internal failures are not described.
    pub fn public_message(&self) -> String {
        match self {
            Self::Store(StoreError::Conflict { .. }) => {
                "the record changed while it was being written; reload and retry".into()
            }
            Self::Store(_) => "the store failed; the server log has the cause".into(),
            Self::Cloud(CloudError::Unexpected(_)) => "the cloud call failed; the server log has the cause".into(),
            other => other.to_string(),
        }
    }
}

/// Matching for explicit accounts and regions, without a stored group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExplicitMatch {
    pub primary: AccountRegion,
    pub dr: AccountRegion,
    pub selection: SourceSelection,
    pub source_name_key: SourceNameKey,
}

/// Tunables of the engine.
#[derive(Debug, Clone, Copy)]
pub struct EngineSettings {
    /// Cloud calls in flight at once per operation.
    pub concurrency: usize,
    pub retry: crate::retry::RetryPolicy,
    /// How long volumes a launch swapped out of a standby are kept before they may be deleted.
    pub swapped_volume_retention_days: u32,
    /// How long a runner's lease on an execution lasts without renewal (wall-clock ms).
    pub lease_ms: i64,
    /// How long a requested recovery waits for approval.
    pub approval_ttl_minutes: u32,
    /// No job is polled sooner than this after it started (on the engine's clock; 0 polls at once).
    pub min_launch_ms: i64,
    /// No reversed replication is polled sooner than this after it was reversed (on the engine's clock).
    pub min_reverse_sync_ms: i64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            concurrency: 8,
            retry: crate::retry::RetryPolicy::default(),
            swapped_volume_retention_days: 14,
            lease_ms: 60_000,
            approval_ttl_minutes: 60,
            min_launch_ms: domain::execution::MIN_LAUNCH_MS,
            min_reverse_sync_ms: domain::execution::MIN_REVERSE_SYNC_MS,
        }
    }
}

/// Everything the edges need, behind ports chosen at start-up.
#[derive(Clone)]
pub struct Services {
    pub cloud: Arc<dyn Cloud>,
    pub store: Arc<dyn Store>,
    /// The estate's clock (virtual in the simulated estate): times of estate facts.
    pub clock: Arc<dyn Clock>,
    /// Wall-clock time: sessions, tokens, share links and the audit trail.
    pub wall_clock: Arc<dyn Clock>,
    pub settings: EngineSettings,
    pub audit: AuditLog,
    pub auth: Auth,
    /// What this process counted (cloud calls, HTTP latency, webhook deliveries).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where execution and readiness notices go (webhooks), once started.
    pub notifier: crate::notify::Notifier,
    /// The runner's decoded copy of each execution it steps, used while the stored version is unchanged.
    pub(crate) runner_copies: crate::executions::RunnerCopies,
    /// Executions as the status stream and status reads serve them, shared by their readers.
    pub(crate) shared_views: crate::executions::SharedViews,
}

struct DrEstate {
    sources: Vec<SourceServer>,
    instances: Vec<domain::estate::Ec2Instance>,
}

impl Services {
    /// Wires the ports, with wall-clock time from the system and default sign-in settings.
    pub fn new(cloud: Arc<dyn Cloud>, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self::with(cloud, store, clock, Arc::new(crate::clock::SystemClock), AuthSettings::default())
    }

    /// Wires the ports with an explicit wall clock and sign-in settings.
    pub fn with(
        cloud: Arc<dyn Cloud>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        wall_clock: Arc<dyn Clock>,
        auth_settings: AuthSettings,
    ) -> Self {
        let audit = AuditLog::new(store.clone(), wall_clock.clone());
        let auth = Auth::new(store.clone(), wall_clock.clone(), audit.clone(), auth_settings);
        let metrics = Arc::new(crate::metrics::Metrics::default());
        // Every cloud call is counted, whoever makes it.
        let cloud: Arc<dyn Cloud> = Arc::new(crate::metrics::Metered::new(cloud, metrics.clone()));
        Self {
            cloud,
            store,
            clock,
            wall_clock,
            settings: EngineSettings::default(),
            audit,
            auth,
            metrics,
            notifier: crate::notify::Notifier::default(),
            runner_copies: crate::executions::RunnerCopies::default(),
            shared_views: crate::executions::SharedViews::default(),
        }
    }

    /// Tries every read Roundtrip needs in every account and region ("test access").
    pub async fn check_cloud_access(&self) -> Vec<domain::estate::AccessCheck> {
        crate::access::check_access(self.cloud.as_ref()).await
    }

    /// What the estate is.
    pub fn cloud_info(&self) -> CloudInfo {
        self.cloud.info()
    }

    /// Accounts, regions, source servers by replication state and standbys by state.
    ///
    /// # Errors
    /// When the accounts cannot be listed; a read that fails in one account and region is reported in its
    /// slice (`unreachable`) instead.
    pub async fn overview(&self) -> Result<EstateOverview, ServiceError> {
        let info = self.cloud.info();
        let mut slices = Vec::new();
        for known in self.cloud.list_account_regions().await? {
            let mut unreachable = Vec::new();
            let instances = self.cloud.describe_instances(&known.at).await.unwrap_or_else(|e| {
                unreachable.push(format!("EC2: {e}"));
                Vec::new()
            });
            let sources = self.cloud.describe_source_servers(&known.at).await.unwrap_or_else(|e| {
                unreachable.push(format!("DRS: {e}"));
                Vec::new()
            });
            let mut slice =
                summarize_slice(&known.at.account_id, &known.account_name, &known.at.region, &instances, &sources);
            slice.unreachable = unreachable;
            slices.push(slice);
        }
        Ok(EstateOverview { cloud: info.kind, description: info.description, slices })
    }

    /// The accounts and regions Roundtrip can reach.
    ///
    /// # Errors
    /// Cloud failures.
    pub async fn account_regions(&self) -> Result<Vec<KnownAccountRegion>, ServiceError> {
        Ok(self.cloud.list_account_regions().await?)
    }

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

    async fn check_reachable(&self, spec: &GroupSpec) -> Result<(), ServiceError> {
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

    async fn dr_estate(&self, dr: &AccountRegion) -> Result<DrEstate, ServiceError> {
        let (sources, instances) =
            tokio::try_join!(self.cloud.describe_source_servers(dr), self.cloud.describe_instances(dr))?;
        Ok(DrEstate { sources, instances })
    }

    /// Runs Name-tag matching for a stored group and returns it with the pairs already accepted.
    ///
    /// # Errors
    /// [`ServiceError::GroupNotFound`], cloud failures.
    pub async fn match_group(&self, id: &ProtectionGroupId) -> Result<GroupMatch, ServiceError> {
        Ok(self.load_match(id).await?.0)
    }

    /// The match of a group, with the DR estate it was computed from and every group's pairs.
    async fn load_match(
        &self,
        id: &ProtectionGroupId,
    ) -> Result<(GroupMatch, DrEstate, Vec<InstancePair>), ServiceError> {
        let group = self.get_group(id).await?;
        let estate = self.dr_estate(&group.dr).await?;
        let protected: Vec<SourceServer> = estate.sources.iter().filter(|s| group.protects(s)).cloned().collect();
        let report = match_estate(&protected, &estate.instances, group.source_name_key);
        let all_pairs = repo::list_pairs(&*self.store, None).await?;
        let accepted = all_pairs.iter().filter(|p| &p.protection_group_id == id).cloned().collect();
        Ok((GroupMatch { group, report, accepted }, estate, all_pairs))
    }

    /// Runs Name-tag matching for explicit accounts and regions.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] for unreachable accounts, cloud failures.
    pub async fn match_explicit(&self, m: &ExplicitMatch) -> Result<MatchReport, ServiceError> {
        let spec = GroupSpec {
            name: String::new(),
            description: String::new(),
            primary: m.primary.clone(),
            dr: m.dr.clone(),
            selection: m.selection.clone(),
            source_name_key: m.source_name_key,
            launch_disposition: Default::default(),
            lag_threshold_seconds: domain::group::DEFAULT_LAG_THRESHOLD_SECONDS,
        };
        self.check_reachable(&spec).await?;
        let estate = self.dr_estate(&spec.dr).await?;
        let protected: Vec<SourceServer> = estate.sources.into_iter().filter(|s| spec.protects(s)).collect();
        Ok(match_estate(&protected, &estate.instances, m.source_name_key))
    }

    /// The pairs of a group.
    ///
    /// # Errors
    /// [`ServiceError::GroupNotFound`].
    pub async fn list_pairs(&self, id: &ProtectionGroupId) -> Result<Vec<InstancePair>, ServiceError> {
        self.get_group(id).await?;
        Ok(repo::list_pairs(&*self.store, Some(id)).await?)
    }

    /// Accepts pairs into a group, all or none. A request equal to a proposed pair of the current match
    /// report is recorded as matched; any other is validated the same way and recorded as manual. A request
    /// already stored exactly so is left unchanged.
    ///
    /// # Errors
    /// [`ServiceError::PairRejected`] listing every refused request and why; nothing is written then.
    pub async fn accept_pairs(
        &self,
        id: &ProtectionGroupId,
        requests: &[PairRequest],
        who: &Principal,
    ) -> Result<AcceptOutcome, ServiceError> {
        let actor = who.actor();
        let actor = actor.as_str();
        if requests.is_empty() || requests.len() > MAX_PAIRS_PER_REQUEST {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "pairs",
                if requests.is_empty() { "REQUIRED" } else { "TOO_MANY" },
                format!("send 1 to {MAX_PAIRS_PER_REQUEST} pairs"),
            )]));
        }
        let (m, estate, all_pairs) = self.load_match(id).await?;
        let ctx = PairContext::new(&m, &estate, &all_pairs);
        let mut seen_sources = HashSet::new();
        let mut seen_standbys = HashSet::new();
        let mut rejections = Vec::new();
        let mut ops = Vec::new();
        let mut accepted = Vec::new();
        let mut unchanged = 0;
        let now = self.clock.now_millis();
        for req in requests {
            let mut reasons = ctx.check(req, true);
            if !seen_sources.insert(&req.source_server_id) {
                reasons.push(FieldError::new(
                    "source_server_id",
                    "SOURCE_LISTED_TWICE",
                    "this source server appears twice in the request",
                ));
            }
            if !seen_standbys.insert(&req.standby_instance_id) {
                reasons.push(FieldError::new(
                    "standby_instance_id",
                    "STANDBY_LISTED_TWICE",
                    "this standby appears twice in the request",
                ));
            }
            if !reasons.is_empty() {
                rejections.push(PairRejection {
                    source_server_id: req.source_server_id.clone(),
                    standby_instance_id: req.standby_instance_id.clone(),
                    reasons,
                });
                continue;
            }
            // `check` refused a stored pair with another standby, so a stored pair here is this very pair.
            if ctx.existing.contains_key(&req.source_server_id) {
                unchanged += 1;
                continue;
            }
            let origin = if ctx.proposed.contains(&(&req.source_server_id, &req.standby_instance_id)) {
                PairOrigin::Matched
            } else {
                PairOrigin::Manual
            };
            let pair = ctx.build(&m.group, req, origin, now, actor);
            ops.push(repo::put_pair(&pair, Expect::Absent));
            ops.extend(repo::claim(&pair));
            accepted.push(pair);
        }
        if !rejections.is_empty() {
            return Err(ServiceError::PairRejected(rejections));
        }
        if !ops.is_empty() {
            // The group must not change or vanish meanwhile, and the claims keep pairs 1:1 under races.
            ops.insert(0, repo::check_group(&m.group));
            self.store.transact(ops).await.map_err(concurrent_change)?;
            for p in &mut accepted {
                p.version = 1;
            }
        }
        tracing::info!(protection_group_id = %id, accepted = accepted.len(), unchanged, actor, "pairs accepted");
        if !accepted.is_empty() {
            let after: Vec<_> = accepted
                .iter()
                .map(|p| serde_json::json!({ "pair_id": p.id, "source_server_id": p.source_server_id, "standby_instance_id": p.standby_instance_id, "origin": p.origin }))
                .collect();
            let details = serde_json::json!({ "after": after, "unchanged": unchanged });
            self.audit.record_or_log(who, AuditEvent::ok("pairs.accept", id.as_str(), details)).await;
        }
        Ok(AcceptOutcome { accepted, unchanged })
    }

    /// Sets one pair by hand (manual override): the pair of `pair_id`'s source server now points at
    /// `standby`. Validated like an accepted pair and recorded as manual.
    ///
    /// # Errors
    /// [`ServiceError::PairRejected`], [`ServiceError::VersionConflict`], [`ServiceError::GroupNotFound`].
    pub async fn set_pair(
        &self,
        id: &ProtectionGroupId,
        pair_id: &PairId,
        standby: &InstanceId,
        expected_version: Option<u64>,
        who: &Principal,
    ) -> Result<InstancePair, ServiceError> {
        let actor = who.actor();
        let actor = actor.as_str();
        let (m, estate, all_pairs) = self.load_match(id).await?;
        let source = SourceServerId::parse(&format!("s-{}", &pair_id.as_str()[5..]))
            .map_err(|e| ServiceError::Invalid(vec![FieldError::new("pair_id", e.code, e.message)]))?;
        let req = PairRequest { source_server_id: source, standby_instance_id: standby.clone() };
        let ctx = PairContext::new(&m, &estate, &all_pairs);
        let existing = ctx.existing.get(&req.source_server_id).copied();
        match (expected_version, existing) {
            (Some(expected), Some(p)) => check_version(Some(expected), p.version)?,
            // The client read a pair that is gone now: refuse rather than create one it did not see.
            (Some(expected), None) => return Err(ServiceError::VersionConflict { expected, actual: None }),
            (None, _) => {}
        }
        let reasons = ctx.check(&req, false);
        if !reasons.is_empty() {
            return Err(ServiceError::PairRejected(vec![PairRejection {
                source_server_id: req.source_server_id,
                standby_instance_id: req.standby_instance_id,
                reasons,
            }]));
        }
        let mut pair = ctx.build(&m.group, &req, PairOrigin::Manual, self.clock.now_millis(), actor);
        let expect = existing.map_or(Expect::Absent, |p| Expect::Version(p.version));
        let mut ops = vec![repo::check_group(&m.group), repo::put_pair(&pair, expect)];
        match existing {
            None => ops.extend(repo::claim(&pair)),
            Some(old) if old.standby_instance_id != pair.standby_instance_id => {
                ops.push(repo::release_standby(&old.standby_instance_id));
                ops.push(repo::claim_standby(&pair));
            }
            Some(_) => {}
        }
        let v = self.store.transact(ops).await.map_err(concurrent_change)?;
        pair.version = v[1];
        tracing::info!(protection_group_id = %id, pair_id = %pair.id, standby = %standby, actor, "pair set by hand");
        let details = serde_json::json!({
            "protection_group_id": id,
            "before": existing.map(|p| &p.standby_instance_id),
            "after": pair.standby_instance_id,
        });
        self.audit.record_or_log(who, AuditEvent::ok("pair.set", pair.id.as_str(), details)).await;
        Ok(pair)
    }

    /// Removes one pair.
    ///
    /// # Errors
    /// [`ServiceError::PairNotFound`], [`ServiceError::VersionConflict`].
    pub async fn delete_pair(
        &self,
        who: &Principal,
        id: &ProtectionGroupId,
        pair_id: &PairId,
        expected_version: Option<u64>,
    ) -> Result<(), ServiceError> {
        self.get_group(id).await?;
        let rec = self
            .store
            .get(repo::INSTANCE_PAIRS, &repo::pair_key(id, pair_id))
            .await?
            .ok_or_else(|| ServiceError::PairNotFound(pair_id.clone()))?;
        let using: Vec<String> = self
            .list_plans()
            .await?
            .into_iter()
            .filter(|p| p.waves.iter().any(|w| w.pair_ids.contains(pair_id)))
            .map(|p| p.name)
            .collect();
        if !using.is_empty() {
            return Err(ServiceError::InRecoveryPlan(using));
        }
        check_version(expected_version, rec.version)?;
        let source = format!("s-{}", &pair_id.as_str()[5..]);
        if self.store.get(repo::LAUNCH_CONFIG_BACKUPS, &format!("{id}/{source}")).await?.is_some() {
            return Err(ServiceError::LaunchConfigurationApplied(1));
        }
        let pair: InstancePair = rec
            .value
            .decode()
            .map_err(|e| StoreError::Unexpected(anyhow::anyhow!("pair {pair_id} does not decode: {e}")))?;
        let mut ops = vec![repo::delete_pair(&pair, Expect::Version(rec.version))];
        ops.extend(repo::release(&pair));
        self.store.transact(ops).await.map_err(|e| match e {
            StoreError::Conflict { actual, .. } => ServiceError::VersionConflict { expected: rec.version, actual },
            e => e.into(),
        })?;
        let details = serde_json::json!({
            "protection_group_id": id,
            "before": { "source_server_id": pair.source_server_id, "standby_instance_id": pair.standby_instance_id },
        });
        self.audit.record_or_log(who, AuditEvent::ok("pair.delete", pair_id.as_str(), details)).await;
        Ok(())
    }

    async fn dr_view_inputs(
        &self,
        id: &ProtectionGroupId,
    ) -> Result<(Vec<InstancePair>, DrEstate, Vec<domain::estate::Subnet>, Vec<InstancePair>), ServiceError> {
        let group = self.get_group(id).await?;
        let estate = self.dr_estate(&group.dr).await?;
        let subnets = self.cloud.describe_subnets(&group.dr).await?;
        let all = repo::list_pairs(&*self.store, None).await?;
        let mine: Vec<InstancePair> = all.iter().filter(|p| &p.protection_group_id == id).cloned().collect();
        let dr_ids: HashSet<&InstanceId> = estate.instances.iter().map(|i| &i.instance_id).collect();
        let in_dr: Vec<InstancePair> = all.into_iter().filter(|p| dr_ids.contains(&p.standby_instance_id)).collect();
        Ok((mine, estate, subnets, in_dr))
    }

    /// Checks a group's stored pairs against the estate now.
    ///
    /// # Errors
    /// [`ServiceError::GroupNotFound`], cloud failures.
    pub async fn validate_pairs(&self, id: &ProtectionGroupId) -> Result<ValidationReport, ServiceError> {
        let (mine, estate, subnets, in_dr) = self.dr_view_inputs(id).await?;
        let view =
            DrView { sources: &estate.sources, instances: &estate.instances, subnets: &subnets, all_pairs: &in_dr };
        Ok(validate_pairs(&mine, &view))
    }

    /// Checks only the private IPs of a group's stored pairs.
    ///
    /// # Errors
    /// [`ServiceError::GroupNotFound`], cloud failures.
    pub async fn validate_ips(&self, id: &ProtectionGroupId) -> Result<ValidationReport, ServiceError> {
        let (mine, estate, subnets, in_dr) = self.dr_view_inputs(id).await?;
        let view =
            DrView { sources: &estate.sources, instances: &estate.instances, subnets: &subnets, all_pairs: &in_dr };
        Ok(validate_ips(&mine, &view))
    }
}

/// A transaction lost a race with another writer: nothing was written.
fn concurrent_change(e: StoreError) -> ServiceError {
    match e {
        StoreError::Conflict { actual, table, .. } => {
            tracing::info!(table, "a pair write lost a race; nothing was written");
            ServiceError::VersionConflict { expected: 0, actual }
        }
        e => e.into(),
    }
}

fn name_claim(name: &str, id: &ProtectionGroupId, expect: Expect) -> WriteOp {
    WriteOp::Put {
        table: repo::GROUP_NAMES.into(),
        key: repo::name_key(name),
        value: crate::store::Json::encode(&serde_json::json!(id)),
        expect,
    }
}

fn check_version(expected: Option<u64>, actual: u64) -> Result<(), ServiceError> {
    match expected {
        Some(e) if e != actual => Err(ServiceError::VersionConflict { expected: e, actual: Some(actual) }),
        _ => Ok(()),
    }
}

/// What one group's pair checks look at.
struct PairContext<'a> {
    sources: HashMap<&'a SourceServerId, &'a SourceServer>,
    protected: HashSet<&'a SourceServerId>,
    instances: HashMap<&'a InstanceId, &'a domain::estate::Ec2Instance>,
    /// This group's stored pairs, by source server.
    existing: HashMap<&'a SourceServerId, &'a InstancePair>,
    /// Every group's standbys in use, with the pair using them.
    standby_users: HashMap<&'a InstanceId, &'a InstancePair>,
    /// Pairs of other groups, by source server.
    source_elsewhere: HashMap<&'a SourceServerId, &'a InstancePair>,
    proposed: HashSet<(&'a SourceServerId, &'a InstanceId)>,
    key: SourceNameKey,
    group: ProtectionGroupId,
}

impl<'a> PairContext<'a> {
    fn new(m: &'a GroupMatch, estate: &'a DrEstate, all_pairs: &'a [InstancePair]) -> Self {
        Self {
            sources: estate.sources.iter().map(|s| (&s.source_server_id, s)).collect(),
            protected: estate.sources.iter().filter(|s| m.group.protects(s)).map(|s| &s.source_server_id).collect(),
            instances: estate.instances.iter().map(|i| (&i.instance_id, i)).collect(),
            existing: m.accepted.iter().map(|p| (&p.source_server_id, p)).collect(),
            standby_users: all_pairs.iter().map(|p| (&p.standby_instance_id, p)).collect(),
            source_elsewhere: all_pairs
                .iter()
                .filter(|p| p.protection_group_id != m.group.id)
                .map(|p| (&p.source_server_id, p))
                .collect(),
            proposed: m.report.pairs.iter().map(|p| (&p.source_server_id, &p.standby_instance_id)).collect(),
            key: m.group.source_name_key,
            group: m.group.id.clone(),
        }
    }

    /// Every reason the request cannot be stored; empty when it can. Readiness problems an operator can
    /// fix later (a running standby, replication not continuous) do not refuse a pair.
    fn check(&self, req: &PairRequest, accept_mode: bool) -> Vec<FieldError> {
        let mut out = Vec::new();
        let source = self.sources.get(&req.source_server_id);
        match source {
            None => out.push(FieldError::new(
                "source_server_id",
                "SOURCE_SERVER_NOT_FOUND",
                format!("DRS in the DR region has no source server {}", req.source_server_id),
            )),
            Some(_) if !self.protected.contains(&req.source_server_id) => out.push(FieldError::new(
                "source_server_id",
                "SOURCE_NOT_IN_GROUP",
                "this source server is not selected by the protection group",
            )),
            Some(_) => {}
        }
        let Some(standby) = self.instances.get(&req.standby_instance_id) else {
            out.push(FieldError::new(
                "standby_instance_id",
                "STANDBY_NOT_FOUND",
                format!("no instance {} in the DR account and region", req.standby_instance_id),
            ));
            return out;
        };
        if let Some(user) = self.standby_users.get(&req.standby_instance_id)
            && (user.source_server_id != req.source_server_id || user.protection_group_id != self.group)
        {
            out.push(FieldError::new(
                "standby_instance_id",
                "STANDBY_ALREADY_PAIRED",
                format!(
                    "{} is already the standby of {} (group {})",
                    standby.instance_id, user.source_server_id, user.protection_group_id
                ),
            ));
        }
        if let Some(other) = self.source_elsewhere.get(&req.source_server_id) {
            out.push(FieldError::new(
                "source_server_id",
                "SOURCE_PAIRED_IN_OTHER_GROUP",
                format!("this source server is already paired in protection group {}; a source server recovers into one standby", other.protection_group_id),
            ));
        }
        if accept_mode
            && let Some(p) = self.existing.get(&req.source_server_id)
            && p.standby_instance_id != req.standby_instance_id
        {
            out.push(FieldError::new(
                "source_server_id",
                "PAIR_EXISTS",
                "this source server is already paired with another standby; override the pair with PUT",
            ));
        }
        if let Some(s) = source {
            let fixable = ["STANDBY_NOT_STOPPED", "SOURCE_NOT_CONTINUOUS", "REPLICATION_LAGGING"];
            out.extend(
                pair_findings(s, standby)
                    .into_iter()
                    .filter(|f: &Finding| f.severity == Severity::Critical && !fixable.contains(&f.code.as_str()))
                    .map(|f| FieldError::new("standby_instance_id", &f.code, f.message)),
            );
        }
        out
    }

    fn build(
        &self,
        group: &ProtectionGroup,
        req: &PairRequest,
        origin: PairOrigin,
        now: i64,
        actor: &str,
    ) -> InstancePair {
        let s = self.sources[&req.source_server_id];
        let t = self.instances[&req.standby_instance_id];
        InstancePair {
            id: PairId::for_source(&req.source_server_id),
            protection_group_id: group.id.clone(),
            source_server_id: req.source_server_id.clone(),
            standby_instance_id: req.standby_instance_id.clone(),
            origin,
            source_name: self.key.source_name(s).unwrap_or_default().to_owned(),
            standby_name: t.name().unwrap_or_default().to_owned(),
            standby_private_ip: t.private_ip,
            standby_subnet_id: t.subnet_id.clone(),
            wave: s.wave().map(str::to_owned),
            accepted_at: now,
            accepted_by: actor.to_owned(),
            version: 0,
        }
    }
}
