//! The estate as AWS describes it: EC2 instances, subnets and DRS source servers, per account and region.
//!
//! These are read models. Field names follow the DRS and EC2 APIs where they exist (see
//! `shared/reference/aws-drs-api.md` §2.6 and §7). Everything in here came from the estate and is untrusted:
//! tag keys and values are bounded to AWS's limits when they enter ([`check_tags`]).

use crate::ids::{AccountId, InstanceId, Region, SourceServerId, SubnetId};
use crate::net::Ipv4Cidr;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Resource tags, key → value, ordered by key.
pub type Tags = BTreeMap<String, String>;

/// The tag DRS requires on an instance it may launch into.
pub const AWSDRS_TAG_KEY: &str = "AWSDRS";
/// The only value of [`AWSDRS_TAG_KEY`] that allows DRS to launch into an instance (case-sensitive).
pub const AWSDRS_TAG_VALUE: &str = "AllowLaunchingIntoThisInstance";
/// The tag that assigns a source server to a recovery wave.
pub const WAVE_TAG_KEY: &str = "dr:wave";
/// AWS's limit on a tag key, in characters.
pub const MAX_TAG_KEY_CHARS: usize = 128;
/// AWS's limit on a tag value, in characters.
pub const MAX_TAG_VALUE_CHARS: usize = 256;
/// AWS's limit on tags per resource.
pub const MAX_TAGS: usize = 50;

/// Checks tags against AWS's limits, so oversized estate data never enters the model.
///
/// # Errors
/// A message naming the first offending tag.
pub fn check_tags(tags: &Tags) -> Result<(), String> {
    if tags.len() > MAX_TAGS {
        return Err(format!("{} tags, more than AWS's {MAX_TAGS}", tags.len()));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > MAX_TAG_KEY_CHARS {
            return Err(format!("tag key of {} characters (1 to {MAX_TAG_KEY_CHARS} allowed)", k.chars().count()));
        }
        if v.chars().count() > MAX_TAG_VALUE_CHARS {
            return Err(format!("tag {k:?} has a value over {MAX_TAG_VALUE_CHARS} characters"));
        }
    }
    Ok(())
}

/// EC2 instance state names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl InstanceState {
    /// What to do so DRS can launch into an instance in this state (it launches only into a stopped one).
    pub fn launch_into_remedy(self) -> &'static str {
        match self {
            Self::Stopped => "Keep the standby stopped: DRS launches only into a stopped instance.",
            Self::Pending | Self::Running => {
                "Stop the standby: DRS launches only into a stopped instance and cannot stop it itself."
            }
            Self::Stopping => "Wait until the standby has stopped (usually a minute or two), then evaluate again.",
            Self::ShuttingDown | Self::Terminated => {
                "The standby is being terminated or is gone and cannot be used again: provision a new stopped standby \
                 with the source server's Name tag and the AWSDRS tag, then match the group again."
            }
        }
    }

    /// The EC2 wire name, e.g. `shutting-down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::ShuttingDown => "shutting-down",
            Self::Terminated => "terminated",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        }
    }

    /// All states, in EC2's order.
    pub const ALL: [InstanceState; 6] =
        [Self::Pending, Self::Running, Self::ShuttingDown, Self::Terminated, Self::Stopping, Self::Stopped];
}

/// CPU architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Architecture {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    /// The EC2 wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }
}

/// Operating system platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Linux,
    Windows,
}

impl Platform {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Linux => "linux",
            Self::Windows => "windows",
        }
    }
}

/// Firmware boot mode, with EC2's wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootMode {
    LegacyBios,
    Uefi,
}

impl BootMode {
    /// The EC2 wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LegacyBios => "legacy-bios",
            Self::Uefi => "uefi",
        }
    }
}

/// An EBS volume attached to an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub volume_id: String,
    pub device_name: String,
    pub size_gib: u32,
}

