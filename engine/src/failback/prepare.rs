//! What a failback would do before it is requested: per server, whether it can go home (its recovery
//! instance, its original, the original region's DRS, the network and the instance profile), who goes and
//! who stays, and why nothing can.

use super::{Prepared, refused};
use crate::error::ServiceError;
use crate::services::Services;
use domain::FieldError;
use domain::auth::Principal;
use domain::estate::{AWSDRS_TAG_KEY, AWSDRS_TAG_VALUE, AccountRegion, InstanceState, RECOVERY_INSTANCE_POLICY};
use domain::execution::{
    ExecutionRecord, FailbackPreview, GoingHome, LeftBehind, Mode, ServerRun, ServerState, StartFailback, StayReason,
};
use domain::ids::{InstanceId, SourceServerId};

/// What the prerequisite checks of one server look at.
pub(super) struct Facts<'a> {
    dr_instances: &'a [domain::estate::Ec2Instance],
    originals: &'a [domain::estate::Ec2Instance],
    recovered: &'a [domain::recovery::RecoveryInstance],
    groups: &'a [domain::estate::SecurityGroup],
    profiles: &'a [domain::estate::InstanceProfile],
}

/// The failback prerequisites of one server: each failed one goes to `problem` (code, message); the
/// original instance and its private IP when it is known.
pub(super) fn server_prerequisites(
    run: &ServerRun,
    req: &StartFailback,
    origin: &AccountRegion,
    f: Facts<'_>,
    problem: &mut dyn FnMut(&str, String),
) -> Option<(InstanceId, std::net::Ipv4Addr)> {
    let standby = &run.standby_instance_id;
    if !f.recovered.iter().any(|r| r.source_server_id == run.source_server_id && &r.ec2_instance_id == standby) {
        problem("RECOVERY_INSTANCE_GONE", format!("DRS no longer lists {standby} as its recovery instance"));
    }
    match f.dr_instances.iter().find(|i| &i.instance_id == standby) {
        Some(i) if i.state != InstanceState::Running => problem(
            "RECOVERY_INSTANCE_NOT_RUNNING",
            format!("{standby} is {}; start it: reverse replication needs its agent running", i.state.as_str()),
        ),
        Some(i) if i.private_ip != run.expected_ip => problem(
            "IP_CHANGED",
            format!("{standby} has private IP {}, not the recorded {}", i.private_ip, run.expected_ip),
        ),
        Some(i) => {
            // The agent on the recovery instance reaches DRS on 443 and the replication servers on 1500.
            let mine: Vec<_> = f.groups.iter().filter(|g| i.security_group_ids.contains(&g.group_id)).collect();
            for port in [443, 1500] {
                if !mine.iter().any(|g| g.allows_tcp_out(port)) {
                    problem(
                        "SECURITY_GROUP_EGRESS",
                        format!("no security group of {standby} allows outbound TCP {port}; add an egress rule"),
                    );
                }
            }
            let allowed = i.iam_instance_profile.as_ref().is_some_and(|name| {
                f.profiles.iter().any(|p| &p.name == name && p.policies.iter().any(|x| x == RECOVERY_INSTANCE_POLICY))
            });
            if !allowed {
                problem(
                    "INSTANCE_PROFILE",
                    format!("{standby} needs an instance profile whose role has {RECOVERY_INSTANCE_POLICY}"),
                );
            }
        }
        None => problem("RECOVERY_INSTANCE_GONE", format!("{standby} does not exist")),
    }
    let Some(original_id) = &run.source_instance_id else {
        problem("NO_ORIGINAL", "DRS named no original EC2 instance for it".into());
        return None;
    };
    let Some(original) = f.originals.iter().find(|i| &i.instance_id == original_id) else {
        problem("ORIGINAL_GONE", format!("the original {original_id} does not exist in {}", origin.region));
        return None;
    };
    if matches!(original.state, InstanceState::Terminated | InstanceState::ShuttingDown) {
        problem(
            "ORIGINAL_TERMINATED",
            format!(
                "the original {original_id} is {}; leave this server behind to fail back the others",
                original.state.as_str()
            ),
        );
        return None;
    }
    if let Some(standby) = f.dr_instances.iter().find(|i| &i.instance_id == standby) {
        if standby.architecture != original.architecture {
            problem(
                "ARCHITECTURE_MISMATCH",
                format!("the original {original_id} is not {}", standby.architecture.as_str()),
            );
        }
        if standby.boot_mode != original.boot_mode {
            problem("BOOT_MODE_MISMATCH", format!("the original {original_id} does not boot like its standby"));
        }
    }
    if original.tags.get(AWSDRS_TAG_KEY).map(String::as_str) != Some(AWSDRS_TAG_VALUE) && !req.tag_originals {
        problem(
            "ORIGINAL_NOT_TAGGED",
            format!(
                "{original_id} lacks {AWSDRS_TAG_KEY}={AWSDRS_TAG_VALUE}; confirm tag_originals to let Roundtrip add it"
            ),
        );
    }
    if original.state != InstanceState::Stopped && !req.stop_originals {
        problem(
            "ORIGINAL_NOT_STOPPED",
            format!(
                "{original_id} is {}; DRS cannot stop it: confirm stop_originals to let Roundtrip stop it",
                original.state.as_str()
            ),
        );
    }
    Some((original_id.clone(), original.private_ip))
}

