//! What the AWS adapters need to know: the accounts and regions to reach, how (which role, which External
//! ID), where the endpoints are (only for emulators), and how hard to call DRS.

use domain::ids::Region;
use serde::{Deserialize, Serialize};

/// One account Roundtrip works in (`[[aws.accounts]]`): the engine's account type, so settings and
/// accounts registered in the console are one shape.
pub use engine::cloud::RegisteredAccount as AwsAccount;

/// Settings of the AWS cloud and the DynamoDB store (`[aws]` in the settings file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsSettings {
    pub accounts: Vec<AwsAccount>,
    /// The region of Roundtrip's own calls (STS, DynamoDB); the first account's first region when absent.
    pub home_region: Option<Region>,
    /// One endpoint for every service, for an emulator (`roundtrip sim serve`, moto). Empty in production.
    pub endpoint_url: Option<String>,
    /// DRS's endpoint when it differs (moto has no DRS); wins over `endpoint_url` for DRS.
    pub drs_endpoint_url: Option<String>,
    /// DynamoDB's endpoint when it differs (the store on moto while the estate is `roundtrip sim serve`).
    pub dynamodb_endpoint_url: Option<String>,
    /// Sustained DRS calls per second per region (DRS publishes no rate; it throttles).
    pub drs_requests_per_second: f64,
    /// Calls that may go at once before the rate applies.
    pub drs_burst: u32,
    /// Attempts per SDK call (the first included) on throttling and 5xx, with the SDK's jittered backoff.
    pub max_attempts: u32,
    /// The first retry's backoff ceiling; it doubles per attempt, with jitter.
    pub initial_backoff_ms: u64,
    /// The DynamoDB table of the store.
    pub dynamodb_table: String,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            accounts: Vec::new(),
            home_region: None,
            endpoint_url: None,
            drs_endpoint_url: None,
            dynamodb_endpoint_url: None,
            drs_requests_per_second: 10.0,
            drs_burst: 20,
            max_attempts: 3,
            initial_backoff_ms: 1_000,
            dynamodb_table: "roundtrip".into(),
        }
    }
}

impl AwsSettings {
    /// The region for STS and DynamoDB.
    pub fn home_region(&self) -> Option<Region> {
        self.home_region.clone().or_else(|| self.accounts.first().and_then(|a| a.regions.first().cloned()))
    }

    /// Why these settings cannot work, if they cannot.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for a in &self.accounts {
            if !seen.insert(&a.account_id) {
                out.push(format!("account {} is listed twice", a.account_id.as_str()));
            }
            if a.regions.is_empty() {
                out.push(format!("account {} has no regions", a.account_id.as_str()));
            }
            if let Some(arn) = &a.role_arn
                && !arn.starts_with(&format!("arn:aws:iam::{}:role/", a.account_id.as_str()))
                && !arn.contains(&format!("::{}:role/", a.account_id.as_str()))
            {
                out.push(format!("account {}: role {arn:?} is not a role of that account", a.account_id.as_str()));
            }
            if a.external_id.as_ref().is_some_and(|e| !(2..=1224).contains(&e.len())) {
                out.push(format!("account {}: an External ID has 2 to 1224 characters", a.account_id.as_str()));
            }
        }
        if !(self.drs_requests_per_second.is_finite() && self.drs_requests_per_second > 0.0) {
            out.push("drs_requests_per_second must be a positive number".into());
        }
        if self.max_attempts == 0 {
            out.push("max_attempts must be at least 1".into());
        }
        out
    }
}
