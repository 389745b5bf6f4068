//! DRS launch configurations and the launch-into configuration Roundtrip applies to them.
//!
//! The launch-into configuration is written in two steps (`shared/reference/aws-drs-api.md` §1.1, §1.4):
//! step 1 turns off what conflicts with launching into an existing instance (copy private IP, copy tags,
//! right-sizing) and sets the group's launch disposition; step 2 points
//! `launchIntoInstanceProperties.launchIntoEC2InstanceID` at the paired standby. DRS refuses step 2 while
//! copy private IP or copy tags is on, which is why the order matters.

use crate::ids::{InstanceId, SourceServerId};
use serde::{Deserialize, Serialize};

/// `launchDisposition`: whether DRS starts the instance after launching into it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LaunchDisposition {
    Stopped,
    #[default]
    Started,
}

impl LaunchDisposition {
    /// The DRS wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "STOPPED",
            Self::Started => "STARTED",
        }
    }
}

/// `targetInstanceTypeRightSizingMethod`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RightSizing {
    None,
    #[default]
    Basic,
    InAws,
}

impl RightSizing {
    /// The DRS wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Basic => "BASIC",
            Self::InAws => "IN_AWS",
        }
    }
}

/// A source server's DRS launch configuration (`GetLaunchConfiguration`), the fields Roundtrip reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchConfiguration {
    pub source_server_id: SourceServerId,
    pub launch_disposition: LaunchDisposition,
    pub right_sizing: RightSizing,
    pub copy_private_ip: bool,
    pub copy_tags: bool,
    /// `launchIntoInstanceProperties.launchIntoEC2InstanceID`.
    pub launch_into_instance_id: Option<InstanceId>,
    #[serde(default)]
    pub os_byol: bool,
    #[serde(default)]
    pub post_launch_enabled: bool,
}

impl LaunchConfiguration {
    /// DRS's defaults for a new source server.
    pub fn drs_default(source_server_id: SourceServerId) -> Self {
        Self {
            source_server_id,
            launch_disposition: LaunchDisposition::Started,
            right_sizing: RightSizing::Basic,
            copy_private_ip: false,
            copy_tags: false,
            launch_into_instance_id: None,
            os_byol: false,
            post_launch_enabled: false,
        }
    }

    /// This configuration with an update applied (what DRS stores after `UpdateLaunchConfiguration`).
    pub fn merged(&self, u: &LaunchConfigurationUpdate) -> Self {
        Self {
            source_server_id: self.source_server_id.clone(),
            launch_disposition: u.launch_disposition.unwrap_or(self.launch_disposition),
            right_sizing: u.right_sizing.unwrap_or(self.right_sizing),
            copy_private_ip: u.copy_private_ip.unwrap_or(self.copy_private_ip),
            copy_tags: u.copy_tags.unwrap_or(self.copy_tags),
            launch_into_instance_id: match &u.launch_into_instance_id {
                Some(v) => v.clone(),
                None => self.launch_into_instance_id.clone(),
            },
            os_byol: self.os_byol,
            post_launch_enabled: self.post_launch_enabled,
        }
    }

    /// Whether this configuration launches into `standby` with every conflicting setting off and the
    /// wanted launch disposition.
    pub fn launches_into(&self, standby: &InstanceId, disposition: LaunchDisposition) -> bool {
        self.launch_into_instance_id.as_ref() == Some(standby)
            && !self.copy_private_ip
            && !self.copy_tags
            && self.right_sizing == RightSizing::None
            && self.launch_disposition == disposition
    }
}

/// `UpdateLaunchConfiguration`: only the fields that are `Some` are written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchConfigurationUpdate {
    pub source_server_id: Option<SourceServerId>,
    pub launch_disposition: Option<LaunchDisposition>,
    pub right_sizing: Option<RightSizing>,
    pub copy_private_ip: Option<bool>,
    pub copy_tags: Option<bool>,
    /// `Some(None)` clears the launch-into instance.
    pub launch_into_instance_id: Option<Option<InstanceId>>,
}

