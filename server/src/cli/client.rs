//! The client of one server's REST API: requests with the API token, errors with the exit code a pipeline
//! acts on, and groups and plans named by id or name.

use super::{ClientOptions, exit};
use serde_json::{Value, json};
use std::time::Duration;

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("{code}: {message}")]
    NotAllowed { code: String, message: String },
    #[error("{code}: {message}")]
    Refused { code: String, message: String, details: Value },
    /// The command printed its result, which is a failure (configure errors, failback prerequisites).
    #[error("{code}: {message}")]
    Incomplete { code: String, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("the group is blocked")]
    Blocked,
    #[error("the execution ended {0}")]
    Ended(&'static str),
    #[error("gave up waiting after {0} minutes; the execution goes on (roundtrip status --follow)")]
    TimedOut(u64),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ClientError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Unreachable { .. } => exit::UNREACHABLE,
            Self::NotAllowed { .. } => exit::NOT_ALLOWED,
            Self::Refused { .. } | Self::Incomplete { .. } => exit::REFUSED,
            Self::Usage(_) | Self::Io(_) => 1,
            Self::Blocked => exit::BLOCKED,
            Self::Ended("failed") => exit::FAILED,
            Self::Ended(_) => exit::NOT_RUN,
            Self::TimedOut(_) => exit::TIMED_OUT,
        }
    }

    /// Whether the command already printed its result (with `--output json`, the one document).
    pub fn printed(&self) -> bool {
        matches!(self, Self::Incomplete { .. } | Self::Blocked | Self::Ended(_))
    }

    /// The error as JSON, for `--output json`.
    pub fn to_json(&self) -> Value {
        let (code, details) = match self {
            Self::NotAllowed { code, .. } => (code.clone(), Value::Null),
            Self::Refused { code, details, .. } => (code.clone(), details.clone()),
            Self::Incomplete { code, .. } => (code.clone(), Value::Null),
            Self::Unreachable { .. } => ("UNREACHABLE".into(), Value::Null),
            Self::Usage(_) | Self::Io(_) => ("USAGE".into(), Value::Null),
            Self::Blocked => ("BLOCKED".into(), Value::Null),
            Self::Ended(_) => ("EXECUTION_NOT_SUCCEEDED".into(), Value::Null),
            Self::TimedOut(_) => ("TIMED_OUT".into(), Value::Null),
        };
        json!({ "error": { "code": code, "message": self.to_string(), "details": details, "exit_code": self.exit_code() } })
    }
}

/// A client of one server.
pub struct Client {
    pub(super) base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Client {
    /// # Errors
    /// [`ClientError::Usage`] for a server that is not an http(s) URL.
    pub fn new(opts: &ClientOptions) -> Result<Self, ClientError> {
        let base = opts.server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Usage(format!("--server {base:?} is not an http:// or https:// URL")));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("roundtrip-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        Ok(Self { base, http, token: opts.token.clone().filter(|t| !t.is_empty()) })
    }

    pub(super) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req
            .send()
            .await
            .map_err(|e| ClientError::Unreachable { server: self.base.clone(), reason: e.to_string() })?;
        if r.status().is_success() {
            return Ok(r);
        }
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        let code = v["error"]["code"].as_str().unwrap_or("HTTP_ERROR").to_owned();
        let mut message = v["error"]["message"].as_str().map_or_else(|| format!("HTTP {status}"), str::to_owned);
        if let Some(fields) = v["error"]["details"]["fields"].as_array() {
            for f in fields.iter().take(20) {
                message.push_str(&format!(
                    "\n  {}: {} ({})",
                    f["field"].as_str().unwrap_or(""),
                    f["message"].as_str().unwrap_or(""),
                    f["code"].as_str().unwrap_or("")
                ));
            }
        }
        // Who you are or what your role allows; other 403s (e.g. SELF_APPROVAL) refuse the request itself.
        let identity =
            matches!(code.as_str(), "UNAUTHENTICATED" | "FORBIDDEN" | "PASSWORD_CHANGE_REQUIRED" | "CSRF_REJECTED");
        if status.as_u16() == 401 || (status.as_u16() == 403 && identity) {
            let message =
                if self.token.is_none() { format!("{message} (set --token or ROUNDTRIP_TOKEN)") } else { message };
            return Err(ClientError::NotAllowed { code, message });
        }
        if status.is_client_error() {
            return Err(ClientError::Refused { code, message, details: v["error"]["details"].clone() });
        }
        Err(ClientError::Unreachable { server: self.base.clone(), reason: format!("HTTP {status}: {message}") })
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        let r = self.send(method, path, body).await?;
        if r.status() == reqwest::StatusCode::NO_CONTENT || r.status() == reqwest::StatusCode::ACCEPTED {
            return Ok(Value::Null);
        }
        r.json()
            .await
            .map_err(|e| ClientError::Unreachable { server: self.base.clone(), reason: format!("not JSON: {e}") })
    }

    pub(super) async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.json(reqwest::Method::GET, path, None).await
    }

    pub(super) async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.json(reqwest::Method::POST, path, Some(body)).await
    }

    /// A group's id from its id or name.
    pub(super) async fn group_id(&self, id_or_name: &str) -> Result<String, ClientError> {
        let list = self.get("/api/v1/protection-groups").await?;
        find(&list["protection_groups"], |g| &g["group"], id_or_name, "protection group")
    }

    /// A plan's id from its id or name.
    pub(super) async fn plan_id(&self, id_or_name: &str) -> Result<String, ClientError> {
        let list = self.get("/api/v1/recovery-plans").await?;
        find(&list["recovery_plans"], |p| p, id_or_name, "recovery plan")
    }
}

pub(super) fn find(
    list: &Value,
    item: impl Fn(&Value) -> &Value,
    id_or_name: &str,
    what: &str,
) -> Result<String, ClientError> {
    let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
    let by = |key: &str| {
        items
            .iter()
            .map(&item)
            .filter(|g| g[key].as_str().is_some_and(|v| v.eq_ignore_ascii_case(id_or_name)))
            .collect::<Vec<_>>()
    };
    let found = match by("id").as_slice() {
        [one] => Some((*one).clone()),
        _ => match by("name").as_slice() {
            [one] => Some((*one).clone()),
            [] => None,
            _ => {
                return Err(ClientError::Usage(format!(
                    "several {what}s are called {}; use the id",
                    domain::text::quoted(id_or_name)
                )));
            }
        },
    };
    found.and_then(|g| g["id"].as_str().map(str::to_owned)).ok_or_else(|| ClientError::Refused {
        code: "NOT_FOUND".into(),
        message: format!("no {what} {}", domain::text::quoted(id_or_name)),
        details: Value::Null,
    })
}

pub(super) fn account_region(text: &str, flag: &str) -> Result<Value, ClientError> {
    let (a, r) = text
        .split_once('/')
        .ok_or_else(|| ClientError::Usage(format!("{flag} is ACCOUNT/REGION, e.g. 111111111111/us-east-1")))?;
    Ok(json!({ "account_id": a.trim(), "region": r.trim() }))
}
