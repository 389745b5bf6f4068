//! A cloud that counts every call it passes on, and paces DRS calls to the rate the cloud states.

use super::Metrics;
use crate::cloud::{Cloud, CloudError, CloudInfo, KnownAccountRegion, RegisteredAccount, TransportAttempts};
use async_trait::async_trait;
use domain::estate::{AccountRegion, Ec2Instance, SourceServer, Subnet};
use domain::ids::{InstanceId, SourceServerId};
use domain::launch::{LaunchConfiguration, LaunchConfigurationUpdate};
use domain::readiness::Quotas;
use domain::recovery::{AvailableVolume, DrsJob, JobLogItem, RecoveryInstance};
use std::sync::Arc;

/// A cloud that counts every call it passes on, and paces DRS calls to the rate the cloud states.
pub struct Metered {
    inner: Arc<dyn Cloud>,
    metrics: Arc<Metrics>,
    drs_pace: Option<crate::pace::TokenBucket>,
}

impl Metered {
    pub fn new(inner: Arc<dyn Cloud>, metrics: Arc<Metrics>) -> Self {
        // A little under the stated rate, so rounding never lands a call on an empty bucket.
        let drs_pace =
            inner.drs_pace().map(|(rate, burst)| crate::pace::TokenBucket::new(rate * 0.98, burst.max(2) - 1));
        Self { inner, metrics, drs_pace }
    }

    async fn m<T>(
        &self,
        service: &'static str,
        operation: &'static str,
        f: impl std::future::Future<Output = Result<T, CloudError>>,
    ) -> Result<T, CloudError> {
        if let (Some(b), "drs") = (&self.drs_pace, service) {
            b.take().await;
        }
        let started = std::time::Instant::now();
        let r = f.await;
        self.metrics.cloud_call(service, operation, &r, started.elapsed());
        r
    }
}

#[async_trait]
impl Cloud for Metered {
    fn info(&self) -> CloudInfo {
        self.inner.info()
    }

    async fn list_account_regions(&self) -> Result<Vec<KnownAccountRegion>, CloudError> {
        self.inner.list_account_regions().await
    }

    fn configured_accounts(&self) -> Vec<domain::estate::CloudAccount> {
        self.inner.configured_accounts()
    }

    fn transport_attempts(&self) -> Option<TransportAttempts> {
        self.inner.transport_attempts()
    }

    fn set_registered_accounts(&self, accounts: Vec<RegisteredAccount>) -> Result<(), CloudError> {
        self.inner.set_registered_accounts(accounts)
    }

    async fn describe_instances(&self, at: &AccountRegion) -> Result<Vec<Ec2Instance>, CloudError> {
        self.m("ec2", "DescribeInstances", self.inner.describe_instances(at)).await
    }

    async fn describe_subnets(&self, at: &AccountRegion) -> Result<Vec<Subnet>, CloudError> {
        self.m("ec2", "DescribeSubnets", self.inner.describe_subnets(at)).await
    }

    async fn describe_source_servers(&self, at: &AccountRegion) -> Result<Vec<SourceServer>, CloudError> {
        self.m("drs", "DescribeSourceServers", self.inner.describe_source_servers(at)).await
    }

    async fn describe_instances_by_id(
        &self,
        at: &AccountRegion,
        ids: &[InstanceId],
    ) -> Result<Vec<Ec2Instance>, CloudError> {
        self.m("ec2", "DescribeInstances", self.inner.describe_instances_by_id(at, ids)).await
    }

    async fn describe_source_servers_by_id(
        &self,
        at: &AccountRegion,
        ids: &[SourceServerId],
    ) -> Result<Vec<SourceServer>, CloudError> {
        self.m("drs", "DescribeSourceServers", self.inner.describe_source_servers_by_id(at, ids)).await
    }

    async fn get_launch_configuration(
        &self,
        at: &AccountRegion,
        source: &SourceServerId,
    ) -> Result<LaunchConfiguration, CloudError> {
        self.m("drs", "GetLaunchConfiguration", self.inner.get_launch_configuration(at, source)).await
    }

