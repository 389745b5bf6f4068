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

use crate::Simulator;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::estate::{AccountRegion, Ec2Instance};
use domain::ids::{AccountId, InstanceId, Region, SourceServerId};
use domain::launch::LaunchConfigurationUpdate;
use domain::time::{format_duration_seconds, format_iso8601};
use engine::cloud::{Cloud, CloudError};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fmt::Write as _;
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

// ---------------------------------------------------------------- DRS (restJson1)

/// The DRS error of `e`: status, `x-amzn-ErrorType`, JSON body (§4.1).
fn drs_error(e: &CloudError) -> Response {
    let (status, kind, body) = match e {
        CloudError::Throttled { retry_after_ms } => {
            let secs = retry_after_ms.div_ceil(1000).max(1);
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                [("x-amzn-ErrorType", "ThrottlingException"), ("content-type", "application/json")],
                json!({"message": e.to_string(), "retryAfterSeconds": secs.to_string()}).to_string(),
            )
                .into_response();
            if let Ok(v) = secs.to_string().parse() {
                r.headers_mut().insert("retry-after", v);
            }
            return r;
        }
        CloudError::AccessDenied { message } => {
            (StatusCode::FORBIDDEN, "AccessDeniedException", json!({"message": message, "code": "ACCESS_DENIED"}))
        }
        CloudError::Unavailable { message, .. } => {
            (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException", json!({"message": message}))
        }
        CloudError::Validation { message } if message.contains("not initialised") => {
            (StatusCode::BAD_REQUEST, "UninitializedAccountException", json!({"message": message}))
        }
        CloudError::Validation { message } => {
            (StatusCode::BAD_REQUEST, "ValidationException", json!({"message": message, "reason": "other"}))
        }
        CloudError::NotFound { message } => {
            (StatusCode::NOT_FOUND, "ResourceNotFoundException", json!({"message": message}))
        }
        CloudError::Conflict { message, resource_id } => {
            (StatusCode::CONFLICT, "ConflictException", json!({"message": message, "resourceId": resource_id}))
        }
        CloudError::QuotaExceeded { message, quota } => (
            StatusCode::PAYMENT_REQUIRED,
            "ServiceQuotaExceededException",
            json!({"message": message, "quotaCode": quota, "serviceCode": "drs"}),
        ),
        CloudError::Unexpected(err) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException", json!({"message": format!("{err:#}")}))
        }
    };
    (status, [("x-amzn-ErrorType", kind), ("content-type", "application/json")], body.to_string()).into_response()
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, CloudError> {
    v.get(name).and_then(Value::as_str).ok_or_else(|| CloudError::Validation { message: format!("{name} is required") })
}

fn source_ids(v: Option<&Value>) -> Result<Vec<SourceServerId>, CloudError> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| {
                    SourceServerId::parse(s.as_str().unwrap_or_default())
                        .map_err(|e| CloudError::Validation { message: e.to_string() })
                })
                .collect()
        })
        .unwrap_or_else(|| Ok(Vec::new()))
}

/// A DRS enum member, read through the domain's serde names (which are DRS's).
fn wire_enum<T: serde::de::DeserializeOwned>(input: &Value, name: &str) -> Option<T> {
    input.get(name).and_then(|v| serde_json::from_value(v.clone()).ok())
}

fn instance_id(v: &Value, name: &str) -> Result<InstanceId, CloudError> {
    InstanceId::parse(field(v, name)?).map_err(|e| CloudError::Validation { message: e.to_string() })
}

/// One page of `items`: `maxResults` from the request, `nextToken` an offset.
fn page(items: Vec<Value>, input: &Value) -> Value {
    let start: usize = input.get("nextToken").and_then(Value::as_str).and_then(|t| t.parse().ok()).unwrap_or(0);
    let max = input
        .get("maxResults")
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |m| usize::try_from(m.max(1)).unwrap_or(usize::MAX));
    let end = start.saturating_add(max).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    let slice: Vec<Value> = items.into_iter().skip(start).take(end.saturating_sub(start)).collect();
    json!({"items": slice, "nextToken": next})
}

