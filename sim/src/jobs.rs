//! Simulated DRS recovery jobs: `StartRecovery` with DRS's quotas and conflicts, per-server phases on the
//! virtual clock, launch into the configured target instance, the job log, and recovery instances.
//!
//! Nothing ticks in the background: each call first [`settle`]s the world to the current virtual time,
//! applying every server whose launch time has passed. Phase durations are drawn per (job, server) from a
//! hash, so a run is reproducible. Durations (virtual seconds): snapshot 30–90, conversion 60–240 and boot
//! 30–90 — a server launches 2–7 minutes after its job starts, in line with DRS's documented "minutes" for
//! a launch and the AWS DRS-at-scale guidance (see `docs/scenarios.md`).
//!
//! Launch-into (`aws-drs-api.md` §1.2–1.3): the target is the source server's configured
//! `launchIntoEC2InstanceID`; it must exist in the region, be stopped and carry the exact AWSDRS tag when the
//! launch happens, or that server's launch fails with DRS's reason. The launched instance keeps its id and
//! private IP (unless a fault says otherwise) and is left running. A server without a launch-into target
//! fails: the simulated estate launches only into existing instances.

use crate::state::{Fault, SimJob, World, spread};
use domain::estate::{AWSDRS_TAG_KEY, AWSDRS_TAG_VALUE, AccountRegion, InstanceState};
use domain::ids::{InstanceId, SourceServerId};
use domain::readiness::Quotas;
use domain::recovery::{DrsJob, JobLogItem, JobStatus, LaunchStatus, ParticipatingServer, RecoveryInstance};
use engine::cloud::CloudError;
use std::net::Ipv4Addr;

/// A job is `PENDING` for this long before it starts.
const PENDING_MS: i64 = 5_000;

/// The three phase durations of one server in one job, in ms.
fn phases(job_id: &str, server: &SourceServerId) -> [i64; 3] {
    let key = format!("{job_id}/{server}");
    [
        spread(&format!("{key}/snapshot"), 30, 90) * 1000,
        spread(&format!("{key}/conversion"), 60, 240) * 1000,
        spread(&format!("{key}/boot"), 30, 90) * 1000,
    ]
}

fn log(at: i64, event: &str, server: Option<&SourceServerId>, target: Option<&InstanceId>) -> JobLogItem {
    JobLogItem {
        at,
        event: event.into(),
        source_server_id: server.cloned(),
        target_instance_id: target.cloned(),
        error: None,
    }
}

fn active_in<'a>(w: &'a World, at: &'a AccountRegion) -> impl Iterator<Item = &'a SimJob> {
    w.launch_jobs.iter().filter(move |j| j.account_id == at.account_id && j.region == at.region && j.job.is_active())
}

/// Source servers in active jobs of `at`: the scenario's standing jobs and the ones started since.
pub fn servers_in_active_jobs(w: &World, at: &AccountRegion) -> Vec<SourceServerId> {
    let standing = w
        .scenario
        .jobs
        .iter()
        .filter(|j| {
            j.account_id == at.account_id && j.region == at.region && (j.status == "PENDING" || j.status == "STARTED")
        })
        .flat_map(|j| j.source_server_ids.iter().cloned());
    let started = active_in(w, at).flat_map(|j| j.job.servers.iter().map(|s| s.source_server_id.clone()));
    standing.chain(started).collect()
}

