//! The cloud port over the AWS SDK: DRS, EC2 and IAM in each configured account and region.
//!
//! Every list call follows every page. DRS calls pass a per-account-and-region token bucket first. The SDK
//! retries throttling and 5xx with jittered backoff ([`crate::clients::base_config`]); what is left is
//! mapped by [`crate::error::map_sdk_error`], keeping DRS's `Retry-After` for the engine's own retry. Every
//! action called here is listed in [`crate::iam::PERMISSIONS`] (a test checks the two against each other).

mod lists;
mod map;

use lists::{ids, instances, next_token, volumes};
use map::{from_wire, map_job, map_recovery_instance, map_source_server, source_id, unexpected};

use crate::clients::{ClientSet, Clients};
use crate::error::{ForAction, map_sdk_error};
use async_trait::async_trait;
use aws_sdk_drs::types as drs;
use aws_sdk_ec2::types as ec2;
use domain::estate::{
    AccountRegion, Ec2Instance, EgressRule, InstanceProfile, KnownAccountRegion, SecurityGroup, SourceServer, Subnet,
};
use domain::ids::{InstanceId, SourceServerId, SubnetId};
use domain::launch::{LaunchConfiguration, LaunchConfigurationUpdate, LaunchDisposition, RightSizing};
use domain::readiness::Quotas;
use domain::recovery::{AvailableVolume, DrsJob, JobLogItem, RecoveryInstance};
use domain::time::parse_iso8601;
use engine::cloud::{Cloud, CloudError, CloudInfo};
use std::collections::HashMap;
use std::sync::Arc;

/// Real AWS (or an emulator of it) behind the cloud port.
pub struct AwsCloud {
    clients: Arc<Clients>,
}

/// DRS filters take at most this many ids per call (`aws-drs-api.md` §4.2).
const DRS_ID_CHUNK: usize = 200;

/// EC2 instance-id lists take at most 1000.
const EC2_ID_CHUNK: usize = 1000;

/// An EC2 filter takes at most 200 values.
const EC2_FILTER_VALUES: usize = 200;

/// The EC2 calls that change instances' state, each on a list of instance ids.
#[derive(Clone, Copy)]
enum InstanceChange {
    Stop,
    Start,
    Terminate,
}

/// The domain's launch configuration from a `Get…` or `UpdateLaunchConfiguration` output (the two have the
/// same accessors but no common trait).
macro_rules! launch_configuration {
    ($source:expr, $o:expr) => {{
        let o = $o;
        LaunchConfiguration {
            source_server_id: $source.clone(),
            launch_disposition: o
                .launch_disposition()
                .and_then(|d| from_wire(d.as_str()))
                .unwrap_or(LaunchDisposition::Started),
            right_sizing: o
                .target_instance_type_right_sizing_method()
                .and_then(|r| from_wire(r.as_str()))
                .unwrap_or(RightSizing::None),
            copy_private_ip: o.copy_private_ip().unwrap_or(false),
            copy_tags: o.copy_tags().unwrap_or(false),
            launch_into_instance_id: o
                .launch_into_instance_properties()
                .and_then(|l| l.launch_into_ec2_instance_id())
                .and_then(|i| InstanceId::parse(i).ok()),
            os_byol: o.licensing().and_then(|l| l.os_byol()).unwrap_or(false),
            post_launch_enabled: o.post_launch_enabled().unwrap_or(false),
        }
    }};
}

#[async_trait]
impl Cloud for AwsCloud {
    fn transport_attempts(&self) -> Option<engine::cloud::TransportAttempts> {
        Some(self.clients.transport_attempts())
    }

    fn configured_accounts(&self) -> Vec<domain::estate::CloudAccount> {
        self.clients
            .settings()
            .accounts
            .iter()
            .map(|a| domain::estate::CloudAccount {
                account_id: a.account_id.clone(),
                name: a.name.clone(),
                role_arn: a.role_arn.clone(),
                regions: a.regions.clone(),
                external_id_set: a.external_id.is_some(),
                source: "settings".into(),
            })
            .collect()
    }