fn arn(at: &AccountRegion, what: &str) -> String {
    format!("arn:aws:drs:{}:{}:{what}", at.region.as_str(), at.account_id.as_str())
}

fn job_json(at: &AccountRegion, j: &domain::recovery::DrsJob) -> Value {
    let status = serde_json::to_value(j.status).unwrap_or(Value::Null);
    json!({
        "jobID": j.job_id,
        "arn": arn(at, &format!("job/{}", j.job_id)),
        "type": "LAUNCH",
        "initiatedBy": if j.is_drill { "START_DRILL" } else { "START_RECOVERY" },
        "creationDateTime": format_iso8601(j.created_at),
        "endDateTime": j.ended_at.map(format_iso8601),
        "status": status,
        "participatingServers": j.servers.iter().map(|s| json!({
            "sourceServerID": s.source_server_id.as_str(),
            "recoveryInstanceID": s.recovery_instance_id.as_ref().map(InstanceId::as_str),
            "launchStatus": serde_json::to_value(s.launch_status).unwrap_or(Value::Null),
        })).collect::<Vec<_>>(),
        "tags": {},
    })
}

fn launch_configuration_json(c: &domain::launch::LaunchConfiguration) -> Value {
    json!({
        "sourceServerID": c.source_server_id.as_str(),
        "name": c.source_server_id.as_str(),
        "launchDisposition": c.launch_disposition.as_str(),
        "targetInstanceTypeRightSizingMethod": c.right_sizing.as_str(),
        "copyPrivateIp": c.copy_private_ip,
        "copyTags": c.copy_tags,
        "licensing": {"osByol": c.os_byol},
        "postLaunchEnabled": c.post_launch_enabled,
        "launchIntoInstanceProperties": match &c.launch_into_instance_id {
            Some(i) => json!({"launchIntoEC2InstanceID": i.as_str()}),
            None => json!({}),
        },
    })
}