/// Checks a `StartRecovery` against DRS's rules and quotas, and creates the job.
///
/// # Errors
/// `Validation` for an empty request or an unknown server, `QuotaExceeded` beyond the quotas, `Conflict`
/// for a server already in an active job.
pub fn start(
    w: &mut World,
    at: &AccountRegion,
    servers: &[SourceServerId],
    is_drill: bool,
    now: i64,
) -> Result<DrsJob, CloudError> {
    settle(w, now);
    let q: Quotas = w.scenario.quotas;
    if servers.is_empty() {
        return Err(CloudError::Validation { message: "sourceServers must list at least one source server".into() });
    }
    if let Some(twice) = servers.iter().enumerate().find(|(i, s)| servers[..*i].contains(s)).map(|(_, s)| s) {
        return Err(CloudError::Validation { message: format!("source server {twice} is listed twice") });
    }
    if servers.len() > q.max_servers_per_job {
        return Err(CloudError::QuotaExceeded {
            message: format!("{} source servers in one job; the quota is {}", servers.len(), q.max_servers_per_job),
            quota: "max_servers_per_job".into(),
        });
    }
    for s in servers {
        let known = w
            .scenario
            .source_servers
            .iter()
            .any(|x| &x.source_server_id == s && x.account_id == at.account_id && x.region == at.region);
        if !known {
            return Err(CloudError::Validation {
                message: format!("source server {s} does not exist in {}", at.region),
            });
        }
    }
    let busy = servers_in_active_jobs(w, at);
    if let Some(s) = servers.iter().find(|s| busy.contains(s)) {
        return Err(CloudError::Conflict {
            message: format!("source server {s} is already part of an active job"),
            resource_id: Some(s.to_string()),
        });
    }
    let active_jobs = active_in(w, at).count()
        + w.scenario
            .jobs
            .iter()
            .filter(|j| j.account_id == at.account_id && j.region == at.region && j.status != "COMPLETED")
            .count();
    if active_jobs >= q.max_concurrent_jobs {
        return Err(CloudError::QuotaExceeded {
            message: format!("{active_jobs} jobs are active; the quota is {}", q.max_concurrent_jobs),
            quota: "max_concurrent_jobs".into(),
        });
    }
    if busy.len() + servers.len() > q.max_servers_in_active_jobs {
        return Err(CloudError::QuotaExceeded {
            message: format!(
                "{} servers would be in active jobs; the quota is {}",
                busy.len() + servers.len(),
                q.max_servers_in_active_jobs
            ),
            quota: "max_servers_in_active_jobs".into(),
        });
    }
    w.job_counter += 1;
    let job_id = format!("drsjob-{:017x}", w.job_counter);
    let start = now + PENDING_MS;
    let mut log_items = vec![log(now, "JOB_START", None, None)];
    let mut done_at = Vec::new();
    let mut targets = Vec::new();
    for s in servers {
        // A new drill deletes the server's previous drill or recovery instance "and its dependent
        // resources"; a new recovery does the same to its previous recovery instance (aws-drs-api.md
        // §1.5). What that does to a launch-into instance is undocumented: the simulator takes the
        // pessimistic reading and terminates it, which with launch-into is the standby itself. Roundtrip
        // prevents this by disconnecting and deleting its recovery instances after a drill.
        let previous: Vec<InstanceId> = w
            .recovery_instances
            .iter()
            .filter(|r| &r.source_server_id == s && (is_drill || !r.is_drill))
            .map(|r| r.ec2_instance_id.clone())
            .collect();
        if !previous.is_empty() {
            w.recovery_instances.retain(|r| !(&r.source_server_id == s && (is_drill || !r.is_drill)));
            for i in w.scenario.instances.iter_mut().filter(|i| previous.contains(&i.instance_id)) {
                i.state = InstanceState::Terminated;
            }
            log_items.push(log(now, "CLEANUP_START", Some(s), previous.first()));
            log_items.push(log(now, "CLEANUP_END", Some(s), previous.first()));
        }
        let target = w.launch_configurations.get(s).and_then(|c| c.launch_into_instance_id.clone());
        let [snap, conv, boot] = phases(&job_id, s);
        log_items.push(log(start, "SNAPSHOT_START", Some(s), None));
        log_items.push(log(start + snap, "SNAPSHOT_END", Some(s), None));
        log_items.push(log(start + snap, "CONVERSION_START", Some(s), None));
        log_items.push(log(start + snap + conv, "CONVERSION_END", Some(s), None));
        log_items.push(log(start + snap + conv, "LAUNCH_START", Some(s), target.as_ref()));
        let stalls = matches!(w.faults.get(s), Some(Fault::JobStalls));
        done_at.push((!stalls).then_some(start + snap + conv + boot));
        targets.push(target);
    }
    let job = DrsJob {
        job_id,
        is_drill,
        status: JobStatus::Pending,
        created_at: now,
        ended_at: None,
        servers: servers
            .iter()
            .map(|s| ParticipatingServer {
                source_server_id: s.clone(),
                recovery_instance_id: None,
                launch_status: LaunchStatus::Pending,
            })
            .collect(),
    };
    w.launch_jobs.push(SimJob {
        job: job.clone(),
        account_id: at.account_id.clone(),
        region: at.region.clone(),
        done_at,
        targets,
        log: log_items,
    });
    Ok(job)
}