/// Why a failback would bring no server home, for the operator.
pub(super) fn nothing_to_fail_back(all: &[&ServerRun], staying: &[LeftBehind]) -> String {
    let count = |reason: StayReason| staying.iter().filter(|l| l.reason == reason).count();
    let (not_verified, home, left, not_ready) = (
        count(StayReason::NotVerified),
        count(StayReason::AlreadyHome),
        count(StayReason::LeftBehind),
        count(StayReason::NotReady),
    );
    if all.is_empty() || not_verified == all.len() {
        return "no server of the recovery was verified, so none is on its standby to come home from".into();
    }
    if home + not_verified == all.len() {
        let mut m = format!("all {home} verified servers are home");
        if not_verified > 0 {
            m.push_str(&format!("; {not_verified} were never verified in the recovery"));
        }
        return m;
    }
    let mut parts = Vec::new();
    if left > 0 {
        parts.push(format!("{left} left behind as asked"));
    }
    if not_ready > 0 {
        parts.push(format!("{not_ready} not ready (see staying)"));
    }
    if home > 0 {
        parts.push(format!("{home} already home"));
    }
    if not_verified > 0 {
        parts.push(format!("{not_verified} never verified"));
    }
    format!("every server stays on DR: {}", parts.join(", "))
}

impl Services {
    /// What a failback request checks and reads before the failback is created.
    pub(super) async fn prepare_failback(
        &self,
        who: &Principal,
        req: &StartFailback,
    ) -> Result<Prepared, ServiceError> {
        let recovery = self.get_execution(&req.execution_id).await?;
        if recovery.state.mode != Mode::Recovery {
            return Err(refused(
                "execution_id",
                "NOT_A_RECOVERY",
                "only a recovery fails back: a drill returns its standbys by itself, and a failback cannot be failed back".into(),
            ));
        }
        if !recovery.state.phase.is_terminal() {
            return Err(refused("execution_id", "NOT_ENDED", "the recovery has not ended yet".into()));
        }
        // Servers an earlier failback of this recovery already brought home stay home; only the rest go.
        let earlier: Vec<ExecutionRecord> = self
            .list_executions()
            .await?
            .into_iter()
            .filter(|e| e.failback.as_ref().is_some_and(|f| f.execution_id == recovery.id))
            .collect();
        if let Some(live) = earlier.iter().find(|e| !e.state.phase.is_terminal()) {
            return Err(refused(
                "execution_id",
                "ALREADY_FAILED_BACK",
                format!("failback {} of this recovery is under way", live.id),
            ));
        }
        let home: std::collections::HashMap<&SourceServerId, &str> = earlier
            .iter()
            .flat_map(|e| e.state.waves.iter().flat_map(|w| w.servers.iter()).map(move |r| (r, e.id.as_str())))
            .filter(|(r, _)| r.state == ServerState::Verified)
            .map(|(r, id)| (&r.source_server_id, id))
            .collect();
        let terminate = match &req.terminate_standbys_confirmation {
            None => false,
            Some(_) if who.role != domain::auth::Role::Admin => {
                return Err(refused(
                    "terminate_standbys_confirmation",
                    "ADMIN_REQUIRED",
                    "only an admin may choose to terminate the DR standbys".into(),
                ));
            }
            Some(typed) if typed.trim() != recovery.plan_name => {
                return Err(refused(
                    "terminate_standbys_confirmation",
                    "CONFIRMATION_MISMATCH",
                    "type the plan's name exactly to terminate its DR standbys".into(),
                ));
            }
            Some(_) => true,
        };
        let all: Vec<&ServerRun> = recovery.state.waves.iter().flat_map(|w| w.servers.iter()).collect();
        let mut problems = Vec::new();
        for (i, id) in req.leave_behind.iter().enumerate() {
            if !all.iter().any(|r| &r.source_server_id == id) {
                problems.push(FieldError::new(
                    format!("leave_behind[{i}]"),
                    "NOT_IN_RECOVERY",
                    format!("{id} is not a server of recovery {}", recovery.id),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems));
        }
        // Every server of the recovery either goes or stays with a reason: none is dropped silently.
        let mut staying = Vec::new();
        let mut candidates: Vec<&ServerRun> = Vec::new();
        for r in &all {
            let stay = |reason: StayReason, message: String| LeftBehind {
                source_server_id: r.source_server_id.clone(),
                name: r.name.clone(),
                reason,
                message,
            };
            if r.state != ServerState::Verified {
                let why = r.error.as_deref().unwrap_or("it did not launch");
                staying.push(stay(
                    StayReason::NotVerified,
                    format!("not verified in the recovery ({why}), so it is not on its standby as Roundtrip knows it"),
                ));
            } else if let Some(by) = home.get(&r.source_server_id) {
                staying.push(stay(StayReason::AlreadyHome, format!("already home: failback {by} brought it back")));
            } else if req.leave_behind.contains(&r.source_server_id) {
                staying.push(stay(StayReason::LeftBehind, "left on its DR standby, as asked".into()));
            } else {
                candidates.push(r);
            }
        }
        let origins: std::collections::BTreeSet<&AccountRegion> =
            candidates.iter().filter_map(|r| r.origin.as_ref()).collect();
        let origin = match (candidates.is_empty(), origins.len()) {
            (true, _) => {
                let message = nothing_to_fail_back(&all, &staying);
                let preview = FailbackPreview {
                    ready: false,
                    problems: vec![FieldError::new("execution_id", "NOTHING_TO_FAIL_BACK", message)],
                    going: Vec::new(),
                    staying,
                };
                let dr = recovery.dr.clone();
                return Ok(Prepared {
                    origin: dr.clone(),
                    dr,
                    recovery,
                    ips: std::collections::HashMap::new(),
                    terminate,
                    preview,
                });
            }
            (false, 1) => (*origins.iter().next().unwrap_or(&&recovery.dr)).clone(),
            _ => {
                return Err(refused(
                    "execution_id",
                    "ORIGIN_UNKNOWN",
                    "its servers do not name one original account and region".into(),
                ));
            }
        };
        let dr = recovery.dr.clone();
        let standbys: Vec<SourceServerId> = candidates.iter().map(|r| r.source_server_id.clone()).collect();
        let (dr_instances, originals, recovered) = tokio::try_join!(
            self.retried(|| self.cloud.describe_instances(&dr)),
            self.retried(|| self.cloud.describe_instances(&origin)),
            self.retried(|| self.cloud.describe_recovery_instances(&dr, &standbys)),
        )?;
        let (groups, profiles, initialized) = tokio::try_join!(
            self.retried(|| self.cloud.describe_security_groups(&dr)),
            self.retried(|| self.cloud.describe_instance_profiles(&dr)),
            self.retried(|| self.cloud.drs_initialized(&origin)),
        )?;
        if !initialized {
            problems.push(FieldError::new(
                "execution_id",
                "DRS_NOT_INITIALIZED",
                format!(
                    "DRS is not initialised in {} {}: initialise it there first (InitializeService)",
                    origin.account_id, origin.region
                ),
            ));
        }
        let mut ips = std::collections::HashMap::new();
        let mut going = Vec::new();
        for run in &candidates {
            let mut mine = Vec::new();
            let original = server_prerequisites(
                run,
                req,
                &origin,
                Facts {
                    dr_instances: &dr_instances,
                    originals: &originals,
                    recovered: &recovered,
                    groups: &groups,
                    profiles: &profiles,
                },
                &mut |code: &str, message: String| mine.push((code.to_owned(), message)),
            );
            if mine.is_empty() {
                if let Some(o) = original {
                    ips.insert(run.source_server_id.clone(), o);
                }
                going.push(GoingHome { source_server_id: run.source_server_id.clone(), name: run.name.clone() });
            } else if req.ready_only {
                let codes: Vec<String> = mine.iter().map(|(c, m)| format!("{c}: {m}")).collect();
                staying.push(LeftBehind {
                    source_server_id: run.source_server_id.clone(),
                    name: run.name.clone(),
                    reason: StayReason::NotReady,
                    message: codes.join("; "),
                });
            } else {
                problems.extend(mine.into_iter().map(|(code, message)| {
                    FieldError::new(run.source_server_id.to_string(), &code, format!("{}: {message}", run.name))
                }));
            }
        }
        if going.is_empty() && problems.is_empty() {
            problems.push(FieldError::new(
                "execution_id",
                "NOTHING_TO_FAIL_BACK",
                nothing_to_fail_back(&all, &staying),
            ));
        }
        // In the plan's order, as the failback runs them.
        let order: std::collections::HashMap<&SourceServerId, usize> =
            all.iter().enumerate().map(|(i, r)| (&r.source_server_id, i)).collect();
        staying.sort_by_key(|l| order.get(&l.source_server_id).copied().unwrap_or(usize::MAX));
        let preview = FailbackPreview { ready: problems.is_empty(), problems, going, staying };
        Ok(Prepared { recovery, origin, dr, ips, terminate, preview })
    }
}
