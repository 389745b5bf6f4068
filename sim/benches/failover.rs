//! The failover benchmark: full executions on generated simulated estates, on the virtual clock, with
//! DRS's quotas and an API rate limit switched on; simulated RTO against the lower bound the quotas, the
//! wave order and the per-server durations allow, the orchestrator's CPU time and peak memory, and the API
//! calls it made.
//!
//! ```text
//! cargo bench -p sim --bench failover                 # 100 and 1,000 servers
//! cargo bench -p sim --bench failover -- 100 1000 3000
//! BENCH_CALLS=1 cargo bench -p sim --bench failover -- 100   # also each operation's calls
//! ```
//!
//! Method (see docs/benchmarks.md): one process holds the simulated estate and the engine, on a memory
//! store. The orchestrator's CPU is the process's less the time spent inside the simulated estate's calls
//! (which stands in for AWS). The runner steps the execution until it has nothing to do, then the virtual clock moves on by
//! the runner's interval (5 s, `runner_interval_ms`'s default), as the background runner would. Tokio's
//! clock is paused, so backoff after throttling costs no wall time.

use domain::auth::{AuthMethod, Principal, Role};
use domain::execution::{Decision, FailoverKind, Limits, Mode, Phase, StartExecution};
use domain::plan::{RecoveryPlanInput, Wave};
use engine::Services;
use engine::clock::Clock;
use engine::executions::Step;
use engine::store::memory::MemoryStore;
use sim::generate::{GenerateOptions, generate};
use sim::{SimClock, Simulator};
use std::sync::Arc;
use std::time::Instant;

// The server binary's allocator, so the benchmark measures what runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The runner's interval on the virtual clock.
const TICK_MS: i64 = 5_000;
/// DRS requests per second the simulated API allows (burst 20): DRS publishes no rate, so this is the
/// adapter's own default budget (`aws.drs_requests_per_second`).
const DRS_RPS: f64 = 20.0;

fn person(name: &str, role: Role) -> Principal {
    Principal { subject: name.into(), role, method: AuthMethod::Oidc, token: None, must_change_password: false }
}

/// CPU seconds (user + system) of this process so far, from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime), counted from the state field at index 0 here.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory of this process, MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Run {
    servers: usize,
    waves: usize,
    mode: &'static str,
    execution_id: String,
    rto_ms: i64,
    bound_ms: i64,
    /// The process's CPU time, orchestrator and simulated estate together.
    cpu_s: f64,
    /// Of which inside the simulated estate's calls (their wall time: one thread, nothing else runs).
    estate_s: f64,
    steps: usize,
    calls: u64,
    throttled: u64,
}

/// The shortest completion the quotas, the wave order and the per-server durations allow. Each server is
/// `(r, d)`: its reversed replication's time to `CONTINUOUS` (0 in a failover), then its launch time. Waves
/// run one after the other; within a wave, no server can finish before `r + d`, and no launch starts
/// before the first replication is continuous, after which at most `max_servers_in_active_jobs` servers
/// can be launching at once. So a wave takes at least `max(max(r + d), min(r) + ceil(sum(d) / 500))`.
fn lower_bound(waves: &[Vec<(i64, i64)>], limits: &Limits) -> i64 {
    #[allow(clippy::cast_possible_wrap)]
    let slots = limits.max_servers_in_active_jobs.max(1) as i64;
    waves
        .iter()
        .map(|w| {
            let total: i64 = w.iter().map(|(_, d)| d).sum();
            let first = w.iter().map(|(r, _)| *r).min().unwrap_or(0);
            let longest = w.iter().map(|(r, d)| r + d).max().unwrap_or(0);
            longest.max(first + (total + slots - 1) / slots)
        })
        .sum()
}

