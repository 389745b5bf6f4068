//! Layered settings: defaults → settings file → `ROUNDTRIP_…` environment variables → command-line flags.
//!
//! The defaults are safe: simulated cloud, embedded store, listening on 127.0.0.1 only.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Which cloud Roundtrip talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloudKind {
    /// The built-in simulated estate.
    Simulated,
    /// AWS through the SDK (the accounts of `[aws]`), or an AWS-protocol emulator at `aws.endpoint_url`.
    Aws,
}

/// Which store Roundtrip keeps its records in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// One crash-safe file in the data folder.
    Embedded,
    /// A DynamoDB table (`aws.dynamodb_table` in `aws.home_region`), shared by several servers.
    Dynamodb,
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Everything the server needs to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address of the console and REST API.
    pub listen: SocketAddr,
    /// Folder for the store file and the simulated estate's state.
    pub data_dir: PathBuf,
    pub cloud: CloudKind,
    pub store: StoreKind,
    /// Scenario file of the simulated estate; the bundled default when absent.
    pub scenario: Option<PathBuf>,
    /// Virtual seconds per real second in the simulated estate; the scenario's when absent.
    pub sim_speed: Option<f64>,
    /// Folder holding the built console (`pkg/webapp.{js,wasm,css}`).
    pub site_root: PathBuf,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
    /// Minutes between background readiness evaluations of every group (0 turns them off).
    pub readiness_interval_minutes: u64,
    /// Milliseconds between runner passes over live executions (each pass polls DRS for each of them).
    pub runner_interval_ms: u64,
    /// How long a runner's lease on an execution lasts without renewal; another process takes the
    /// execution over once it has expired (after a crash, for instance).
    pub lease_ms: u64,
    /// How long a requested recovery waits for approval before it expires.
    pub approval_ttl_minutes: u32,
    /// No DRS job is polled sooner than this after it started. Lower it for an AWS-protocol emulator whose
    /// virtual time runs faster than real time (`roundtrip sim serve --speed`).
    pub min_launch_ms: u64,
    /// No reversed replication (failback, re-protect) is polled sooner than this after it was reversed. Lower
    /// it with `min_launch_ms`, for the same reason.
    pub min_reverse_sync_ms: u64,
    /// How long volumes a launch swapped out of a standby are kept before they are listed as deletable.
    pub swapped_volume_retention_days: u32,
    pub auth: AuthConfig,
    /// Bearer JWTs from an OIDC issuer, when configured.
    pub oidc: Option<OidcConfig>,
    /// Accounts, roles and endpoints for cloud `aws` and store `dynamodb` (`[aws]`, `[[aws.accounts]]`).
    pub aws: aws::AwsSettings,
    /// A second address serving only `GET /metrics`, without authentication (for a Prometheus on a
    /// private network). `/metrics` on `listen` always needs a token.
    pub metrics_listen: Option<SocketAddr>,
    /// Webhook delivery (`[notifications]`).
    pub notifications: NotificationSettings,
}

/// How webhook deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationSettings {
    /// Attempts per notice, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled after each failure, up to `max_backoff_ms`.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// How long one delivery may take.
    pub timeout_ms: u64,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self { max_attempts: 8, initial_backoff_ms: 1_000, max_backoff_ms: 300_000, timeout_ms: 10_000 }
    }
}

/// A secret that never appears in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Sign-in settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Name of the admin created on first start when there are no users.
    pub admin_username: String,
    /// Password of that admin (`ROUNDTRIP_ADMIN_PASSWORD`); when absent, a one-time password is printed
    /// once to the log and must be changed at first sign-in.
    pub admin_password: Option<Secret>,
    /// Mark the session cookie `Secure` always (as well as whenever a proxy says the request came over TLS).
    pub secure_cookies: bool,
    /// Take the client address for sign-in throttling from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Session expiry and sign-in throttling (`[auth.sessions]`).
    pub sessions: engine::auth::AuthSettings,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            admin_username: "admin".into(),
            admin_password: None,
            secure_cookies: false,
            trust_forwarded_for: false,
            sessions: engine::auth::AuthSettings::default(),
        }
    }
}

