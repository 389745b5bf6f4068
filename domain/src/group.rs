//! Protection groups and pairs: what an operator protects and which standby each source server
//! recovers into.
//!
//! Inputs arrive as raw text ([`ProtectionGroupInput`]) and are checked field by field, so one request
//! reports every problem at once; only a valid [`GroupSpec`] reaches a service.

use crate::error::FieldError;
use crate::estate::{AccountRegion, SourceServer, Tags, check_tags};
use crate::ids::{AccountId, InstanceId, PairId, ProtectionGroupId, Region, SourceServerId, SubnetId};
pub use crate::launch::LaunchDisposition;
use crate::matching::SourceNameKey;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Longest protection group name, in characters.
pub const MAX_GROUP_NAME_CHARS: usize = 128;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1024;
/// Most source server ids one group may list explicitly.
pub const MAX_EXPLICIT_IDS: usize = 3000;

/// Which source servers of the primary account and region a group protects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceSelection {
    /// Every source server replicating from the primary account and region.
    All,
    /// Source servers carrying every one of these tags (exact key and value).
    Tags { tags: Tags },
    /// Exactly these source servers.
    SourceServerIds { source_server_ids: Vec<SourceServerId> },
}

impl SourceSelection {
    /// Whether the selection includes this source server (the caller checks account and region).
    pub fn selects(&self, s: &SourceServer) -> bool {
        match self {
            Self::All => true,
            Self::Tags { tags } => tags.iter().all(|(k, v)| s.tags.get(k) == Some(v)),
            Self::SourceServerIds { source_server_ids } => source_server_ids.contains(&s.source_server_id),
        }
    }
}

/// A protection group as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectionGroup {
    pub id: ProtectionGroupId,
    pub name: String,
    pub description: String,
    pub primary: AccountRegion,
    pub dr: AccountRegion,
    pub selection: SourceSelection,
    pub source_name_key: SourceNameKey,
    /// Whether DRS starts a standby after launching into it.
    #[serde(default)]
    pub launch_disposition: LaunchDisposition,
    /// Replication lag above which readiness warns, in seconds.
    #[serde(default = "default_lag_threshold")]
    pub lag_threshold_seconds: u64,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
    /// Optimistic version, bumped on every write.
    pub version: u64,
}

impl ProtectionGroup {
    /// Whether the group protects this source server: it replicates from the primary account and region
    /// into the DR account and region, and the selection includes it.
    pub fn protects(&self, s: &SourceServer) -> bool {
        in_scope(&self.primary, &self.dr, &self.selection, s)
    }

    /// A new group from a checked spec, at version 1.
    pub fn new(id: ProtectionGroupId, spec: GroupSpec, now: i64) -> Self {
        let GroupSpec {
            name,
            description,
            primary,
            dr,
            selection,
            source_name_key,
            launch_disposition,
            lag_threshold_seconds,
        } = spec;
        Self {
            id,
            name,
            description,
            primary,
            dr,
            selection,
            source_name_key,
            launch_disposition,
            lag_threshold_seconds,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// This group with its settings replaced by `spec`; id, creation time and version stay.
    pub fn with_spec(&self, spec: GroupSpec, now: i64) -> Self {
        Self { updated_at: now, ..Self::new(self.id.clone(), spec, self.created_at) }.with_version(self.version)
    }

    fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }
}

/// Whether a source server replicates from `primary` into `dr` and `selection` includes it.
fn in_scope(primary: &AccountRegion, dr: &AccountRegion, selection: &SourceSelection, s: &SourceServer) -> bool {
    s.origin_account_id == primary.account_id
        && s.origin_region == primary.region
        && s.account_id == dr.account_id
        && s.region == dr.region
        && selection.selects(s)
}

/// The raw account and region of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRegionInput {
    #[serde(default)]
    pub account_id: String,
    #[serde(default)]
    pub region: String,
}

impl AccountRegionInput {
    /// Parses both fields, reporting errors under `field`.
    ///
    /// # Errors
    /// One [`FieldError`] per invalid field.
    pub fn parse(&self, field: &str) -> Result<AccountRegion, Vec<FieldError>> {
        let account = AccountId::parse(self.account_id.trim());
        let region = Region::parse(self.region.trim());
        match (account, region) {
            (Ok(account_id), Ok(region)) => Ok(AccountRegion { account_id, region }),
            (a, r) => {
                let mut errs = Vec::new();
                if let Err(e) = a {
                    errs.push(FieldError::new(format!("{field}.account_id"), e.code, e.message));
                }
                if let Err(e) = r {
                    errs.push(FieldError::new(format!("{field}.region"), e.code, e.message));
                }
                Err(errs)
            }
        }
    }
}