    fn set_registered_accounts(&self, accounts: Vec<engine::cloud::RegisteredAccount>) -> Result<(), CloudError> {
        self.clients.set_registered(accounts).map_err(|message| CloudError::Validation { message })
    }

    fn info(&self) -> CloudInfo {
        let accounts = self.clients.accounts().len();
        CloudInfo {
            kind: "aws".into(),
            description: match &self.clients.settings().endpoint_url {
                Some(ep) => format!("AWS API at {ep} ({accounts} accounts)"),
                None => format!("AWS ({accounts} accounts)"),
            },
        }
    }

    async fn list_account_regions(&self) -> Result<Vec<KnownAccountRegion>, CloudError> {
        Ok(self
            .clients
            .accounts()
            .iter()
            .flat_map(|a| {
                a.regions.iter().map(|r| KnownAccountRegion {
                    at: AccountRegion { account_id: a.account_id.clone(), region: r.clone() },
                    account_name: a.name.clone(),
                })
            })
            .collect())
    }

    async fn describe_instances(&self, at: &AccountRegion) -> Result<Vec<Ec2Instance>, CloudError> {
        instances(&self.at(at).await?, at, None).await
    }

    async fn describe_instances_by_id(
        &self,
        at: &AccountRegion,
        instance_ids: &[InstanceId],
    ) -> Result<Vec<Ec2Instance>, CloudError> {
        let mut out = Vec::new();
        for chunk in instance_ids.chunks(EC2_FILTER_VALUES) {
            // A filter, not `InstanceIds`: an id that no longer exists is left out instead of failing the call.
            out.extend(instances(&self.at(at).await?, at, Some(ids(chunk, InstanceId::as_str))).await?);
        }
        Ok(out)
    }