/// An EC2 instance, as `DescribeInstances` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2Instance {
    pub instance_id: InstanceId,
    pub account_id: AccountId,
    pub region: Region,
    pub tags: Tags,
    pub state: InstanceState,
    pub private_ip: Ipv4Addr,
    pub subnet_id: SubnetId,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    pub instance_type: String,
    pub architecture: Architecture,
    pub platform: Platform,
    pub boot_mode: BootMode,
    #[serde(default = "default_root_device")]
    pub root_device_type: String,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// The name of its IAM instance profile, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_instance_profile: Option<String>,
}

/// An outbound rule of a security group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressRule {
    /// `tcp`, `udp`, or `-1` for all traffic.
    pub protocol: String,
    pub from_port: u16,
    pub to_port: u16,
}

/// A security group as `DescribeSecurityGroups` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub group_id: String,
    pub account_id: AccountId,
    pub region: Region,
    pub vpc_id: String,
    pub name: String,
    /// Outbound rules; absent means AWS's default rule (all traffic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<EgressRule>>,
}

impl SecurityGroup {
    /// Whether outbound TCP to `port` is allowed.
    pub fn allows_tcp_out(&self, port: u16) -> bool {
        self.egress.as_ref().is_none_or(|rules| {
            rules
                .iter()
                .any(|r| r.protocol == "-1" || (r.protocol == "tcp" && r.from_port <= port && port <= r.to_port))
        })
    }
}

/// An IAM instance profile and the managed policies of its role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceProfile {
    pub account_id: AccountId,
    pub name: String,
    pub policies: Vec<String>,
}

/// The managed policy a recovery instance's profile needs for failback replication (`aws-drs-api.md` §3.3).
pub const RECOVERY_INSTANCE_POLICY: &str = "AWSElasticDisasterRecoveryRecoveryInstancePolicy";

fn default_root_device() -> String {
    "ebs".to_owned()
}

impl Ec2Instance {
    /// The `Name` tag, if any.
    pub fn name(&self) -> Option<&str> {
        self.tags.get("Name").map(String::as_str)
    }

    /// Whether the instance carries `AWSDRS=AllowLaunchingIntoThisInstance` exactly (key and value
    /// case-sensitive, as DRS's IAM conditions compare them).
    pub fn has_exact_awsdrs_tag(&self) -> bool {
        self.tags.get(AWSDRS_TAG_KEY).is_some_and(|v| v == AWSDRS_TAG_VALUE)
    }

    /// Whether the instance carries something that looks like the AWSDRS tag but is not exactly it
    /// (wrong case of key or value, stray whitespace). Such an instance is not a standby.
    pub fn has_near_miss_awsdrs_tag(&self) -> bool {
        !self.has_exact_awsdrs_tag()
            && self.tags.iter().any(|(k, v)| {
                k.trim().eq_ignore_ascii_case(AWSDRS_TAG_KEY) && v.trim().eq_ignore_ascii_case(AWSDRS_TAG_VALUE)
            })
    }

    /// Whether the instance is a standby: exact AWSDRS tag and not terminated.
    pub fn is_standby(&self) -> bool {
        self.has_exact_awsdrs_tag() && self.state != InstanceState::Terminated
    }
}

/// A VPC subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub subnet_id: SubnetId,
    pub account_id: AccountId,
    pub region: Region,
    pub vpc_id: String,
    pub cidr: Ipv4Cidr,
    pub availability_zone: String,
}

/// DRS `DataReplicationState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReplicationState {
    Stopped,
    Initiating,
    InitialSync,
    Backlog,
    CreatingSnapshot,
    Continuous,
    Paused,
    Rescan,
    Stalled,
    Disconnected,
}

