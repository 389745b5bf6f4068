//! Recovery plans: ordered waves of pairs, each wave with its gate, failure policy and timeout.
//!
//! Invariants of a saved plan (checked by [`validate_plan`]): it names at least one protection group; it has
//! at least one wave and no empty wave; every pair belongs to one of its groups, appears once in the whole
//! plan, and has its launch-into configuration applied (a "configured target"). A pair id names one source
//! server across all groups (a source server is paired at most once), so waves hold pair ids alone.

use crate::FieldError;
use crate::group::InstancePair;
use crate::ids::{PairId, ProtectionGroupId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Most characters in a plan or wave name.
pub const MAX_NAME_CHARS: usize = 128;
/// Most waves in a plan.
pub const MAX_WAVES: usize = 100;
/// Default RTO target of a plan, in minutes (the product's promise for 100 servers).
pub const DEFAULT_RTO_MINUTES: u32 = 30;
/// Default timeout of a wave, in minutes.
pub const DEFAULT_WAVE_TIMEOUT_MINUTES: u32 = 60;

/// What an execution does when a server of this wave fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Stop the execution after this wave (the default: later waves usually depend on earlier ones).
    #[default]
    Stop,
    /// Go on with the next wave.
    Continue,
}

/// One wave of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wave {
    pub name: String,
    pub pair_ids: Vec<PairId>,
    /// An approver must release the execution before this wave starts.
    #[serde(default)]
    pub pause_before: bool,
    #[serde(default)]
    pub on_failure: OnFailure,
    #[serde(default = "default_timeout")]
    pub timeout_minutes: u32,
}

fn default_timeout() -> u32 {
    DEFAULT_WAVE_TIMEOUT_MINUTES
}

fn default_rto() -> u32 {
    DEFAULT_RTO_MINUTES
}

/// A plan as a client sends it. Without `waves`, the waves are derived from the pairs' `dr:wave` tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryPlanInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub protection_group_ids: Vec<ProtectionGroupId>,
    #[serde(default)]
    pub waves: Option<Vec<Wave>>,
    #[serde(default = "default_rto")]
    pub rto_target_minutes: u32,
}

/// A stored plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryPlan {
    pub id: String,
    pub name: String,
    pub description: String,
    pub protection_group_ids: Vec<ProtectionGroupId>,
    pub waves: Vec<Wave>,
    pub rto_target_minutes: u32,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    #[serde(default)]
    pub version: u64,
}

/// Orders `dr:wave` tag values: numbers by value first, then other text, then untagged.
fn wave_order(tag: &Option<String>) -> (u8, u64, String) {
    match tag.as_deref().map(str::trim) {
        None | Some("") => (2, 0, String::new()),
        Some(t) => match t.parse::<u64>() {
            Ok(n) => (0, n, t.to_owned()),
            Err(_) => (1, 0, t.to_lowercase()),
        },
    }
}

/// The default waves of `pairs`: one wave per `dr:wave` tag value, in order, untagged pairs last. Pairs in a
/// wave are ordered by source name.
pub fn derive_waves(pairs: &[InstancePair]) -> Vec<Wave> {
    let mut by_tag: BTreeMap<(u8, u64, String), Vec<&InstancePair>> = BTreeMap::new();
    for p in pairs {
        by_tag.entry(wave_order(&p.wave)).or_default().push(p);
    }
    by_tag
        .into_iter()
        .map(|((kind, _, text), mut ps)| {
            ps.sort_by(|a, b| a.source_name.cmp(&b.source_name).then(a.id.cmp(&b.id)));
            let tag = ps.first().and_then(|p| p.wave.clone()).unwrap_or_default();
            Wave {
                name: if kind == 2 {
                    "No dr:wave tag".to_owned()
                } else {
                    format!("Wave {}", if kind == 0 { tag.trim() } else { &text })
                },
                pair_ids: ps.into_iter().map(|p| p.id.clone()).collect(),
                pause_before: false,
                on_failure: OnFailure::Stop,
                timeout_minutes: DEFAULT_WAVE_TIMEOUT_MINUTES,
            }
        })
        .collect()
}