impl LaunchConfigurationUpdate {
    /// An update of `source` that writes nothing yet.
    pub fn for_server(source: SourceServerId) -> Self {
        Self { source_server_id: Some(source), ..Self::default() }
    }

    /// Whether the update writes nothing.
    pub fn is_empty(&self) -> bool {
        self.launch_disposition.is_none()
            && self.right_sizing.is_none()
            && self.copy_private_ip.is_none()
            && self.copy_tags.is_none()
            && self.launch_into_instance_id.is_none()
    }
}

/// One field of a launch configuration: its current and desired value and whether it would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The DRS field name, e.g. `copyPrivateIp`.
    pub field: String,
    pub current: String,
    pub desired: String,
    pub changes: bool,
    /// 1 or 2: the step that writes it.
    pub step: u8,
}

/// The two steps that turn `current` into a launch-into configuration for `standby`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchIntoPlan {
    pub step1: LaunchConfigurationUpdate,
    pub step2: LaunchConfigurationUpdate,
    /// Every field the plan looks at, changed or not.
    pub fields: Vec<FieldChange>,
}

impl LaunchIntoPlan {
    /// Whether anything would be written.
    pub fn changes(&self) -> bool {
        !self.step1.is_empty() || !self.step2.is_empty()
    }
}

fn show_id(v: &Option<InstanceId>) -> String {
    v.as_ref().map_or_else(|| "(none)".to_owned(), ToString::to_string)
}

/// Plans the launch-into configuration of one source server: only fields whose value differs are written.
pub fn plan_launch_into(
    current: &LaunchConfiguration,
    standby: &InstanceId,
    disposition: LaunchDisposition,
) -> LaunchIntoPlan {
    let source = Some(current.source_server_id.clone());
    let mut step1 = LaunchConfigurationUpdate { source_server_id: source.clone(), ..Default::default() };
    let mut step2 = LaunchConfigurationUpdate { source_server_id: source, ..Default::default() };
    let mut fields = Vec::new();
    let mut field = |name: &str, cur: String, want: String, step: u8| {
        let changes = cur != want;
        fields.push(FieldChange { field: name.into(), current: cur, desired: want, changes, step });
        changes
    };
    if field("copyPrivateIp", current.copy_private_ip.to_string(), "false".into(), 1) {
        step1.copy_private_ip = Some(false);
    }
    if field("copyTags", current.copy_tags.to_string(), "false".into(), 1) {
        step1.copy_tags = Some(false);
    }
    if field("targetInstanceTypeRightSizingMethod", current.right_sizing.as_str().into(), "NONE".into(), 1) {
        step1.right_sizing = Some(RightSizing::None);
    }
    if field("launchDisposition", current.launch_disposition.as_str().into(), disposition.as_str().into(), 1) {
        step1.launch_disposition = Some(disposition);
    }
    let want = Some(standby.clone());
    if field(
        "launchIntoInstanceProperties.launchIntoEC2InstanceID",
        show_id(&current.launch_into_instance_id),
        show_id(&want),
        2,
    ) {
        step2.launch_into_instance_id = Some(want);
    }
    LaunchIntoPlan { step1, step2, fields }
}

/// The update that puts back the step-1 fields of `previous` (rolling back a step 1 whose step 2 failed).
pub fn undo_step1(previous: &LaunchConfiguration, step1: &LaunchConfigurationUpdate) -> LaunchConfigurationUpdate {
    LaunchConfigurationUpdate {
        source_server_id: Some(previous.source_server_id.clone()),
        launch_disposition: step1.launch_disposition.map(|_| previous.launch_disposition),
        right_sizing: step1.right_sizing.map(|_| previous.right_sizing),
        copy_private_ip: step1.copy_private_ip.map(|_| previous.copy_private_ip),
        copy_tags: step1.copy_tags.map(|_| previous.copy_tags),
        launch_into_instance_id: None,
    }
}

