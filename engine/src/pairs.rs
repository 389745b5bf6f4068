//! Instance matching and pairs: match a group's source servers to standbys by name, accept pairs (all or
//! none), set or delete one by hand, and validate the stored pairs against the estate now.

use crate::audit::AuditEvent;
use crate::error::{PairRejection, ServiceError};
use crate::repo;
use crate::services::{Services, check_version, concurrent_change};
use crate::store::{Expect, StoreError};
use domain::auth::Principal;
use domain::error::FieldError;
use domain::estate::{AccountRegion, SourceServer};
use domain::group::{AcceptOutcome, GroupMatch};
use domain::group::{GroupSpec, InstancePair, PairOrigin, PairRequest, ProtectionGroup, SourceSelection};
use domain::ids::{InstanceId, PairId, ProtectionGroupId, SourceServerId};
use domain::matching::{Finding, MatchReport, Severity, SourceNameKey, match_estate, pair_findings};
use domain::validation::{DrView, ValidationReport, validate_ips, validate_pairs};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Most pairs one request may accept.
pub const MAX_PAIRS_PER_REQUEST: usize = 10_000;

/// Matching for explicit accounts and regions, without a stored group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExplicitMatch {
    pub primary: AccountRegion,
    pub dr: AccountRegion,
    pub selection: SourceSelection,
    pub source_name_key: SourceNameKey,
}

pub(crate) struct DrEstate {
    sources: Vec<SourceServer>,
    instances: Vec<domain::estate::Ec2Instance>,
}

/// What one group's pair checks look at.
pub(crate) struct PairContext<'a> {
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

impl Services {
    pub(crate) async fn dr_estate(&self, dr: &AccountRegion) -> Result<DrEstate, ServiceError> {
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
    pub(crate) async fn load_match(
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

    pub(crate) async fn dr_view_inputs(
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
