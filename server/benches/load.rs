//! The console and API at load, and the server's memory with a large estate. Everything runs against a real
//! `roundtrip serve` process on 127.0.0.1, on a generated simulated estate; nothing else is contacted.
//!
//! ```text
//! cargo bench -p server --bench load                       # 200 clients during a 1,000-server drill; 10,000-server memory
//! cargo bench -p server --bench load -- --clients 50 --servers 300 --seconds 20 --memory 0
//! ```
//!
//! *Load.* A drill of `--servers` servers (one wave) runs while `--clients` clients each follow its event
//! stream (`GET /api/v1/executions/{id}/events`) and poll its status
//! (`GET /api/v1/executions/{id}/allow-launching/status`) once a second, for at most `--seconds`. Reported:
//! the latency of the status polls (p50, p99, max), the time to each stream's first event, events received,
//! errors of either kind, and the server's CPU and peak memory.
//!
//! *Memory.* A server with a `--memory`-server estate: a group of every server, matched and accepted,
//! configured for launch into the standbys, its readiness evaluated; then the server's peak memory (VmHWM).

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "load-bench-password-1";

struct Options {
    clients: usize,
    servers: usize,
    seconds: u64,
    memory: usize,
}

fn options() -> Options {
    let mut o = Options { clients: 200, servers: 1000, seconds: 60, memory: 10_000 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for w in args.windows(2) {
        let n = w[1].parse().unwrap_or(0);
        match w[0].as_str() {
            "--clients" => o.clients = n,
            "--servers" => o.servers = n,
            "--seconds" => o.seconds = n as u64,
            "--memory" => o.memory = n,
            _ => {}
        }
    }
    o
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port()
}

/// A generated estate of `n` servers with the replicating-servers quota raised to `n`, written to `dir`.
fn estate(dir: &Path, n: usize) -> std::path::PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_roundtrip"))
        .args(["sim", "generate", "--servers", &n.to_string()])
        .output()
        .expect("roundtrip sim generate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut t: toml::Table = String::from_utf8_lossy(&out.stdout).parse().expect("a scenario");
    let quotas = toml::toml! {
        max_replicating_servers = 0
        max_servers_per_job = 100
        max_concurrent_jobs = 20
        max_servers_in_active_jobs = 500
    };
    let mut quotas = quotas;
    quotas.insert("max_replicating_servers".into(), toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
    t.insert("quotas".into(), toml::Value::Table(quotas));
    // JSON: the server reads a 10,000-server estate in far less memory than TOML takes.
    let path = dir.join("estate.json");
    std::fs::write(&path, serde_json::to_string(&t).expect("json")).expect("write the scenario");
    path
}

fn serve(dir: &Path, port: u16, scenario: &Path, speed: u32) -> Child {
    Command::new(env!("CARGO_BIN_EXE_roundtrip"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--speed", &speed.to_string()])
        .arg("--data-dir")
        .arg(dir)
        .arg("--scenario")
        .arg(scenario)
        .env("ROUNDTRIP_ADMIN_PASSWORD", PASSWORD)
        .env("ROUNDTRIP_RUNNER_INTERVAL_MS", "500")
        .env("ROUNDTRIP_MIN_LAUNCH_MS", "0")
        .env("ROUNDTRIP_MIN_REVERSE_SYNC_MS", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the roundtrip binary starts")
}

/// An admin's API token from a fresh server on `port` (waits for it to answer).
async fn admin_token(port: u16, name: &str) -> String {
    let http = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(300);
    while http.get(format!("{base}/api/v1/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the server never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = http
        .post(format!("{base}/api/v1/session"))
        .json(&json!({ "username": "admin", "password": PASSWORD }))
        .send()
        .await
        .expect("sign in");
    let csrf = r.json::<Value>().await.expect("session")["csrf_token"].as_str().expect("csrf").to_owned();
    let r = http
        .post(format!("{base}/api/v1/tokens"))
        .header("x-csrf-token", csrf)
        .json(&json!({ "name": name, "role": "admin" }))
        .send()
        .await
        .expect("token");
    r.json::<Value>().await.expect("token")["token"].as_str().expect("token").to_owned()
}

/// `roundtrip <args> --output json` against the server: its JSON.
fn cli(port: u16, token: &str, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_roundtrip"))
        .args(args)
        .args(["--output", "json"])
        .env("ROUNDTRIP_SERVER", format!("http://127.0.0.1:{port}"))
        .env("ROUNDTRIP_TOKEN", token)
        .output()
        .expect("roundtrip runs");
    assert!(
        out.status.success(),
        "roundtrip {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The group `Load` of every server, matched, accepted and configured; the server's peak memory after each.
fn prepare(port: u16, token: &str, pid: u32) -> Vec<(&'static str, f64)> {
    let mut peaks = vec![("started", peak_mib(pid)), ("resident once started", rss_mib(pid))];
    cli(
        port,
        token,
        &[
            "groups",
            "create",
            "--name",
            "Load",
            "--primary",
            "111111111111/us-east-1",
            "--dr",
            "222222222222/us-west-2",
        ],
    );
    cli(port, token, &["match", "Load", "--accept"]);
    peaks.push(("matched and accepted", peak_mib(pid)));
    cli(port, token, &["configure", "Load"]);
    peaks.push(("configured", peak_mib(pid)));
    peaks
}

fn proc_field(pid: u32, file: &str, key: &str) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Resident memory of process `pid` now, MiB.
fn rss_mib(pid: u32) -> f64 {
    proc_field(pid, "status", "VmRSS:") / 1024.0
}

/// Peak resident memory of process `pid`, MiB.
fn peak_mib(pid: u32) -> f64 {
    proc_field(pid, "status", "VmHWM:") / 1024.0
}

/// CPU seconds of process `pid` so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[derive(Default)]
struct Tally {
    polls_ms: Vec<f64>,
    first_event_ms: Vec<f64>,
    events: usize,
    errors: Vec<String>,
}

/// One client: follows the stream and polls the status once a second until `until`.
async fn client(
    http: reqwest::Client,
    base: String,
    token: String,
    id: String,
    until: Instant,
    tally: Arc<std::sync::Mutex<Tally>>,
) {
    let stream = {
        let (http, base, token, id, tally) = (http.clone(), base.clone(), token.clone(), id.clone(), tally.clone());
        async move {
            let started = Instant::now();
            let r = http.get(format!("{base}/api/v1/executions/{id}/events")).bearer_auth(&token).send().await;
            let mut r = match r {
                Ok(r) if r.status().is_success() => r,
                Ok(r) => return tally.lock().unwrap().errors.push(format!("stream: HTTP {}", r.status())),
                Err(e) => return tally.lock().unwrap().errors.push(format!("stream: {e}")),
            };
            let mut first = true;
            loop {
                let left = until.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, r.chunk()).await {
                    Err(_) | Ok(Ok(None)) => return,
                    Ok(Err(e)) => return tally.lock().unwrap().errors.push(format!("stream: {e}")),
                    Ok(Ok(Some(bytes))) => {
                        let n = bytes.windows(16).filter(|w| w == b"event: execution").count();
                        let mut t = tally.lock().unwrap();
                        t.events += n;
                        if first && n > 0 {
                            first = false;
                            t.first_event_ms.push(started.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                }
            }
        }
    };
    let polls = async move {
        let url = format!("{base}/api/v1/executions/{id}/allow-launching/status");
        while Instant::now() < until {
            let started = Instant::now();
            let r = http.get(&url).bearer_auth(&token).send().await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let ok = match r {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                Ok(r) => {
                    tally.lock().unwrap().errors.push(format!("status: HTTP {}", r.status()));
                    false
                }
                Err(e) => {
                    tally.lock().unwrap().errors.push(format!("status: {e}"));
                    false
                }
            };
            if ok {
                tally.lock().unwrap().polls_ms.push(ms);
            }
            tokio::time::sleep(Duration::from_secs(1).saturating_sub(started.elapsed())).await;
        }
    };
    tokio::join!(stream, polls);
}

async fn load(o: &Options) {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = estate(dir.path(), o.servers);
    let port = free_port();
    let mut server = serve(dir.path(), port, &scenario, 10);
    let pid = server.id();
    let token = admin_token(port, "load").await;
    let prepared = Instant::now();
    let t = token.clone();
    tokio::task::spawn_blocking(move || prepare(port, &t, pid)).await.expect("prepare");
    let t = token.clone();
    let plan =
        tokio::task::spawn_blocking(move || cli(port, &t, &["plans", "create", "--name", "Load", "--group", "Load"]))
            .await
            .expect("plan");
    let t = token.clone();
    let exec = tokio::task::spawn_blocking(move || {
        cli(port, &t, &["failover", "--plan", "Load", "--drill", "--acknowledge-warnings"])
    })
    .await
    .expect("failover");
    let id =
        exec["id"].as_str().or_else(|| exec["execution"]["id"].as_str()).unwrap_or_else(|| panic!("{exec}")).to_owned();
    eprintln!(
        "prepared {} servers in {:.0} s; plan {}; drill {id}",
        o.servers,
        prepared.elapsed().as_secs_f64(),
        plan["id"]
    );
    let http = reqwest::Client::builder().pool_max_idle_per_host(o.clients * 2).build().expect("client");
    let base = format!("http://127.0.0.1:{port}");
    let tally = Arc::new(std::sync::Mutex::new(Tally::default()));
    let (cpu0, started) = (cpu_seconds(pid), Instant::now());
    let until = started + Duration::from_secs(o.seconds);
    let tasks: Vec<_> = (0..o.clients)
        .map(|_| tokio::spawn(client(http.clone(), base.clone(), token.clone(), id.clone(), until, tally.clone())))
        .collect();
    for t in tasks {
        t.await.expect("client");
    }
    let (cpu, wall) = (cpu_seconds(pid) - cpu0, started.elapsed().as_secs_f64());
    let status: Value = http
        .get(format!("{base}/api/v1/executions/{id}/allow-launching/status"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("status");
    let mut t = std::mem::take(&mut *tally.lock().unwrap());
    t.polls_ms.sort_by(f64::total_cmp);
    t.first_event_ms.sort_by(f64::total_cmp);
    println!(
        "| clients | servers | seconds | status polls | p50 | p99 | max | first event p50 | first event p99 | stream events | errors | server CPU | server peak memory | execution at the end |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    println!(
        "| {} | {} | {wall:.0} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} ms | {:.0} ms | {} | {} | {cpu:.1} s ({:.0}% of one core) | {:.0} MiB | {} |",
        o.clients,
        o.servers,
        t.polls_ms.len(),
        percentile(&t.polls_ms, 0.5),
        percentile(&t.polls_ms, 0.99),
        t.polls_ms.last().copied().unwrap_or(0.0),
        percentile(&t.first_event_ms, 0.5),
        percentile(&t.first_event_ms, 0.99),
        t.events,
        t.errors.len(),
        cpu / wall * 100.0,
        peak_mib(pid),
        status["phase"].as_str().unwrap_or("?"),
    );
    for e in t.errors.iter().take(5) {
        eprintln!("error: {e}");
    }
    let _ = server.kill();
    let _ = server.wait();
}

async fn memory(n: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = estate(dir.path(), n);
    let port = free_port();
    let mut server = serve(dir.path(), port, &scenario, 60);
    let pid = server.id();
    let token = admin_token(port, "load").await;
    let started = Instant::now();
    let t = token.clone();
    let peaks = tokio::task::spawn_blocking(move || {
        let mut peaks = prepare(port, &t, pid);
        cli(port, &t, &["readiness", "Load", "--evaluate"]);
        peaks.push(("readiness evaluated", peak_mib(pid)));
        peaks.push(("resident", rss_mib(pid)));
        peaks
    })
    .await
    .expect("prepare");
    // Restarted on its saved state (stopped as a service manager stops it): the scenario file is read only
    // on the first start.
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = server.wait();
    let mut server = serve(dir.path(), port, &scenario, 60);
    let pid = server.id();
    let t = admin_token(port, "load-again").await;
    let restarted = tokio::task::spawn_blocking(move || {
        // Its verdict does not matter here, only the memory evaluating it takes.
        let _ = Command::new(env!("CARGO_BIN_EXE_roundtrip"))
            .args(["readiness", "Load", "--evaluate", "--output", "json"])
            .env("ROUNDTRIP_SERVER", format!("http://127.0.0.1:{port}"))
            .env("ROUNDTRIP_TOKEN", &t)
            .output();
        (peak_mib(pid), rss_mib(pid))
    })
    .await
    .expect("restart");
    let steps: Vec<String> = peaks.iter().map(|(what, mib)| format!("{what} {mib:.0}")).collect();
    println!(
        "| estate | group, match, accept, configure, readiness | memory after each step (MiB) | restarted on its saved state, readiness evaluated: peak, resident |"
    );
    println!("|---:|---:|---|---:|");
    println!(
        "| {n} servers | {:.0} s | {} | {:.0} MiB, {:.0} MiB |",
        started.elapsed().as_secs_f64(),
        steps.join("; "),
        restarted.0,
        restarted.1
    );
    let _ = server.kill();
    let _ = server.wait();
}

fn main() {
    let o = options();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    if o.clients > 0 && o.servers > 0 {
        rt.block_on(load(&o));
    }
    if o.memory > 0 {
        rt.block_on(memory(o.memory));
    }
}