/// The updates that restore `previous` entirely from `current`: first the launch-into instance (cleared or
/// reset, while copy settings are still off), then the step-1 fields.
pub fn restore(previous: &LaunchConfiguration, current: &LaunchConfiguration) -> [LaunchConfigurationUpdate; 2] {
    let source = Some(previous.source_server_id.clone());
    let first = LaunchConfigurationUpdate {
        source_server_id: source.clone(),
        launch_into_instance_id: (current.launch_into_instance_id != previous.launch_into_instance_id)
            .then(|| previous.launch_into_instance_id.clone()),
        ..Default::default()
    };
    let second = LaunchConfigurationUpdate {
        source_server_id: source,
        launch_disposition: pick(current.launch_disposition, previous.launch_disposition),
        right_sizing: pick(current.right_sizing, previous.right_sizing),
        copy_private_ip: pick(current.copy_private_ip, previous.copy_private_ip),
        copy_tags: pick(current.copy_tags, previous.copy_tags),
        launch_into_instance_id: None,
    };
    [first, second]
}

fn pick<T: PartialEq>(current: T, previous: T) -> Option<T> {
    (current != previous).then_some(previous)
}

/// The fields of `current` that differ from what Roundtrip applied: drift.
pub fn drift(applied: &LaunchConfiguration, current: &LaunchConfiguration) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut cmp = |field: &str, a: String, c: String, step: u8| {
        if a != c {
            out.push(FieldChange { field: field.into(), current: c, desired: a, changes: true, step });
        }
    };
    cmp("copyPrivateIp", applied.copy_private_ip.to_string(), current.copy_private_ip.to_string(), 1);
    cmp("copyTags", applied.copy_tags.to_string(), current.copy_tags.to_string(), 1);
    cmp(
        "targetInstanceTypeRightSizingMethod",
        applied.right_sizing.as_str().into(),
        current.right_sizing.as_str().into(),
        1,
    );
    cmp("launchDisposition", applied.launch_disposition.as_str().into(), current.launch_disposition.as_str().into(), 1);
    cmp(
        "launchIntoInstanceProperties.launchIntoEC2InstanceID",
        show_id(&applied.launch_into_instance_id),
        show_id(&current.launch_into_instance_id),
        2,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid() -> SourceServerId {
        SourceServerId::parse("s-0123456789abcdef0").unwrap()
    }
    fn iid() -> InstanceId {
        InstanceId::parse("i-0123456789abcdef0").unwrap()
    }

    #[test]
    fn a_default_configuration_needs_both_steps() {
        let plan = plan_launch_into(&LaunchConfiguration::drs_default(sid()), &iid(), LaunchDisposition::Started);
        assert_eq!(plan.step1.right_sizing, Some(RightSizing::None));
        assert_eq!(plan.step1.copy_private_ip, None, "already off: not written");
        assert_eq!(plan.step2.launch_into_instance_id, Some(Some(iid())));
        let after = LaunchConfiguration::drs_default(sid()).merged(&plan.step1).merged(&plan.step2);
        assert!(after.launches_into(&iid(), LaunchDisposition::Started));
        assert!(!after.launches_into(&iid(), LaunchDisposition::Stopped));
        assert!(
            !plan_launch_into(&after, &iid(), LaunchDisposition::Started).changes(),
            "applying twice writes nothing"
        );
    }

    #[test]
    fn restore_brings_back_the_previous_configuration() {
        let mut previous = LaunchConfiguration::drs_default(sid());
        previous.copy_private_ip = true;
        let plan = plan_launch_into(&previous, &iid(), LaunchDisposition::Stopped);
        let applied = previous.merged(&plan.step1).merged(&plan.step2);
        let [a, b] = restore(&previous, &applied);
        assert_eq!(applied.merged(&a).merged(&b), previous);
        assert_eq!(previous.merged(&plan.step1).merged(&undo_step1(&previous, &plan.step1)), previous);
    }

    #[test]
    fn drift_names_each_field_changed_behind_our_back() {
        let applied = LaunchConfiguration::drs_default(sid()).merged(&LaunchConfigurationUpdate {
            launch_into_instance_id: Some(Some(iid())),
            right_sizing: Some(RightSizing::None),
            ..Default::default()
        });
        let mut now = applied.clone();
        now.copy_tags = true;
        now.launch_into_instance_id = None;
        let d: Vec<String> = drift(&applied, &now).into_iter().map(|f| f.field).collect();
        assert_eq!(d, ["copyTags", "launchIntoInstanceProperties.launchIntoEC2InstanceID"]);
        assert!(drift(&applied, &applied).is_empty());
    }
}

