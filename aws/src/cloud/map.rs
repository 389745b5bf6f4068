//! DRS's and EC2's answers as the domain's types: instances, source servers, jobs, recovery instances, with
//! tags bounded (estate data is untrusted) and unreadable answers refused, not guessed.

use aws_sdk_drs::types as drs;
use aws_sdk_ec2::types as ec2;
use domain::estate::{
    AccountRegion, Architecture, BootMode, Ec2Instance, InstanceState, Platform, ReplicationDirection,
    ReplicationState, SourceServer, Tags, Volume,
};
use domain::ids::{AccountId, InstanceId, Region, SourceServerId, SubnetId};
use domain::recovery::{DrsJob, JobStatus, LaunchStatus, ParticipatingServer, RecoveryInstance};
use domain::time::{parse_duration_seconds, parse_iso8601};
use engine::cloud::CloudError;
use std::collections::HashMap;

/// A DRS or EC2 enum value as the domain's serde name (the domain names its enums after the wire).
pub(super) fn from_wire<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

/// Tags as they came, less any AWS would not have allowed (they are untrusted input).
pub(super) fn bounded_tags<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Tags {
    pairs
        .filter(|(k, v)| {
            !k.is_empty()
                && k.chars().count() <= domain::estate::MAX_TAG_KEY_CHARS
                && v.chars().count() <= domain::estate::MAX_TAG_VALUE_CHARS
        })
        .take(domain::estate::MAX_TAGS)
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub(super) fn unexpected(what: impl std::fmt::Display) -> CloudError {
    CloudError::Unexpected(anyhow::anyhow!("AWS answered something Roundtrip cannot read: {what}"))
}

pub(super) fn instance_id(s: Option<&str>, what: &str) -> Result<InstanceId, CloudError> {
    InstanceId::parse(s.unwrap_or_default()).map_err(|e| unexpected(format!("{what}: {e}")))
}

pub(super) fn source_id(s: Option<&str>) -> Result<SourceServerId, CloudError> {
    SourceServerId::parse(s.unwrap_or_default()).map_err(|e| unexpected(format!("source server id: {e}")))
}

/// Maps one EC2 instance; `None` for one without a subnet or private IP (a terminated instance after AWS
/// released its network interface), which Roundtrip cannot match or launch into.
pub(super) fn map_instance(i: &ec2::Instance, at: &AccountRegion, sizes: &HashMap<String, u32>) -> Option<Ec2Instance> {
    let instance_id = InstanceId::parse(i.instance_id()?).ok()?;
    let state = from_wire::<InstanceState>(i.state()?.name()?.as_str())?;
    let private_ip = i.private_ip_address()?.parse().ok()?;
    let subnet_id = SubnetId::parse(i.subnet_id()?).ok()?;
    let boot = i
        .current_instance_boot_mode()
        .map(|b| b.as_str().to_owned())
        .or_else(|| i.boot_mode().map(|b| b.as_str().to_owned()));
    let architecture =
        i.architecture().and_then(|a| from_wire::<Architecture>(a.as_str())).unwrap_or(Architecture::X86_64);
    let boot_mode = match boot.as_deref() {
        Some("uefi") => BootMode::Uefi,
        Some("legacy-bios") => BootMode::LegacyBios,
        // AWS's default when an AMI names none: UEFI on Graviton, BIOS on x86.
        _ if architecture == Architecture::Arm64 => BootMode::Uefi,
        _ => BootMode::LegacyBios,
    };
    Some(Ec2Instance {
        instance_id,
        account_id: at.account_id.clone(),
        region: at.region.clone(),
        tags: bounded_tags(i.tags().iter().filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())))),
        state,
        private_ip,
        subnet_id,
        security_group_ids: i.security_groups().iter().filter_map(|g| g.group_id().map(str::to_owned)).collect(),
        instance_type: i.instance_type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
        architecture,
        platform: if i.platform().is_some_and(|p| p.as_str().eq_ignore_ascii_case("windows")) {
            Platform::Windows
        } else {
            Platform::Linux
        },
        boot_mode,
        root_device_type: i.root_device_type().map_or_else(|| "ebs".to_owned(), |d| d.as_str().to_owned()),
        volumes: i
            .block_device_mappings()
            .iter()
            .filter_map(|b| {
                let volume_id = b.ebs()?.volume_id()?.to_owned();
                let size_gib = sizes.get(&volume_id).copied().unwrap_or(0);
                Some(Volume { volume_id, device_name: b.device_name().unwrap_or_default().to_owned(), size_gib })
            })
            .collect(),
        iam_instance_profile: i
            .iam_instance_profile()
            .and_then(|p| p.arn())
            .and_then(|arn| arn.rsplit('/').next())
            .map(str::to_owned),
    })
}