/// What the estate says about the plan's pairs, for validation.
pub struct PlanContext<'a> {
    /// The pairs of every group the plan names.
    pub pairs: &'a [InstancePair],
    /// Groups that exist (of those the plan names).
    pub known_groups: &'a HashSet<ProtectionGroupId>,
    /// Pairs whose launch-into configuration is applied and not drifted.
    pub configured: &'a HashSet<PairId>,
}

/// Validates a plan (with its waves resolved) against its context; every problem is reported.
///
/// # Errors
/// Field errors with paths such as `waves[2].pair_ids[5]`.
pub fn validate_plan(
    name: &str,
    groups: &[ProtectionGroupId],
    waves: &[Wave],
    rto_target_minutes: u32,
    ctx: &PlanContext<'_>,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let name_chars = name.trim().chars().count();
    if name_chars == 0 || name_chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "name",
            "INVALID_NAME",
            format!("give the plan a name of 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if !(1..=1440).contains(&rto_target_minutes) {
        errors.push(FieldError::new("rto_target_minutes", "OUT_OF_RANGE", "the RTO target is 1 to 1440 minutes"));
    }
    if groups.is_empty() {
        errors.push(FieldError::new("protection_group_ids", "REQUIRED", "name at least one protection group"));
    }
    let mut seen_groups = HashSet::new();
    for (i, g) in groups.iter().enumerate() {
        if !seen_groups.insert(g) {
            errors.push(FieldError::new(
                format!("protection_group_ids[{i}]"),
                "LISTED_TWICE",
                format!("{g} is listed twice"),
            ));
        } else if !ctx.known_groups.contains(g) {
            errors.push(FieldError::new(
                format!("protection_group_ids[{i}]"),
                "PROTECTION_GROUP_NOT_FOUND",
                format!("protection group {g} does not exist"),
            ));
        }
    }
    if waves.is_empty() {
        errors.push(FieldError::new("waves", "NO_WAVES", "a plan needs at least one wave (do the groups have pairs?)"));
    }
    if waves.len() > MAX_WAVES {
        errors.push(FieldError::new("waves", "TOO_MANY", format!("a plan has at most {MAX_WAVES} waves")));
    }
    let by_id: HashMap<&PairId, &InstancePair> = ctx.pairs.iter().map(|p| (&p.id, p)).collect();
    let mut placed: HashMap<&PairId, usize> = HashMap::new();
    for (w, wave) in waves.iter().enumerate() {
        let wn = wave.name.trim().chars().count();
        if wn == 0 || wn > MAX_NAME_CHARS || wave.name.chars().any(char::is_control) {
            errors.push(FieldError::new(
                format!("waves[{w}].name"),
                "INVALID_NAME",
                format!("give wave {} a name of 1 to {MAX_NAME_CHARS} characters", w + 1),
            ));
        }
        if !(1..=1440).contains(&wave.timeout_minutes) {
            errors.push(FieldError::new(
                format!("waves[{w}].timeout_minutes"),
                "OUT_OF_RANGE",
                "a wave's timeout is 1 to 1440 minutes",
            ));
        }
        if wave.pair_ids.is_empty() {
            errors.push(FieldError::new(
                format!("waves[{w}].pair_ids"),
                "EMPTY_WAVE",
                format!("wave {} has no pairs; remove it or add some", crate::text::quoted(&wave.name)),
            ));
        }
        for (i, id) in wave.pair_ids.iter().enumerate() {
            let field = format!("waves[{w}].pair_ids[{i}]");
            if let Some(first) = placed.insert(id, w) {
                errors.push(FieldError::new(field, "SERVER_TWICE", format!("{id} is already in wave {}", first + 1)));
                continue;
            }
            match by_id.get(id) {
                None => errors.push(FieldError::new(field, "PAIR_NOT_IN_PLAN_GROUPS", format!("{id} is not a pair of the plan's protection groups"))),
                Some(p) if !ctx.configured.contains(id) => errors.push(FieldError::new(
                    field,
                    "TARGET_NOT_CONFIGURED",
                    format!("{} ({id}) does not launch into its standby yet: apply the launch-into configuration of its group", p.source_name),
                )),
                Some(_) => {}
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::PairOrigin;
    use crate::ids::{InstanceId, SourceServerId, SubnetId};

    fn pair(n: u32, wave: Option<&str>) -> InstancePair {
        let hex = format!("{n:017x}");
        InstancePair {
            id: PairId::parse(&format!("pair-{hex}")).unwrap(),
            protection_group_id: ProtectionGroupId::parse("pg-1").unwrap(),
            source_server_id: SourceServerId::parse(&format!("s-{hex}")).unwrap(),
            standby_instance_id: InstanceId::parse(&format!("i-{hex}")).unwrap(),
            origin: PairOrigin::Matched,
            source_name: format!("app-{n:02}"),
            standby_name: format!("app-{n:02}"),
            standby_private_ip: std::net::Ipv4Addr::new(10, 1, 0, n as u8),
            standby_subnet_id: SubnetId::parse("subnet-01000000000000001").unwrap(),
            wave: wave.map(str::to_owned),
            accepted_at: 0,
            accepted_by: "alice".into(),
            version: 1,
        }
    }

    fn group() -> ProtectionGroupId {
        ProtectionGroupId::parse("pg-1").unwrap()
    }

    #[test]
    fn waves_follow_the_dr_wave_tag_numerically_with_untagged_pairs_last() {
        let pairs = [pair(1, Some("10")), pair(2, Some("2")), pair(3, None), pair(4, Some("2")), pair(5, Some("db"))];
        let waves = derive_waves(&pairs);
        let names: Vec<&str> = waves.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["Wave 2", "Wave 10", "Wave db", "No dr:wave tag"]);
        assert_eq!(waves[0].pair_ids, [pairs[1].id.clone(), pairs[3].id.clone()]);
    }

    fn check(waves: &[Wave], configured: &[&InstancePair], pairs: &[InstancePair]) -> Result<(), Vec<FieldError>> {
        let known: HashSet<_> = [group()].into();
        let configured: HashSet<PairId> = configured.iter().map(|p| p.id.clone()).collect();
        validate_plan(
            "Shop",
            &[group()],
            waves,
            30,
            &PlanContext { pairs, known_groups: &known, configured: &configured },
        )
    }

    fn wave(name: &str, pairs: &[&InstancePair]) -> Wave {
        Wave {
            name: name.into(),
            pair_ids: pairs.iter().map(|p| p.id.clone()).collect(),
            pause_before: false,
            on_failure: OnFailure::Stop,
            timeout_minutes: 60,
        }
    }

    #[test]
    fn a_valid_plan_passes() {
        let pairs = [pair(1, None), pair(2, None)];
        assert_eq!(check(&[wave("a", &[&pairs[0]]), wave("b", &[&pairs[1]])], &[&pairs[0], &pairs[1]], &pairs), Ok(()));
    }

    #[test]
    fn a_server_in_two_waves_an_empty_wave_and_an_unconfigured_target_are_each_reported() {
        let pairs = [pair(1, None), pair(2, None)];
        let errors =
            check(&[wave("a", &[&pairs[0], &pairs[1]]), wave("b", &[&pairs[0]]), wave("c", &[])], &[&pairs[0]], &pairs)
                .unwrap_err();
        let codes: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
        assert_eq!(
            codes,
            [
                ("waves[0].pair_ids[1]", "TARGET_NOT_CONFIGURED"),
                ("waves[1].pair_ids[0]", "SERVER_TWICE"),
                ("waves[2].pair_ids", "EMPTY_WAVE"),
            ]
        );
    }

    #[test]
    fn a_pair_of_another_group_and_a_plan_without_waves_are_refused() {
        let pairs = [pair(1, None)];
        let stranger = pair(9, None);
        let e = check(&[wave("a", &[&stranger])], &[&stranger], &pairs).unwrap_err();
        assert_eq!(e[0].code, "PAIR_NOT_IN_PLAN_GROUPS");
        let e = check(&[], &[], &pairs).unwrap_err();
        assert_eq!(e[0].code, "NO_WAVES");
    }
}