async fn drs(sim: &Simulator, at: &AccountRegion, op: &str, input: &Value) -> Result<(StatusCode, Value), CloudError> {
    let ok = |v: Value| Ok((StatusCode::OK, v));
    // DRS refuses every call in a region where it was never initialised (§4.1).
    if !sim.drs_initialized(at).await? {
        return Err(CloudError::Validation {
            message: format!("DRS is not initialised in {} (call InitializeService)", at.region.as_str()),
        });
    }
    match op {
        "DescribeSourceServers" => {
            let wanted = source_ids(input.pointer("/filters/sourceServerIDs"))?;
            let items = sim
                .describe_source_servers(at)
                .await?
                .into_iter()
                .filter(|s| wanted.is_empty() || wanted.contains(&s.source_server_id))
                .map(|s| {
                    json!({
                        "sourceServerID": s.source_server_id.as_str(),
                        "arn": arn(at, &format!("source-server/{}", s.source_server_id.as_str())),
                        "tags": s.tags,
                        "replicationDirection": serde_json::to_value(s.replication_direction).unwrap_or(Value::Null),
                        "dataReplicationInfo": {
                            "dataReplicationState": serde_json::to_value(s.replication_state).unwrap_or(Value::Null),
                            "lagDuration": format_duration_seconds(s.lag_seconds),
                            "replicatedDisks": [{"deviceName": "/dev/xvda", "backloggedStorageBytes": s.backlog_bytes}],
                        },
                        "sourceProperties": {
                            "identificationHints": {
                                "hostname": s.hostname,
                                "awsInstanceID": s.source_instance_id.as_ref().map(InstanceId::as_str),
                            },
                            "os": {"fullString": if s.platform == domain::estate::Platform::Windows { "Microsoft Windows Server 2022" } else { "Linux" }},
                            "architecture": s.architecture.as_str(),
                        },
                        "sourceCloudProperties": {
                            "originAccountID": s.origin_account_id.as_str(),
                            "originRegion": s.origin_region.as_str(),
                        },
                    })
                })
                .collect();
            ok(page(items, input))
        }
        "GetLaunchConfiguration" => {
            let id = SourceServerId::parse(field(input, "sourceServerID")?)
                .map_err(|e| CloudError::Validation { message: e.to_string() })?;
            ok(launch_configuration_json(&sim.get_launch_configuration(at, &id).await?))
        }
        "UpdateLaunchConfiguration" => {
            let id = SourceServerId::parse(field(input, "sourceServerID")?)
                .map_err(|e| CloudError::Validation { message: e.to_string() })?;
            let update = LaunchConfigurationUpdate {
                source_server_id: Some(id),
                launch_disposition: wire_enum(input, "launchDisposition"),
                right_sizing: wire_enum(input, "targetInstanceTypeRightSizingMethod"),
                copy_private_ip: input.get("copyPrivateIp").and_then(Value::as_bool),
                copy_tags: input.get("copyTags").and_then(Value::as_bool),
                launch_into_instance_id: match input.get("launchIntoInstanceProperties") {
                    None => None,
                    Some(p) => Some(match p.get("launchIntoEC2InstanceID").and_then(Value::as_str) {
                        Some(i) => {
                            Some(InstanceId::parse(i).map_err(|e| CloudError::Validation { message: e.to_string() })?)
                        }
                        None => None,
                    }),
                },
            };
            ok(launch_configuration_json(&sim.update_launch_configuration(at, &update).await?))
        }
        "StartRecovery" => {
            let servers: Vec<SourceServerId> = input
                .get("sourceServers")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|s| s.get("sourceServerID").cloned().unwrap_or(Value::Null)).collect::<Vec<_>>())
                .map(|ids| source_ids(Some(&Value::Array(ids))))
                .transpose()?
                .unwrap_or_default();
            let is_drill = input.get("isDrill").and_then(Value::as_bool).unwrap_or(false);
            let job = sim.start_recovery(at, &servers, is_drill).await?;
            Ok((StatusCode::ACCEPTED, json!({"job": job_json(at, &job)})))
        }
        "DescribeJobs" => {
            let ids: Vec<String> = input
                .pointer("/filters/jobIDs")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            let items = sim.describe_jobs(at, &ids).await?.iter().map(|j| job_json(at, j)).collect();
            ok(page(items, input))
        }
        "DescribeJobLogItems" => {
            let items = sim
                .describe_job_log_items(at, field(input, "jobID")?)
                .await?
                .into_iter()
                .map(|l| {
                    json!({
                        "logDateTime": format_iso8601(l.at),
                        "event": l.event,
                        "eventData": {
                            "sourceServerID": l.source_server_id.as_ref().map(SourceServerId::as_str),
                            "targetInstanceID": l.target_instance_id.as_ref().map(InstanceId::as_str),
                            "rawError": l.error,
                        },
                    })
                })
                .collect();
            ok(page(items, input))
        }
        "DescribeRecoveryInstances" => {
            let servers = source_ids(input.pointer("/filters/sourceServerIDs"))?;
            let items = sim
                .describe_recovery_instances(at, &servers)
                .await?
                .into_iter()
                .map(|r| {
                    json!({
                        "recoveryInstanceID": r.recovery_instance_id.as_str(),
                        "ec2InstanceID": r.ec2_instance_id.as_str(),
                        "sourceServerID": r.source_server_id.as_str(),
                        "jobID": r.job_id,
                        "isDrill": r.is_drill,
                        "pointInTimeSnapshotDateTime": format_iso8601(r.point_in_time),
                        "arn": arn(at, &format!("recovery-instance/{}", r.recovery_instance_id.as_str())),
                        "dataReplicationInfo": {
                            "dataReplicationState": if r.disconnected { "DISCONNECTED" } else { "NOT_STARTED" },
                        },
                    })
                })
                .collect();
            ok(page(items, input))
        }
        "DisconnectRecoveryInstance" => {
            sim.disconnect_recovery_instance(at, &instance_id(input, "recoveryInstanceID")?).await?;
            ok(json!({}))
        }
        "DeleteRecoveryInstance" => {
            sim.delete_recovery_instance(at, &instance_id(input, "recoveryInstanceID")?).await?;
            ok(json!({}))
        }
        "ReverseReplication" => {
            let s = sim.reverse_replication(at, &instance_id(input, "recoveryInstanceID")?).await?;
            ok(json!({"reversedDirectionSourceServerArn": arn(at, &format!("source-server/{}", s.as_str()))}))
        }
        other => Err(CloudError::Validation { message: format!("{other} is not an operation this simulator serves") }),
    }
}