/// What happened (or would happen) to one source server's launch configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigureStatus {
    /// A prerequisite failed; nothing was written.
    Refused,
    /// A write failed and could not be undone; see the message.
    Failed,
    /// Step 2 failed; step 1 was undone, so the configuration is as before.
    RolledBack,
    /// Dry run: these fields would change.
    WouldChange,
    /// Written.
    Applied,
    /// Already as desired; nothing written.
    Unchanged,
    /// Rollback: the previous configuration was restored.
    Restored,
    /// Rollback: Roundtrip never changed this server.
    NothingToRestore,
}

impl ConfigureStatus {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
            Self::WouldChange => "would_change",
            Self::Applied => "applied",
            Self::Unchanged => "unchanged",
            Self::Restored => "restored",
            Self::NothingToRestore => "nothing_to_restore",
        }
    }
}

/// One server's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerOutcome {
    pub pair_id: crate::ids::PairId,
    pub source_server_id: SourceServerId,
    pub source_name: String,
    pub standby_instance_id: InstanceId,
    pub status: ConfigureStatus,
    /// Every field looked at, with current and desired values.
    pub changes: Vec<FieldChange>,
    /// `UpdateLaunchConfiguration` calls that succeeded.
    pub writes: u32,
    /// DRS calls made, retries included.
    pub calls: u32,
    pub throttled: u32,
    /// Why it was refused or failed, with stable codes.
    pub reasons: Vec<crate::FieldError>,
}

/// The outcome of configuring (or rolling back) a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigureOutcome {
    pub dry_run: bool,
    pub results: Vec<ServerOutcome>,
    /// Servers per status.
    pub counts: std::collections::BTreeMap<String, usize>,
    pub writes: u32,
    pub calls: u32,
    pub throttled: u32,
}

impl ConfigureOutcome {
    /// Totals the results (sorted by source name).
    pub fn new(dry_run: bool, mut results: Vec<ServerOutcome>) -> Self {
        results.sort_by(|a, b| (&a.source_name, &a.source_server_id).cmp(&(&b.source_name, &b.source_server_id)));
        let mut counts = std::collections::BTreeMap::new();
        for r in &results {
            *counts.entry(r.status.as_str().to_owned()).or_default() += 1;
        }
        Self {
            dry_run,
            writes: results.iter().map(|r| r.writes).sum(),
            calls: results.iter().map(|r| r.calls).sum(),
            throttled: results.iter().map(|r| r.throttled).sum(),
            counts,
            results,
        }
    }
}

/// Where one pair's launch configuration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaunchConfigState {
    /// Launches into the paired standby, as Roundtrip applied it.
    Configured,
    /// Not (yet) launching into the paired standby.
    NotConfigured,
    /// Changed outside Roundtrip since Roundtrip applied it.
    Drifted,
    /// Could not be read.
    Unreadable,
}

/// One pair's launch configuration, for the status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchConfigStatus {
    pub pair_id: crate::ids::PairId,
    pub source_server_id: SourceServerId,
    pub source_name: String,
    pub standby_instance_id: InstanceId,
    pub state: LaunchConfigState,
    pub current: Option<LaunchConfiguration>,
    pub applied: Option<LaunchConfiguration>,
    /// Whether the configuration before Roundtrip's first write is kept (so a rollback can restore it).
    pub backed_up: bool,
    pub drift: Vec<FieldChange>,
    pub error: Option<String>,
}