/// An OIDC issuer whose bearer JWTs Roundtrip accepts, and how its groups map to roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The `iss` claim tokens must carry.
    pub issuer: String,
    /// The `aud` claim tokens must carry.
    pub audience: String,
    /// Where the issuer publishes its signing keys (JWKS).
    pub jwks_url: String,
    /// The claim naming the person (default `sub`).
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// The claim listing the person's groups (default `groups`).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Group → role; a person in several mapped groups gets the most powerful role.
    pub roles: std::collections::BTreeMap<String, domain::auth::Role>,
}

fn default_subject_claim() -> String {
    "sub".into()
}

fn default_groups_claim() -> String {
    "groups".into()
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: PathBuf::from("data"),
            cloud: CloudKind::Simulated,
            store: StoreKind::Embedded,
            scenario: None,
            sim_speed: None,
            site_root: PathBuf::from("target/site"),
            max_body_bytes: 2 * 1024 * 1024,
            log_format: LogFormat::Pretty,
            readiness_interval_minutes: 15,
            runner_interval_ms: 5_000,
            lease_ms: 60_000,
            approval_ttl_minutes: 60,
            min_launch_ms: 60_000,
            min_reverse_sync_ms: 300_000,
            swapped_volume_retention_days: 14,
            auth: AuthConfig::default(),
            oidc: None,
            aws: aws::AwsSettings::default(),
            metrics_listen: None,
            notifications: NotificationSettings::default(),
        }
    }
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("settings file {path} is invalid: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Env { name: String, value: String, reason: String },
}

/// The engine's tunables from the server's settings (lower bounds applied: a lease of at least a second, an
/// approval that lasts at least a minute); the rest keep the engine's defaults.
impl From<&Settings> for engine::settings::EngineSettings {
    fn from(s: &Settings) -> Self {
        Self {
            lease_ms: i64::try_from(s.lease_ms.max(1_000)).unwrap_or(i64::MAX),
            approval_ttl_minutes: s.approval_ttl_minutes.max(1),
            swapped_volume_retention_days: s.swapped_volume_retention_days,
            min_launch_ms: i64::try_from(s.min_launch_ms).unwrap_or(i64::MAX),
            min_reverse_sync_ms: i64::try_from(s.min_reverse_sync_ms).unwrap_or(i64::MAX),
            ..Self::default()
        }
    }
}