    async fn describe_subnets(&self, at: &AccountRegion) -> Result<Vec<Subnet>, CloudError> {
        let c = self.at(at).await?;
        let mut pages = c.ec2.describe_subnets().max_results(1000).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.for_action("ec2:DescribeSubnets")?;
            for s in page.subnets() {
                let (Some(id), Some(cidr)) = (s.subnet_id(), s.cidr_block()) else { continue };
                let (Ok(subnet_id), Ok(cidr)) = (SubnetId::parse(id), domain::net::Ipv4Cidr::parse(cidr)) else {
                    continue;
                };
                out.push(Subnet {
                    subnet_id,
                    account_id: at.account_id.clone(),
                    region: at.region.clone(),
                    vpc_id: s.vpc_id().unwrap_or_default().to_owned(),
                    cidr,
                    availability_zone: s.availability_zone().unwrap_or_default().to_owned(),
                });
            }
        }
        Ok(out)
    }

    async fn describe_source_servers(&self, at: &AccountRegion) -> Result<Vec<SourceServer>, CloudError> {
        self.source_servers(at, None).await
    }

    async fn describe_source_servers_by_id(
        &self,
        at: &AccountRegion,
        servers: &[SourceServerId],
    ) -> Result<Vec<SourceServer>, CloudError> {
        let mut out = Vec::new();
        for chunk in servers.chunks(DRS_ID_CHUNK) {
            out.extend(self.source_servers(at, Some(ids(chunk, SourceServerId::as_str))).await?);
        }
        Ok(out)
    }

    async fn get_launch_configuration(
        &self,
        at: &AccountRegion,
        source: &SourceServerId,
    ) -> Result<LaunchConfiguration, CloudError> {
        let c = self.drs(at).await?;
        let o = c
            .drs
            .get_launch_configuration()
            .source_server_id(source.as_str())
            .send()
            .await
            .for_action("drs:GetLaunchConfiguration")?;
        Ok(launch_configuration!(source, &o))
    }

    async fn update_launch_configuration(
        &self,
        at: &AccountRegion,
        update: &LaunchConfigurationUpdate,
    ) -> Result<LaunchConfiguration, CloudError> {
        let Some(source) = &update.source_server_id else {
            return Err(CloudError::Validation { message: "an update names its source server".into() });
        };
        let c = self.drs(at).await?;
        let mut req = c
            .drs
            .update_launch_configuration()
            .source_server_id(source.as_str())
            .set_launch_disposition(update.launch_disposition.map(|d| drs::LaunchDisposition::from(d.as_str())))
            .set_target_instance_type_right_sizing_method(
                update.right_sizing.map(|r| drs::TargetInstanceTypeRightSizingMethod::from(r.as_str())),
            )
            .set_copy_private_ip(update.copy_private_ip)
            .set_copy_tags(update.copy_tags);
        if let Some(target) = &update.launch_into_instance_id {
            // An empty `launchIntoInstanceProperties` clears the target.
            req = req.launch_into_instance_properties(
                drs::LaunchIntoInstanceProperties::builder()
                    .set_launch_into_ec2_instance_id(target.as_ref().map(|i| i.as_str().to_owned()))
                    .build(),
            );
        }
        let o = req.send().await.for_action("drs:UpdateLaunchConfiguration")?;
        Ok(launch_configuration!(source, &o))
    }

    async fn servers_in_active_jobs(&self, at: &AccountRegion) -> Result<Vec<SourceServerId>, CloudError> {
        let jobs = self.describe_jobs(at, &[]).await?;
        let mut out: Vec<SourceServerId> = jobs
            .iter()
            .filter(|j| j.is_active())
            .flat_map(|j| j.servers.iter().map(|s| s.source_server_id.clone()))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn quotas(&self, _at: &AccountRegion) -> Result<Quotas, CloudError> {
        // DRS's documented defaults (`aws-drs-api.md` §4.2); raised quotas are not read from Service Quotas.
        Ok(Quotas::default())
    }

    async fn start_recovery(
        &self,
        at: &AccountRegion,
        servers: &[SourceServerId],
        is_drill: bool,
    ) -> Result<DrsJob, CloudError> {
        // DRS takes at most 100 servers per job (`aws-drs-api.md` §4.2); its API would answer a validation
        // error, and the port promises a quota error.
        let most = Quotas::default().max_servers_per_job;
        if servers.len() > most {
            return Err(CloudError::QuotaExceeded {
                message: format!("{} servers in one job; DRS takes at most {most}", servers.len()),
                quota: "servers per job".into(),
            });
        }
        let list = servers
            .iter()
            .map(|s| drs::StartRecoveryRequestSourceServer::builder().source_server_id(s.as_str()).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CloudError::Validation { message: e.to_string() })?;
        let c = self.drs(at).await?;
        let o = c
            .drs
            .start_recovery()
            .is_drill(is_drill)
            .set_source_servers(Some(list))
            .send()
            .await
            .for_action("drs:StartRecovery")?;
        let job = o.job().ok_or_else(|| unexpected("StartRecovery returned no job"))?;
        let mut mapped = map_job(job)?;
        mapped.is_drill = is_drill;
        Ok(mapped)
    }

    async fn describe_jobs(&self, at: &AccountRegion, job_ids: &[String]) -> Result<Vec<DrsJob>, CloudError> {
        let chunks: Vec<Option<Vec<String>>> =
            if job_ids.is_empty() { vec![None] } else { job_ids.chunks(1000).map(|c| Some(c.to_vec())).collect() };
        let mut out = Vec::new();
        for chunk in chunks {
            let mut token: Option<String> = None;
            let mut pages = 0;
            loop {
                let c = self.drs(at).await?;
                let page = c
                    .drs
                    .describe_jobs()
                    .set_filters(
                        chunk
                            .clone()
                            .map(|ids| drs::DescribeJobsRequestFilters::builder().set_job_ids(Some(ids)).build()),
                    )
                    .max_results(1000)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .for_action("drs:DescribeJobs")?;
                for j in page.items() {
                    out.push(map_job(j)?);
                }
                token = next_token(token.as_deref(), page.next_token(), &mut pages)?;
                if token.is_none() {
                    break;
                }
            }
        }
        out.sort_by_key(|j| std::cmp::Reverse(j.created_at));
        Ok(out)
    }

    async fn describe_job_log_items(&self, at: &AccountRegion, job_id: &str) -> Result<Vec<JobLogItem>, CloudError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let c = self.drs(at).await?;
            let page = c
                .drs
                .describe_job_log_items()
                .job_id(job_id)
                .max_results(1000)
                .set_next_token(token.clone())
                .send()
                .await
                .for_action("drs:DescribeJobLogItems")?;
            for l in page.items() {
                let data = l.event_data();
                out.push(JobLogItem {
                    at: l.log_date_time().and_then(parse_iso8601).unwrap_or(0),
                    event: l.event().map(|e| e.as_str().to_owned()).unwrap_or_default(),
                    source_server_id: data
                        .and_then(|d| d.source_server_id())
                        .and_then(|s| SourceServerId::parse(s).ok()),
                    target_instance_id: data
                        .and_then(|d| d.target_instance_id())
                        .and_then(|s| InstanceId::parse(s).ok()),
                    error: data.and_then(|d| d.raw_error()).map(|e| e.chars().take(2_000).collect()),
                });
            }
            token = next_token(token.as_deref(), page.next_token(), &mut pages)?;
            if token.is_none() {
                break;
            }
        }
        out.sort_by_key(|l| l.at);
        Ok(out)
    }

    async fn describe_recovery_instances(
        &self,
        at: &AccountRegion,
        servers: &[SourceServerId],
    ) -> Result<Vec<RecoveryInstance>, CloudError> {
        let chunks: Vec<Option<Vec<String>>> = if servers.is_empty() {
            vec![None]
        } else {
            servers.chunks(DRS_ID_CHUNK).map(|c| Some(ids(c, SourceServerId::as_str))).collect()
        };
        let mut out = Vec::new();
        for chunk in chunks {
            let mut token: Option<String> = None;
            let mut pages = 0;
            loop {
                let c = self.drs(at).await?;
                let page = c
                    .drs
                    .describe_recovery_instances()
                    .set_filters(chunk.clone().map(|ids| {
                        drs::DescribeRecoveryInstancesRequestFilters::builder().set_source_server_ids(Some(ids)).build()
                    }))
                    .max_results(1000)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .for_action("drs:DescribeRecoveryInstances")?;
                for r in page.items() {
                    out.push(map_recovery_instance(r)?);
                }
                token = next_token(token.as_deref(), page.next_token(), &mut pages)?;
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn stop_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError> {
        self.change_instances(at, instances, InstanceChange::Stop).await
    }

    async fn disconnect_recovery_instance(&self, at: &AccountRegion, id: &InstanceId) -> Result<(), CloudError> {
        let c = self.drs(at).await?;
        c.drs
            .disconnect_recovery_instance()
            .recovery_instance_id(id.as_str())
            .send()
            .await
            .for_action("drs:DisconnectRecoveryInstance")?;
        Ok(())
    }

    async fn delete_recovery_instance(&self, at: &AccountRegion, id: &InstanceId) -> Result<(), CloudError> {
        let c = self.drs(at).await?;
        c.drs
            .delete_recovery_instance()
            .recovery_instance_id(id.as_str())
            .send()
            .await
            .for_action("drs:DeleteRecoveryInstance")?;
        Ok(())
    }

    async fn describe_available_volumes(&self, at: &AccountRegion) -> Result<Vec<AvailableVolume>, CloudError> {
        let c = self.at(at).await?;
        Ok(volumes(&c, Some(ec2::Filter::builder().name("status").values("available").build()))
            .await?
            .iter()
            .filter_map(|v| {
                Some(AvailableVolume {
                    volume_id: v.volume_id()?.to_owned(),
                    size_gib: u32::try_from(v.size()?).ok()?,
                    // EC2 does not say when a volume was detached: its creation is the earliest it can have
                    // been, so the retention never ends early.
                    since: v.create_time().and_then(|t| t.to_millis().ok()).unwrap_or(0),
                    // Nor which instance it left: such volumes are listed but never attributed to a standby.
                    last_instance_id: v
                        .tags()
                        .iter()
                        .find(|t| t.key() == Some("roundtrip:swapped-from"))
                        .and_then(|t| InstanceId::parse(t.value()?).ok()),
                    device_name: None,
                })
            })
            .collect())
    }

    async fn reverse_replication(&self, at: &AccountRegion, id: &InstanceId) -> Result<SourceServerId, CloudError> {
        let c = self.drs(at).await?;
        let o = c
            .drs
            .reverse_replication()
            .recovery_instance_id(id.as_str())
            .send()
            .await
            .for_action("drs:ReverseReplication")?;
        // `arn:aws:drs:<region>:<account>:source-server/s-…`
        let arn = o.reversed_direction_source_server_arn().unwrap_or_default();
        source_id(arn.rsplit('/').next())
    }

    async fn create_tags(&self, at: &AccountRegion, id: &InstanceId, key: &str, value: &str) -> Result<(), CloudError> {
        let c = self.at(at).await?;
        c.ec2
            .create_tags()
            .resources(id.as_str())
            .tags(ec2::Tag::builder().key(key).value(value).build())
            .send()
            .await
            .for_action("ec2:CreateTags")?;
        Ok(())
    }

    async fn start_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError> {
        self.change_instances(at, instances, InstanceChange::Start).await
    }

    async fn describe_security_groups(&self, at: &AccountRegion) -> Result<Vec<SecurityGroup>, CloudError> {
        let c = self.at(at).await?;
        let mut pages = c.ec2.describe_security_groups().max_results(1000).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.for_action("ec2:DescribeSecurityGroups")?;
            for g in page.security_groups() {
                let Some(group_id) = g.group_id() else { continue };
                out.push(SecurityGroup {
                    group_id: group_id.to_owned(),
                    account_id: at.account_id.clone(),
                    region: at.region.clone(),
                    vpc_id: g.vpc_id().unwrap_or_default().to_owned(),
                    name: g.group_name().unwrap_or_default().chars().take(255).collect(),
                    egress: Some(
                        g.ip_permissions_egress()
                            .iter()
                            .map(|p| {
                                let port =
                                    |v: Option<i32>, all: u16| v.and_then(|v| u16::try_from(v).ok()).unwrap_or(all);
                                EgressRule {
                                    protocol: p.ip_protocol().unwrap_or("-1").to_owned(),
                                    from_port: port(p.from_port(), 0),
                                    to_port: port(p.to_port(), u16::MAX),
                                }
                            })
                            .collect(),
                    ),
                });
            }
        }
        Ok(out)
    }

    async fn describe_instance_profiles(&self, at: &AccountRegion) -> Result<Vec<InstanceProfile>, CloudError> {
        let c = self.at(at).await?;
        let mut pages = c.iam.list_instance_profiles().into_paginator().send();
        let mut out = Vec::new();
        let mut policies_of: HashMap<String, Vec<String>> = HashMap::new();
        while let Some(page) = pages.next().await {
            let page = page.for_action("iam:ListInstanceProfiles")?;
            for p in page.instance_profiles() {
                let mut policies = Vec::new();
                for role in p.roles() {
                    let name = role.role_name().to_owned();
                    if !policies_of.contains_key(&name) {
                        let mut attached = Vec::new();
                        let mut rp = c.iam.list_attached_role_policies().role_name(&name).into_paginator().send();
                        while let Some(page) = rp.next().await {
                            let page = page.for_action("iam:ListAttachedRolePolicies")?;
                            attached.extend(
                                page.attached_policies().iter().filter_map(|a| a.policy_name().map(str::to_owned)),
                            );
                        }
                        policies_of.insert(name.clone(), attached);
                    }
                    policies.extend(policies_of[&name].iter().cloned());
                }
                out.push(InstanceProfile {
                    account_id: at.account_id.clone(),
                    name: p.instance_profile_name().to_owned(),
                    policies,
                });
            }
        }
        Ok(out)
    }

    async fn drs_initialized(&self, at: &AccountRegion) -> Result<bool, CloudError> {
        let c = self.drs(at).await?;
        match c.drs.describe_source_servers().max_results(1).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_uninitialized_account_exception()) => Ok(false),
            Err(e) => Err(map_sdk_error("drs:DescribeSourceServers", e)),
        }
    }

    async fn delete_volume(&self, at: &AccountRegion, volume_id: &str) -> Result<(), CloudError> {
        let c = self.at(at).await?;
        c.ec2.delete_volume().volume_id(volume_id).send().await.for_action("ec2:DeleteVolume")?;
        Ok(())
    }

    async fn terminate_instances(&self, at: &AccountRegion, instances: &[InstanceId]) -> Result<(), CloudError> {
        self.change_instances(at, instances, InstanceChange::Terminate).await
    }
}

