//! The command-line client: `roundtrip groups list`, `match`, `configure`, `readiness`, `failover`,
//! `approve`, `status`, `failback`, `report`, … against a running server's REST API with an API token.
//!
//! Text for people (with a progress bar on long operations) or `--output json` for scripts, and exit codes
//! a pipeline can act on ([`ClientError::exit_code`]).

mod text;

use clap::{Args, Subcommand, ValueEnum};
use domain::execution::{ExecutionStatus, Phase};
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Exit codes of the client commands (0 is success; clap answers 2 for a usage error).
pub mod exit {
    /// The server could not be reached, or answered something that is not Roundtrip's API.
    pub const UNREACHABLE: u8 = 5;
    /// No token, or a token that is invalid, expired, revoked or whose role does not allow this.
    pub const NOT_ALLOWED: u8 = 6;
    /// The server refused the request (invalid input, not found, conflict): its error code is printed.
    pub const REFUSED: u8 = 7;
    /// `readiness`: the group is blocked.
    pub const BLOCKED: u8 = 8;
    /// The execution ended failed (at least one server not verified).
    pub const FAILED: u8 = 10;
    /// The execution ended cancelled, rejected or expired.
    pub const NOT_RUN: u8 = 11;
    /// `--wait` / `--follow` gave up after `--timeout-minutes`.
    pub const TIMED_OUT: u8 = 12;
}