/// A failover of `n` servers in `waves` waves, then its failback.
async fn run(n: usize, waves: usize) -> Vec<Run> {
    let clock = Arc::new(SimClock::manual(1_800_000_000_000));
    let mut scenario = generate(GenerateOptions { servers: n, seed: 7, problems: false });
    // An estate this size has had its replicating-servers quota raised.
    scenario.quotas.max_replicating_servers = scenario.quotas.max_replicating_servers.max(n);
    // DRS's API rate, which the engine paces its calls to (tokio's clock is paused: pacing costs no wall time).
    (scenario.api.drs_requests_per_second, scenario.api.drs_burst) = (Some(DRS_RPS), 40);
    let sim = Arc::new(Simulator::new(scenario, clock.clone()));
    let services = Services::new(sim.clone(), Arc::new(MemoryStore::default()), clock.clone());
    let (alice, bob) = (person("alice", Role::Operator), person("bob", Role::Approver));
    let input = serde_json::from_value(serde_json::json!({
        "name": "Everything",
        "primary": { "account_id": "111111111111", "region": "us-east-1" },
        "dr": { "account_id": "222222222222", "region": "us-west-2" },
        "selection": { "kind": "all" }
    }))
    .expect("group");
    let group = services.create_group(&alice, &input).await.expect("group");
    let report = services.match_group(&group.id).await.expect("match").report;
    let requests: Vec<_> = report
        .pairs
        .iter()
        .map(|p| domain::group::PairRequest {
            source_server_id: p.source_server_id.clone(),
            standby_instance_id: p.standby_instance_id.clone(),
        })
        .collect();
    services.accept_pairs(&group.id, &requests, &alice).await.expect("pairs");
    let configure = engine::launch::ConfigureRequest { dry_run: false, pair_ids: None };
    services.configure_launch_into(&group.id, &configure, &alice).await.expect("configure");
    let pairs = services.list_pairs(&group.id).await.expect("pairs");
    let per = pairs.len().div_ceil(waves);
    let plan = RecoveryPlanInput {
        name: "Everything".into(),
        description: String::new(),
        protection_group_ids: vec![group.id.clone()],
        waves: Some(
            pairs
                .chunks(per)
                .enumerate()
                .map(|(i, c)| Wave {
                    name: format!("wave {}", i + 1),
                    pair_ids: c.iter().map(|p| p.id.clone()).collect(),
                    pause_before: false,
                    on_failure: Default::default(),
                    timeout_minutes: 240,
                })
                .collect(),
        ),
        rto_target_minutes: 1440,
    };
    let plan = services.create_plan(&alice, &plan).await.expect("plan");
    let limits = services.quotas_for_runner().await.expect("quotas");
    let b = Bench { services: &services, sim: &sim, clock: &clock, limits: &limits, servers: n, waves };
    let req = StartExecution {
        plan_id: plan.id.clone(),
        mode: Mode::Recovery,
        kind: FailoverKind::Disaster,
        acknowledge_warnings: true,
    };
    let failover = b
        .measure("recovery", || async {
            let exec = services.start_execution(&alice, &req).await.expect("start");
            services.decide_execution(&bob, &exec.id, Decision::Approve, "benchmark").await.expect("approve");
            exec.id
        })
        .await;
    // Home again: reverse replication, launch back into the originals, re-protect.
    let req = domain::execution::StartFailback {
        execution_id: failover.execution_id.clone(),
        stop_originals: true,
        tag_originals: true,
        terminate_standbys_confirmation: None,
        ..Default::default()
    };
    let failback = b
        .measure("failback", || async {
            let exec = services.start_failback(&alice, &req).await.expect("failback");
            services.decide_execution(&bob, &exec.id, Decision::Approve, "benchmark").await.expect("approve");
            exec.id
        })
        .await;
    vec![failover, failback]
}

struct Bench<'a> {
    services: &'a Services,
    sim: &'a Simulator,
    clock: &'a SimClock,
    limits: &'a Limits,
    servers: usize,
    waves: usize,
}