impl AwsCloud {
    /// EC2 `StopInstances`, `StartInstances` or `TerminateInstances`, in chunks of EC2's 1000 ids.
    async fn change_instances(
        &self,
        at: &AccountRegion,
        instances: &[InstanceId],
        change: InstanceChange,
    ) -> Result<(), CloudError> {
        let c = self.at(at).await?;
        for chunk in instances.chunks(EC2_ID_CHUNK) {
            let list = Some(ids(chunk, InstanceId::as_str));
            match change {
                InstanceChange::Stop => {
                    c.ec2.stop_instances().set_instance_ids(list).send().await.map(drop).for_action("ec2:StopInstances")
                }
                InstanceChange::Start => c
                    .ec2
                    .start_instances()
                    .set_instance_ids(list)
                    .send()
                    .await
                    .map(drop)
                    .for_action("ec2:StartInstances"),
                InstanceChange::Terminate => c
                    .ec2
                    .terminate_instances()
                    .set_instance_ids(list)
                    .send()
                    .await
                    .map(drop)
                    .for_action("ec2:TerminateInstances"),
            }?;
        }
        Ok(())
    }

    pub fn new(clients: Arc<Clients>) -> Self {
        Self { clients }
    }

    /// The clients behind this cloud.
    pub fn clients(&self) -> &Arc<Clients> {
        &self.clients
    }