// ---------------------------------------------------------------- EC2, STS, IAM (query protocols)

const EC2_NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// Text as XML character data: markup escaped, and characters XML 1.0 cannot carry dropped (a tag value
/// written through `CreateTags` is untrusted and must never make a later answer unreadable).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn query_error(status: StatusCode, code: &str, message: &str) -> Response {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>",
        esc(code),
        esc(message)
    );
    (status, [("content-type", "text/xml")], xml).into_response()
}

/// The EC2 error of `e`.
fn ec2_error(e: &CloudError) -> Response {
    let (status, code) = match e {
        CloudError::Throttled { .. } => (StatusCode::SERVICE_UNAVAILABLE, "RequestLimitExceeded"),
        CloudError::AccessDenied { .. } => (StatusCode::FORBIDDEN, "UnauthorizedOperation"),
        CloudError::Unavailable { .. } | CloudError::Unexpected(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "InternalError")
        }
        CloudError::Validation { .. } => (StatusCode::BAD_REQUEST, "InvalidParameterValue"),
        CloudError::NotFound { .. } => (StatusCode::BAD_REQUEST, "InvalidInstanceID.NotFound"),
        CloudError::Conflict { .. } => (StatusCode::BAD_REQUEST, "IncorrectInstanceState"),
        CloudError::QuotaExceeded { .. } => (StatusCode::BAD_REQUEST, "ResourceLimitExceeded"),
    };
    query_error(status, code, &e.to_string())
}

/// An STS or IAM error (the AWS query protocol's `<ErrorResponse>`).
fn aws_query_error(e: &CloudError) -> Response {
    let (status, code) = match e {
        CloudError::Throttled { .. } => (StatusCode::BAD_REQUEST, "Throttling"),
        CloudError::AccessDenied { .. } => (StatusCode::FORBIDDEN, "AccessDenied"),
        CloudError::NotFound { .. } => (StatusCode::NOT_FOUND, "NoSuchEntity"),
        CloudError::Unavailable { .. } | CloudError::Unexpected(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "ServiceFailure")
        }
        _ => (StatusCode::BAD_REQUEST, "ValidationError"),
    };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>",
        esc(&e.to_string())
    );
    (status, [("content-type", "text/xml")], xml).into_response()
}

/// Values of a flattened list: `InstanceId.1`, `InstanceId.2`, …
fn list(form: &[(String, String)], prefix: &str) -> Vec<String> {
    let mut v: Vec<(usize, String)> = form
        .iter()
        .filter_map(|(k, val)| Some((k.strip_prefix(prefix)?.strip_prefix('.')?.parse().ok()?, val.clone())))
        .collect();
    v.sort();
    v.into_iter().map(|(_, s)| s).collect()
}

fn instance_ids(form: &[(String, String)]) -> Result<Vec<InstanceId>, CloudError> {
    parse_instance_ids(&list(form, "InstanceId"))
}

fn parse_instance_ids(ids: &[String]) -> Result<Vec<InstanceId>, CloudError> {
    ids.iter().map(|i| InstanceId::parse(i).map_err(|e| CloudError::Validation { message: e.to_string() })).collect()
}