impl Bench<'_> {
    /// Starts an execution with `start` and runs it to its end as the background runner would.
    async fn measure<F: std::future::Future<Output = String>>(
        &self,
        mode: &'static str,
        start: impl FnOnce() -> F,
    ) -> Run {
        let Bench { services, sim, clock, limits, .. } = *self;
        let calls_before = services.metrics.cloud_totals();
        let cpu_before = cpu_seconds();
        let estate_before = services.metrics.cloud_seconds();
        let id = start().await;
        // As the background runner does: each tick, step until nothing changes (at most 20 steps), then wait.
        let mut steps = 0;
        let mut reversals = std::collections::HashMap::new();
        let mut advanced = 0;
        'run: for _ in 0..1_000_000 {
            for _ in 0..20 {
                steps += 1;
                match services.advance_execution(&id, "bench", limits).await.expect("step") {
                    Step::Done => break 'run,
                    Step::Advanced => advanced += 1,
                    _ => break,
                }
            }
            // DRS forgets a reversed replication when its recovery instance is deleted: note each one's time.
            sim.with_world(|w| {
                for r in &w.reversals {
                    reversals.entry(r.recovery_instance_id.clone()).or_insert(r.synced_at - r.started_at);
                }
            });
            clock.advance(TICK_MS);
        }
        if std::env::var_os("BENCH_CALLS").is_some() {
            eprintln!("{steps} runner steps, {advanced} of them changed the execution");
        }
        let cpu = cpu_seconds() - cpu_before;
        let estate = services.metrics.cloud_seconds() - estate_before;
        if std::env::var_os("BENCH_CALLS").is_some() {
            let text = services.metrics_text().await.expect("metrics");
            for l in text.lines().filter(|l| l.starts_with("roundtrip_cloud_")) {
                eprintln!("{l}");
            }
        }
        let calls_after = services.metrics.cloud_totals();
        let rec = services.get_execution(&id).await.expect("execution");
        assert_eq!(rec.state.phase, Phase::Succeeded, "{:?}", rec.log.iter().rev().take(5).collect::<Vec<_>>());
        let st = domain::execution::status(&rec.state, rec.rto_target_minutes, clock.now_millis());
        // Each server's launch time as DRS took it (from its job's creation to its launch) and, in a failback,
        // the time its reversed replication took to become continuous.
        let durations: Vec<Vec<(i64, i64)>> = rec
            .state
            .waves
            .iter()
            .map(|w| {
                w.servers
                    .iter()
                    .map(|r| {
                        let launch = launch_ms(sim, r.failback_source_id.as_ref().unwrap_or(&r.source_server_id));
                        (r.dr_standby_id.as_ref().and_then(|i| reversals.get(i)).copied().unwrap_or(0), launch)
                    })
                    .collect()
            })
            .collect();
        Run {
            servers: self.servers,
            waves: self.waves,
            mode,
            execution_id: id,
            rto_ms: st.rto_ms.unwrap_or(0),
            bound_ms: lower_bound(&durations, limits),
            cpu_s: cpu,
            estate_s: estate,
            steps,
            calls: calls_after.0 - calls_before.0,
            throttled: calls_after.1 - calls_before.1,
        }
    }
}

/// How long DRS took to launch a server in its last job: from the job's creation to its launch.
fn launch_ms(sim: &Simulator, id: &domain::ids::SourceServerId) -> i64 {
    sim.with_world(|w| {
        w.launch_jobs.iter().rev().find_map(|j| {
            let i = j.job.servers.iter().position(|p| &p.source_server_id == id)?;
            j.done_at.get(i).copied().flatten().map(|d| d - j.job.created_at)
        })
    })
    .unwrap_or(0)
}

fn main() {
    let mut sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![100, 1000];
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("runtime");
    println!(
        "| servers | waves | mode | simulated RTO | lower bound | ratio | process CPU | in the simulated estate | orchestrator CPU | orchestrator CPU per 100 servers | runner steps | DRS/EC2 calls | calls per server | throttled | peak memory |"
    );
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let waves = if n <= 100 {
            10
        } else if n <= 1000 {
            20
        } else {
            30
        };
        let started = Instant::now();
        for r in rt.block_on(run(n, waves)) {
            #[allow(clippy::cast_precision_loss)]
            let (rto, bound) = (r.rto_ms as f64 / 60_000.0, r.bound_ms as f64 / 60_000.0);
            #[allow(clippy::cast_precision_loss)]
            let per100 = (r.cpu_s - r.estate_s) / (r.servers as f64 / 100.0);
            #[allow(clippy::cast_precision_loss)]
            let per_server = r.calls as f64 / r.servers as f64;
            println!(
                "| {} | {} | {} | {rto:.1} min | {bound:.1} min | {:.3} | {:.2} s | {:.2} s | {:.2} s | {per100:.2} s | {} | {} | {per_server:.1} | {} | {:.0} MiB |",
                r.servers,
                r.waves,
                r.mode,
                rto / bound.max(f64::MIN_POSITIVE),
                r.cpu_s,
                r.estate_s,
                r.cpu_s - r.estate_s,
                r.steps,
                r.calls,
                r.throttled,
                peak_mib()
            );
        }
        eprintln!("({} servers took {:.1} s of wall time)", n, started.elapsed().as_secs_f64());
    }
}
