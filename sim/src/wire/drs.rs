//! DRS over restJson1: `POST /<Operation>` with a JSON body, errors in `x-amzn-ErrorType`, quota errors as
//! HTTP 402, `StartRecovery` answering 202 (`aws-drs-api.md` §6.5).

use crate::Simulator;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::estate::AccountRegion;
use domain::ids::{InstanceId, SourceServerId};
use domain::launch::LaunchConfigurationUpdate;
use domain::time::{format_duration_seconds, format_iso8601};
use engine::cloud::{Cloud, CloudError};
use serde_json::{Value, json};

// ---------------------------------------------------------------- DRS (restJson1)

/// The DRS error of `e`: status, `x-amzn-ErrorType`, JSON body (§4.1).
pub(super) fn drs_error(e: &CloudError) -> Response {
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

pub(super) fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, CloudError> {
    v.get(name).and_then(Value::as_str).ok_or_else(|| CloudError::Validation { message: format!("{name} is required") })
}

pub(super) fn source_ids(v: Option<&Value>) -> Result<Vec<SourceServerId>, CloudError> {
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
pub(super) fn wire_enum<T: serde::de::DeserializeOwned>(input: &Value, name: &str) -> Option<T> {
    input.get(name).and_then(|v| serde_json::from_value(v.clone()).ok())
}

pub(super) fn instance_id(v: &Value, name: &str) -> Result<InstanceId, CloudError> {
    InstanceId::parse(field(v, name)?).map_err(|e| CloudError::Validation { message: e.to_string() })
}

/// One page of `items`: `maxResults` from the request, `nextToken` an offset.
pub(super) fn page(items: Vec<Value>, input: &Value) -> Value {
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

pub(super) fn arn(at: &AccountRegion, what: &str) -> String {
    format!("arn:aws:drs:{}:{}:{what}", at.region.as_str(), at.account_id.as_str())
}

pub(super) fn job_json(at: &AccountRegion, j: &domain::recovery::DrsJob) -> Value {
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

pub(super) fn launch_configuration_json(c: &domain::launch::LaunchConfiguration) -> Value {
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

pub(super) async fn drs(
    sim: &Simulator,
    at: &AccountRegion,
    op: &str,
    input: &Value,
) -> Result<(StatusCode, Value), CloudError> {
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