/// The values of the filter `name` of an EC2 query (`Filter.N.Name`, `Filter.N.Value.M`), if given.
fn filter_values(form: &[(String, String)], name: &str) -> Option<Vec<String>> {
    (1..=50).find_map(|i| {
        let key = format!("Filter.{i}.Name");
        let n = form.iter().find(|(k, _)| *k == key)?;
        (n.1 == name).then(|| list(form, &format!("Filter.{i}.Value")))
    })
}

fn tag_set(tags: &std::collections::BTreeMap<String, String>) -> String {
    let mut out = String::from("<tagSet>");
    for (k, v) in tags {
        let _ = write!(out, "<item><key>{}</key><value>{}</value></item>", esc(k), esc(v));
    }
    out.push_str("</tagSet>");
    out
}

fn instance_xml(i: &Ec2Instance) -> String {
    let code = match i.state {
        domain::estate::InstanceState::Pending => 0,
        domain::estate::InstanceState::Running => 16,
        domain::estate::InstanceState::ShuttingDown => 32,
        domain::estate::InstanceState::Terminated => 48,
        domain::estate::InstanceState::Stopping => 64,
        domain::estate::InstanceState::Stopped => 80,
    };
    let mut x = format!(
        "<item><instanceId>{}</instanceId><instanceState><code>{code}</code><name>{}</name></instanceState><privateIpAddress>{}</privateIpAddress><subnetId>{}</subnetId><instanceType>{}</instanceType><architecture>{}</architecture><bootMode>{}</bootMode><currentInstanceBootMode>{}</currentInstanceBootMode><rootDeviceType>{}</rootDeviceType>",
        i.instance_id.as_str(),
        i.state.as_str(),
        i.private_ip,
        i.subnet_id.as_str(),
        esc(&i.instance_type),
        i.architecture.as_str(),
        i.boot_mode.as_str(),
        i.boot_mode.as_str(),
        esc(&i.root_device_type),
    );
    if i.platform == domain::estate::Platform::Windows {
        x.push_str("<platform>windows</platform>");
    }
    x.push_str("<groupSet>");
    for g in &i.security_group_ids {
        let _ = write!(x, "<item><groupId>{}</groupId></item>", esc(g));
    }
    x.push_str("</groupSet><blockDeviceMapping>");
    for v in &i.volumes {
        let _ = write!(
            x,
            "<item><deviceName>{}</deviceName><ebs><volumeId>{}</volumeId><status>attached</status></ebs></item>",
            esc(&v.device_name),
            esc(&v.volume_id)
        );
    }
    x.push_str("</blockDeviceMapping>");
    if let Some(p) = &i.iam_instance_profile {
        let _ = write!(
            x,
            "<iamInstanceProfile><arn>arn:aws:iam::{}:instance-profile/{}</arn><id>AIPA{}</id></iamInstanceProfile>",
            i.account_id.as_str(),
            esc(p),
            i.account_id.as_str()
        );
    }
    x.push_str(&tag_set(&i.tags));
    x.push_str("</item>");
    x
}

/// A page of `items` by `MaxResults`/`NextToken` (an offset), and the `<nextToken>` element.
fn query_page<T>(items: Vec<T>, form: &[(String, String)]) -> (Vec<T>, String) {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let start: usize = get("NextToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let max: usize = get("MaxResults").and_then(|m| m.parse().ok()).unwrap_or(usize::MAX).max(1);
    let total = items.len();
    let end = start.saturating_add(max).min(total);
    let next = if end < total { format!("<nextToken>{end}</nextToken>") } else { String::new() };
    (items.into_iter().skip(start).take(end.saturating_sub(start)).collect(), next)
}

fn response(op: &str, ns: &str, inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{op}Response xmlns=\"{ns}\"><requestId>00000000-0000-0000-0000-000000000000</requestId>{inner}</{op}Response>"
    )
}

