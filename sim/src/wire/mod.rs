//! The simulated estate over the AWS wire protocols (`roundtrip sim serve`): exactly the operations
//! Roundtrip's AWS adapter calls, so the unchanged production binary (cloud `aws`) runs against the
//! simulator, and several server processes share one simulated world.
//!
//! - DRS: restJson1, `POST /<Operation>` with a JSON body; errors carry `x-amzn-ErrorType`
//!   (`aws-drs-api.md` §6.5), quota errors are HTTP 402, `StartRecovery` answers 202.
//! - EC2: the EC2 query protocol (form body `Action=…`), XML answers, `<Response><Errors>` errors.
//! - STS (`AssumeRole`, `GetCallerIdentity`) and IAM (`ListInstanceProfiles`, `ListAttachedRolePolicies`):
//!   the AWS query protocol.
//!
//! Requests are routed by the SigV4 credential scope (`Credential=<key>/<date>/<region>/<service>/…`); the
//! signature itself is not checked. The account is the one whose role was assumed: `AssumeRole` hands out
//! access keys that carry the account id, and any other key acts as the default account. Every call is
//! recorded as `service:Action`, which is how a test checks the IAM policy table against what the adapter
//! really calls. Listen on 127.0.0.1 only: this is a test double, not a service.

mod drs;
mod ec2;
mod iam;

use drs::{drs, drs_error};
use ec2::{aws_query_error, ec2, ec2_error, query_error};
use iam::{iam, sts};

use crate::Simulator;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::estate::AccountRegion;
use domain::ids::{AccountId, Region};
use engine::cloud::CloudError;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// What the wire front end shares between requests.
pub struct Wire {
    sim: Arc<Simulator>,
    default_account: AccountId,
    /// The External ID every `AssumeRole` must carry, when set.
    external_id: Option<String>,
    calls: Mutex<Calls>,
}

/// The last [`MAX_CALLS`] calls, and every action ever received.
#[derive(Default)]
struct Calls {
    recent: std::collections::VecDeque<WireCall>,
    actions: BTreeSet<String>,
}

/// Calls kept for inspection (a long-running `sim serve` must not grow without bound).
const MAX_CALLS: usize = 100_000;

/// One call received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireCall {
    /// `service:Action`, as IAM names it (`drs:StartRecovery`).
    pub action: String,
    pub account: AccountId,
    /// For `sts:AssumeRole`, the session name asked for.
    pub session: Option<String>,
}

impl Wire {
    /// A wire front end for `sim`; unsigned or unknown keys act as `default_account`.
    pub fn new(sim: Arc<Simulator>, default_account: AccountId) -> Arc<Self> {
        Self::with_external_id(sim, default_account, None)
    }

    /// As [`Wire::new`], refusing any `AssumeRole` whose External ID is not `external_id`.
    pub fn with_external_id(sim: Arc<Simulator>, default_account: AccountId, external_id: Option<String>) -> Arc<Self> {
        Arc::new(Self { sim, default_account, external_id, calls: Mutex::new(Calls::default()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The calls received (the last 100,000).
    pub fn calls(&self) -> Vec<WireCall> {
        self.lock().recent.iter().cloned().collect()
    }

    /// The distinct actions received since the start.
    pub fn actions(&self) -> BTreeSet<String> {
        self.lock().actions.clone()
    }

    fn record(&self, action: String, account: &AccountId, session: Option<String>) {
        let mut c = self.lock();
        c.actions.insert(action.clone());
        if c.recent.len() >= MAX_CALLS {
            c.recent.pop_front();
        }
        c.recent.push_back(WireCall { action, account: account.clone(), session });
    }
}

/// The router: one handler for every path.
pub fn router(wire: Arc<Wire>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(wire)
}

/// The largest request body read.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The signing scope of a request: access key, region, service.
fn scope(headers: &HeaderMap) -> Option<(String, String, String)> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    let mut parts = cred.split('/');
    let key = parts.next()?.to_owned();
    let _date = parts.next()?;
    Some((key, parts.next()?.to_owned(), parts.next()?.to_owned()))
}

/// Access keys handed out by `AssumeRole`: `ASIA`, the 12-digit account, 4 hex digits.
fn account_of_key(key: &str) -> Option<AccountId> {
    let digits = key.strip_prefix("ASIA")?.get(..12)?;
    AccountId::parse(digits).ok()
}

async fn handle(State(wire): State<Arc<Wire>>, headers: HeaderMap, uri: axum::http::Uri, body: Bytes) -> Response {
    if body.len() > MAX_BODY {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response();
    }
    let Some((key, region, service)) = scope(&headers) else {
        return query_error(StatusCode::FORBIDDEN, "MissingAuthenticationToken", "the request is not signed");
    };
    let account = account_of_key(&key).unwrap_or_else(|| wire.default_account.clone());
    let Ok(region) = Region::parse(&region) else {
        return query_error(StatusCode::BAD_REQUEST, "InvalidRegion", "the signing region is not a region");
    };
    let at = AccountRegion { account_id: account.clone(), region };
    match service.as_str() {
        "drs" => {
            let op = uri.path().trim_start_matches('/').to_owned();
            wire.record(format!("drs:{op}"), &account, None);
            let input: Value = if body.is_empty() {
                json!({})
            } else {
                match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => {
                        return drs_error(&CloudError::Validation { message: format!("cannot parse the body: {e}") });
                    }
                }
            };
            match drs(&wire.sim, &at, &op, &input).await {
                Ok((status, v)) => (status, [("content-type", "application/json")], v.to_string()).into_response(),
                Err(e) => drs_error(&e),
            }
        }
        "ec2" | "sts" | "iam" => {
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let action = get("Action").unwrap_or_default();
            let session = (service == "sts").then(|| get("RoleSessionName")).flatten();
            wire.record(format!("{service}:{action}"), &account, session);
            let result = match service.as_str() {
                "ec2" => ec2(&wire.sim, &at, &action, &form).await,
                "sts" => sts(&wire, &account, &action, &form).await,
                _ => iam(&wire.sim, &at, &action, &form).await,
            };
            match result {
                Ok(xml) => (StatusCode::OK, [("content-type", "text/xml")], xml).into_response(),
                Err(e) if service == "ec2" => ec2_error(&e),
                Err(e) => aws_query_error(&e),
            }
        }
        other => query_error(StatusCode::BAD_REQUEST, "UnknownService", &format!("no {other} here")),
    }
}