/// Why a launch into `target` fails now, if it does (DRS's prerequisites, §1.2).
fn launch_into_refusal(w: &World, at: &AccountRegion, target: Option<&InstanceId>) -> Option<String> {
    let Some(target) = target else {
        return Some("no launchIntoEC2InstanceID: the simulated estate launches only into existing instances".into());
    };
    let Some(i) = w
        .scenario
        .instances
        .iter()
        .find(|i| &i.instance_id == target && i.account_id == at.account_id && i.region == at.region)
    else {
        return Some(format!("target instance {target} does not exist in {}", at.region));
    };
    if i.state != InstanceState::Stopped {
        return Some(format!("target instance {target} is {} and must be stopped", i.state.as_str()));
    }
    if i.tags.get(AWSDRS_TAG_KEY).map(String::as_str) != Some(AWSDRS_TAG_VALUE) {
        return Some(format!("target instance {target} lacks the tag {AWSDRS_TAG_KEY}={AWSDRS_TAG_VALUE}"));
    }
    None
}

/// Applies every launch whose time has come, and brings job statuses up to `now`.
pub fn settle(w: &mut World, now: i64) {
    for j in 0..w.launch_jobs.len() {
        let (at, job_id, is_drill) = {
            let job = &w.launch_jobs[j];
            (
                AccountRegion { account_id: job.account_id.clone(), region: job.region.clone() },
                job.job.job_id.clone(),
                job.job.is_drill,
            )
        };
        for k in 0..w.launch_jobs[j].job.servers.len() {
            let status = w.launch_jobs[j].job.servers[k].launch_status;
            if matches!(status, LaunchStatus::Launched | LaunchStatus::Failed | LaunchStatus::Terminated) {
                continue;
            }
            let done = w.launch_jobs[j].done_at[k];
            let started = w.launch_jobs[j].job.created_at + PENDING_MS;
            if now < started {
                continue;
            }
            let Some(done) = done.filter(|d| now >= *d) else {
                w.launch_jobs[j].job.servers[k].launch_status = LaunchStatus::InProgress;
                continue;
            };
            let source = w.launch_jobs[j].job.servers[k].source_server_id.clone();
            let target = w.launch_jobs[j].targets.get(k).cloned().flatten();
            let refusal = match w.faults.get(&source) {
                Some(Fault::LaunchFails { message }) => Some(message.clone()),
                _ => launch_into_refusal(w, &at, target.as_ref()),
            };
            let target = match (refusal, target) {
                (None, Some(t)) => t,
                (reason, target) => {
                    let job = &mut w.launch_jobs[j];
                    job.job.servers[k].launch_status = LaunchStatus::Failed;
                    let mut item = log(done, "LAUNCH_FAILED", Some(&source), target.as_ref());
                    item.error = Some(reason.unwrap_or_else(|| "no launch-into target".into()));
                    job.log.push(item);
                    continue;
                }
            };
            let new_ip: Option<Ipv4Addr> = match w.faults.get(&source) {
                Some(Fault::ComesUpWithIp { ip }) => Some(*ip),
                _ => None,
            };
            if let Some(i) = w.scenario.instances.iter_mut().find(|i| i.instance_id == target) {
                // DRS swaps the volumes and starts the instance; it keeps its id, ENI and private IP.
                i.state = InstanceState::Running;
                if let Some(ip) = new_ip {
                    i.private_ip = ip;
                }
            }
            crate::ec2::swap_volumes(w, &target, done);
            w.recovery_instances.push(RecoveryInstance {
                recovery_instance_id: target.clone(),
                ec2_instance_id: target.clone(),
                source_server_id: source.clone(),
                job_id: job_id.clone(),
                is_drill,
                point_in_time: started,
                disconnected: false,
            });
            let job = &mut w.launch_jobs[j];
            job.job.servers[k].launch_status = LaunchStatus::Launched;
            job.job.servers[k].recovery_instance_id = Some(target.clone());
        }
        let job = &mut w.launch_jobs[j];
        if job.job.status == JobStatus::Completed {
            continue;
        }
        let all_done =
            job.job.servers.iter().all(|s| matches!(s.launch_status, LaunchStatus::Launched | LaunchStatus::Failed));
        if all_done {
            let end = job.done_at.iter().flatten().copied().max().unwrap_or(now).min(now);
            job.job.status = JobStatus::Completed;
            job.job.ended_at = Some(end);
            job.log.push(log(end, "JOB_END", None, None));
        } else if now >= job.job.created_at + PENDING_MS {
            job.job.status = JobStatus::Started;
        }
    }
}