async fn ec2(
    sim: &Simulator,
    at: &AccountRegion,
    action: &str,
    form: &[(String, String)],
) -> Result<String, CloudError> {
    match action {
        "DescribeInstances" => {
            // One reservation per instance, so a page of MaxResults holds that many instances.
            let instances = match filter_values(form, "instance-id") {
                Some(ids) => sim.describe_instances_by_id(at, &parse_instance_ids(&ids)?).await?,
                None => sim.describe_instances(at).await?,
            };
            let (items, next) = query_page(instances, form);
            let mut x = String::from("<reservationSet>");
            for i in &items {
                let _ = write!(
                    x,
                    "<item><reservationId>r-{}</reservationId><ownerId>{}</ownerId><groupSet/><instancesSet>{}</instancesSet></item>",
                    &i.instance_id.as_str()[2..],
                    at.account_id.as_str(),
                    instance_xml(i)
                );
            }
            x.push_str("</reservationSet>");
            x.push_str(&next);
            Ok(response(action, EC2_NS, &x))
        }
        "DescribeSubnets" => {
            let (items, next) = query_page(sim.describe_subnets(at).await?, form);
            let mut x = String::from("<subnetSet>");
            for s in items {
                let _ = write!(
                    x,
                    "<item><subnetId>{}</subnetId><vpcId>{}</vpcId><cidrBlock>{}</cidrBlock><availabilityZone>{}</availabilityZone><state>available</state></item>",
                    s.subnet_id.as_str(),
                    esc(&s.vpc_id),
                    s.cidr,
                    esc(&s.availability_zone)
                );
            }
            x.push_str("</subnetSet>");
            x.push_str(&next);
            Ok(response(action, EC2_NS, &x))
        }
        "DescribeVolumes" => {
            let status = filter_values(form, "status");
            let attached_to = filter_values(form, "attachment.instance-id");
            let wants = |s: &str| status.as_ref().is_none_or(|v| v.iter().any(|x| x == s));
            let mut vols: Vec<String> = Vec::new();
            if wants("in-use") {
                let instances = match &attached_to {
                    Some(ids) => sim.describe_instances_by_id(at, &parse_instance_ids(ids)?).await?,
                    None => sim.describe_instances(at).await?,
                };
                for i in instances {
                    for v in &i.volumes {
                        vols.push(format!(
                            "<item><volumeId>{}</volumeId><size>{}</size><status>in-use</status><attachmentSet><item><volumeId>{}</volumeId><instanceId>{}</instanceId><device>{}</device><status>attached</status></item></attachmentSet></item>",
                            esc(&v.volume_id),
                            v.size_gib,
                            esc(&v.volume_id),
                            i.instance_id.as_str(),
                            esc(&v.device_name)
                        ));
                    }
                }
            }
            // A detached volume is attached to nothing, so an attachment filter leaves it out.
            if wants("available") && attached_to.is_none() {
                for v in sim.describe_available_volumes(at).await? {
                    // EC2 does not say which instance a detached volume left, so neither does this.
                    vols.push(format!(
                        "<item><volumeId>{}</volumeId><size>{}</size><status>available</status><createTime>{}</createTime><attachmentSet/></item>",
                        esc(&v.volume_id),
                        v.size_gib,
                        format_iso8601(v.since)
                    ));
                }
            }
            let (items, next) = query_page(vols, form);
            Ok(response(action, EC2_NS, &format!("<volumeSet>{}</volumeSet>{next}", items.concat())))
        }
        "DescribeSecurityGroups" => {
            let (items, next) = query_page(sim.describe_security_groups(at).await?, form);
            let mut x = String::from("<securityGroupInfo>");
            for g in items {
                let _ = write!(
                    x,
                    "<item><groupId>{}</groupId><groupName>{}</groupName><vpcId>{}</vpcId><ownerId>{}</ownerId><ipPermissionsEgress>",
                    esc(&g.group_id),
                    esc(&g.name),
                    esc(&g.vpc_id),
                    at.account_id.as_str()
                );
                match &g.egress {
                    None => x.push_str("<item><ipProtocol>-1</ipProtocol></item>"),
                    Some(rules) => {
                        for r in rules {
                            if r.protocol == "-1" {
                                x.push_str("<item><ipProtocol>-1</ipProtocol></item>");
                            } else {
                                let _ = write!(
                                    x,
                                    "<item><ipProtocol>{}</ipProtocol><fromPort>{}</fromPort><toPort>{}</toPort></item>",
                                    esc(&r.protocol),
                                    r.from_port,
                                    r.to_port
                                );
                            }
                        }
                    }
                }
                x.push_str("</ipPermissionsEgress></item>");
            }
            x.push_str("</securityGroupInfo>");
            x.push_str(&next);
            Ok(response(action, EC2_NS, &x))
        }
        "StopInstances" | "StartInstances" | "TerminateInstances" => {
            let ids = instance_ids(form)?;
            match action {
                "StopInstances" => sim.stop_instances(at, &ids).await?,
                "StartInstances" => sim.start_instances(at, &ids).await?,
                _ => sim.terminate_instances(at, &ids).await?,
            }
            let items: String =
                ids.iter().map(|i| format!("<item><instanceId>{}</instanceId></item>", i.as_str())).collect();
            Ok(response(action, EC2_NS, &format!("<instancesSet>{items}</instancesSet>")))
        }
        "CreateTags" => {
            let keys = list(form, "Tag").len();
            let resources = list(form, "ResourceId");
            let (k, v) = (
                form.iter().find(|(n, _)| n == "Tag.1.Key").map(|x| x.1.clone()),
                form.iter().find(|(n, _)| n == "Tag.1.Value").map(|x| x.1.clone()).unwrap_or_default(),
            );
            let Some(k) = k else {
                return Err(CloudError::Validation { message: format!("CreateTags needs a tag ({keys} given)") });
            };
            for r in resources {
                let id = InstanceId::parse(&r).map_err(|e| CloudError::Validation { message: e.to_string() })?;
                sim.create_tags(at, &id, &k, &v).await?;
            }
            Ok(response(action, EC2_NS, "<return>true</return>"))
        }
        "DeleteVolume" => {
            let id = form.iter().find(|(n, _)| n == "VolumeId").map(|x| x.1.clone()).unwrap_or_default();
            sim.delete_volume(at, &id).await?;
            Ok(response(action, EC2_NS, "<return>true</return>"))
        }
        other => Err(CloudError::Validation { message: format!("{other} is not an EC2 action this simulator serves") }),
    }
}