impl ReplicationState {
    /// The DRS wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "STOPPED",
            Self::Initiating => "INITIATING",
            Self::InitialSync => "INITIAL_SYNC",
            Self::Backlog => "BACKLOG",
            Self::CreatingSnapshot => "CREATING_SNAPSHOT",
            Self::Continuous => "CONTINUOUS",
            Self::Paused => "PAUSED",
            Self::Rescan => "RESCAN",
            Self::Stalled => "STALLED",
            Self::Disconnected => "DISCONNECTED",
        }
    }

    /// All states, in the model's order.
    pub const ALL: [ReplicationState; 10] = [
        Self::Stopped,
        Self::Initiating,
        Self::InitialSync,
        Self::Backlog,
        Self::CreatingSnapshot,
        Self::Continuous,
        Self::Paused,
        Self::Rescan,
        Self::Stalled,
        Self::Disconnected,
    ];
}

/// A DRS source server, as `DescribeSourceServers` in the DR region returns it.
///
/// `account_id`/`region` are where the DRS resource lives (the DR account and region); `origin_*` are where
/// the replicated machine runs (`sourceCloudProperties`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceServer {
    pub source_server_id: SourceServerId,
    pub account_id: AccountId,
    pub region: Region,
    pub origin_account_id: AccountId,
    pub origin_region: Region,
    /// `sourceProperties.identificationHints.hostname`; may be empty.
    #[serde(default)]
    pub hostname: String,
    /// `identificationHints.awsInstanceID`: the source instance.
    pub source_instance_id: Option<InstanceId>,
    pub replication_state: ReplicationState,
    /// `dataReplicationInfo.lagDuration`, in seconds.
    pub lag_seconds: u64,
    /// Bytes written on the source and not yet replicated (sum of `replicatedDisks[].backloggedStorageBytes`).
    #[serde(default)]
    pub backlog_bytes: u64,
    /// `replicationDirection`: `FAILBACK` for a source server created by `ReverseReplication`.
    #[serde(default, skip_serializing_if = "ReplicationDirection::is_failover")]
    pub replication_direction: ReplicationDirection,
    pub tags: Tags,
    pub architecture: Architecture,
    pub platform: Platform,
    /// Boot mode of the source instance, when known.
    pub boot_mode: Option<BootMode>,
}

impl SourceServer {
    /// The `Name` tag, if any.
    pub fn name_tag(&self) -> Option<&str> {
        self.tags.get("Name").map(String::as_str)
    }

    /// The `dr:wave` tag, if any.
    pub fn wave(&self) -> Option<&str> {
        self.tags.get(WAVE_TAG_KEY).map(String::as_str)
    }
}

/// Which way a source server replicates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReplicationDirection {
    /// From the primary region to the DR region.
    #[default]
    Failover,
    /// Reversed: from a recovery instance back to the original region.
    Failback,
}

impl ReplicationDirection {
    fn is_failover(&self) -> bool {
        *self == Self::Failover
    }
}

/// The boot mode DRS needs a standby to have for this source server (aws-drs-api.md §1.2): a Linux standby
/// boots legacy BIOS; a Windows standby boots like its source (its own mode when the source's is unknown).
pub fn required_boot_mode(source: &SourceServer, standby: &Ec2Instance) -> BootMode {
    match standby.platform {
        Platform::Linux => BootMode::LegacyBios,
        Platform::Windows => source.boot_mode.unwrap_or(standby.boot_mode),
    }
}

/// Where a private IP stands in its subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpPlacement {
    /// The subnet does not exist.
    SubnetMissing,
    /// Outside the subnet's CIDR block.
    Outside,
    /// One of the five addresses AWS reserves in every subnet.
    Reserved,
    /// Inside the block and usable.
    Usable,
}

/// Where `ip` stands in `subnet`.
pub fn ip_placement(subnet: Option<&Subnet>, ip: Ipv4Addr) -> IpPlacement {
    match subnet {
        None => IpPlacement::SubnetMissing,
        Some(sn) if !sn.cidr.contains(ip) => IpPlacement::Outside,
        Some(sn) if sn.cidr.is_aws_reserved(ip) => IpPlacement::Reserved,
        Some(_) => IpPlacement::Usable,
    }
}

/// One account and region: where a protection group's primary or DR side lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountRegion {
    pub account_id: AccountId,
    pub region: Region,
}

