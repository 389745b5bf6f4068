#![recursion_limit = "512"]
//! The `roundtrip` server: settings, wiring of the ports into services, and the axum router that serves
//! the console (Leptos SSR + hydration) and REST API v1 under `/api/v1`.

pub mod api;
pub mod cli;
pub mod notify;
pub mod oidc;
pub mod security;
pub mod settings;

use axum::Router;
use axum::routing::post;
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
    /// The simulated estate, when the cloud is simulated (saved at shutdown).
    pub simulator: Option<Arc<Simulator>>,
}

/// Loads the scenario named in the settings (TOML, or JSON when its name ends in `.json`), or the bundled
/// default.
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
    let json =
        settings.scenario.as_ref().is_some_and(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")));
    let scenario = if json { Scenario::from_json(&text) } else { Scenario::from_toml(&text) };
    scenario.map_err(|e| anyhow::anyhow!("{origin}: {e}"))
}

/// Opens the store (the embedded file in the data folder, or DynamoDB) and the cloud (the simulated estate
/// in the data folder, or AWS), wires the services and router, and creates the first admin when there are
/// no users.
///
/// # Errors
/// When the data folder, the store or the scenario cannot be used, the AWS settings cannot work, or the
/// admin settings are invalid.
pub async fn wire(settings: &Settings) -> anyhow::Result<Wired> {
    use settings::{CloudKind, StoreKind};
    // The store first: the embedded store's lock refuses a second server on the same data folder before
    // anything is read.
    let store: Arc<dyn engine::store::Store> = match settings.store {
        StoreKind::Embedded => Arc::new(EmbeddedStore::open(&settings.data_dir.join("roundtrip-store.jsonl"))?),
        StoreKind::Dynamodb => {
            let store = aws::dynamo::DynamoStore::open(&settings.aws).await?;
            store.check().await.map_err(|e| {
                anyhow::anyhow!("{e}; create the table with `roundtrip aws init` (or deploy/roundtrip.cfn.yaml)")
            })?;
            Arc::new(store)
        }
    };
    let (cloud, clock, simulator): (Arc<dyn engine::cloud::Cloud>, Arc<dyn Clock>, _) = match settings.cloud {
        CloudKind::Simulated => {
            let sim = Arc::new(Simulator::open(&settings.data_dir, || load_scenario(settings), settings.sim_speed)?);
            (sim.clone(), sim.clock(), Some(sim))
        }
        CloudKind::Aws => {
            let clients = Arc::new(aws::Clients::new(settings.aws.clone()).await?);
            (Arc::new(aws::AwsCloud::new(clients)), Arc::new(engine::clock::SystemClock), None)
        }
    };
    let services = Services::with(cloud, store, clock, Arc::new(engine::clock::SystemClock), settings.auth.sessions)
        .configured(engine::settings::EngineSettings::from(settings));
    let n = &settings.notifications;
    services.notifier.start(
        services.store.clone(),
        Arc::new(notify::HttpTransport::new(std::time::Duration::from_millis(n.timeout_ms.max(100)))?),
        services.metrics.clone(),
        services.wall_clock.clone(),
        engine::notify::DeliverySettings {
            max_attempts: n.max_attempts.max(1),
            initial_backoff: std::time::Duration::from_millis(n.initial_backoff_ms),
            max_backoff: std::time::Duration::from_millis(n.max_backoff_ms.max(n.initial_backoff_ms)),
            ..Default::default()
        },
    );
    bootstrap_admin(&services, settings).await?;
    match services.load_registered_cloud_accounts().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(accounts = n, "accounts registered in the console are in use"),
        Err(e) => tracing::warn!(error = %e, "the accounts registered in the console could not be loaded"),
    }
    let oidc = settings.oidc.clone().map(oidc::Oidc::new).transpose()?.map(Arc::new);
    let router = router(services.clone(), settings, oidc);
    Ok(Wired { router, services, simulator })
}

/// Creates the first admin when there are no users: with the configured password, or with a one-time
/// password written once to the log.
///
/// # Errors
/// An invalid admin name or password.
pub async fn bootstrap_admin(services: &Services, settings: &Settings) -> anyhow::Result<()> {
    let password = settings.auth.admin_password.as_ref().map(settings::Secret::expose);
    let generated = services.auth.bootstrap(&settings.auth.admin_username, password).await.map_err(|e| match e {
        engine::ServiceError::Invalid(fields) => anyhow::anyhow!(
            "cannot create the first admin: {}",
            fields.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        ),
        e => anyhow::anyhow!("cannot create the first admin: {}", e.public_message()),
    })?;
    if let Some(p) = generated {
        // The only time this password exists outside its hash; it must be changed at first sign-in.
        tracing::warn!(
            username = %settings.auth.admin_username,
            one_time_password = %p,
            "no users yet: created the first admin with a one-time password; sign in and choose your own"
        );
    }
    Ok(())
}

