//! The cloud port: what Roundtrip reads from and does to DRS and EC2.
//!
//! Implementations: the simulated estate (`sim`) and the AWS SDK adapter (`aws`). Nothing above this trait
//! sees an SDK type or error: adapters map vendor errors into [`CloudError`].

use async_trait::async_trait;
pub use domain::estate::KnownAccountRegion;
use domain::estate::{AccountRegion, Ec2Instance, SourceServer, Subnet};
use domain::ids::{InstanceId, SourceServerId};
use domain::launch::{LaunchConfiguration, LaunchConfigurationUpdate};
use domain::readiness::Quotas;
use domain::recovery::{AvailableVolume, DrsJob, JobLogItem, RecoveryInstance};
use serde::{Deserialize, Serialize};

/// Why a cloud call failed.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// The API asked us to slow down.
    #[error("throttled by the cloud API; retry after {retry_after_ms} ms")]
    Throttled { retry_after_ms: u64 },
    /// The caller lacks a permission.
    #[error("access denied: {message}")]
    AccessDenied { message: String },
    /// The service failed (HTTP 5xx); worth retrying.
    #[error("the cloud service failed: {message}")]
    Unavailable { message: String, retry_after_ms: Option<u64> },
    /// The API rejected the request as invalid.
    #[error("rejected by the cloud API: {message}")]
    Validation { message: String },
    /// The named resource does not exist.
    #[error("not found: {message}")]
    NotFound { message: String },
    /// The resource is busy, e.g. a source server already in an active job (`ConflictException`, 409).
    #[error("conflict: {message}")]
    Conflict { message: String, resource_id: Option<String> },
    /// A service quota would be exceeded (`ServiceQuotaExceededException`, HTTP 402).
    #[error("quota exceeded: {message}")]
    QuotaExceeded { message: String, quota: String },
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

tokio::task_local! {
    static ON_BEHALF_OF: String;
}

/// Runs `f` with its cloud calls attributed to `execution_id`: an adapter that assumes roles names the
/// session after it, so CloudTrail shows which execution made each call.
pub async fn on_behalf_of<T>(execution_id: &str, f: impl std::future::Future<Output = T>) -> T {
    ON_BEHALF_OF.scope(execution_id.to_owned(), f).await
}

/// The execution the current task works for, if any (see [`on_behalf_of`]).
pub fn current_execution() -> Option<String> {
    ON_BEHALF_OF.try_with(Clone::clone).ok()
}

/// What kind of estate this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudInfo {
    /// `simulated` or `aws`.
    pub kind: String,
    /// The scenario name, or the AWS partition.
    pub description: String,
}

/// An account Roundtrip works in, with how it is reached: configured in the settings, or registered at run
/// time by an admin. The External ID is a secret: never logged, never shown again after it is saved.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisteredAccount {
    pub account_id: domain::ids::AccountId,
    /// A friendly name shown in the console.
    pub name: String,
    /// The role assumed in this account; when absent, the base credentials are used as they are (the
    /// account Roundtrip runs in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The External ID the role's trust policy demands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The regions used in this account (source regions, DR regions).
    pub regions: Vec<domain::ids::Region>,
}

impl std::fmt::Debug for RegisteredAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredAccount")
            .field("account_id", &self.account_id)
            .field("name", &self.name)
            .field("role_arn", &self.role_arn)
            .field("external_id", &self.external_id.as_ref().map(|_| "***"))
            .field("regions", &self.regions)
            .finish()
    }
}

/// HTTP calls and attempts an SDK made on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportAttempts {
    /// Operations (each answered the caller once).
    pub calls: u64,
    /// HTTP attempts, retries included.
    pub attempts: u64,
    /// Attempts answered with throttling.
    pub throttled: u64,
}

/// DRS and EC2, per account and region.
///
/// Every list call returns the complete list: an implementation that talks to a paginated API MUST follow
/// every page before returning.
#[async_trait]
pub trait Cloud: Send + Sync {
    /// What this estate is.
    fn info(&self) -> CloudInfo;

    /// The accounts and regions Roundtrip can reach.
    ///
    /// # Errors
    /// Any [`CloudError`].
    async fn list_account_regions(&self) -> Result<Vec<KnownAccountRegion>, CloudError>;

    /// What the transport did below the port, when it retries on its own (the AWS SDK does): for the
    /// metrics.
    fn transport_attempts(&self) -> Option<TransportAttempts> {
        None
    }

    /// The accounts this cloud was configured with, and where each came from (`settings`, `estate`).
    fn configured_accounts(&self) -> Vec<domain::estate::CloudAccount> {
        Vec::new()
    }

