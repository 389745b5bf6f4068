//! The console's server functions: each parses its input, calls one engine service and maps the result.
//! They run on the server; the browser calls them over HTTP at stable `/console/<name>` URLs.

use domain::estate::{EstateOverview, KnownAccountRegion};
use domain::group::{
    AcceptOutcome, GroupMatch, GroupSummary, InstancePair, PairRequest, ProtectionGroup, ProtectionGroupInput,
};
use domain::readiness::{ReadinessView, VerdictSummary};
use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// A typed error the pages can match on: the same stable codes as the REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsoleError {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: serde_json::Value,
}

impl ConsoleError {
    /// Field errors carried in `details.fields`, as (field, message).
    pub fn fields(&self) -> Vec<(String, String)> {
        self.details
            .get("fields")
            .and_then(|f| f.as_array())
            .map(|a| {
                a.iter()
                    .map(|f| {
                        let s = |k: &str| f.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                        (s("field"), s("message"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Per-pair rejection reasons carried in `details.rejections`, as one line each.
    pub fn rejections(&self) -> Vec<String> {
        self.details
            .get("rejections")
            .and_then(|r| r.as_array())
            .map(|a| {
                a.iter()
                    .map(|r| {
                        let reasons: Vec<String> = r
                            .get("reasons")
                            .and_then(|x| x.as_array())
                            .map(|x| {
                                x.iter()
                                    .filter_map(|f| f.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default();
                        format!(
                            "{} → {}: {}",
                            r.get("source_server_id").and_then(|v| v.as_str()).unwrap_or("?"),
                            r.get("standby_instance_id").and_then(|v| v.as_str()).unwrap_or("?"),
                            reasons.join("; ")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl FromServerFnError for ConsoleError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(e: ServerFnErrorErr) -> Self {
        Self { code: "CONSOLE_REQUEST_FAILED".into(), message: e.to_string(), details: serde_json::Value::Null }
    }
}

#[cfg(feature = "ssr")]
impl From<engine::ServiceError> for ConsoleError {
    fn from(e: engine::ServiceError) -> Self {
        if matches!(e.code(), domain::ErrorCode::Internal | domain::ErrorCode::CloudError) {
            leptos::logging::error!("console request failed: {e:?}");
        }
        refusal(e.code(), e.public_message(), e.details())
    }
}

/// An error, answered by a console function called over HTTP with the status the REST API uses for its
/// code (not a blanket 500). While a page renders on the server, the page's own status stays.
#[cfg(feature = "ssr")]
pub(crate) fn refusal(code: domain::ErrorCode, message: String, details: serde_json::Value) -> ConsoleError {
    let called =
        use_context::<http::request::Parts>().is_some_and(|p| p.uri.path().starts_with(crate::access::CONSOLE_PREFIX));
    if called
        && let Some(r) = use_context::<leptos_axum::ResponseOptions>()
        && let Ok(status) = http::StatusCode::from_u16(code.http_status())
    {
        r.set_status(status);
    }
    ConsoleError { code: code.as_str().to_owned(), message, details }
}

/// The services, for a signed-in identity that may read. Console functions are also called in-process while
/// a page renders on the server, where the HTTP guard does not run; this keeps them closed there too.
#[cfg(feature = "ssr")]
pub(crate) fn services() -> Result<engine::Services, ConsoleError> {
    require(domain::auth::Permission::Read)?;
    services_for_anyone()
}

/// The services without an identity check: only for functions open to everyone (who am I, share links).
#[cfg(feature = "ssr")]
pub(crate) fn services_for_anyone() -> Result<engine::Services, ConsoleError> {
    use_context::<engine::Services>().ok_or_else(|| ConsoleError {
        code: "INTERNAL".into(),
        message: "services are not wired into the console".into(),
        details: serde_json::Value::Null,
    })
}

/// The signed-in identity of this request (the server's guard has already checked the function's access).
#[cfg(feature = "ssr")]
pub(crate) fn who() -> Result<domain::auth::Principal, ConsoleError> {
    use_context::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<domain::auth::Principal>().cloned())
        .ok_or_else(|| refusal(domain::ErrorCode::Unauthenticated, "sign in first".into(), serde_json::Value::Null))
}

/// Refuses unless the signed-in role grants `p` (for a function whose argument raises what it needs).
#[cfg(feature = "ssr")]
pub(crate) fn require(p: domain::auth::Permission) -> Result<domain::auth::Principal, ConsoleError> {
    let who = who()?;
    if who.allows(domain::auth::Access::Role(p)) {
        Ok(who)
    } else {
        Err(refusal(
            domain::ErrorCode::Forbidden,
            format!("the {} role does not allow this", who.role),
            serde_json::Value::Null,
        ))
    }
}

#[cfg(feature = "ssr")]
fn bad_id(field: &str, e: domain::ids::IdError) -> ConsoleError {
    refusal(
        domain::ErrorCode::ValidationFailed,
        format!("{field}: {}", e.message),
        serde_json::json!({ "fields": [domain::FieldError::new(field, e.code, e.message)] }),
    )
}

#[cfg(feature = "ssr")]
fn group_id(id: &str) -> Result<domain::ids::ProtectionGroupId, ConsoleError> {
    domain::ids::ProtectionGroupId::parse(id).map_err(|e| bad_id("id", e))
}

/// The estate overview.
#[server(prefix = "/console", endpoint = "overview", input = leptos::server_fn::codec::Json)]
pub async fn get_overview() -> Result<EstateOverview, ConsoleError> {
    Ok(services()?.overview().await?)
}

/// Accounts and regions Roundtrip can reach.
#[server(prefix = "/console", endpoint = "account_regions", input = leptos::server_fn::codec::Json)]
pub async fn get_account_regions() -> Result<Vec<KnownAccountRegion>, ConsoleError> {
    Ok(services()?.account_regions().await?)
}

/// Tries every read Roundtrip needs in every account and region (admins).
#[server(prefix = "/console", endpoint = "test_cloud_access", input = leptos::server_fn::codec::Json)]
pub async fn test_cloud_access() -> Result<Vec<domain::estate::AccessCheck>, ConsoleError> {
    require(domain::auth::Permission::Administer)?;
    Ok(services()?.check_cloud_access().await)
}

/// The accounts Roundtrip reaches (admins).
#[server(prefix = "/console", endpoint = "list_cloud_accounts", input = leptos::server_fn::codec::Json)]
pub async fn list_cloud_accounts() -> Result<Vec<domain::estate::CloudAccount>, ConsoleError> {
    require(domain::auth::Permission::Administer)?;
    Ok(services()?.list_cloud_accounts().await?)
}

/// Registers or changes an account (admins).
#[server(prefix = "/console", endpoint = "save_cloud_account", input = leptos::server_fn::codec::Json)]
pub async fn save_cloud_account(
    input: domain::estate::CloudAccountInput,
) -> Result<domain::estate::CloudAccount, ConsoleError> {
    let who = require(domain::auth::Permission::Administer)?;
    Ok(services()?.save_cloud_account(&who, &input).await?)
}

/// Webhooks with their delivery status (no URL path, no secret).
#[server(prefix = "/console", endpoint = "list_webhooks", input = leptos::server_fn::codec::Json)]
pub async fn list_webhooks() -> Result<Vec<domain::notify::WebhookView>, ConsoleError> {
    Ok(services()?.list_webhooks().await?)
}

/// Registers a webhook (admins); its URL and secret are never shown again.
#[server(prefix = "/console", endpoint = "create_webhook", input = leptos::server_fn::codec::Json)]
pub async fn create_webhook(input: domain::notify::WebhookInput) -> Result<domain::notify::WebhookView, ConsoleError> {
    let who = require(domain::auth::Permission::Administer)?;
    Ok(services()?.create_webhook(&who, &input).await?)
}

/// Deletes a webhook (admins).
#[server(prefix = "/console", endpoint = "delete_webhook", input = leptos::server_fn::codec::Json)]
pub async fn delete_webhook(id: String) -> Result<(), ConsoleError> {
    let who = require(domain::auth::Permission::Administer)?;
    Ok(services()?.delete_webhook(&who, &id).await?)
}

/// Sends a test notice to a webhook (admins).
#[server(prefix = "/console", endpoint = "test_webhook", input = leptos::server_fn::codec::Json)]
pub async fn test_webhook(id: String) -> Result<(), ConsoleError> {
    let who = require(domain::auth::Permission::Administer)?;
    Ok(services()?.test_webhook(&who, &id).await?)
}

/// Ended executions with their RTO, oldest first (the drill history).
#[server(prefix = "/console", endpoint = "report_history", input = leptos::server_fn::codec::Json)]
pub async fn report_history(
    mode: Option<domain::execution::Mode>,
) -> Result<Vec<domain::report::ReportSummary>, ConsoleError> {
    Ok(services()?.report_history(mode, None).await?)
}

/// Removes an account registered in the console (admins).
#[server(prefix = "/console", endpoint = "delete_cloud_account", input = leptos::server_fn::codec::Json)]
pub async fn delete_cloud_account(account_id: String) -> Result<(), ConsoleError> {
    let who = require(domain::auth::Permission::Administer)?;
    Ok(services()?.delete_cloud_account(&who, &account_id).await?)
}

/// Every protection group with its pair count.
#[server(prefix = "/console", endpoint = "list_groups", input = leptos::server_fn::codec::Json)]
pub async fn list_groups() -> Result<Vec<GroupSummary>, ConsoleError> {
    Ok(services()?.list_groups().await?)
}

/// One protection group.
#[server(prefix = "/console", endpoint = "get_group", input = leptos::server_fn::codec::Json)]
pub async fn get_group(id: String) -> Result<ProtectionGroup, ConsoleError> {
    Ok(services()?.get_group(&group_id(&id)?).await?)
}

/// Creates (`id` = None) or replaces a protection group.
#[server(prefix = "/console", endpoint = "save_group", input = leptos::server_fn::codec::Json)]
pub async fn save_group(
    id: Option<String>,
    input: ProtectionGroupInput,
    expected_version: Option<u64>,
) -> Result<ProtectionGroup, ConsoleError> {
    let s = services()?;
    Ok(match id {
        None => s.create_group(&require(domain::auth::Permission::Operate)?, &input).await?,
        Some(id) => {
            s.update_group(&require(domain::auth::Permission::Operate)?, &group_id(&id)?, &input, expected_version)
                .await?
        }
    })
}

/// Deletes a protection group and its pairs.
#[server(prefix = "/console", endpoint = "delete_group", input = leptos::server_fn::codec::Json)]
pub async fn delete_group(id: String, expected_version: Option<u64>) -> Result<(), ConsoleError> {
    Ok(services()?
        .delete_group(&require(domain::auth::Permission::Operate)?, &group_id(&id)?, expected_version)
        .await?)
}

/// Runs matching for a group.
#[server(prefix = "/console", endpoint = "run_match", input = leptos::server_fn::codec::Json)]
pub async fn run_match(id: String) -> Result<GroupMatch, ConsoleError> {
    Ok(services()?.match_group(&group_id(&id)?).await?)
}

/// Accepts pairs, all or none.
#[server(prefix = "/console", endpoint = "accept_pairs", input = leptos::server_fn::codec::Json)]
pub async fn accept_pairs(id: String, pairs: Vec<PairRequest>) -> Result<AcceptOutcome, ConsoleError> {
    Ok(services()?.accept_pairs(&group_id(&id)?, &pairs, &require(domain::auth::Permission::Operate)?).await?)
}

/// Sets a source server's standby by hand.
#[server(prefix = "/console", endpoint = "set_pair", input = leptos::server_fn::codec::Json)]
pub async fn set_pair(
    id: String,
    source_server_id: String,
    standby_instance_id: String,
    expected_version: Option<u64>,
) -> Result<InstancePair, ConsoleError> {
    let source =
        domain::ids::SourceServerId::parse(source_server_id.trim()).map_err(|e| bad_id("source_server_id", e))?;
    let standby =
        domain::ids::InstanceId::parse(standby_instance_id.trim()).map_err(|e| bad_id("standby_instance_id", e))?;
    let pair_id = domain::ids::PairId::for_source(&source);
    Ok(services()?
        .set_pair(&group_id(&id)?, &pair_id, &standby, expected_version, &require(domain::auth::Permission::Operate)?)
        .await?)
}

/// Removes a pair.
#[server(prefix = "/console", endpoint = "delete_pair", input = leptos::server_fn::codec::Json)]
pub async fn delete_pair(id: String, pair_id: String, expected_version: Option<u64>) -> Result<(), ConsoleError> {
    let pair_id = domain::ids::PairId::parse(&pair_id).map_err(|e| bad_id("pair_id", e))?;
    Ok(services()?
        .delete_pair(&require(domain::auth::Permission::Operate)?, &group_id(&id)?, &pair_id, expected_version)
        .await?)
}

/// Where each pair's launch configuration stands.
#[server(prefix = "/console", endpoint = "launch_status", input = leptos::server_fn::codec::Json)]
pub async fn launch_status(id: String) -> Result<Vec<domain::launch::LaunchConfigStatus>, ConsoleError> {
    Ok(services()?.launch_config_status(&group_id(&id)?).await?)
}

/// Previews or applies the launch-into configuration for some (or all) of a group's pairs.
#[server(prefix = "/console", endpoint = "configure", input = leptos::server_fn::codec::Json)]
pub async fn configure(
    id: String,
    dry_run: bool,
    pair_ids: Option<Vec<String>>,
) -> Result<domain::launch::ConfigureOutcome, ConsoleError> {
    let pair_ids = match pair_ids {
        None => None,
        Some(v) => Some(
            v.iter()
                .map(|p| domain::ids::PairId::parse(p).map_err(|e| bad_id("pair_ids", e)))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let req = engine::launch::ConfigureRequest { dry_run, pair_ids };
    Ok(services()?.configure_launch_into(&group_id(&id)?, &req, &require(domain::auth::Permission::Operate)?).await?)
}

/// Restores the launch configurations from before Roundtrip's first write.
#[server(prefix = "/console", endpoint = "rollback", input = leptos::server_fn::codec::Json)]
pub async fn rollback(id: String) -> Result<domain::launch::ConfigureOutcome, ConsoleError> {
    Ok(services()?.rollback_launch_into(&group_id(&id)?, None, &require(domain::auth::Permission::Operate)?).await?)
}

/// A group's last readiness and history; `now` evaluates it first.
#[server(prefix = "/console", endpoint = "readiness", input = leptos::server_fn::codec::Json)]
pub async fn readiness(id: String, now: bool) -> Result<ReadinessView, ConsoleError> {
    let s = services()?;
    let id = group_id(&id)?;
    let v = if now {
        let who = require(domain::auth::Permission::Operate)?;
        s.evaluate_readiness_for(&who, &id).await?
    } else {
        s.readiness(&id).await?
    };
    Ok(v)
}

/// The last verdict of every group.
#[server(prefix = "/console", endpoint = "verdicts", input = leptos::server_fn::codec::Json)]
pub async fn verdicts() -> Result<Vec<VerdictSummary>, ConsoleError> {
    Ok(services()?.verdicts().await?)
}

#[server(prefix = "/console", endpoint = "list_plans", input = leptos::server_fn::codec::Json)]
pub async fn list_plans() -> Result<Vec<domain::plan::RecoveryPlan>, ConsoleError> {
    Ok(services()?.list_plans().await?)
}

#[server(prefix = "/console", endpoint = "get_plan", input = leptos::server_fn::codec::Json)]
pub async fn get_plan(id: String) -> Result<domain::plan::RecoveryPlan, ConsoleError> {
    Ok(services()?.get_plan(&id).await?)
}

/// The pairs of these groups (for naming a plan's servers).
#[server(prefix = "/console", endpoint = "group_pairs", input = leptos::server_fn::codec::Json)]
pub async fn group_pairs(ids: Vec<String>) -> Result<Vec<InstancePair>, ConsoleError> {
    let s = services()?;
    let mut out = Vec::new();
    for id in ids.iter().take(100) {
        out.extend(s.list_pairs(&group_id(id)?).await?);
    }
    Ok(out)
}

/// Creates (no `id`) or replaces a plan.
#[server(prefix = "/console", endpoint = "save_plan", input = leptos::server_fn::codec::Json)]
pub async fn save_plan(
    id: Option<String>,
    input: domain::plan::RecoveryPlanInput,
    expected_version: Option<u64>,
) -> Result<domain::plan::RecoveryPlan, ConsoleError> {
    let who = require(domain::auth::Permission::Operate)?;
    let s = services()?;
    Ok(match id {
        None => s.create_plan(&who, &input).await?,
        Some(id) => s.update_plan(&who, &id, &input, expected_version).await?,
    })
}

#[server(prefix = "/console", endpoint = "delete_plan", input = leptos::server_fn::codec::Json)]
pub async fn delete_plan(id: String, expected_version: Option<u64>) -> Result<(), ConsoleError> {
    let who = require(domain::auth::Permission::Operate)?;
    Ok(services()?.delete_plan(&who, &id, expected_version).await?)
}

/// Executions, newest first.
#[server(prefix = "/console", endpoint = "list_executions", input = leptos::server_fn::codec::Json)]
pub async fn list_executions() -> Result<Vec<domain::execution::ExecutionSummary>, ConsoleError> {
    let all = services()?.list_executions().await?;
    Ok(all.iter().map(domain::execution::ExecutionSummary::of).collect())
}

/// One execution with its progress now.
#[server(prefix = "/console", endpoint = "get_execution", input = leptos::server_fn::codec::Json)]
pub async fn get_execution(id: String) -> Result<domain::execution::ExecutionView, ConsoleError> {
    Ok(services()?.execution_view(&id).await?)
}

/// Starts a drill, or requests a recovery; returns the execution's id.
#[server(prefix = "/console", endpoint = "start_execution", input = leptos::server_fn::codec::Json)]
pub async fn start_execution(request: domain::execution::StartExecution) -> Result<String, ConsoleError> {
    let s = services()?;
    let who = who()?;
    Ok(s.start_execution(&who, &request).await?.id)
}

/// Approves, rejects, releases a gate (approvers) or cancels (operators).
#[server(prefix = "/console", endpoint = "decide_execution", input = leptos::server_fn::codec::Json)]
pub async fn decide_execution(
    id: String,
    decision: domain::execution::Decision,
    comment: String,
) -> Result<(), ConsoleError> {
    use domain::auth::Permission;
    use domain::execution::Decision;
    let s = services()?;
    let who = require(if decision == Decision::Cancel { Permission::Operate } else { Permission::Approve })?;
    if matches!(decision, Decision::Approve | Decision::Reject) && comment.trim().is_empty() {
        return Err(refusal(
            domain::ErrorCode::ValidationFailed,
            "say why: an approval or rejection needs a comment".into(),
            serde_json::json!({ "fields": [{ "field": "comment", "code": "REQUIRED", "message": "a comment is required" }] }),
        ));
    }
    s.decide_execution(&who, &id, decision, comment.trim()).await?;
    Ok(())
}

/// Volumes DRS swapped out of standbys, with their retention (days) before they may be deleted.
#[server(prefix = "/console", endpoint = "swapped_volumes", input = leptos::server_fn::codec::Json)]
pub async fn swapped_volumes() -> Result<(u32, Vec<domain::recovery::SwappedVolume>), ConsoleError> {
    let s = services()?;
    Ok((s.settings.swapped_volume_retention_days, s.swapped_volumes().await?))
}

/// Requests a failback of an ended recovery; returns the failback's execution id.
#[server(prefix = "/console", endpoint = "start_failback", input = leptos::server_fn::codec::Json)]
pub async fn start_failback(request: domain::execution::StartFailback) -> Result<String, ConsoleError> {
    let s = services()?;
    let who = who()?;
    Ok(s.start_failback(&who, &request).await?.id)
}

/// A failback's round-trip proof.
#[server(prefix = "/console", endpoint = "round_trip_proof", input = leptos::server_fn::codec::Json)]
pub async fn round_trip_proof(id: String) -> Result<Vec<domain::execution::ProofRow>, ConsoleError> {
    Ok(services()?.round_trip_proof(&id).await?)
}

/// Re-arms what an ended failback left.
#[server(prefix = "/console", endpoint = "re_arm", input = leptos::server_fn::codec::Json)]
pub async fn re_arm(id: String) -> Result<(), ConsoleError> {
    let s = services()?;
    let who = who()?;
    s.request_re_arm(&who, &id).await?;
    Ok(())
}

/// Deletes a swapped-out volume whose retention has ended.
#[server(prefix = "/console", endpoint = "delete_swapped_volume", input = leptos::server_fn::codec::Json)]
pub async fn delete_swapped_volume(volume_id: String) -> Result<(), ConsoleError> {
    let s = services()?;
    let who = who()?;
    Ok(s.delete_swapped_volume(&who, &volume_id).await?)
}

/// What a failback of a recovery would do now: which servers go and which stay (and why), and the failed
/// prerequisites.
#[server(prefix = "/console", endpoint = "failback_preview", input = leptos::server_fn::codec::Json)]
pub async fn failback_preview(
    request: domain::execution::StartFailback,
) -> Result<domain::execution::FailbackPreview, ConsoleError> {
    let s = services()?;
    let who = who()?;
    Ok(s.failback_preview(&who, &request).await?)
}
