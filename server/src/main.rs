//! `roundtrip`: the server (`serve`, the default) and tools for the simulated estate (`sim generate`).

use clap::{Parser, Subcommand};
use server::settings::{LogFormat, Settings};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "roundtrip", version, about = "Disaster recovery into pre-provisioned standbys with AWS DRS")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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
    /// The audit trail in a data folder (with the server stopped; a running server answers
    /// `GET /api/v1/audit/verify`).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
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
    /// Scenario file for a new simulated estate (ignored once the estate has saved state).
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
    /// Write a generated scenario (TOML) to standard output or a file.
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
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Audit { command: AuditCommand::Verify { config, data_dir, json } }) => {
            audit_verify(config, data_dir, json)
        }
        None => serve(ServeArgs::default()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.is::<ChainBroken>() => std::process::ExitCode::from(3),
        Err(e) => {
            eprintln!("roundtrip: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn generate(servers: usize, seed: u64, problems: bool, out: Option<PathBuf>) -> anyhow::Result<()> {
    anyhow::ensure!((1..=100_000).contains(&servers), "--servers must be 1 to 100000");
    let scenario = sim::generate::generate(sim::generate::GenerateOptions { servers, seed, problems });
    let text = scenario.to_toml()?;
    match out {
        Some(path) => std::fs::write(&path, text)?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(())
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
        wired.simulator.save()?;
        tracing::info!("simulated estate saved; goodbye");
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