    /// Replaces the accounts an admin registered at run time (in addition to the configured ones).
    ///
    /// # Errors
    /// MUST return [`CloudError::Validation`] when this cloud's accounts are fixed (the simulated estate's
    /// come from its scenario), or when a registered account repeats a configured one.
    fn set_registered_accounts(&self, accounts: Vec<RegisteredAccount>) -> Result<(), CloudError> {
        if accounts.is_empty() {
            return Ok(());
        }
        Err(CloudError::Validation {
            message: "this estate's accounts are fixed (the simulated estate's come from its scenario)".into(),
        })
    }

    /// The DRS request rate (per second) and burst the engine must pace its DRS calls to, when the cloud
    /// states one and does not pace them itself.
    fn drs_pace(&self) -> Option<(f64, u32)> {
        None
    }

    /// EC2 `DescribeInstances` in one account and region, terminated instances included.
    ///
    /// # Errors
    /// MUST return [`CloudError::AccessDenied`] for an account and region it cannot reach.
    async fn describe_instances(&self, at: &AccountRegion) -> Result<Vec<Ec2Instance>, CloudError>;

    /// EC2 `DescribeSubnets` in one account and region.
    ///
    /// # Errors
    /// As [`Cloud::describe_instances`].
    async fn describe_subnets(&self, at: &AccountRegion) -> Result<Vec<Subnet>, CloudError>;

    /// DRS `DescribeSourceServers` in one account and region (where DRS runs: the DR side).
    ///
    /// # Errors
    /// As [`Cloud::describe_instances`].
    async fn describe_source_servers(&self, at: &AccountRegion) -> Result<Vec<SourceServer>, CloudError>;

    /// EC2 `DescribeInstances` of the instances `ids` in one account and region (the ones that exist): what a
    /// poll of one wave asks, without listing the region.
    ///
    /// # Errors
    /// As [`Cloud::describe_instances`].
    async fn describe_instances_by_id(
        &self,
        at: &AccountRegion,
        ids: &[InstanceId],
    ) -> Result<Vec<Ec2Instance>, CloudError> {
        let wanted: std::collections::HashSet<&InstanceId> = ids.iter().collect();
        Ok(self.describe_instances(at).await?.into_iter().filter(|i| wanted.contains(&i.instance_id)).collect())
    }

    /// DRS `DescribeSourceServers` of the source servers `ids` in one account and region (the ones that exist).
    ///
    /// # Errors
    /// As [`Cloud::describe_instances`].
    async fn describe_source_servers_by_id(
        &self,
        at: &AccountRegion,
        ids: &[SourceServerId],
    ) -> Result<Vec<SourceServer>, CloudError> {
        let wanted: std::collections::HashSet<&SourceServerId> = ids.iter().collect();
        Ok(self
            .describe_source_servers(at)
            .await?
            .into_iter()
            .filter(|s| wanted.contains(&s.source_server_id))
            .collect())
    }

    /// DRS `GetLaunchConfiguration` for one source server.
    ///
    /// # Errors
    /// [`CloudError::NotFound`] for an unknown source server; throttling and service errors as they come.
    async fn get_launch_configuration(
        &self,
        at: &AccountRegion,
        source: &SourceServerId,
    ) -> Result<LaunchConfiguration, CloudError>;

    /// DRS `UpdateLaunchConfiguration`: writes the fields that are set and returns the whole configuration.
    ///
    /// # Errors
    /// MUST return [`CloudError::Validation`] with DRS's reason when DRS refuses the values (e.g. a launch-into
    /// instance while copy private IP is on); [`CloudError::Throttled`] when rate-limited.
    async fn update_launch_configuration(
        &self,
        at: &AccountRegion,
        update: &LaunchConfigurationUpdate,
    ) -> Result<LaunchConfiguration, CloudError>;

    /// Source servers taking part in a DRS job that is `PENDING` or `STARTED` (`DescribeJobs`).
    ///
    /// # Errors
    /// As [`Cloud::describe_instances`].
    async fn servers_in_active_jobs(&self, at: &AccountRegion) -> Result<Vec<SourceServerId>, CloudError>;

    /// The DRS quotas of one account and region (Service Quotas, or DRS's documented defaults).
    ///
    /// # Errors
    /// As [`Cloud::describe_instances`].
    async fn quotas(&self, at: &AccountRegion) -> Result<Quotas, CloudError>;

    /// `StartRecovery` for `servers` (at most 100, none in an active job). Never passes tags (§2.1).
    ///
    /// # Errors
    /// MUST return [`CloudError::Conflict`] naming a server already in an active job, and
    /// [`CloudError::QuotaExceeded`] beyond 100 servers per job, 20 active jobs or 500 servers in active jobs.
    async fn start_recovery(
        &self,
        at: &AccountRegion,
        servers: &[SourceServerId],
        is_drill: bool,
    ) -> Result<DrsJob, CloudError>;