impl AccountRegion {
    /// Whether a resource in `account` and `region` is here.
    pub fn holds(&self, account: &AccountId, region: &Region) -> bool {
        &self.account_id == account && &self.region == region
    }
}

/// An account and region Roundtrip can reach, with the account's friendly name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownAccountRegion {
    pub at: AccountRegion,
    pub account_name: String,
}

/// Counts describing one account and region of the estate, for the overview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EstateSlice {
    pub account_id: String,
    pub account_name: String,
    pub region: String,
    pub instances: usize,
    /// Source servers whose DRS resource lives here, by replication state.
    pub source_servers_by_state: BTreeMap<String, usize>,
    /// Standbys (exact AWSDRS tag, not terminated) by instance state.
    pub standbys_by_state: BTreeMap<String, usize>,
    /// Reads that failed here (a region down, a missing permission): the counts leave them out. One
    /// unreachable region never blanks the overview — in a disaster it is the one that is down.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<String>,
}

/// The estate overview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EstateOverview {
    /// What the estate is: `simulated` or `aws`.
    pub cloud: String,
    /// Scenario name (simulated estate) or a description.
    pub description: String,
    pub slices: Vec<EstateSlice>,
}

/// Summarises one account and region for the overview.
pub fn summarize_slice(
    account_id: &AccountId,
    account_name: &str,
    region: &Region,
    instances: &[Ec2Instance],
    sources: &[SourceServer],
) -> EstateSlice {
    let mut slice = EstateSlice {
        account_id: account_id.to_string(),
        account_name: account_name.to_owned(),
        region: region.to_string(),
        instances: instances.len(),
        ..EstateSlice::default()
    };
    for s in sources {
        *slice.source_servers_by_state.entry(s.replication_state.as_str().to_owned()).or_default() += 1;
    }
    for i in instances.iter().filter(|i| i.is_standby()) {
        *slice.standbys_by_state.entry(i.state.as_str().to_owned()).or_default() += 1;
    }
    slice
}

/// One read tried in one account and region by "test access", and what it found or what is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessCheck {
    pub account_id: String,
    pub account_name: String,
    pub region: String,
    /// The IAM action tried, e.g. `ec2:DescribeInstances`.
    pub action: String,
    pub ok: bool,
    /// What was found (a count), or what is missing and why.
    pub detail: String,
}

/// An account Roundtrip reaches, as the console shows it (the External ID is never shown, only whether one
/// is set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudAccount {
    pub account_id: AccountId,
    pub name: String,
    pub role_arn: Option<String>,
    pub regions: Vec<Region>,
    pub external_id_set: bool,
    /// `settings` (the settings file; changed only there), `console` (registered by an admin) or `estate`
    /// (the simulated estate's scenario).
    pub source: String,
}

/// An account an admin registers in the console.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CloudAccountInput {
    pub account_id: String,
    pub name: String,
    /// The role to assume; empty for the account Roundtrip runs in.
    #[serde(default)]
    pub role_arn: String,
    /// The External ID the role demands. Empty when editing keeps the one stored.
    #[serde(default)]
    pub external_id: String,
    /// Region codes, e.g. `["eu-west-1", "eu-central-1"]`.
    pub regions: Vec<String>,
}

/// A valid [`CloudAccountInput`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidCloudAccount {
    pub account_id: AccountId,
    pub name: String,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub regions: Vec<Region>,
}