    async fn update_launch_configuration(
        &self,
        at: &AccountRegion,
        update: &LaunchConfigurationUpdate,
    ) -> Result<LaunchConfiguration, CloudError> {
        self.m("drs", "UpdateLaunchConfiguration", self.inner.update_launch_configuration(at, update)).await
    }

    async fn servers_in_active_jobs(&self, at: &AccountRegion) -> Result<Vec<SourceServerId>, CloudError> {
        self.m("drs", "DescribeJobs", self.inner.servers_in_active_jobs(at)).await
    }

    async fn quotas(&self, at: &AccountRegion) -> Result<Quotas, CloudError> {
        self.inner.quotas(at).await
    }

    async fn start_recovery(
        &self,
        at: &AccountRegion,
        servers: &[SourceServerId],
        is_drill: bool,
    ) -> Result<DrsJob, CloudError> {
        self.m("drs", "StartRecovery", self.inner.start_recovery(at, servers, is_drill)).await
    }

    async fn describe_jobs(&self, at: &AccountRegion, job_ids: &[String]) -> Result<Vec<DrsJob>, CloudError> {
        self.m("drs", "DescribeJobs", self.inner.describe_jobs(at, job_ids)).await
    }

    async fn describe_job_log_items(&self, at: &AccountRegion, job_id: &str) -> Result<Vec<JobLogItem>, CloudError> {
        self.m("drs", "DescribeJobLogItems", self.inner.describe_job_log_items(at, job_id)).await
    }

    async fn describe_recovery_instances(
        &self,
        at: &AccountRegion,
        servers: &[SourceServerId],
    ) -> Result<Vec<RecoveryInstance>, CloudError> {
        self.m("drs", "DescribeRecoveryInstances", self.inner.describe_recovery_instances(at, servers)).await
    }

    async fn stop_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError> {
        self.m("ec2", "StopInstances", self.inner.stop_instances(at, instances)).await
    }

    async fn disconnect_recovery_instance(&self, at: &AccountRegion, id: &InstanceId) -> Result<(), CloudError> {
        self.m("drs", "DisconnectRecoveryInstance", self.inner.disconnect_recovery_instance(at, id)).await
    }

    async fn delete_recovery_instance(&self, at: &AccountRegion, id: &InstanceId) -> Result<(), CloudError> {
        self.m("drs", "DeleteRecoveryInstance", self.inner.delete_recovery_instance(at, id)).await
    }

    async fn describe_available_volumes(&self, at: &AccountRegion) -> Result<Vec<AvailableVolume>, CloudError> {
        self.m("ec2", "DescribeVolumes", self.inner.describe_available_volumes(at)).await
    }

    async fn reverse_replication(&self, at: &AccountRegion, id: &InstanceId) -> Result<SourceServerId, CloudError> {
        self.m("drs", "ReverseReplication", self.inner.reverse_replication(at, id)).await
    }

    async fn create_tags(&self, at: &AccountRegion, id: &InstanceId, key: &str, value: &str) -> Result<(), CloudError> {
        self.m("ec2", "CreateTags", self.inner.create_tags(at, id, key, value)).await
    }

    async fn start_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError> {
        self.m("ec2", "StartInstances", self.inner.start_instances(at, instances)).await
    }

    async fn describe_security_groups(
        &self,
        at: &AccountRegion,
    ) -> Result<Vec<domain::estate::SecurityGroup>, CloudError> {
        self.m("ec2", "DescribeSecurityGroups", self.inner.describe_security_groups(at)).await
    }

    async fn describe_instance_profiles(
        &self,
        at: &AccountRegion,
    ) -> Result<Vec<domain::estate::InstanceProfile>, CloudError> {
        self.m("iam", "ListInstanceProfiles", self.inner.describe_instance_profiles(at)).await
    }

    async fn drs_initialized(&self, at: &AccountRegion) -> Result<bool, CloudError> {
        self.m("drs", "DescribeReplicationConfigurationTemplates", self.inner.drs_initialized(at)).await
    }

    async fn delete_volume(&self, at: &AccountRegion, volume_id: &str) -> Result<(), CloudError> {
        self.m("ec2", "DeleteVolume", self.inner.delete_volume(at, volume_id)).await
    }

    async fn terminate_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError> {
        self.m("ec2", "TerminateInstances", self.inner.terminate_instances(at, instances)).await
    }
}
