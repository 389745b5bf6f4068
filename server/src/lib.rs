#![recursion_limit = "512"]
//! The `roundtrip` server: settings, wiring of the ports into services, and the axum router that serves
//! the console (Leptos SSR + hydration) and REST API v1 under `/api/v1`.

pub mod api;
pub mod settings;

use axum::Router;
use engine::Services;
use engine::clock::Clock;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use settings::Settings;
use sim::{Scenario, Simulator};
use std::sync::Arc;
use store::EmbeddedStore;
use tower_http::trace::TraceLayer;

/// A wired server: its router and the handles that need care at shutdown.
pub struct Wired {
    pub router: Router,
    pub services: Services,
    pub simulator: Arc<Simulator>,
}

/// Loads the scenario named in the settings, or the bundled default.
///
/// # Errors
/// When the file cannot be read or is not a valid scenario.
pub fn load_scenario(settings: &Settings) -> anyhow::Result<Scenario> {
    let (text, origin) = match &settings.scenario {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read scenario {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        None => (sim::DEFAULT_SCENARIO.to_owned(), "the bundled default scenario".to_owned()),
    };
    Scenario::from_toml(&text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))
}

/// Opens the store and the simulated estate in the data folder and wires the services and router.
///
/// # Errors
/// When the data folder, the store file or the scenario cannot be used.
pub fn wire(settings: &Settings) -> anyhow::Result<Wired> {
    // The store first: its lock refuses a second server on the same data folder before anything is read.
    let store = Arc::new(EmbeddedStore::open(&settings.data_dir.join("roundtrip-store.jsonl"))?);
    let simulator = Arc::new(Simulator::open(&settings.data_dir, || load_scenario(settings), settings.sim_speed)?);
    let clock: Arc<dyn Clock> = simulator.clock();
    let services = Services::new(simulator.clone(), store, clock);
    let router = router(services.clone(), settings);
    Ok(Wired { router, services, simulator })
}

/// The whole HTTP surface: REST API under `/api/v1`, console server functions under `/console`, pages,
/// and the built site's static files.
pub fn router(services: Services, settings: &Settings) -> Router {
    let options = LeptosOptions::builder()
        .output_name("webapp")
        .site_root(settings.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(settings.listen)
        .build();
    let routes = generate_route_list(app::App);
    let ctx_services = services.clone();
    let ui: Router = Router::new()
        .leptos_routes_with_context(&options, routes, move || provide_context(ctx_services.clone()), {
            let options = options.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler(app::shell))
        .with_state(options);
    ui.nest("/api/v1", api::router(services, settings.max_body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
}

/// A panic in a handler is a bug: log it and answer a 500 in the API's error format, never a dropped
/// connection.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = what, "a request handler panicked");
    axum::response::IntoResponse::into_response(api::error::ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        domain::ErrorCode::Internal,
        "the server failed on this request; the log has the cause",
    ))
}

/// Evaluates every group's readiness now and then every `minutes` (never when 0), until the runtime stops.
pub fn spawn_readiness_loop(services: Services, minutes: u64) -> Option<tokio::task::JoinHandle<()>> {
    (minutes > 0).then(|| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(minutes * 60));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let n = services.evaluate_all_readiness().await;
                tracing::debug!(groups = n, "readiness evaluated");
            }
        })
    })
}

/// Serves `router` on `listener` until `shutdown` resolves.
///
/// # Errors
/// When the server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
