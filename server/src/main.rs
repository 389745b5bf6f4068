//! `roundtrip`: the server (`serve`, the default), tools for the simulated estate (`sim generate`, `sim
//! serve`), for real AWS (`aws iam-policy`, `aws init`, `aws test-access`) and for the audit trail.

use clap::{Parser, Subcommand};
use server::settings::{LogFormat, Settings};
use std::path::PathBuf;

// Executions at thousands of servers allocate and free many small strings per step: mimalloc does that
// in about half the CPU time of the system allocator (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "roundtrip", version, about = "Disaster recovery into pre-provisioned standbys with AWS DRS")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    client: server::cli::ClientOptions,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the console and the REST API (the default).
    Serve(ServeArgs),
    /// Tools for the simulated estate.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// Real AWS: the IAM policies Roundtrip needs, the DynamoDB table, and a check of each account's role.
    Aws {
        #[command(subcommand)]
        command: AwsCommand,
    },
    /// The audit trail in a data folder (with the server stopped; a running server answers
    /// `GET /api/v1/audit/verify`).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    #[command(flatten)]
    Client(server::cli::ClientCommand),
}

#[derive(Subcommand)]
enum AwsCommand {
    /// Print the orchestration role's policy, and each account role's policy and trust policy, generated
    /// from the one table of actions the adapters call.
    IamPolicy {
        /// Settings file (TOML), for the accounts, roles and table.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The role Roundtrip runs as (the account roles trust it).
        #[arg(long, default_value = "arn:aws:iam::<management-account>:role/RoundtripOrchestrator")]
        orchestrator_role_arn: String,
        /// The External ID the account roles demand (a placeholder is printed when absent).
        #[arg(long)]
        external_id: Option<String>,
    },
    /// Create the DynamoDB table of the store (on-demand capacity, point-in-time recovery on).
    Init {
        /// Settings file (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Assume each account's role and try each read Roundtrip needs; report exactly what is missing.
    /// Exit code 0: everything works; 4: something is missing.
    TestAccess {
        /// Settings file (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain and report any edited or removed entry. Exit code 0: intact; 3: broken.
    Verify {
        /// Settings file (TOML), for the data folder.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data folder holding the store file.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Settings file (TOML); `ROUNDTRIP_…` variables and these flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:3000.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Data folder for the store file and the simulated estate's state.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Scenario file for a new simulated estate, TOML or JSON (`.json`); ignored once the estate has saved
    /// state.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Virtual seconds per real second in the simulated estate.
    #[arg(long)]
    speed: Option<f64>,
    /// Folder of the built console.
    #[arg(long)]
    site_root: Option<PathBuf>,
}

#[derive(Subcommand)]
enum SimCommand {
    /// Write a generated scenario (TOML; JSON when the output file ends in `.json`) to standard output or a
    /// file.
    Generate {
        /// Number of source servers.
        #[arg(long, default_value_t = 100)]
        servers: usize,
        /// Seed: the same seed gives the same estate.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Inject the realistic problems of the default scenario.
        #[arg(long)]
        problems: bool,
        /// Output file (standard output when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Serve the simulated estate over the AWS protocols (DRS, EC2, STS, IAM) on 127.0.0.1, for
    /// `roundtrip serve` with cloud `aws` and its `aws.endpoint_url` pointed here.
    Serve {
        /// Address to listen on (loopback only).
        #[arg(long, default_value = "127.0.0.1:4580")]
        listen: std::net::SocketAddr,
        /// Folder for the estate's state (kept across restarts).
        #[arg(long, default_value = "sim-data")]
        data_dir: PathBuf,
        /// Scenario file for a new estate; the bundled default when absent.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Virtual seconds per real second.
        #[arg(long)]
        speed: Option<f64>,
        /// The account that requests signed with keys not issued by this server's AssumeRole act as.
        #[arg(long, default_value = "999999999999")]
        default_account: String,
        /// Refuse any AssumeRole that does not carry this External ID.
        #[arg(long)]
        external_id: Option<String>,
    },
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Pretty => b.compact().init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Sim { command: SimCommand::Generate { servers, seed, problems, out } }) => {
            generate(servers, seed, problems, out)
        }
        Some(Command::Sim {
            command: SimCommand::Serve { listen, data_dir, scenario, speed, default_account, external_id },
        }) => sim_serve(listen, data_dir, scenario, speed, &default_account, external_id),
        Some(Command::Aws { command }) => aws_command(command),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Audit { command: AuditCommand::Verify { config, data_dir, json } }) => {
            audit_verify(config, data_dir, json)
        }
        None => serve(ServeArgs::default()),
        Some(Command::Client(command)) => return client(&cli.client, command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.is::<ChainBroken>() => std::process::ExitCode::from(3),
        Err(e) if e.is::<AccessMissing>() => std::process::ExitCode::from(4),
        Err(e) => {
            eprintln!("roundtrip: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs a client command against a server; its exit code tells a pipeline how it went.
fn client(opts: &server::cli::ClientOptions, command: server::cli::ClientCommand) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("roundtrip: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::cli::run(opts, command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if opts.output == server::cli::Output::Json && !e.printed() {
                println!("{}", e.to_json());
            }
            eprintln!("roundtrip: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

fn generate(servers: usize, seed: u64, problems: bool, out: Option<PathBuf>) -> anyhow::Result<()> {
    anyhow::ensure!((1..=100_000).contains(&servers), "--servers must be 1 to 100000");
    let scenario = sim::generate::generate(sim::generate::GenerateOptions { servers, seed, problems });
    let json = out.as_ref().is_some_and(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")));
    let text = if json { serde_json::to_string(&scenario)? } else { scenario.to_toml()? };
    match out {
        Some(path) => std::fs::write(&path, text)?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(())
}

fn sim_serve(
    listen: std::net::SocketAddr,
    data_dir: PathBuf,
    scenario: Option<PathBuf>,
    speed: Option<f64>,
    default_account: &str,
    external_id: Option<String>,
) -> anyhow::Result<()> {
    anyhow::ensure!(listen.ip().is_loopback(), "sim serve listens on loopback only (it checks no signatures)");
    let default_account = domain::ids::AccountId::parse(default_account).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(v) = speed {
        anyhow::ensure!(
            v.is_finite() && v > 0.0 && v <= sim::clock::MAX_SPEED,
            "--speed must be a positive number up to 100000"
        );
    }
    init_tracing(LogFormat::Pretty);
    let settings = Settings { scenario, ..Settings::default() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        std::fs::create_dir_all(&data_dir)?;
        let simulator =
            std::sync::Arc::new(sim::Simulator::open(&data_dir, || server::load_scenario(&settings), speed)?);
        let wire = sim::wire::Wire::with_external_id(simulator.clone(), default_account, external_id);
        tracing::info!(address = %format!("http://{}", listener.local_addr()?), "the simulated estate is serving the AWS protocols");
        axum::serve(listener, sim::wire::router(wire)).with_graceful_shutdown(shutdown_signal()).await?;
        simulator.save()?;
        tracing::info!("simulated estate saved; goodbye");
        Ok(())
    })
}

/// Something `aws test-access` found missing (already reported).
#[derive(Debug, thiserror::Error)]
#[error("some access is missing")]
struct AccessMissing;

fn aws_command(command: AwsCommand) -> anyhow::Result<()> {
    use std::io::Write;
    let config = match &command {
        AwsCommand::IamPolicy { config, .. } | AwsCommand::Init { config } | AwsCommand::TestAccess { config } => {
            config.clone()
        }
    };
    let settings = Settings::load(config.as_deref(), std::env::vars())?;
    let mut out = std::io::stdout();
    match command {
        AwsCommand::IamPolicy { orchestrator_role_arn, external_id, .. } => {
            let region = settings.aws.home_region().map_or_else(|| "<region>".to_owned(), |r| r.as_str().to_owned());
            let table_arn = format!("arn:aws:dynamodb:{region}:*:table/{}", settings.aws.dynamodb_table);
            let roles: Vec<String> = settings.aws.accounts.iter().filter_map(|a| a.role_arn.clone()).collect();
            let external_id = external_id.unwrap_or_else(|| "<the External ID of each account>".into());
            let own_account_too = settings.aws.accounts.iter().any(|a| a.role_arn.is_none());
            let doc = serde_json::json!({
                "orchestrator_role_policy": aws::iam::orchestrator_policy(&table_arn, &roles, own_account_too),
                "setup_policy": aws::iam::setup_policy(&table_arn),
                "account_role_policy": aws::iam::account_role_policy(),
                "account_role_trust_policy": aws::iam::account_role_trust_policy(&orchestrator_role_arn, &external_id),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
            Ok(())
        }
        AwsCommand::Init { .. } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let store = aws::DynamoStore::open(&settings.aws).await?;
                let created = store.init().await?;
                let what = if created { "created" } else { "already there" };
                writeln!(
                    out,
                    "table {} {what}; on-demand capacity, point-in-time recovery on",
                    settings.aws.dynamodb_table
                )?;
                Ok(())
            })
        }
        AwsCommand::TestAccess { .. } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let clients = aws::Clients::new(settings.aws.clone()).await?;
                writeln!(out, "trying every read Roundtrip needs in each account and region (writes are listed by `roundtrip aws iam-policy`)")?;
                let cloud = aws::AwsCloud::new(std::sync::Arc::new(clients));
                let report = engine::access::check_access(&cloud).await;
                for line in &report {
                    let mark = if line.ok { "ok  " } else { "MISSING" };
                    writeln!(out, "{mark} {} {} {}: {}", line.account_id, line.region, line.action, line.detail)?;
                }
                if report.iter().all(|l| l.ok) { Ok(()) } else { Err(AccessMissing.into()) }
            })
        }
    }
}

/// The audit chain does not verify (already reported).
#[derive(Debug, thiserror::Error)]
#[error("the audit chain is broken")]
struct ChainBroken;

fn audit_verify(config: Option<PathBuf>, data_dir: Option<PathBuf>, json: bool) -> anyhow::Result<()> {
    let mut settings = Settings::load(config.as_deref(), std::env::vars())?;
    if let Some(d) = data_dir {
        settings.data_dir = d;
    }
    let path = settings.data_dir.join("roundtrip-store.jsonl");
    anyhow::ensure!(path.exists(), "no store at {}", path.display());
    let store = std::sync::Arc::new(
        store::EmbeddedStore::open(&path)
            .map_err(|e| anyhow::anyhow!("{e}; if the server is running, ask it instead: GET /api/v1/audit/verify"))?,
    );
    let log = engine::audit::AuditLog::new(store, std::sync::Arc::new(engine::clock::SystemClock));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(log.verify())?;
    use std::io::Write;
    let mut out = std::io::stdout();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else if report.intact {
        writeln!(out, "audit chain intact: {} entries, head {} {}", report.entries, report.head_seq, report.head_hash)?;
    } else {
        writeln!(out, "audit chain BROKEN ({} problem(s)):", report.problems.len())?;
        for p in &report.problems {
            writeln!(out, "  entry {}: {}", p.seq, p.problem)?;
        }
    }
    if report.intact { Ok(()) } else { Err(ChainBroken.into()) }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut settings = Settings::load(args.config.as_deref(), std::env::vars())?;
    if let Some(v) = args.listen {
        settings.listen = v;
    }
    if let Some(v) = args.data_dir {
        settings.data_dir = v;
    }
    if let Some(v) = args.scenario {
        settings.scenario = Some(v);
    }
    if let Some(v) = args.speed {
        anyhow::ensure!(
            v.is_finite() && v > 0.0 && v <= sim::clock::MAX_SPEED,
            "--speed must be a positive number up to 100000"
        );
        settings.sim_speed = Some(v);
    }
    if let Some(v) = args.site_root {
        settings.site_root = v;
    }
    init_tracing(settings.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        // Bind first: a second server started by mistake stops here, before it opens the data folder.
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let wired = server::wire(&settings).await?;
        if !settings.site_root.join("pkg").join("webapp.wasm").exists() {
            tracing::warn!(site_root = %settings.site_root.display(), "the console is not built here; pages will render but not hydrate (run scripts/build-site.sh)");
        }
        tracing::info!(address = %format!("http://{}", listener.local_addr()?), data_dir = %settings.data_dir.display(), "Roundtrip is serving");
        let metrics = match settings.metrics_listen {
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (metrics_listen): {e}"))?;
                tracing::info!(address = %format!("http://{}/metrics", l.local_addr()?), "metrics without authentication");
                let router = server::metrics_router(wired.services.clone());
                Some(tokio::spawn(async move { axum::serve(l, router).await }))
            }
            None => None,
        };
        let readiness = server::spawn_readiness_loop(wired.services.clone(), settings.readiness_interval_minutes);
        let runner = server::spawn_execution_runner(
            wired.services.clone(),
            std::time::Duration::from_millis(settings.runner_interval_ms.max(100)),
        );
        server::serve(listener, wired.router, shutdown_signal()).await?;
        if let Some(r) = readiness {
            r.abort();
        }
        runner.abort();
        if let Some(m) = metrics {
            m.abort();
        }
        if let Some(sim) = &wired.simulator {
            sim.save()?;
            tracing::info!("simulated estate saved");
        }
        tracing::info!("goodbye");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
