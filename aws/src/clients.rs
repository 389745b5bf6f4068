//! SDK clients per account and region, with cross-account credentials.
//!
//! The base credentials come from the default chain (environment, profile, container or instance role):
//! the orchestration role of the account Roundtrip runs in. Every other account is reached by
//! `AssumeRole` with its External ID; the session is named after the execution that makes the calls
//! (`roundtrip-exec-…`, or `roundtrip-console`), so CloudTrail shows who did what. `AssumeRoleProvider`
//! caches the credentials and refreshes them before they expire.
//!
//! Endpoints are set per client, never on the shared config of a real deployment: a code-level endpoint on
//! the base config would also redirect STS (`aws-drs-api.md` §6.2). The single `endpoint_url` setting exists
//! for emulators that serve every service on one port.

use crate::settings::{AwsAccount, AwsSettings};
use crate::throttle::TokenBucket;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region as SdkRegion, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_types::retry::RetryConfig;
use domain::ids::{AccountId, Region};
use engine::cloud::CloudError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The clients of one account and region. Not `Debug`: its configuration holds the credentials provider,
/// whose External ID must never be printed.
#[derive(Clone)]
pub struct ClientSet {
    pub drs: aws_sdk_drs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
    pub sts: aws_sdk_sts::Client,
    /// Paces DRS calls in this account and region.
    pub drs_bucket: Arc<TokenBucket>,
}

/// Builds and caches [`ClientSet`]s.
pub struct Clients {
    settings: AwsSettings,
    /// Accounts an admin registered in the console, beside the settings' (see [`Clients::set_registered`]).
    registered: std::sync::RwLock<Vec<AwsAccount>>,
    base: SdkConfig,
    /// One set for every account and region (tests with mocked SDK clients).
    fixed: Option<ClientSet>,
    credentials: Mutex<HashMap<(AccountId, String), SharedCredentialsProvider>>,
    sets: Mutex<HashMap<(AccountId, Region, String), ClientSet>>,
    buckets: Mutex<HashMap<(AccountId, Region), Arc<TokenBucket>>>,
    /// Counts the SDK's operations, attempts and throttled attempts of every client made here.
    attempts: crate::attempts::AttemptCounter,
}

/// Sessions kept at most; beyond, the cache starts again (credentials are cheap to assume anew).
const MAX_CACHED: usize = 512;

/// A valid `RoleSessionName` (`[\w+=,.@-]{2,64}`) for the current execution.
pub fn session_name(execution: Option<&str>) -> String {
    let raw = format!("roundtrip-{}", execution.unwrap_or("console"));
    let clean: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) { c } else { '-' })
        .take(64)
        .collect();
    clean
}

impl Clients {
    /// Loads the base configuration (default credential chain, home region).
    ///
    /// # Errors
    /// When the settings cannot work (no accounts, no region).
    pub async fn new(settings: AwsSettings) -> anyhow::Result<Self> {
        Self::with_credentials(settings, None).await
    }

    /// As [`Clients::new`], with these base credentials instead of the default chain (tests, emulators).
    ///
    /// # Errors
    /// As [`Clients::new`].
    pub async fn with_credentials(
        settings: AwsSettings,
        credentials: Option<aws_credential_types::Credentials>,
    ) -> anyhow::Result<Self> {
        let problems = settings.problems();
        anyhow::ensure!(problems.is_empty(), "the [aws] settings cannot work: {}", problems.join("; "));
        let home = settings.home_region().ok_or_else(|| {
            anyhow::anyhow!("set aws.home_region (ROUNDTRIP_AWS_HOME_REGION), or list an account with its regions")
        })?;
        let mut base = base_config(&settings, &home).await;
        if let Some(c) = credentials {
            base = base.to_builder().credentials_provider(SharedCredentialsProvider::new(c)).build();
        }
        Ok(Self {
            settings,
            registered: std::sync::RwLock::new(Vec::new()),
            base,
            fixed: None,
            credentials: Mutex::new(HashMap::new()),
            sets: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            attempts: crate::attempts::AttemptCounter::default(),
        })
    }

    /// Clients that answer every configured account and region with `set` (for tests that mock the SDK).
    pub fn with_client_set(settings: AwsSettings, set: ClientSet) -> Self {
        Self {
            settings,
            registered: std::sync::RwLock::new(Vec::new()),
            base: SdkConfig::builder().build(),
            fixed: Some(set),
            credentials: Mutex::new(HashMap::new()),
            sets: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            attempts: crate::attempts::AttemptCounter::default(),
        }
    }

    /// The settings these clients were built from.
    pub fn settings(&self) -> &AwsSettings {
        &self.settings
    }

    /// The base configuration (the account Roundtrip runs in, its home region).
    pub fn base(&self) -> &SdkConfig {
        &self.base
    }

    /// Every account: the settings' and the registered ones.
    pub fn accounts(&self) -> Vec<AwsAccount> {
        let registered = self.registered.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.settings.accounts.iter().chain(registered.iter()).cloned().collect()
    }