impl Settings {
    /// Defaults, then the file (if given), then `ROUNDTRIP_*` variables from `env`.
    ///
    /// # Errors
    /// A [`SettingsError`] naming the file or variable at fault.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let mut s = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| SettingsError::Read { path: path.display().to_string(), source })?;
                toml::from_str(&text)
                    .map_err(|source| SettingsError::Parse { path: path.display().to_string(), source })?
            }
            None => Settings::default(),
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix("ROUNDTRIP_") else { continue };
            let bad =
                |reason: &str| SettingsError::Env { name: name.clone(), value: value.clone(), reason: reason.into() };
            match key {
                "LISTEN" => s.listen = value.parse().map_err(|_| bad("expected host:port, e.g. 127.0.0.1:3000"))?,
                "DATA_DIR" => s.data_dir = PathBuf::from(&value),
                "SCENARIO" => s.scenario = Some(PathBuf::from(&value)),
                "SIM_SPEED" => {
                    let v: f64 = value.parse().map_err(|_| bad("expected a number"))?;
                    if !(v.is_finite() && v > 0.0 && v <= sim::clock::MAX_SPEED) {
                        return Err(bad("expected a positive number up to 100000"));
                    }
                    s.sim_speed = Some(v);
                }
                "READINESS_INTERVAL_MINUTES" => {
                    s.readiness_interval_minutes = value.parse().map_err(|_| bad("expected whole minutes (0 = off)"))?
                }
                "ADMIN_USERNAME" => s.auth.admin_username = value.clone(),
                "ADMIN_PASSWORD" => s.auth.admin_password = Some(Secret::new(value.clone())),
                "SECURE_COOKIES" => s.auth.secure_cookies = value.parse().map_err(|_| bad("expected true or false"))?,
                "RUNNER_INTERVAL_MS" => {
                    s.runner_interval_ms = value.parse().map_err(|_| bad("expected milliseconds"))?
                }
                "LEASE_MS" => s.lease_ms = value.parse().map_err(|_| bad("expected milliseconds"))?,
                "MIN_LAUNCH_MS" => s.min_launch_ms = value.parse().map_err(|_| bad("expected milliseconds"))?,
                "MIN_REVERSE_SYNC_MS" => {
                    s.min_reverse_sync_ms = value.parse().map_err(|_| bad("expected milliseconds"))?
                }
                "APPROVAL_TTL_MINUTES" => {
                    s.approval_ttl_minutes = value.parse().map_err(|_| bad("expected whole minutes"))?
                }
                "SWAPPED_VOLUME_RETENTION_DAYS" => {
                    s.swapped_volume_retention_days = value.parse().map_err(|_| bad("expected whole days"))?
                }
                "SITE_ROOT" => s.site_root = PathBuf::from(&value),
                "MAX_BODY_BYTES" => s.max_body_bytes = value.parse().map_err(|_| bad("expected a number of bytes"))?,
                "LOG_FORMAT" => {
                    s.log_format = match value.as_str() {
                        "pretty" => LogFormat::Pretty,
                        "json" => LogFormat::Json,
                        _ => return Err(bad("expected pretty or json")),
                    }
                }
                "CLOUD" => {
                    s.cloud = match value.as_str() {
                        "simulated" => CloudKind::Simulated,
                        "aws" => CloudKind::Aws,
                        _ => return Err(bad("expected simulated or aws")),
                    }
                }
                "STORE" => {
                    s.store = match value.as_str() {
                        "embedded" => StoreKind::Embedded,
                        "dynamodb" => StoreKind::Dynamodb,
                        _ => return Err(bad("expected embedded or dynamodb")),
                    }
                }
                "AWS_ENDPOINT_URL" => s.aws.endpoint_url = Some(value.clone()).filter(|v| !v.is_empty()),
                "AWS_DRS_ENDPOINT_URL" => s.aws.drs_endpoint_url = Some(value.clone()).filter(|v| !v.is_empty()),
                "AWS_DYNAMODB_TABLE" => s.aws.dynamodb_table = value.clone(),
                "AWS_DYNAMODB_ENDPOINT_URL" => {
                    s.aws.dynamodb_endpoint_url = Some(value.clone()).filter(|v| !v.is_empty())
                }
                "AWS_HOME_REGION" => {
                    s.aws.home_region = Some(
                        domain::ids::Region::parse(&value).map_err(|_| bad("expected a region such as eu-west-1"))?,
                    )
                }
                "AWS_ACCOUNTS" => {
                    // The value holds External IDs: the error says where it is wrong, never what it holds.
                    s.aws.accounts = serde_json::from_str(&value).map_err(|e| SettingsError::Env {
                        name: name.clone(),
                        value: "(not shown: it holds secrets)".into(),
                        reason: format!(
                            "expected a JSON list of {{account_id, name, role_arn, external_id, regions}} \
                             ({:?} error at line {}, column {})",
                            e.classify(),
                            e.line(),
                            e.column()
                        ),
                    })?
                }
                "AWS_MAX_ATTEMPTS" => s.aws.max_attempts = value.parse().map_err(|_| bad("expected a whole number"))?,
                "METRICS_LISTEN" => {
                    s.metrics_listen = Some(value.parse().map_err(|_| bad("expected host:port, e.g. 10.0.0.5:9300"))?)
                }
                "WEBHOOK_MAX_ATTEMPTS" => {
                    s.notifications.max_attempts = value.parse().map_err(|_| bad("expected a whole number"))?
                }
                "WEBHOOK_INITIAL_BACKOFF_MS" => {
                    s.notifications.initial_backoff_ms = value.parse().map_err(|_| bad("expected milliseconds"))?
                }
                "AWS_INITIAL_BACKOFF_MS" => {
                    s.aws.initial_backoff_ms = value.parse().map_err(|_| bad("expected milliseconds"))?
                }
                _ => {}
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file_and_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("roundtrip.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:4000\"\ndata_dir = \"/tmp/x\"\n").unwrap();
        let s = Settings::load(Some(&file), [("ROUNDTRIP_DATA_DIR".to_owned(), "/tmp/y".to_owned())]).unwrap();
        assert_eq!(s.listen.port(), 4000);
        assert_eq!(s.data_dir, PathBuf::from("/tmp/y"));
        assert_eq!(s.cloud, CloudKind::Simulated);
    }

    #[test]
    fn the_admin_password_is_never_printed() {
        let s = Settings::load(None, [("ROUNDTRIP_ADMIN_PASSWORD".to_owned(), "hunter2hunter2".to_owned())]).unwrap();
        assert_eq!(s.auth.admin_password.as_ref().map(Secret::expose), Some("hunter2hunter2"));
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn an_oidc_issuer_is_configured_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("roundtrip.toml");
        let text = "[oidc]\nissuer = \"https://idp.example\"\naudience = \"roundtrip\"\njwks_url = \"https://idp.example/jwks\"\n[oidc.roles]\ndr-admins = \"admin\"\n";
        std::fs::write(&file, text).unwrap();
        let s = Settings::load(Some(&file), []).unwrap();
        let o = s.oidc.unwrap();
        assert_eq!((o.groups_claim.as_str(), o.roles["dr-admins"]), ("groups", domain::auth::Role::Admin));
    }

    #[test]
    fn a_bad_variable_is_named_in_the_error() {
        let err = Settings::load(None, [("ROUNDTRIP_SIM_SPEED".to_owned(), "-3".to_owned())]).unwrap_err();
        assert!(err.to_string().contains("ROUNDTRIP_SIM_SPEED"), "{err}");
    }

    #[test]
    fn aws_accounts_and_endpoints_come_from_the_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("roundtrip.toml");
        let text = "cloud = \"aws\"\nstore = \"dynamodb\"\n[aws]\nhome_region = \"eu-west-1\"\n[[aws.accounts]]\naccount_id = \"111122223333\"\nname = \"prod\"\nrole_arn = \"arn:aws:iam::111122223333:role/RoundtripAccess\"\nexternal_id = \"s3cr3t-id\"\nregions = [\"eu-west-1\", \"eu-central-1\"]\n";
        std::fs::write(&file, text).unwrap();
        let env = [("ROUNDTRIP_AWS_ENDPOINT_URL".to_owned(), "http://127.0.0.1:4580".to_owned())];
        let s = Settings::load(Some(&file), env).unwrap();
        assert_eq!((s.cloud, s.store), (CloudKind::Aws, StoreKind::Dynamodb));
        assert_eq!(s.aws.accounts[0].regions.len(), 2);
        assert_eq!(s.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:4580"));
        assert!(!format!("{s:?}").contains("s3cr3t-id"), "the External ID is never printed");
        let bad = r#"[{"account_id": "111122223333", "name": "x", "external_id": 12345678, "regions": []}]"#;
        let err = Settings::load(None, [("ROUNDTRIP_AWS_ACCOUNTS".to_owned(), bad.to_owned())]).unwrap_err();
        assert!(!err.to_string().contains("12345678"), "a malformed account list is not repeated: {err}");
        let err = Settings::load(None, [("ROUNDTRIP_CLOUD".to_owned(), "azure".to_owned())]).unwrap_err();
        assert!(err.to_string().contains("simulated or aws"), "{err}");
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("roundtrip.toml");
        std::fs::write(&file, "listn = \"127.0.0.1:4000\"\n").unwrap();
        assert!(matches!(Settings::load(Some(&file), []), Err(SettingsError::Parse { .. })));
    }
}