    async fn at(&self, at: &AccountRegion) -> Result<ClientSet, CloudError> {
        self.clients.get(&at.account_id, &at.region).await
    }

    /// The clients of `at`, after DRS's token bucket has let the call through.
    async fn drs(&self, at: &AccountRegion) -> Result<ClientSet, CloudError> {
        let c = self.at(at).await?;
        c.drs_bucket.take().await;
        Ok(c)
    }

    /// DRS `DescribeSourceServers`, every page, of the source servers `only` when given (at most
    /// [`DRS_ID_CHUNK`]).
    async fn source_servers(
        &self,
        at: &AccountRegion,
        only: Option<Vec<String>>,
    ) -> Result<Vec<SourceServer>, CloudError> {
        let filters = only
            .map(|ids| drs::DescribeSourceServersRequestFilters::builder().set_source_server_ids(Some(ids)).build());
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let c = self.drs(at).await?;
            let page = c
                .drs
                .describe_source_servers()
                .set_filters(filters.clone())
                .max_results(1000)
                .set_next_token(token.clone())
                .send()
                .await
                .for_action("drs:DescribeSourceServers")?;
            for s in page.items() {
                out.push(map_source_server(s, at)?);
            }
            token = next_token(token.as_deref(), page.next_token(), &mut pages)?;
            if token.is_none() {
                return Ok(out);
            }
        }
    }
}