    /// The account, if it is configured or registered.
    pub fn account(&self, id: &AccountId) -> Option<AwsAccount> {
        self.accounts().into_iter().find(|a| &a.account_id == id)
    }

    /// Replaces the registered accounts, and forgets cached clients and credentials (a role or External ID
    /// may have changed).
    ///
    /// # Errors
    /// When a registered account repeats one of the settings.
    pub fn set_registered(&self, accounts: Vec<AwsAccount>) -> Result<(), String> {
        if let Some(a) = accounts.iter().find(|a| self.settings.accounts.iter().any(|s| s.account_id == a.account_id)) {
            return Err(format!("account {} is in the settings already", a.account_id.as_str()));
        }
        *self.registered.write().unwrap_or_else(std::sync::PoisonError::into_inner) = accounts;
        lock(&self.sets).clear();
        lock(&self.credentials).clear();
        Ok(())
    }

    /// The clients for `account` in `region`, for the current execution's session.
    ///
    /// # Errors
    /// [`CloudError::AccessDenied`] for an account or region that is not configured.
    pub async fn get(&self, account: &AccountId, region: &Region) -> Result<ClientSet, CloudError> {
        let Some(a) = self.account(account) else {
            return Err(CloudError::AccessDenied {
                message: format!("account {} is not one of Roundtrip's accounts", account.as_str()),
            });
        };
        if !a.regions.contains(region) {
            return Err(CloudError::AccessDenied {
                message: format!("region {} is not configured for account {}", region.as_str(), account.as_str()),
            });
        }
        if let Some(set) = &self.fixed {
            return Ok(set.clone());
        }
        let session = session_name(engine::cloud::current_execution().as_deref());
        let key = (account.clone(), region.clone(), session.clone());
        if let Some(s) = lock(&self.sets).get(&key) {
            return Ok(s.clone());
        }
        let creds = self.credentials_for(&a, &session).await;
        let cfg = {
            let mut b = self.base.to_builder().region(SdkRegion::new(region.as_str().to_owned()));
            if let Some(c) = creds {
                b = b.credentials_provider(c);
            }
            b.build()
        };
        let mut drs = aws_sdk_drs::config::Builder::from(&cfg).interceptor(self.attempts.clone());
        if let Some(ep) = &self.settings.drs_endpoint_url {
            drs = drs.endpoint_url(ep);
        }
        let bucket = lock(&self.buckets)
            .entry((account.clone(), region.clone()))
            .or_insert_with(|| {
                Arc::new(TokenBucket::new(self.settings.drs_requests_per_second, self.settings.drs_burst))
            })
            .clone();
        let set = ClientSet {
            drs: aws_sdk_drs::Client::from_conf(drs.build()),
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&cfg).interceptor(self.attempts.clone()).build(),
            ),
            iam: aws_sdk_iam::Client::new(&cfg),
            sts: aws_sdk_sts::Client::new(&cfg),
            drs_bucket: bucket,
        };
        let mut sets = lock(&self.sets);
        if sets.len() >= MAX_CACHED {
            sets.clear();
        }
        sets.insert(key, set.clone());
        Ok(set)
    }

    /// The credentials of `account` for `session`: an assumed role, or `None` for the base credentials.
    async fn credentials_for(&self, account: &AwsAccount, session: &str) -> Option<SharedCredentialsProvider> {
        let role = account.role_arn.as_ref()?;
        let key = (account.account_id.clone(), session.to_owned());
        if let Some(c) = lock(&self.credentials).get(&key) {
            return Some(c.clone());
        }
        let mut b = AssumeRoleProvider::builder(role.clone()).session_name(session).configure(&self.base);
        if let Some(x) = &account.external_id {
            b = b.external_id(x.clone());
        }
        let provider = SharedCredentialsProvider::new(b.build().await);
        let mut all = lock(&self.credentials);
        if all.len() >= MAX_CACHED {
            all.clear();
        }
        all.insert(key, provider.clone());
        Some(provider)
    }
}

impl Clients {
    /// What the SDK did on its own (operations, attempts, throttled attempts).
    pub fn transport_attempts(&self) -> engine::cloud::TransportAttempts {
        self.attempts.snapshot()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The base SDK configuration: rustls with ring, standard retries (throttling and 5xx only, jittered
/// exponential backoff), timeouts, and the emulator endpoint when one is set.
pub async fn base_config(settings: &AwsSettings, region: &Region) -> SdkConfig {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(SdkRegion::new(region.as_str().to_owned()))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(settings.max_attempts.max(1))
                .with_initial_backoff(Duration::from_millis(settings.initial_backoff_ms.max(1))),
        )
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(ep) = &settings.endpoint_url {
        loader = loader.endpoint_url(ep);
    }
    loader.load().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_carry_the_execution_and_stay_valid() {
        assert_eq!(session_name(Some("exec-0123456789abcdef")), "roundtrip-exec-0123456789abcdef");
        assert_eq!(session_name(None), "roundtrip-console");
        let odd = session_name(Some(&format!("a b/c{}", "x".repeat(100))));
        assert!(odd.len() == 64 && !odd.contains(' ') && !odd.contains('/'), "{odd}");
    }
}