/// `DescribeJobs`: the given jobs (all when empty), newest first.
pub fn describe(w: &World, at: &AccountRegion, ids: &[String]) -> Vec<DrsJob> {
    let mut out: Vec<DrsJob> = w
        .launch_jobs
        .iter()
        .filter(|j| j.account_id == at.account_id && j.region == at.region)
        .filter(|j| ids.is_empty() || ids.contains(&j.job.job_id))
        .map(|j| j.job.clone())
        .collect();
    out.sort_by_key(|j| std::cmp::Reverse((j.created_at, j.job_id.clone())));
    out
}

/// `DescribeJobLogItems`: what has happened by `now`, oldest first.
///
/// # Errors
/// `NotFound` for an unknown job.
pub fn log_items(w: &World, at: &AccountRegion, job_id: &str, now: i64) -> Result<Vec<JobLogItem>, CloudError> {
    let job = w
        .launch_jobs
        .iter()
        .find(|j| j.job.job_id == job_id && j.account_id == at.account_id && j.region == at.region)
        .ok_or_else(|| CloudError::NotFound { message: format!("job {job_id} does not exist") })?;
    let mut items: Vec<JobLogItem> = job.log.iter().filter(|l| l.at <= now).cloned().collect();
    items.sort_by_key(|l| l.at);
    Ok(items)
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::state::Fault;
    use crate::{DEFAULT_SCENARIO, Scenario, SimClock, Simulator};
    use domain::estate::{AccountRegion, InstanceState};
    use domain::ids::{InstanceId, SourceServerId};
    use domain::recovery::{JobStatus, LaunchStatus};
    use engine::clock::Clock;
    use engine::cloud::{Cloud, CloudError};
    use std::sync::Arc;

    pub(crate) const MIN: i64 = 60_000;

    pub(crate) fn dr() -> AccountRegion {
        AccountRegion { account_id: "222222222222".parse().unwrap(), region: "us-west-2".parse().unwrap() }
    }

    /// The bundled estate on a manual clock, with `n` healthy source servers pointed at their standbys
    /// (matched by Name tag, as Roundtrip would configure them).
    pub(crate) fn estate(n: usize) -> (Simulator, Arc<SimClock>, Vec<(SourceServerId, InstanceId)>) {
        let clock = Arc::new(SimClock::manual(1_800_000_000_000));
        let sim = Simulator::new(Scenario::from_toml(DEFAULT_SCENARIO).unwrap(), clock.clone());
        let pairs = sim.with_world(|w| {
            let at = dr();
            let mut pairs = Vec::new();
            for s in w.scenario.source_servers.iter().filter(|s| s.account_id == at.account_id && s.region == at.region)
            {
                let Some(name) = s.tags.get("Name") else { continue };
                let standbys: Vec<_> = w
                    .scenario
                    .instances
                    .iter()
                    .filter(|i| {
                        i.region == at.region
                            && i.tags.get("Name") == Some(name)
                            && i.state == InstanceState::Stopped
                            && i.tags.get("AWSDRS").map(String::as_str) == Some("AllowLaunchingIntoThisInstance")
                    })
                    .collect();
                if let [one] = standbys.as_slice() {
                    pairs.push((s.source_server_id.clone(), one.instance_id.clone()));
                }
                if pairs.len() == n {
                    break;
                }
            }
            for (s, i) in &pairs {
                let mut c = w
                    .launch_configurations
                    .get(s)
                    .cloned()
                    .unwrap_or_else(|| domain::launch::LaunchConfiguration::drs_default(s.clone()));
                c.launch_into_instance_id = Some(i.clone());
                w.launch_configurations.insert(s.clone(), c);
            }
            pairs
        });
        assert_eq!(pairs.len(), n);
        (sim, clock, pairs)
    }

    /// The instance as EC2 shows it now (stops that have completed, completed).
    pub(crate) fn instance(sim: &Simulator, id: &InstanceId) -> domain::estate::Ec2Instance {
        let now = sim.clock().now_millis();
        sim.with_world(|w| {
            crate::ec2::settle(w, now);
            super::settle(w, now);
            w.scenario.instances.iter().find(|i| &i.instance_id == id).cloned().unwrap()
        })
    }

    #[tokio::test]
    async fn a_launch_into_a_standby_brings_it_up_with_its_id_and_ip_after_its_phases() {
        let (sim, clock, pairs) = estate(3);
        let before = instance(&sim, &pairs[0].1);
        let ids: Vec<_> = pairs.iter().map(|p| p.0.clone()).collect();
        let job = sim.start_recovery(&dr(), &ids, false).await.unwrap();
        assert!(job.job_id.starts_with("drsjob-") && job.job_id.len() == 24);
        assert_eq!(job.status, JobStatus::Pending);

        clock.advance(10_000);
        let now = sim.describe_jobs(&dr(), std::slice::from_ref(&job.job_id)).await.unwrap().remove(0);
        assert_eq!(now.status, JobStatus::Started);
        assert!(now.servers.iter().all(|s| s.launch_status == LaunchStatus::InProgress));

        clock.advance(8 * MIN);
        let done = sim.describe_jobs(&dr(), std::slice::from_ref(&job.job_id)).await.unwrap().remove(0);
        assert_eq!(done.status, JobStatus::Completed);
        for (s, (_, standby)) in done.servers.iter().zip(&pairs) {
            assert_eq!((s.launch_status, s.recovery_instance_id.as_ref()), (LaunchStatus::Launched, Some(standby)));
        }
        let after = instance(&sim, &pairs[0].1);
        assert_eq!((after.state, after.private_ip), (InstanceState::Running, before.private_ip));
        let ended = done.ended_at.unwrap() - done.created_at;
        assert!((2 * MIN..=7 * MIN + 5_000).contains(&ended), "{ended} ms");

        let recovered = sim.describe_recovery_instances(&dr(), &[pairs[0].0.clone()]).await.unwrap();
        assert_eq!(recovered.len(), 1);
        assert_eq!((&recovered[0].ec2_instance_id, &recovered[0].job_id), (&pairs[0].1, &job.job_id));
        let events: Vec<String> = sim
            .describe_job_log_items(&dr(), &job.job_id)
            .await
            .unwrap()
            .into_iter()
            .filter(|l| l.source_server_id.as_ref() == Some(&pairs[0].0))
            .map(|l| l.event)
            .collect();
        // DRS logs no end of a launch: success is the server's launchStatus.
        assert_eq!(events, ["SNAPSHOT_START", "SNAPSHOT_END", "CONVERSION_START", "CONVERSION_END", "LAUNCH_START"]);
    }

    #[tokio::test]
    async fn a_server_in_an_active_job_is_a_conflict_and_quotas_are_enforced() {
        let (sim, clock, pairs) = estate(3);
        sim.start_recovery(&dr(), &[pairs[0].0.clone()], true).await.unwrap();
        let e = sim.start_recovery(&dr(), &[pairs[1].0.clone(), pairs[0].0.clone()], false).await.unwrap_err();
        assert!(
            matches!(&e, CloudError::Conflict { resource_id: Some(r), .. } if *r == pairs[0].0.to_string()),
            "{e:?}"
        );
        sim.with_world(|w| w.scenario.quotas.max_concurrent_jobs = 1);
        let e = sim.start_recovery(&dr(), &[pairs[1].0.clone()], false).await.unwrap_err();
        assert!(matches!(e, CloudError::QuotaExceeded { ref quota, .. } if quota == "max_concurrent_jobs"), "{e:?}");
        sim.with_world(|w| w.scenario.quotas.max_servers_per_job = 1);
        let e = sim.start_recovery(&dr(), &[pairs[1].0.clone(), pairs[2].0.clone()], false).await.unwrap_err();
        assert!(matches!(e, CloudError::QuotaExceeded { ref quota, .. } if quota == "max_servers_per_job"), "{e:?}");
        clock.advance(10 * MIN);
        sim.start_recovery(&dr(), &[pairs[1].0.clone()], false).await.unwrap();
        let calls =
            sim.with_world(|w| w.calls_of("drs:StartRecovery").iter().map(|c| c.outcome.clone()).collect::<Vec<_>>());
        assert_eq!(
            calls,
            ["ok", "ConflictException", "ServiceQuotaExceededException", "ServiceQuotaExceededException", "ok"]
        );
    }

    #[tokio::test]
    async fn a_completed_job_is_not_success_a_running_target_fails_its_server() {
        let (sim, clock, pairs) = estate(2);
        sim.with_world(|w| {
            let i = w.scenario.instances.iter_mut().find(|i| i.instance_id == pairs[1].1).unwrap();
            i.state = InstanceState::Running;
        });
        let job = sim.start_recovery(&dr(), &[pairs[0].0.clone(), pairs[1].0.clone()], false).await.unwrap();
        clock.advance(10 * MIN);
        let done = sim.describe_jobs(&dr(), &[]).await.unwrap().remove(0);
        assert_eq!(done.status, JobStatus::Completed);
        let statuses: Vec<_> = done.servers.iter().map(|s| s.launch_status).collect();
        assert_eq!(statuses, [LaunchStatus::Launched, LaunchStatus::Failed]);
        let failed = sim
            .describe_job_log_items(&dr(), &job.job_id)
            .await
            .unwrap()
            .into_iter()
            .find(|l| l.event == "LAUNCH_FAILED")
            .unwrap();
        assert!(failed.error.unwrap().contains("must be stopped"));
    }

    #[tokio::test]
    async fn injected_faults_stall_a_job_fail_a_launch_or_change_an_ip() {
        let (sim, clock, pairs) = estate(3);
        sim.set_fault(&pairs[0].0, Some(Fault::JobStalls));
        sim.set_fault(&pairs[1].0, Some(Fault::LaunchFails { message: "EC2 capacity".into() }));
        sim.set_fault(&pairs[2].0, Some(Fault::ComesUpWithIp { ip: "10.9.9.9".parse().unwrap() }));
        let ids: Vec<_> = pairs.iter().map(|p| p.0.clone()).collect();
        sim.start_recovery(&dr(), &ids, false).await.unwrap();
        clock.advance(60 * MIN);
        let job = sim.describe_jobs(&dr(), &[]).await.unwrap().remove(0);
        assert_eq!(job.status, JobStatus::Started, "a stalled server keeps its job open");
        let statuses: Vec<_> = job.servers.iter().map(|s| s.launch_status).collect();
        assert_eq!(statuses, [LaunchStatus::InProgress, LaunchStatus::Failed, LaunchStatus::Launched]);
        assert_eq!(instance(&sim, &pairs[2].1).private_ip.to_string(), "10.9.9.9");
        let e = sim.start_recovery(&dr(), &[pairs[0].0.clone()], false).await.unwrap_err();
        assert!(matches!(e, CloudError::Conflict { .. }), "the stalled server is still in an active job");
    }

    #[tokio::test]
    async fn jobs_survive_a_restart_and_go_on_in_virtual_time() {
        let dir = tempfile::tempdir().unwrap();
        let (job_id, source) = {
            let sim =
                Simulator::open(dir.path(), || Ok(Scenario::from_toml(DEFAULT_SCENARIO).unwrap()), Some(1.0)).unwrap();
            let (probe, _, pairs) = estate(1);
            let config = probe.with_world(|w| w.launch_configurations.get(&pairs[0].0).cloned().unwrap());
            sim.with_world(|w| w.launch_configurations.insert(pairs[0].0.clone(), config));
            let job = sim.start_recovery(&dr(), &[pairs[0].0.clone()], false).await.unwrap();
            sim.save().unwrap();
            (job.job_id, pairs[0].0.clone())
        };
        let sim = Simulator::open(dir.path(), || anyhow::bail!("the saved estate is used"), Some(1.0)).unwrap();
        sim.clock().advance(10 * MIN);
        let job = sim.describe_jobs(&dr(), &[job_id]).await.unwrap().remove(0);
        assert_eq!((job.status, job.servers[0].launch_status), (JobStatus::Completed, LaunchStatus::Launched));
        assert_eq!(job.servers[0].source_server_id, source);
    }

    #[tokio::test]
    async fn a_new_drill_terminates_a_previous_launch_into_instance_unless_it_was_disconnected_and_deleted() {
        let (sim, clock, pairs) = estate(1);
        let (source, standby) = pairs[0].clone();
        let e = sim.start_recovery(&dr(), &[source.clone(), source.clone()], true).await.unwrap_err();
        assert!(matches!(e, CloudError::Validation { .. }), "{e:?}");
        let first = sim.start_recovery(&dr(), std::slice::from_ref(&source), true).await.unwrap();
        clock.advance(10 * MIN);
        assert_eq!(sim.describe_recovery_instances(&dr(), &[]).await.unwrap()[0].job_id, first.job_id);
        let stop = || async { sim.stop_instances(&dr(), std::slice::from_ref(&standby)).await.unwrap() };
        stop().await;
        assert_eq!(instance(&sim, &standby).state, InstanceState::Stopping);
        clock.advance(crate::ec2::STOP_MS);
        assert_eq!(instance(&sim, &standby).state, InstanceState::Stopped);
        // Deleting needs a disconnect first.
        let e = sim.delete_recovery_instance(&dr(), &standby).await.unwrap_err();
        assert!(matches!(e, CloudError::Conflict { .. }), "{e:?}");

        // Left listed, the standby is "the previous recovery instance" of the next drill: DRS deletes it.
        let snapshot = sim.with_world(|w| w.clone());
        let second = sim.start_recovery(&dr(), std::slice::from_ref(&source), true).await.unwrap();
        assert!(sim.describe_recovery_instances(&dr(), &[]).await.unwrap().is_empty());
        let log = sim.describe_job_log_items(&dr(), &second.job_id).await.unwrap();
        assert!(log.iter().any(|l| l.event == "CLEANUP_END"));
        assert_eq!(instance(&sim, &standby).state, InstanceState::Terminated);
        clock.advance(10 * MIN);
        let job = sim.describe_jobs(&dr(), &[second.job_id]).await.unwrap().remove(0);
        assert_eq!(job.servers[0].launch_status, LaunchStatus::Failed, "nothing left to launch into");

        // Disconnected and deleted first, it survives the next drill and is launched into again.
        sim.with_world(|w| *w = snapshot);
        sim.disconnect_recovery_instance(&dr(), &standby).await.unwrap();
        sim.delete_recovery_instance(&dr(), &standby).await.unwrap();
        let third = sim.start_recovery(&dr(), std::slice::from_ref(&source), true).await.unwrap();
        clock.advance(10 * MIN);
        let job = sim.describe_jobs(&dr(), &[third.job_id]).await.unwrap().remove(0);
        assert_eq!(job.servers[0].launch_status, LaunchStatus::Launched);
        assert_eq!(instance(&sim, &standby).state, InstanceState::Running);
        assert_eq!(sim.describe_available_volumes(&dr()).await.unwrap().len(), 2, "two launches swapped two volumes");
    }

    #[tokio::test]
    async fn the_target_is_the_one_configured_when_the_job_started_and_ec2_shows_the_launch_without_a_job_call() {
        let (sim, clock, pairs) = estate(1);
        sim.start_recovery(&dr(), &[pairs[0].0.clone()], false).await.unwrap();
        // A later change of the launch configuration does not redirect a launch already under way.
        sim.with_world(|w| w.launch_configurations.get_mut(&pairs[0].0).unwrap().launch_into_instance_id = None);
        clock.advance(10 * MIN);
        let standby =
            sim.describe_instances(&dr()).await.unwrap().into_iter().find(|i| i.instance_id == pairs[0].1).unwrap();
        assert_eq!(standby.state, InstanceState::Running);
    }
}