const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

fn query_response(op: &str, ns: &str, result: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{op}Response xmlns=\"{ns}\"><{op}Result>{result}</{op}Result><ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata></{op}Response>"
    )
}

async fn sts(wire: &Wire, caller: &AccountId, action: &str, form: &[(String, String)]) -> Result<String, CloudError> {
    let sim = &wire.sim;
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    match action {
        "AssumeRole" => {
            let role = get("RoleArn").unwrap_or_default();
            let session = get("RoleSessionName").unwrap_or_default();
            // arn:aws:iam::<account>:role/<name>
            let account = role
                .split(':')
                .nth(4)
                .and_then(|a| AccountId::parse(a).ok())
                .ok_or_else(|| CloudError::Validation { message: format!("{role:?} is not a role ARN") })?;
            let known = sim.list_account_regions().await?.iter().any(|k| k.at.account_id == account);
            let external_id_ok = wire.external_id.as_ref().is_none_or(|x| get("ExternalId").as_ref() == Some(x));
            if !known || !external_id_ok {
                return Err(CloudError::AccessDenied {
                    message: format!("User is not authorized to perform: sts:AssumeRole on resource: {role}"),
                });
            }
            let name = role.rsplit('/').next().unwrap_or("role");
            // Credentials expire in an hour of real time: the SDK compares them with the system clock.
            let expires = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                + 3_600_000;
            let key = format!("ASIA{}{:04X}", account.as_str(), fastrand_u16());
            Ok(query_response(
                action,
                STS_NS,
                &format!(
                    "<Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>simulated</SecretAccessKey><SessionToken>simulated-{}</SessionToken><Expiration>{}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA{}:{}</AssumedRoleId><Arn>arn:aws:sts::{}:assumed-role/{}/{}</Arn></AssumedRoleUser>",
                    caller.as_str(),
                    format_iso8601(expires),
                    account.as_str(),
                    esc(&session),
                    account.as_str(),
                    esc(name),
                    esc(&session)
                ),
            ))
        }
        "GetCallerIdentity" => Ok(query_response(
            action,
            STS_NS,
            &format!(
                "<Arn>arn:aws:sts::{0}:assumed-role/roundtrip/simulated</Arn><UserId>AROA{0}:simulated</UserId><Account>{0}</Account>",
                caller.as_str()
            ),
        )),
        other => Err(CloudError::Validation { message: format!("{other} is not an STS action this simulator serves") }),
    }
}