/// Where the server is and how to print.
#[derive(Args, Debug, Clone)]
pub struct ClientOptions {
    /// The Roundtrip server (client commands).
    #[arg(long, global = true, env = "ROUNDTRIP_SERVER", default_value = "http://127.0.0.1:3000")]
    pub server: String,
    /// An API token (Admin → API tokens); sent as `Authorization: Bearer …`.
    #[arg(long, global = true, env = "ROUNDTRIP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output for people, or JSON for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// The client commands.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Protection groups.
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Recovery plans.
    Plans {
        #[command(subcommand)]
        command: PlansCommand,
    },
    /// Match a group's source servers to standbys by Name tag; `--accept` pairs every ready match.
    Match {
        /// Group id or name.
        group: String,
        #[arg(long)]
        accept: bool,
    },
    /// Point each paired server's DRS launch configuration at its standby (launch into instance).
    Configure {
        /// Group id or name.
        group: String,
        /// Report what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// A group's readiness (exit code 8 when blocked).
    Readiness {
        /// Group id or name.
        group: String,
        /// Evaluate now instead of showing the last evaluation.
        #[arg(long)]
        evaluate: bool,
    },
    /// Start a drill or a failover of a plan.
    Failover {
        /// Plan id or name.
        #[arg(long)]
        plan: String,
        /// A drill (no approval, standbys return to standby afterwards); otherwise a real recovery that
        /// waits for a second person.
        #[arg(long)]
        drill: bool,
        /// A planned failover (stop the sources, replicate the last data, then launch); disaster otherwise.
        #[arg(long, conflicts_with = "drill")]
        planned: bool,
        /// Run despite readiness warnings (critical checks always block).
        #[arg(long)]
        acknowledge_warnings: bool,
        /// Follow it until it ends, with a progress bar; the exit code says how it ended.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this long (exit code 12; the execution goes on).
        #[arg(long, default_value_t = 240)]
        timeout_minutes: u64,
    },
    /// Approve a requested recovery or failback (a second person).
    Approve {
        execution_id: String,
        /// Why (recorded in the audit trail and the evidence report).
        #[arg(long)]
        comment: String,
    },
    /// Reject a requested recovery or failback.
    Reject {
        execution_id: String,
        #[arg(long)]
        comment: String,
    },
    /// Release the gate before the next wave.
    Resume {
        execution_id: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Cancel an execution.
    Cancel { execution_id: String },
    /// An execution's progress; every execution when no id is given.
    Status {
        execution_id: Option<String>,
        /// Follow it until it ends, with a progress bar.
        #[arg(long, requires = "execution_id")]
        follow: bool,
        #[arg(long, default_value_t = 240)]
        timeout_minutes: u64,
    },
    /// Fail a completed recovery back into the original instances.
    Failback {
        /// The recovery's execution id.
        execution_id: String,
        /// Stop each original instance before launching into it (when it still runs).
        #[arg(long)]
        stop_originals: bool,
        /// Tag each original `AWSDRS=AllowLaunchingIntoThisInstance` when it lacks the tag.
        #[arg(long)]
        tag_originals: bool,
        /// A server (source server id) to leave on its DR standby; repeat for more. A later failback of the
        /// same recovery can take it.
        #[arg(long = "leave-behind", value_name = "SOURCE_SERVER_ID")]
        leave_behind: Vec<String>,
        /// Fail back only the servers whose prerequisites pass; leave the others on DR.
        #[arg(long)]
        ready_only: bool,
        /// Only check: which servers would go and which would stay (and why), and the prerequisites.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = 240)]
        timeout_minutes: u64,
    },
    /// Download an execution's evidence report.
    Report {
        execution_id: String,
        /// `html` (printable page) or `json`.
        #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
        format: ReportFormat,
        /// File to write (standard output when absent).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// Every protection group with its pair count.
    List,
    /// Create a protection group.
    Create {
        #[arg(long)]
        name: String,
        /// Primary account and region, e.g. 111111111111/us-east-1.
        #[arg(long)]
        primary: String,
        /// DR account and region, e.g. 222222222222/us-west-2.
        #[arg(long)]
        dr: String,
        /// Select source servers by tag (key=value, repeatable); every server when absent.
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PlansCommand {
    /// Every recovery plan.
    List,
    /// Create a plan of one wave per group, in the order given.
    Create {
        #[arg(long)]
        name: String,
        /// Group id or name (repeatable).
        #[arg(long = "group", required = true)]
        groups: Vec<String>,
        #[arg(long)]
        rto_target_minutes: Option<u32>,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Json,
}

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
    base: String,
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

    async fn send(
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

    async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.json(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.json(reqwest::Method::POST, path, Some(body)).await
    }

    /// A group's id from its id or name.
    async fn group_id(&self, id_or_name: &str) -> Result<String, ClientError> {
        let list = self.get("/api/v1/protection-groups").await?;
        find(&list["protection_groups"], |g| &g["group"], id_or_name, "protection group")
    }

    /// A plan's id from its id or name.
    async fn plan_id(&self, id_or_name: &str) -> Result<String, ClientError> {
        let list = self.get("/api/v1/recovery-plans").await?;
        find(&list["recovery_plans"], |p| p, id_or_name, "recovery plan")
    }
}

fn find(list: &Value, item: impl Fn(&Value) -> &Value, id_or_name: &str, what: &str) -> Result<String, ClientError> {
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

fn account_region(text: &str, flag: &str) -> Result<Value, ClientError> {
    let (a, r) = text
        .split_once('/')
        .ok_or_else(|| ClientError::Usage(format!("{flag} is ACCOUNT/REGION, e.g. 111111111111/us-east-1")))?;
    Ok(json!({ "account_id": a.trim(), "region": r.trim() }))
}

/// Prints for people or scripts.
struct Out {
    json: bool,
}

impl Out {
    fn value(&self, v: &Value, text: impl FnOnce(&Value) -> String) {
        let mut o = std::io::stdout();
        let s = if self.json { serde_json::to_string_pretty(v).unwrap_or_default() } else { text(v) };
        let _ = writeln!(o, "{}", s.trim_end());
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Runs one client command.
///
/// # Errors
/// A [`ClientError`], whose exit code the binary returns.
pub async fn run(opts: &ClientOptions, command: ClientCommand) -> Result<(), ClientError> {
    let c = Client::new(opts)?;
    let out = Out { json: opts.output == Output::Json };
    match command {
        ClientCommand::Groups { command: GroupsCommand::List } => {
            let v = c.get("/api/v1/protection-groups").await?;
            out.value(&v, text::groups_table);
        }
        ClientCommand::Groups { command: GroupsCommand::Create { name, primary, dr, tags } } => {
            let mut selection = json!({ "kind": "all" });
            if !tags.is_empty() {
                let mut m = serde_json::Map::new();
                for t in &tags {
                    let (k, v) =
                        t.split_once('=').ok_or_else(|| ClientError::Usage(format!("--tag {t:?} is not key=value")))?;
                    m.insert(k.to_owned(), v.into());
                }
                selection = json!({ "kind": "tags", "tags": m });
            }
            let body = json!({ "name": name, "primary": account_region(&primary, "--primary")?,
                               "dr": account_region(&dr, "--dr")?, "selection": selection });
            let v = c.post("/api/v1/protection-groups", &body).await?;
            out.value(&v, |v| format!("created protection group {} ({})", s(&v["name"]), s(&v["id"])));
        }
        ClientCommand::Plans { command: PlansCommand::List } => {
            let v = c.get("/api/v1/recovery-plans").await?;
            out.value(&v, text::plans_table);
        }
        ClientCommand::Plans { command: PlansCommand::Create { name, groups, rto_target_minutes } } => {
            let mut ids = Vec::new();
            for g in &groups {
                ids.push(c.group_id(g).await?);
            }
            let mut body = json!({ "name": name, "protection_group_ids": ids });
            if let Some(m) = rto_target_minutes {
                body["rto_target_minutes"] = m.into();
            }
            let v = c.post("/api/v1/recovery-plans", &body).await?;
            out.value(&v, |v| {
                format!(
                    "created recovery plan {} ({}): {} waves, RTO target {} min",
                    s(&v["name"]),
                    s(&v["id"]),
                    v["waves"].as_array().map_or(0, Vec::len),
                    v["rto_target_minutes"]
                )
            });
        }
        ClientCommand::Match { group, accept } => {
            let id = c.group_id(&group).await?;
            let report = c.post("/api/v1/drs/instances/match", &json!({ "protection_group_id": id })).await?;
            let pairs: Vec<&Value> = report["pairs"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
            let ready: Vec<Value> = pairs
                .iter()
                .filter(|p| p["status"] == "ready")
                .map(|p| json!({ "source_server_id": p["source_server_id"], "standby_instance_id": p["standby_instance_id"] }))
                .collect();
            let accepted = if accept && !ready.is_empty() {
                Some(
                    c.post(&format!("/api/v1/protection-groups/{id}/instance-pairs"), &json!({ "pairs": ready }))
                        .await?,
                )
            } else {
                None
            };
            let v = json!({ "report": report, "accepted": accepted });
            out.value(&v, |_| text::match_summary(&report, accepted.as_ref(), accept));
        }
        ClientCommand::Configure { group, dry_run } => {
            let id = c.group_id(&group).await?;
            let bar = Progress::new(out.json, "configuring launch into instance");
            bar.draw(0, "");
            let v = c
                .post(
                    &format!("/api/v1/protection-groups/{id}/configure-allow-launching"),
                    &json!({ "dry_run": dry_run }),
                )
                .await?;
            bar.finish();
            let failed =
                ["failed", "refused", "rolled_back"].iter().map(|k| v["counts"][*k].as_u64().unwrap_or(0)).sum::<u64>();
            out.value(&v, |v| {
                let counts: Vec<String> = v["counts"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, n)| format!("{n} {}", k.replace('_', " ")))
                    .collect();
                let mut t = format!(
                    "{} servers{}: {}; {} DRS writes\n",
                    v["results"].as_array().map_or(0, Vec::len),
                    if dry_run { " (dry run)" } else { "" },
                    counts.join(", "),
                    v["writes"]
                );
                for r in v["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| !r["reasons"].as_array().is_none_or(Vec::is_empty))
                    .take(50)
                {
                    let why: Vec<&str> =
                        r["reasons"].as_array().into_iter().flatten().filter_map(|x| x["message"].as_str()).collect();
                    t.push_str(&format!("  {} {}: {}\n", s(&r["status"]), s(&r["source_name"]), why.join("; ")));
                }
                t
            });
            if failed > 0 {
                return Err(ClientError::Incomplete {
                    code: "CONFIGURE_FAILED".into(),
                    message: format!("{failed} launch configurations were refused or could not be written"),
                });
            }
        }
        ClientCommand::Readiness { group, evaluate } => {
            let id = c.group_id(&group).await?;
            let path = format!("/api/v1/protection-groups/{id}/readiness");
            let v = if evaluate { c.post(&path, &json!({})).await? } else { c.get(&path).await? };
            let r = &v["readiness"];
            out.value(&v, |_| {
                let mut t = format!(
                    "{} (score {}): {} ready, {} with warnings, {} blocked\n",
                    s(&r["verdict"]),
                    r["score"],
                    r["ready_pairs"],
                    r["warning_pairs"],
                    r["blocked_pairs"]
                );
                for f in r["failing"].as_array().into_iter().flatten().take(10) {
                    t.push_str(&format!("  {} ({} pairs)\n", s(&f[0]), f[1]));
                }
                t
            });
            if r["verdict"] == "blocked" {
                return Err(ClientError::Blocked);
            }
        }
        ClientCommand::Failover { plan, drill, planned, acknowledge_warnings, wait, timeout_minutes } => {
            let plan_id = c.plan_id(&plan).await?;
            let body = json!({
                "plan_id": plan_id,
                "mode": if drill { "drill" } else { "recovery" },
                "kind": if planned { "planned" } else { "disaster" },
                "acknowledge_warnings": acknowledge_warnings,
            });
            let v = c.post("/api/v1/executions/allow-launching/failover", &body).await?;
            started(&out, &v, wait);
            if wait {
                follow(&c, &out, s(&v["id"]), timeout_minutes).await?;
            }
        }
        ClientCommand::Approve { execution_id, comment } => {
            decide(&c, &out, &execution_id, "approve", &comment).await?
        }
        ClientCommand::Reject { execution_id, comment } => decide(&c, &out, &execution_id, "reject", &comment).await?,
        ClientCommand::Resume { execution_id, comment } => decide(&c, &out, &execution_id, "resume", &comment).await?,
        ClientCommand::Cancel { execution_id } => decide(&c, &out, &execution_id, "cancel", "").await?,
        ClientCommand::Status { execution_id: None, .. } => {
            let v = c.get("/api/v1/executions").await?;
            out.value(&v, |v| {
                let mut t = format!("{:<22} {:<9} {:<18} {:<24} {}\n", "ID", "MODE", "PHASE", "PLAN", "REQUESTED BY");
                for e in v["executions"].as_array().into_iter().flatten() {
                    t.push_str(&format!(
                        "{:<22} {:<9} {:<18} {:<24} {}\n",
                        s(&e["id"]),
                        s(&e["state"]["mode"]),
                        s(&e["state"]["phase"]),
                        s(&e["plan_name"]),
                        s(&e["state"]["requested_by"])
                    ));
                }
                t
            });
        }
        ClientCommand::Status { execution_id: Some(id), follow: true, timeout_minutes } => {
            follow(&c, &out, &id, timeout_minutes).await?;
        }
        ClientCommand::Status { execution_id: Some(id), follow: false, .. } => {
            let v = c.get(&format!("/api/v1/executions/{id}/allow-launching/status")).await?;
            out.value(&v, |v| {
                serde_json::from_value::<ExecutionStatus>(v.clone()).map(|st| describe(&st)).unwrap_or_default()
            });
            ended(&v)?;
        }
        ClientCommand::Failback {
            execution_id,
            stop_originals,
            tag_originals,
            leave_behind,
            ready_only,
            dry_run,
            wait,
            timeout_minutes,
        } => {
            let body = json!({
                "execution_id": execution_id, "stop_originals": stop_originals, "tag_originals": tag_originals,
                "leave_behind": leave_behind, "ready_only": ready_only,
            });
            if dry_run {
                let v = c.post("/api/v1/executions/allow-launching/failback?dry_run=true", &body).await?;
                out.value(&v, text::failback_preview);
                if v["ready"] != true {
                    return Err(ClientError::Incomplete {
                        code: "NOT_READY".into(),
                        message: "failback prerequisites are not met".into(),
                    });
                }
                return Ok(());
            }
            let v = c.post("/api/v1/executions/allow-launching/failback", &body).await?;
            started(&out, &v, wait);
            if wait {
                follow(&c, &out, s(&v["id"]), timeout_minutes).await?;
            }
        }
        ClientCommand::Report { execution_id, format, out: file } => {
            let f = if format == ReportFormat::Html { "html" } else { "json" };
            let r = c
                .send(reqwest::Method::GET, &format!("/api/v1/executions/{execution_id}/report?format={f}"), None)
                .await?;
            let body = r
                .bytes()
                .await
                .map_err(|e| ClientError::Unreachable { server: c.base.clone(), reason: e.to_string() })?;
            match file {
                Some(path) => {
                    std::fs::write(&path, &body)?;
                    let v = json!({ "execution_id": execution_id, "format": f, "file": path.display().to_string(), "bytes": body.len() });
                    out.value(&v, |_| {
                        format!(
                            "evidence report of {execution_id} written to {} ({} bytes)",
                            path.display(),
                            body.len()
                        )
                    });
                }
                None => std::io::stdout().write_all(&body)?,
            }
        }
    }
    Ok(())
}

/// Prints a new execution (on stderr when it will be followed, so `--output json` prints one document).
fn started(out: &Out, v: &Value, wait: bool) {
    let text = format!(
        "{} {} of {} requested: {}{}",
        s(&v["state"]["mode"]),
        s(&v["id"]),
        s(&v["plan_name"]),
        s(&v["state"]["phase"]),
        if v["state"]["phase"] == "awaiting_approval" {
            " (a second person approves: roundtrip approve <id> --comment …)"
        } else {
            ""
        }
    );
    if wait {
        if !out.json {
            eprintln!("{text}");
        }
    } else {
        out.value(v, |_| text);
    }
}

async fn decide(c: &Client, out: &Out, id: &str, what: &str, comment: &str) -> Result<(), ClientError> {
    let v = c.post(&format!("/api/v1/executions/{id}/{what}"), &json!({ "comment": comment })).await?;
    out.value(&v, |v| format!("{id}: {what} recorded; now {}", s(&v["state"]["phase"])));
    Ok(())
}

fn phase_of(v: &Value) -> Option<Phase> {
    serde_json::from_value(v["phase"].clone()).ok()
}

/// The error for an ended execution that did not succeed.
fn ended(v: &Value) -> Result<(), ClientError> {
    match phase_of(v) {
        Some(Phase::Failed) => Err(ClientError::Ended("failed")),
        Some(p @ (Phase::Cancelled | Phase::Rejected | Phase::Expired)) => {
            Err(ClientError::Ended(domain::execution::phase_word(p)))
        }
        _ => Ok(()),
    }
}

/// One paragraph for people.
pub fn describe(st: &ExecutionStatus) -> String {
    let mut t = format!("{} — {}%", domain::execution::phase_word(st.phase), st.progress_percent);
    if let Some(e) = st.elapsed_ms {
        t.push_str(&format!(", elapsed {}", domain::time::format_duration_ms(e)));
    }
    match st.rto_ms {
        Some(r) => t.push_str(&format!(
            ", RTO {} (target {})",
            domain::time::format_duration_ms(r),
            domain::time::format_duration_ms(st.rto_target_ms)
        )),
        None => t.push_str(&format!(", RTO target {}", domain::time::format_duration_ms(st.rto_target_ms))),
    }
    t.push('\n');
    for w in &st.waves {
        t.push_str(&format!(
            "  {:<20} {:<10} {}/{} verified, {} failed{}\n",
            w.name,
            format!("{:?}", w.state).to_lowercase(),
            w.verified,
            w.servers,
            w.failed,
            w.rto_ms.map_or_else(String::new, |r| format!(", RTO {}", domain::time::format_duration_ms(r)))
        ));
    }
    t
}

/// Polls an execution's progress until it ends, drawing a progress bar on standard error.
async fn follow(c: &Client, out: &Out, id: &str, timeout_minutes: u64) -> Result<(), ClientError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(timeout_minutes.saturating_mul(60));
    let bar = Progress::new(out.json, id);
    loop {
        let v = match c.get(&format!("/api/v1/executions/{id}/allow-launching/status")).await {
            Ok(v) => v,
            // A restart or a proxy hiccup during a long failover is not its end: keep trying until the deadline.
            Err(e @ ClientError::Unreachable { .. }) => {
                if std::time::Instant::now() > deadline {
                    bar.finish();
                    return Err(e);
                }
                bar.draw(0, &format!("server unreachable, retrying: {e}"));
                tokio::time::sleep(Duration::from_secs(3)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let st: ExecutionStatus = serde_json::from_value(v.clone()).map_err(|e| ClientError::Unreachable {
            server: c.base.clone(),
            reason: format!("unexpected status: {e}"),
        })?;
        let wave = st.waves.iter().find(|w| format!("{:?}", w.state) == "Running").map_or("", |w| w.name.as_str());
        bar.draw(st.progress_percent, &format!("{} {wave}", domain::execution::phase_word(st.phase)));
        if st.phase.is_terminal() {
            bar.finish();
            out.value(&v, |_| describe(&st));
            return ended(&v);
        }
        if std::time::Instant::now() > deadline {
            bar.finish();
            return Err(ClientError::TimedOut(timeout_minutes));
        }
        tokio::time::sleep(Duration::from_millis(if st.phase == Phase::AwaitingApproval { 3000 } else { 1000 })).await;
    }
}

/// A progress bar on standard error: redrawn in place on a terminal, a line per change otherwise, nothing
/// with `--output json`.
struct Progress {
    quiet: bool,
    tty: bool,
    label: String,
    last: std::sync::Mutex<String>,
}

impl Progress {
    fn new(quiet: bool, label: &str) -> Self {
        Self { quiet, tty: std::io::stderr().is_terminal(), label: label.to_owned(), last: std::sync::Mutex::default() }
    }

    fn draw(&self, percent: u8, what: &str) {
        if self.quiet {
            return;
        }
        let filled = usize::from(percent.min(100)) * 30 / 100;
        let line = format!("{} [{}{}] {percent:>3}% {what}", self.label, "#".repeat(filled), "-".repeat(30 - filled));
        let Ok(mut last) = self.last.lock() else { return };
        if *last == line {
            return;
        }
        let mut e = std::io::stderr();
        if self.tty {
            let _ = write!(e, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(e, "{line}");
        }
        let _ = e.flush();
        *last = line;
    }

    fn finish(&self) {
        if self.tty && !self.quiet {
            let _ = writeln!(std::io::stderr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_tell_apart_what_a_pipeline_acts_on() {
        assert_eq!(ClientError::Ended("failed").exit_code(), exit::FAILED);
        assert_eq!(ClientError::Ended("rejected").exit_code(), exit::NOT_RUN);
        assert_eq!(ClientError::Blocked.exit_code(), exit::BLOCKED);
        assert_eq!(ClientError::TimedOut(1).exit_code(), exit::TIMED_OUT);
        let refused = ClientError::Refused { code: "NOT_READY".into(), message: "x".into(), details: Value::Null };
        assert_eq!(refused.to_json()["error"]["code"], "NOT_READY");
        assert_eq!(refused.to_json()["error"]["exit_code"], exit::REFUSED);
    }

    #[test]
    fn names_and_ids_are_resolved_and_ambiguity_is_refused() {
        let list = json!([{ "id": "rp-1", "name": "Billing" }, { "id": "rp-2", "name": "Web" }, { "id": "rp-3", "name": "web" }]);
        assert_eq!(find(&list, |p| p, "billing", "plan").unwrap(), "rp-1");
        assert_eq!(find(&list, |p| p, "rp-2", "plan").unwrap(), "rp-2");
        assert!(matches!(find(&list, |p| p, "Web", "plan"), Err(ClientError::Usage(_))));
        assert!(matches!(find(&list, |p| p, "nope", "plan"), Err(ClientError::Refused { .. })));
    }
}