impl CloudAccountInput {
    /// Checks every field; all problems at once.
    ///
    /// # Errors
    /// One [`crate::error::FieldError`] per problem, with a stable code.
    pub fn validate(&self) -> Result<ValidCloudAccount, Vec<crate::error::FieldError>> {
        use crate::error::FieldError;
        let mut errors = Vec::new();
        let account_id = AccountId::parse(self.account_id.trim())
            .map_err(|e| errors.push(FieldError::new("account_id", e.code, e.message)))
            .ok();
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 64 {
            errors.push(FieldError::new("name", "INVALID_NAME", "a name of 1 to 64 characters"));
        }
        let role_arn = Some(self.role_arn.trim().to_owned()).filter(|r| !r.is_empty());
        if let (Some(arn), Some(id)) = (&role_arn, &account_id) {
            let ok = ["aws", "aws-us-gov", "aws-cn"].iter().any(|p| {
                arn.strip_prefix(&format!("arn:{p}:iam::{}:role/", id.as_str())).is_some_and(|rest| {
                    !rest.is_empty()
                        && rest.len() <= 512
                        && rest.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
                })
            });
            if !ok {
                errors.push(FieldError::new(
                    "role_arn",
                    "INVALID_ROLE_ARN",
                    format!(
                        "a role of account {} such as arn:aws:iam::{}:role/RoundtripAccess",
                        id.as_str(),
                        id.as_str()
                    ),
                ));
            }
        }
        let external_id = Some(self.external_id.trim().to_owned()).filter(|x| !x.is_empty());
        if let Some(x) = &external_id
            && (!(2..=1224).contains(&x.len())
                || !x.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-_".contains(c)))
        {
            errors.push(FieldError::new(
                "external_id",
                "INVALID_EXTERNAL_ID",
                "an External ID has 2 to 1224 letters, digits or +=,.@:/-_",
            ));
        }
        if external_id.is_some() && role_arn.is_none() {
            errors.push(FieldError::new("external_id", "EXTERNAL_ID_WITHOUT_ROLE", "an External ID goes with a role"));
        }
        let mut regions = Vec::new();
        for (i, r) in self.regions.iter().enumerate() {
            match Region::parse(r.trim()) {
                Ok(r) if !regions.contains(&r) => regions.push(r),
                Ok(_) => {}
                Err(e) => errors.push(FieldError::new(format!("regions[{i}]"), e.code, e.message)),
            }
        }
        if regions.is_empty() || regions.len() > 20 {
            errors.push(FieldError::new("regions", "INVALID_REGIONS", "1 to 20 regions"));
        }
        match (errors.is_empty(), account_id) {
            (true, Some(account_id)) => Ok(ValidCloudAccount { account_id, name, role_arn, external_id, regions }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod cloud_account_tests {
    use super::*;

    fn input() -> CloudAccountInput {
        CloudAccountInput {
            account_id: "111122223333".into(),
            name: "production".into(),
            role_arn: "arn:aws:iam::111122223333:role/RoundtripAccess".into(),
            external_id: "ext-id-123".into(),
            regions: vec!["eu-west-1".into(), "eu-west-1".into(), "eu-central-1".into()],
        }
    }

    #[test]
    fn a_registered_account_is_checked_field_by_field() {
        let ok = input().validate().unwrap();
        assert_eq!(ok.regions.len(), 2, "duplicates fold");
        type Change = fn(&mut CloudAccountInput);
        let cases: &[(Change, &str)] = &[
            (|i| i.account_id = "1234".into(), "INVALID_ACCOUNT_ID"),
            (|i| i.name = " ".into(), "INVALID_NAME"),
            (|i| i.role_arn = "arn:aws:iam::999988887777:role/x".into(), "INVALID_ROLE_ARN"),
            (|i| i.role_arn = "arn:aws:iam::111122223333:role/<script>".into(), "INVALID_ROLE_ARN"),
            (|i| i.external_id = "x".into(), "INVALID_EXTERNAL_ID"),
            (|i| i.role_arn = String::new(), "EXTERNAL_ID_WITHOUT_ROLE"),
            (|i| i.regions = vec!["mars-1".into()], "INVALID_REGION"),
            (|i| i.regions = Vec::new(), "INVALID_REGIONS"),
        ];
        for (change, code) in cases {
            let mut i = input();
            change(&mut i);
            let errs = i.validate().unwrap_err();
            assert!(errs.iter().any(|e| e.code == *code), "{code}: {errs:?}");
        }
    }
}