pub(super) fn map_source_server(s: &drs::SourceServer, at: &AccountRegion) -> Result<SourceServer, CloudError> {
    let props = s.source_properties();
    let hints = props.and_then(|p| p.identification_hints());
    let cloud = s.source_cloud_properties();
    let info = s.data_replication_info();
    let os = props.and_then(|p| p.os()).and_then(|o| o.full_string()).unwrap_or_default();
    Ok(SourceServer {
        source_server_id: source_id(s.source_server_id())?,
        account_id: at.account_id.clone(),
        region: at.region.clone(),
        origin_account_id: cloud
            .and_then(|c| c.origin_account_id())
            .and_then(|a| AccountId::parse(a).ok())
            .unwrap_or_else(|| at.account_id.clone()),
        origin_region: cloud
            .and_then(|c| c.origin_region())
            .and_then(|r| Region::parse(r).ok())
            .unwrap_or_else(|| at.region.clone()),
        hostname: hints.and_then(|h| h.hostname()).unwrap_or_default().chars().take(255).collect(),
        source_instance_id: hints.and_then(|h| h.aws_instance_id()).and_then(|i| InstanceId::parse(i).ok()),
        // A state this version does not know is treated as not yet replicating.
        replication_state: info
            .and_then(|i| i.data_replication_state())
            .and_then(|st| from_wire(st.as_str()))
            .unwrap_or(ReplicationState::Initiating),
        lag_seconds: info.and_then(|i| i.lag_duration()).and_then(parse_duration_seconds).unwrap_or(0),
        backlog_bytes: info
            .map(|i| {
                i.replicated_disks()
                    .iter()
                    .fold(0u64, |sum, d| sum.saturating_add(u64::try_from(d.backlogged_storage_bytes()).unwrap_or(0)))
            })
            .unwrap_or(0),
        replication_direction: if s.replication_direction().is_some_and(|d| d.as_str() == "FAILBACK") {
            ReplicationDirection::Failback
        } else {
            ReplicationDirection::Failover
        },
        tags: bounded_tags(s.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str()))),
        architecture: props
            .and_then(|p| p.architecture())
            .and_then(|a| from_wire(a.as_str()))
            .unwrap_or(Architecture::X86_64),
        platform: if os.to_ascii_lowercase().contains("windows") { Platform::Windows } else { Platform::Linux },
        boot_mode: None,
    })
}

pub(super) fn map_job(j: &drs::Job) -> Result<DrsJob, CloudError> {
    let status = match j.status().map(|s| s.as_str()) {
        Some("PENDING") => JobStatus::Pending,
        Some("STARTED") => JobStatus::Started,
        Some("COMPLETED") => JobStatus::Completed,
        other => return Err(unexpected(format!("job {} has status {other:?}", j.job_id()))),
    };
    let servers = j
        .participating_servers()
        .iter()
        .map(|p| {
            Ok(ParticipatingServer {
                source_server_id: source_id(p.source_server_id())?,
                recovery_instance_id: p.recovery_instance_id().and_then(|i| InstanceId::parse(i).ok()),
                launch_status: p
                    .launch_status()
                    .and_then(|l| from_wire::<LaunchStatus>(l.as_str()))
                    .unwrap_or(LaunchStatus::Pending),
            })
        })
        .collect::<Result<Vec<_>, CloudError>>()?;
    Ok(DrsJob {
        job_id: j.job_id().to_owned(),
        // `Job` has no isDrill: a drill is a job initiated by START_DRILL (§2.2).
        is_drill: j.initiated_by().is_some_and(|i| i.as_str() == "START_DRILL"),
        status,
        created_at: j.creation_date_time().and_then(parse_iso8601).unwrap_or(0),
        ended_at: j.end_date_time().and_then(parse_iso8601),
        servers,
    })
}

pub(super) fn map_recovery_instance(r: &drs::RecoveryInstance) -> Result<RecoveryInstance, CloudError> {
    Ok(RecoveryInstance {
        recovery_instance_id: instance_id(r.recovery_instance_id(), "recovery instance id")?,
        ec2_instance_id: instance_id(r.ec2_instance_id(), "recovery instance's EC2 instance")?,
        source_server_id: source_id(r.source_server_id())?,
        job_id: r.job_id().unwrap_or_default().to_owned(),
        is_drill: r.is_drill().unwrap_or(false),
        point_in_time: r.point_in_time_snapshot_date_time().and_then(parse_iso8601).unwrap_or(0),
        disconnected: r
            .data_replication_info()
            .and_then(|i| i.data_replication_state())
            .is_some_and(|s| s.as_str() == "DISCONNECTED"),
    })
}