/// The console's pages, generated once per process. Generating them runs the app with resource loading
/// suppressed by a process-wide flag of Leptos's (leptos#4773): a page that starts rendering in another
/// router of the same process meanwhile (the API tests run many) would wait for its data forever.
pub fn page_routes() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(app::App)).clone()
}

/// The whole HTTP surface: REST API under `/api/v1`, console server functions under `/console`, pages,
/// sign-in under `/auth`, and the built site's static files, behind the security layers.
pub fn router(services: Services, settings: &Settings, oidc: Option<Arc<oidc::Oidc>>) -> Router {
    let options = LeptosOptions::builder()
        .output_name("webapp")
        .site_root(settings.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(settings.listen)
        .build();
    let routes = page_routes();
    let ctx_services = services.clone();
    let ui: Router = Router::new()
        .leptos_routes_with_context(
            &options,
            routes,
            move || {
                provide_context(ctx_services.clone());
                // Pages allow only scripts carrying this response's nonce (Leptos puts it on its own).
                if let (Some(nonce), Some(res)) =
                    (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
                    && let Ok(v) = axum::http::HeaderValue::from_str(&security::page_csp(&nonce))
                {
                    res.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, v);
                }
            },
            {
                let options = options.clone();
                move || app::shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler(app::shell))
        .with_state(options);
    let sign_in = Router::new()
        .route("/auth/login", post(security::login_form))
        .route("/auth/logout", post(security::logout_form))
        .with_state(services.clone());
    let security = security::Security {
        services: services.clone(),
        oidc,
        secure_cookies: settings.auth.secure_cookies,
        trust_forwarded_for: settings.auth.trust_forwarded_for,
    };
    let metrics = services.metrics.clone();
    ui.merge(sign_in)
        .route("/metrics", axum::routing::get(metrics_with_token).with_state(services.clone()))
        .nest(api::PREFIX, api::router(services, settings.max_body_bytes))
        .layer(axum::middleware::from_fn(security::guard))
        .layer(axum::middleware::from_fn_with_state(security, security::authenticate))
        // Console functions and forms read bodies themselves; the API answers its own limit in JSON first.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(settings.max_body_bytes.saturating_mul(2)))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(move |req, next| timed(metrics.clone(), req, next)))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            tracing::info_span!("request", method = %req.method(), path = %redacted_path(req.uri().path()))
        }))
}

/// The route a request is counted under: the API's matched route, or a fixed name for everything else
/// (raw paths would let anyone grow the metrics without bound).
#[derive(Clone)]
pub struct RouteLabel(pub String);

fn route_label(path: &str) -> &'static str {
    if path.starts_with("/pkg/") || path == "/favicon.ico" {
        "/pkg"
    } else if path.starts_with("/console/") {
        "/console"
    } else if path.starts_with("/auth/") {
        "/auth"
    } else if path == "/metrics" {
        "/metrics"
    } else if path.starts_with(api::PREFIX) {
        "/api/v1 (unmatched)"
    } else {
        "page"
    }
}

/// Measures each request for `roundtrip_http_request_duration_seconds`.
async fn timed(
    metrics: Arc<engine::metrics::Metrics>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = req.method().as_str().to_owned();
    let fallback = route_label(req.uri().path());
    let r = next.run(req).await;
    let route = r.extensions().get::<RouteLabel>().map_or(fallback, |l| l.0.as_str());
    metrics.http_request(&method, route, r.status().as_u16(), started.elapsed().as_secs_f64());
    r
}

/// `GET /metrics` on the main address: any signed-in role (an API token, typically a viewer's).
async fn metrics_with_token(
    axum::extract::State(s): axum::extract::State<Services>,
    who: Option<axum::Extension<domain::auth::Principal>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let access = domain::auth::Access::Role(domain::auth::Permission::Read);
    if let Err(e) = api::routes::check_access(access, who.as_ref().map(|w| &w.0)) {
        return e.into_response();
    }
    metrics_text(&s).await
}

/// The metrics in Prometheus' text format.
pub async fn metrics_text(s: &Services) -> axum::response::Response {
    use axum::response::IntoResponse;
    match s.metrics_text().await {
        Ok(text) => {
            ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
        }
        Err(e) => api::error::ApiError::from(e).into_response(),
    }
}

/// The router of `metrics_listen`: `GET /metrics` only, without authentication.
pub fn metrics_router(services: Services) -> Router {
    Router::new()
        .route(
            "/metrics",
            axum::routing::get(|axum::extract::State(s): axum::extract::State<Services>| async move {
                metrics_text(&s).await
            }),
        )
        .with_state(services)
}

/// The path as logged: share-link tokens are secrets and never reach the log.
fn redacted_path(path: &str) -> String {
    for prefix in ["/status/", "/api/v1/share/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            return format!("{prefix}{}", if rest.is_empty() { "" } else { "…" });
        }
    }
    path.to_owned()
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

/// Drives every live execution in the background ([`Services::run_executions`]).
pub fn spawn_execution_runner(services: Services, interval: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { services.run_executions(interval).await })
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
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
