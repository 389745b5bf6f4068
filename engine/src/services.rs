//! The use cases: protection groups, matching, pairs and their validation.
//!
//! REST handlers and console server functions parse their input, call one method here and map the
//! result. Every method reads the estate through the cloud port and persists through the store port; a
//! write either lands whole (one store transaction) or not at all.

use crate::audit::AuditLog;
use crate::auth::{Auth, AuthSettings};
use crate::clock::Clock;
use crate::cloud::{Cloud, CloudInfo, KnownAccountRegion};
pub use crate::error::{PairRejection, ServiceError};
pub use crate::settings::EngineSettings;
use crate::store::{Store, StoreError};
use domain::estate::{EstateOverview, summarize_slice};
pub use domain::group::{AcceptOutcome, GroupMatch, GroupSummary};
use std::sync::Arc;

/// Everything the edges need, behind ports chosen at start-up.
#[derive(Clone)]
pub struct Services {
    pub cloud: Arc<dyn Cloud>,
    pub store: Arc<dyn Store>,
    /// The estate's clock (virtual in the simulated estate): times of estate facts.
    pub clock: Arc<dyn Clock>,
    /// Wall-clock time: sessions, tokens, share links and the audit trail.
    pub wall_clock: Arc<dyn Clock>,
    pub settings: EngineSettings,
    pub audit: AuditLog,
    pub auth: Auth,
    /// What this process counted (cloud calls, HTTP latency, webhook deliveries).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where execution and readiness notices go (webhooks), once started.
    pub notifier: crate::notify::Notifier,
    /// The runner's decoded copy of each execution it steps, used while the stored version is unchanged.
    pub(crate) runner_copies: crate::executions::RunnerCopies,
    /// Executions as the status stream and status reads serve them, shared by their readers.
    pub(crate) shared_views: crate::executions::SharedViews,
}

impl Services {
    /// These services with `settings` in place of the defaults (the server converts its own settings).
    #[must_use]
    pub fn configured(mut self, settings: EngineSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Wires the ports, with wall-clock time from the system and default sign-in settings.
    pub fn new(cloud: Arc<dyn Cloud>, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self::with(cloud, store, clock, Arc::new(crate::clock::SystemClock), AuthSettings::default())
    }

    /// Wires the ports with an explicit wall clock and sign-in settings.
    pub fn with(
        cloud: Arc<dyn Cloud>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        wall_clock: Arc<dyn Clock>,
        auth_settings: AuthSettings,
    ) -> Self {
        let audit = AuditLog::new(store.clone(), wall_clock.clone());
        let auth = Auth::new(store.clone(), wall_clock.clone(), audit.clone(), auth_settings);
        let metrics = Arc::new(crate::metrics::Metrics::default());
        // Every cloud call is counted, whoever makes it.
        let cloud: Arc<dyn Cloud> = Arc::new(crate::metrics::Metered::new(cloud, metrics.clone()));
        Self {
            cloud,
            store,
            clock,
            wall_clock,
            settings: EngineSettings::default(),
            audit,
            auth,
            metrics,
            notifier: crate::notify::Notifier::default(),
            runner_copies: crate::executions::RunnerCopies::default(),
            shared_views: crate::executions::SharedViews::default(),
        }
    }

    /// Tries every read Roundtrip needs in every account and region ("test access").
    pub async fn check_cloud_access(&self) -> Vec<domain::estate::AccessCheck> {
        crate::access::check_access(self.cloud.as_ref()).await
    }

    /// What the estate is.
    pub fn cloud_info(&self) -> CloudInfo {
        self.cloud.info()
    }

    /// Accounts, regions, source servers by replication state and standbys by state.
    ///
    /// # Errors
    /// When the accounts cannot be listed; a read that fails in one account and region is reported in its
    /// slice (`unreachable`) instead.
    pub async fn overview(&self) -> Result<EstateOverview, ServiceError> {
        let info = self.cloud.info();
        let mut slices = Vec::new();
        for known in self.cloud.list_account_regions().await? {
            let mut unreachable = Vec::new();
            let instances = self.cloud.describe_instances(&known.at).await.unwrap_or_else(|e| {
                unreachable.push(format!("EC2: {e}"));
                Vec::new()
            });
            let sources = self.cloud.describe_source_servers(&known.at).await.unwrap_or_else(|e| {
                unreachable.push(format!("DRS: {e}"));
                Vec::new()
            });
            let mut slice =
                summarize_slice(&known.at.account_id, &known.account_name, &known.at.region, &instances, &sources);
            slice.unreachable = unreachable;
            slices.push(slice);
        }
        Ok(EstateOverview { cloud: info.kind, description: info.description, slices })
    }

    /// The accounts and regions Roundtrip can reach.
    ///
    /// # Errors
    /// Cloud failures.
    pub async fn account_regions(&self) -> Result<Vec<KnownAccountRegion>, ServiceError> {
        Ok(self.cloud.list_account_regions().await?)
    }
}

/// A transaction lost a race with another writer: nothing was written.
pub(crate) fn concurrent_change(e: StoreError) -> ServiceError {
    match e {
        StoreError::Conflict { actual, table, .. } => {
            tracing::info!(table, "a pair write lost a race; nothing was written");
            ServiceError::VersionConflict { expected: 0, actual }
        }
        e => e.into(),
    }
}

pub(crate) fn check_version(expected: Option<u64>, actual: u64) -> Result<(), ServiceError> {
    match expected {
        Some(e) if e != actual => Err(ServiceError::VersionConflict { expected: e, actual: Some(actual) }),
        _ => Ok(()),
    }
}