/// A pseudo-random suffix so access keys differ between sessions.
fn fastrand_u16() -> u16 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    u16::try_from(nanos % 65_536).unwrap_or(0)
}

/// The role of an instance profile in the simulated estate.
fn role_of(profile: &str) -> String {
    format!("{profile}-role")
}

async fn iam(
    sim: &Simulator,
    at: &AccountRegion,
    action: &str,
    form: &[(String, String)],
) -> Result<String, CloudError> {
    // IAM is global: read the profiles through any region of the account.
    let region = sim
        .list_account_regions()
        .await?
        .into_iter()
        .find(|k| k.at.account_id == at.account_id)
        .map(|k| k.at)
        .ok_or_else(|| CloudError::AccessDenied {
            message: format!("account {} is not in the estate", at.account_id.as_str()),
        })?;
    let profiles = sim.describe_instance_profiles(&region).await?;
    let acct = at.account_id.as_str();
    let created = "2026-01-01T00:00:00Z";
    match action {
        "ListInstanceProfiles" => {
            let mut x = String::from("<IsTruncated>false</IsTruncated><InstanceProfiles>");
            for p in &profiles {
                let role = role_of(&p.name);
                let _ = write!(
                    x,
                    "<member><InstanceProfileName>{n}</InstanceProfileName><InstanceProfileId>AIPA{acct}</InstanceProfileId><Arn>arn:aws:iam::{acct}:instance-profile/{n}</Arn><Path>/</Path><CreateDate>{created}</CreateDate><Roles><member><RoleName>{r}</RoleName><RoleId>AROA{acct}</RoleId><Arn>arn:aws:iam::{acct}:role/{r}</Arn><Path>/</Path><CreateDate>{created}</CreateDate></member></Roles></member>",
                    n = esc(&p.name),
                    r = esc(&role)
                );
            }
            x.push_str("</InstanceProfiles>");
            Ok(query_response(action, IAM_NS, &x))
        }
        "ListAttachedRolePolicies" => {
            let role = form.iter().find(|(n, _)| n == "RoleName").map(|x| x.1.clone()).unwrap_or_default();
            let Some(p) = profiles.iter().find(|p| role_of(&p.name) == role) else {
                return Err(CloudError::NotFound { message: format!("The role with name {role} cannot be found.") });
            };
            let mut x = String::from("<IsTruncated>false</IsTruncated><AttachedPolicies>");
            for pol in &p.policies {
                let _ = write!(
                    x,
                    "<member><PolicyName>{n}</PolicyName><PolicyArn>arn:aws:iam::aws:policy/{n}</PolicyArn></member>",
                    n = esc(pol)
                );
            }
            x.push_str("</AttachedPolicies>");
            Ok(query_response(action, IAM_NS, &x))
        }
        other => Err(CloudError::Validation { message: format!("{other} is not an IAM action this simulator serves") }),
    }
}