/// The raw selection of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SelectionInput {
    #[default]
    All,
    Tags {
        #[serde(default)]
        tags: Tags,
    },
    SourceServerIds {
        #[serde(default)]
        source_server_ids: Vec<String>,
    },
}

impl SelectionInput {
    /// Parses the selection, reporting errors under `selection.…`.
    ///
    /// # Errors
    /// Every invalid part: no tags or ids, tags over AWS's limits, malformed or repeated ids.
    pub fn parse(&self) -> Result<SourceSelection, Vec<FieldError>> {
        let mut errs = Vec::new();
        let selection = match self {
            SelectionInput::All => SourceSelection::All,
            SelectionInput::Tags { tags } => {
                if tags.is_empty() {
                    errs.push(FieldError::new("selection.tags", "REQUIRED", "name at least one tag to select by"));
                } else if let Err(m) = check_tags(tags) {
                    errs.push(FieldError::new("selection.tags", "INVALID_TAGS", m));
                }
                SourceSelection::Tags { tags: tags.clone() }
            }
            SelectionInput::SourceServerIds { source_server_ids } => {
                if source_server_ids.is_empty() {
                    errs.push(FieldError::new(
                        "selection.source_server_ids",
                        "REQUIRED",
                        "list at least one source server id",
                    ));
                }
                if source_server_ids.len() > MAX_EXPLICIT_IDS {
                    errs.push(FieldError::new(
                        "selection.source_server_ids",
                        "TOO_MANY",
                        format!("at most {MAX_EXPLICIT_IDS} ids; select by tags instead"),
                    ));
                }
                let mut ids = Vec::with_capacity(source_server_ids.len());
                let mut seen = std::collections::HashSet::new();
                for (i, raw) in source_server_ids.iter().enumerate().take(MAX_EXPLICIT_IDS) {
                    let field = || format!("selection.source_server_ids[{i}]");
                    match SourceServerId::parse(raw.trim()) {
                        Ok(id) if !seen.insert(id.clone()) => {
                            errs.push(FieldError::new(field(), "DUPLICATE", format!("{id} is listed twice")))
                        }
                        Ok(id) => ids.push(id),
                        Err(e) => errs.push(FieldError::new(field(), e.code, e.message)),
                    }
                }
                SourceSelection::SourceServerIds { source_server_ids: ids }
            }
        };
        if errs.is_empty() { Ok(selection) } else { Err(errs) }
    }
}

/// A protection group as a client sends it (create or replace). Unknown fields are refused, so a typo
/// such as `selecton` cannot silently select every source server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectionGroupInput {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub primary: AccountRegionInput,
    #[serde(default)]
    pub dr: AccountRegionInput,
    #[serde(default)]
    pub selection: SelectionInput,
    #[serde(default)]
    pub source_name_key: SourceNameKey,
    #[serde(default)]
    pub launch_disposition: LaunchDisposition,
    /// Seconds; 10 minutes when absent.
    #[serde(default)]
    pub lag_threshold_seconds: Option<u64>,
}

/// A checked protection group input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    pub name: String,
    pub description: String,
    pub primary: AccountRegion,
    pub dr: AccountRegion,
    pub selection: SourceSelection,
    pub source_name_key: SourceNameKey,
    pub launch_disposition: LaunchDisposition,
    pub lag_threshold_seconds: u64,
}

/// The default replication lag threshold: 10 minutes.
pub const DEFAULT_LAG_THRESHOLD_SECONDS: u64 = 600;

fn default_lag_threshold() -> u64 {
    DEFAULT_LAG_THRESHOLD_SECONDS
}

impl GroupSpec {
    /// Whether a group with this spec protects the source server.
    pub fn protects(&self, s: &SourceServer) -> bool {
        in_scope(&self.primary, &self.dr, &self.selection, s)
    }
}