    /// `DescribeJobs` for these job ids (every job when empty), newest first.
    ///
    /// # Errors
    /// Throttling and service errors.
    async fn describe_jobs(&self, at: &AccountRegion, job_ids: &[String]) -> Result<Vec<DrsJob>, CloudError>;

    /// `DescribeJobLogItems` of one job, oldest first.
    ///
    /// # Errors
    /// [`CloudError::NotFound`] for an unknown job.
    async fn describe_job_log_items(&self, at: &AccountRegion, job_id: &str) -> Result<Vec<JobLogItem>, CloudError>;

    /// `DescribeRecoveryInstances`, filtered by source server when `servers` is not empty.
    ///
    /// # Errors
    /// Throttling and service errors.
    async fn describe_recovery_instances(
        &self,
        at: &AccountRegion,
        servers: &[SourceServerId],
    ) -> Result<Vec<RecoveryInstance>, CloudError>;

    /// EC2 `StopInstances`: asks these instances to stop (idempotent: a stopped instance stays stopped).
    ///
    /// # Errors
    /// [`CloudError::NotFound`] for an unknown instance; access, throttling and service errors.
    async fn stop_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError>;

    /// DRS `DisconnectRecoveryInstance`: stops DRS's replication of the recovery instance; the EC2 instance
    /// stays.
    ///
    /// # Errors
    /// [`CloudError::NotFound`] when DRS lists no such recovery instance.
    async fn disconnect_recovery_instance(&self, at: &AccountRegion, id: &InstanceId) -> Result<(), CloudError>;

    /// DRS `DeleteRecoveryInstance`: removes a disconnected recovery instance from DRS; the EC2 instance
    /// stays. (Never `TerminateRecoveryInstances`: for launch-into it terminates the standby itself.)
    ///
    /// # Errors
    /// [`CloudError::NotFound`]; [`CloudError::Conflict`] while it is not disconnected.
    async fn delete_recovery_instance(&self, at: &AccountRegion, id: &InstanceId) -> Result<(), CloudError>;

    /// EC2 `DescribeVolumes` with `status=available`: volumes attached to no instance, such as the ones a
    /// launch into an instance swapped out.
    ///
    /// # Errors
    /// As [`Cloud::describe_instances`].
    async fn describe_available_volumes(&self, at: &AccountRegion) -> Result<Vec<AvailableVolume>, CloudError>;

    /// DRS `ReverseReplication` on a recovery instance: on a DR-side one, starts replicating it back to the
    /// original region and returns the source server DRS created there (`replicationDirection =
    /// FAILBACK`); on an origin-side one (after a failback), re-protects it and returns the source server
    /// that replicates it to the DR region again.
    ///
    /// # Errors
    /// [`CloudError::NotFound`]; [`CloudError::Conflict`] when already reversed; [`CloudError::Validation`].
    async fn reverse_replication(&self, at: &AccountRegion, id: &InstanceId) -> Result<SourceServerId, CloudError>;

    /// EC2 `CreateTags` on one instance (one tag).
    ///
    /// # Errors
    /// [`CloudError::NotFound`]; access, throttling and service errors.
    async fn create_tags(&self, at: &AccountRegion, id: &InstanceId, key: &str, value: &str) -> Result<(), CloudError>;

    /// EC2 `StartInstances`.
    ///
    /// # Errors
    /// As [`Cloud::stop_instances`].
    async fn start_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError>;

    /// EC2 `DescribeSecurityGroups` in one account and region.
    ///
    /// # Errors
    /// As [`Cloud::describe_instances`].
    async fn describe_security_groups(
        &self,
        at: &AccountRegion,
    ) -> Result<Vec<domain::estate::SecurityGroup>, CloudError>;

    /// IAM instance profiles of the account of `at`, with their roles' managed policies.
    ///
    /// # Errors
    /// As [`Cloud::describe_instances`].
    async fn describe_instance_profiles(
        &self,
        at: &AccountRegion,
    ) -> Result<Vec<domain::estate::InstanceProfile>, CloudError>;

    /// Whether DRS is initialised in this account and region (`InitializeService` was called).
    ///
    /// # Errors
    /// Access, throttling and service errors.
    async fn drs_initialized(&self, at: &AccountRegion) -> Result<bool, CloudError>;

    /// EC2 `DeleteVolume` of an available (detached) volume.
    ///
    /// # Errors
    /// [`CloudError::NotFound`]; [`CloudError::Validation`] for a volume in use.
    async fn delete_volume(&self, at: &AccountRegion, volume_id: &str) -> Result<(), CloudError>;

    /// EC2 `TerminateInstances` (only ever on an admin's typed confirmation).
    ///
    /// # Errors
    /// As [`Cloud::stop_instances`].
    async fn terminate_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError>;
}