impl ProtectionGroupInput {
    /// Checks every field and returns all problems at once.
    ///
    /// # Errors
    /// Every invalid field, each with a stable code and a message.
    pub fn validate(&self) -> Result<GroupSpec, Vec<FieldError>> {
        let mut errs = Vec::new();
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            errs.push(FieldError::new("name", "REQUIRED", "give the protection group a name"));
        } else if name.chars().count() > MAX_GROUP_NAME_CHARS {
            errs.push(FieldError::new("name", "TOO_LONG", format!("at most {MAX_GROUP_NAME_CHARS} characters")));
        } else if name.chars().any(char::is_control) {
            errs.push(FieldError::new("name", "INVALID_CHARACTERS", "control characters are not allowed"));
        }
        if self.description.chars().count() > MAX_DESCRIPTION_CHARS {
            errs.push(FieldError::new(
                "description",
                "TOO_LONG",
                format!("at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        let primary = self.primary.parse("primary").map_err(|e| errs.extend(e)).ok();
        let dr = self.dr.parse("dr").map_err(|e| errs.extend(e)).ok();
        let selection = self.selection.parse().map_err(|e| errs.extend(e)).ok();
        let lag_threshold_seconds = self.lag_threshold_seconds.unwrap_or(DEFAULT_LAG_THRESHOLD_SECONDS);
        if !(1..=86_400).contains(&lag_threshold_seconds) {
            errs.push(FieldError::new("lag_threshold_seconds", "OUT_OF_RANGE", "between 1 second and 1 day (86400)"));
        }
        match (primary, dr, selection) {
            (Some(primary), Some(dr), Some(selection)) if errs.is_empty() => Ok(GroupSpec {
                name,
                description: self.description.trim().to_owned(),
                primary,
                dr,
                selection,
                source_name_key: self.source_name_key,
                launch_disposition: self.launch_disposition,
                lag_threshold_seconds,
            }),
            _ => Err(errs),
        }
    }
}

/// How a pair came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairOrigin {
    /// Accepted from a match report.
    Matched,
    /// Set by hand (manual override).
    Manual,
}

/// One source server ↔ one standby, accepted by a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstancePair {
    pub id: PairId,
    pub protection_group_id: ProtectionGroupId,
    pub source_server_id: SourceServerId,
    pub standby_instance_id: InstanceId,
    pub origin: PairOrigin,
    /// The source's name when accepted (display only).
    pub source_name: String,
    /// The standby's Name tag when accepted (display only).
    pub standby_name: String,
    /// The standby's private IP when accepted: identity verification compares against it after a launch.
    pub standby_private_ip: Ipv4Addr,
    pub standby_subnet_id: SubnetId,
    /// The source's `dr:wave` tag when accepted.
    pub wave: Option<String>,
    /// Unix milliseconds.
    pub accepted_at: i64,
    /// Who accepted it.
    pub accepted_by: String,
    pub version: u64,
}

/// A request to accept (or set by hand) one pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairRequest {
    pub source_server_id: SourceServerId,
    pub standby_instance_id: InstanceId,
}

/// A protection group with its pair count, for lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    pub group: ProtectionGroup,
    pub pairs: usize,
}

/// A group's match report with the pairs already accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMatch {
    pub group: ProtectionGroup,
    pub report: crate::matching::MatchReport,
    pub accepted: Vec<InstancePair>,
}

/// The outcome of accepting pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptOutcome {
    /// Pairs written by this request.
    pub accepted: Vec<InstancePair>,
    /// Requests that were already stored exactly so (idempotent repeats).
    pub unchanged: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ProtectionGroupInput {
        ProtectionGroupInput {
            name: " Shop ".into(),
            primary: AccountRegionInput { account_id: "111111111111".into(), region: "us-east-1".into() },
            dr: AccountRegionInput { account_id: "222222222222".into(), region: "us-west-2".into() },
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_input_is_trimmed_and_parsed() {
        let spec = input().validate().unwrap();
        assert_eq!(spec.name, "Shop");
        assert_eq!(spec.dr.region.as_str(), "us-west-2");
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let mut bad = input();
        bad.name = "   ".into();
        bad.primary.account_id = "12".into();
        bad.dr.region = "Mars".into();
        bad.selection = SelectionInput::SourceServerIds { source_server_ids: vec!["s-1".into()] };
        let errs = bad.validate().unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "primary.account_id", "dr.region", "selection.source_server_ids[0]"]);
    }

    #[test]
    fn an_empty_tag_selection_is_rejected() {
        let mut bad = input();
        bad.selection = SelectionInput::Tags { tags: Tags::new() };
        assert_eq!(bad.validate().unwrap_err()[0].code, "REQUIRED");
    }
}
