//! The OpenAPI 3.1 document of REST API v1, served at `/api/v1/openapi.json`.
//!
//! Written by hand next to the handlers; `server/tests/api` checks that every route of the router is
//! documented here and every documented path answers.

use axum::Json;
use serde_json::{Value, json};

fn error_responses(codes: &[u16]) -> Value {
    let mut m = serde_json::Map::new();
    for c in codes {
        m.insert(c.to_string(), json!({ "description": "error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }));
    }
    Value::Object(m)
}

fn ok(description: &str, schema: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn body(schema: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

/// The document.
pub fn spec() -> Value {
    let group_id = json!({ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^pg-[0-9a-f]{1,32}$" } });
    let pair_id = json!({ "name": "pair_id", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^pair-[0-9a-f]{17}$" } });
    let expected =
        json!({ "name": "expected_version", "in": "query", "required": false, "schema": { "type": "integer" } });
    let execution_id =
        json!({ "name": "execution_id", "in": "path", "required": true, "schema": { "type": "string" } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Roundtrip REST API",
            "version": "1",
            "description": "Disaster recovery into pre-provisioned standbys with AWS Elastic Disaster Recovery. Errors are {\"error\":{\"code\",\"message\",\"details\"}} with stable codes."
        },
        "security": [{ "bearer": [] }, { "session": [] }],
        "paths": {
            "/api/v1/health": { "get": { "summary": "Liveness", "responses": { "200": { "description": "ok" } } } },
            "/api/v1/estate": { "get": { "summary": "Estate overview: accounts, regions, source servers by replication state, standbys by state",
                "responses": with(json!({ "200": { "description": "overview" } }), error_responses(&[502])) } },
            "/api/v1/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3.1" } } } },
            "/api/v1/protection-groups": {
                "get": { "summary": "List protection groups with pair counts", "responses": { "200": { "description": "{\"protection_groups\":[{\"group\":ProtectionGroup,\"pairs\":n}]}" } } },
                "post": { "summary": "Create a protection group", "requestBody": body("ProtectionGroupInput"),
                    "responses": with(json!({ "201": ok("created", "ProtectionGroup") }), error_responses(&[400, 409, 413, 415])) }
            },
            "/api/v1/protection-groups/{id}": {
                "parameters": [group_id],
                "get": { "summary": "Read a protection group", "responses": with(json!({ "200": ok("the group", "ProtectionGroup") }), error_responses(&[400, 404])) },
                "put": { "summary": "Replace a protection group's settings (pairs stay)", "requestBody": body("ProtectionGroupReplace"),
                    "responses": with(json!({ "200": ok("replaced", "ProtectionGroup") }), error_responses(&[400, 404, 409])) },
                "delete": { "summary": "Delete a protection group and its pairs", "parameters": [expected],
                    "responses": with(json!({ "204": { "description": "deleted" } }), error_responses(&[400, 404, 409])) }
            },
            "/api/v1/protection-groups/{id}/instance-pairs": {
                "parameters": [group_id],
                "get": { "summary": "List a group's pairs", "responses": with(json!({ "200": { "description": "{\"pairs\":[InstancePair]}" } }), error_responses(&[400, 404])) },
                "post": { "summary": "Accept pairs, all or none. A pair equal to a proposed pair of the current match report is recorded as matched, any other as manual.",
                    "requestBody": body("AcceptPairs"),
                    "responses": with(json!({ "201": { "description": "{\"accepted\":[InstancePair],\"unchanged\":n}" }, "200": { "description": "every pair was already stored" } }), error_responses(&[400, 404, 409, 413, 422])) }
            },
            "/api/v1/protection-groups/{id}/instance-pairs/{pair_id}": {
                "parameters": [group_id, pair_id],
                "put": { "summary": "Set the standby of a pair by hand (manual override), validated like an accepted pair",
                    "requestBody": body("SetPair"),
                    "responses": with(json!({ "200": ok("the pair", "InstancePair") }), error_responses(&[400, 404, 409, 422])) },
                "delete": { "summary": "Remove a pair", "parameters": [expected],
                    "responses": with(json!({ "204": { "description": "removed" } }), error_responses(&[400, 404, 409])) }
            },
            "/api/v1/protection-groups/{id}/configure-allow-launching": {
                "parameters": [group_id],
                "post": { "summary": "Preview (dry_run) or apply the launch-into configuration of the group's pairs (all, or pair_ids): step 1 turns off copyPrivateIp, copyTags and right-sizing and sets the launch disposition; step 2 sets launchIntoEC2InstanceID. Per-server outcomes; idempotent.",
                    "requestBody": body("ConfigureRequest"),
                    "responses": with(json!({ "200": ok("per-server outcomes", "ConfigureOutcome") }), error_responses(&[400, 404, 502])) }
            },
            "/api/v1/protection-groups/{id}/configure-allow-launching/rollback": {
                "parameters": [group_id],
                "post": { "summary": "Restore each server's launch configuration from before Roundtrip's first write",
                    "requestBody": body("RollbackRequest"),
                    "responses": with(json!({ "200": ok("per-server outcomes", "ConfigureOutcome") }), error_responses(&[400, 404, 502])) }
            },
            "/api/v1/protection-groups/{id}/launch-config-status": {
                "parameters": [group_id],
                "get": { "summary": "Per pair: configured, not configured, drifted (changed outside Roundtrip) or unreadable",
                    "responses": with(json!({ "200": { "description": "{\"servers\":[…]}" } }), error_responses(&[400, 404])) }
            },
            "/api/v1/protection-groups/{id}/readiness": {
                "parameters": [group_id],
                "get": { "summary": "The last readiness (evaluated now if there is none) and the verdict history",
                    "responses": with(json!({ "200": ok("readiness", "ReadinessView") }), error_responses(&[400, 404, 502])) },
                "post": { "summary": "Evaluate readiness now",
                    "responses": with(json!({ "200": ok("readiness", "ReadinessView") }), error_responses(&[400, 404, 502])) }
            },
            "/api/v1/readiness": {
                "get": { "summary": "The last verdict of every group", "responses": { "200": { "description": "{\"protection_groups\":[…]}" } } }
            },
            "/api/v1/drs/instances/match": {
                "post": { "summary": "Name-tag matching: pairs, conflicts, unmatched sources and standbys with reasons, suggestions, counts",
                    "requestBody": body("MatchRequest"),
                    "responses": with(json!({ "200": { "description": "match report" } }), error_responses(&[400, 404, 502])) }
            },
            "/api/v1/drs/instances/validate-pairs": {
                "post": { "summary": "Check a group's pairs against the estate now: tag, state, uniqueness, architecture, platform, boot mode, IP",
                    "requestBody": body("GroupRef"),
                    "responses": with(json!({ "200": ok("per-pair findings", "ValidationReport") }), error_responses(&[400, 404, 502])) }
            },
            "/api/v1/recovery-plans": {
                "get": { "summary": "List recovery plans", "responses": with(json!({ "200": { "description": "{\"recovery_plans\":[RecoveryPlan]}" } }), error_responses(&[401])) },
                "post": { "summary": "Create a recovery plan; without waves, they are derived from the pairs' dr:wave tags. Refused unless every pair is in one of the plan's groups, in one wave only, and launches into its standby",
                    "requestBody": body("RecoveryPlanInput"),
                    "responses": with(json!({ "201": ok("created", "RecoveryPlan") }), error_responses(&[400, 401, 403, 409])) }
            },
            "/api/v1/recovery-plans/{plan_id}": {
                "parameters": [{ "name": "plan_id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "get": { "summary": "Read a recovery plan", "responses": with(json!({ "200": ok("the plan", "RecoveryPlan") }), error_responses(&[401, 404])) },
                "put": { "summary": "Replace a recovery plan (expected_version optional)", "requestBody": body("RecoveryPlanInput"),
                    "responses": with(json!({ "200": ok("replaced", "RecoveryPlan") }), error_responses(&[400, 401, 403, 404, 409])) },
                "delete": { "summary": "Delete a recovery plan", "parameters": [expected],
                    "responses": with(json!({ "204": { "description": "deleted" } }), error_responses(&[401, 403, 404, 409])) }
            },
            "/api/v1/executions/allow-launching/failover": {
                "post": { "summary": "Start an execution of a plan: a drill runs at once (and returns its standbys to standby afterwards); a recovery (kind planned: stop and drain the sources first; disaster: never touch them) waits until a second person with the approver role approves. Refused when readiness blocks a server (warnings too unless acknowledged), a standby is still a DRS recovery instance, or the plan or any of its servers is in a live execution",
                    "requestBody": body("StartExecution"),
                    "responses": with(json!({ "201": ok("the execution", "Execution") }), error_responses(&[400, 401, 403, 404])) }
            },
            "/api/v1/executions/allow-launching/failback": {
                "post": { "summary": "Request a failback of an ended recovery (never a drill): its verified servers, in the plan's wave order, back into their original instances — reverse replication, wait until continuous, stop and tag the originals (only with stop_originals / tag_originals), launch into them and verify id and private IP. Runs once a second person approves. leave_behind lists servers to keep on their DR standbys; ready_only leaves behind every server whose own prerequisites fail. Refused with one error per failed prerequisite of the servers that would go; NOTHING_TO_FAIL_BACK says why none would",
                    "parameters": [{ "name": "dry_run", "in": "query", "schema": { "type": "boolean" }, "description": "report the prerequisites ({ready, problems}) and request nothing" }],
                    "requestBody": body("StartFailback"),
                    "responses": with(json!({ "201": ok("the failback execution", "Execution"), "200": { "description": "with dry_run: {ready, problems[], going[{source_server_id, name}], staying[{source_server_id, name, reason (NOT_VERIFIED, ALREADY_HOME, LEFT_BEHIND, NOT_READY), message}]}" } }), error_responses(&[400, 401, 403, 404])) }
            },
            "/api/v1/executions/{execution_id}/round-trip-proof": {
                "parameters": [execution_id],
                "get": { "summary": "A failback's round-trip proof: per server, instance and private IP before failover, after failover and after failback, with a verdict (identical, mismatch, incomplete)", "responses": with(json!({ "200": { "description": "{\"execution_id\", \"servers\":[ProofRow]}" } }), error_responses(&[400, 401, 404])) }
            },
            "/api/v1/executions/{execution_id}/report": {
                "parameters": [execution_id,
                    { "name": "format", "in": "query", "required": false, "schema": { "type": "string", "enum": ["json", "html"] } },
                    { "name": "download", "in": "query", "required": false, "schema": { "type": "boolean" } }],
                "get": { "summary": "The execution's evidence report: plan, who requested and approved and when, readiness at start, per-wave and per-server timeline, RTO against target, identity verification, errors and their handling, the round-trip proof of a failback, and the audit-chain range that covers it. JSON, or a self-contained printable HTML page with format=html",
                    "responses": with(json!({ "200": { "description": "EvidenceReport (JSON) or text/html" } }), error_responses(&[400, 401, 404])) }
            },
            "/api/v1/reports": {
                "parameters": [
                    { "name": "mode", "in": "query", "required": false, "schema": { "type": "string", "enum": ["drill", "recovery", "failback"] } },
                    { "name": "plan_id", "in": "query", "required": false, "schema": { "type": "string" } }],
                "get": { "summary": "Drill history: ended executions, oldest first, with RTO against target (the trend over drills)",
                    "responses": with(json!({ "200": { "description": "{\"reports\":[{execution_id, plan_id, plan_name, mode, kind, outcome, requested_at, ended_at, rto_ms, rto_target_ms, met_target, servers, verified, failed}]}" } }), error_responses(&[400, 401])) }
            },
            "/api/v1/webhooks": {
                "get": { "summary": "Webhooks with their delivery status and recent failures (host only; never the URL path or the secret)", "responses": with(json!({ "200": { "description": "{\"webhooks\":[WebhookView], \"queued\": n}" } }), error_responses(&[401])) },
                "post": { "summary": "Register a webhook (admin): generic JSON or a Slack-compatible message, for all or some notice kinds; the URL and signing secret are stored and never shown again",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["name", "url"], "properties": {
                        "name": { "type": "string" }, "url": { "type": "string" }, "format": { "type": "string", "enum": ["generic", "slack"] },
                        "events": { "type": "array", "items": { "type": "string", "enum": ["execution_requested", "awaiting_approval", "wave_started", "wave_finished", "server_failed", "identity_mismatch", "execution_finished", "readiness_blocked"] } },
                        "secret": { "type": "string", "description": "signs each body: X-Roundtrip-Signature: sha256=<hex HMAC-SHA256>" } } } } } },
                    "responses": with(json!({ "201": { "description": "WebhookView" } }), error_responses(&[400, 401, 403])) }
            },
            "/api/v1/webhooks/{webhook_id}": {
                "parameters": [{ "name": "webhook_id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "delete": { "summary": "Delete a webhook (admin)", "responses": with(json!({ "204": { "description": "deleted" } }), error_responses(&[401, 403, 404])) }
            },
            "/api/v1/webhooks/{webhook_id}/test": {
                "parameters": [{ "name": "webhook_id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "post": { "summary": "Send a test notice to one webhook (admin); its delivery shows in the status", "responses": with(json!({ "202": { "description": "queued" } }), error_responses(&[400, 401, 403, 404])) }
            },
            "/api/v1/executions": {
                "get": { "summary": "List executions, newest first", "responses": with(json!({ "200": { "description": "{\"executions\":[Execution]}" } }), error_responses(&[401])) }
            },
            "/api/v1/executions/{execution_id}": {
                "parameters": [execution_id],
                "get": { "summary": "Read an execution: phase, waves and per-server states, job ids, errors", "responses": with(json!({ "200": ok("the execution", "Execution") }), error_responses(&[401, 404])) }
            },
            "/api/v1/executions/{execution_id}/allow-launching/status": {
                "parameters": [execution_id],
                "get": { "summary": "Progress: phase, percent done, elapsed time, per-wave counts and RTO against the plan's target", "responses": with(json!({ "200": { "description": "ExecutionStatus" } }), error_responses(&[400, 401])) }
            },
            "/api/v1/executions/{execution_id}/events": {
                "parameters": [execution_id],
                "get": { "summary": "Server-Sent Events: `event: execution` with {execution, status} on every change and every few seconds while it runs; the stream ends after the execution ends", "responses": with(json!({ "200": { "description": "text/event-stream of ExecutionView" } }), error_responses(&[401, 404])) }
            },
            "/api/v1/swapped-volumes": {
                "get": { "summary": "Volumes DRS swapped out of standbys when it launched into them, with the retention before they may be deleted (Roundtrip never deletes them itself)", "responses": with(json!({ "200": { "description": "{\"retention_days\":n,\"volumes\":[SwappedVolume]}" } }), error_responses(&[401])) }
            },
            "/api/v1/swapped-volumes/{volume_id}": {
                "parameters": [{ "name": "volume_id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "delete": { "summary": "Delete a swapped-out volume whose retention has ended (refused before: RETENTION_NOT_OVER); recorded in the audit trail",
                    "responses": with(json!({ "204": { "description": "deleted" } }), error_responses(&[400, 401, 403])) }
            },
            "/api/v1/executions/{execution_id}/approve": {
                "parameters": [execution_id],
                "post": { "summary": "Approve a requested recovery (a comment is required; the requester cannot approve). 409 NOT_AWAITING_APPROVAL, with details.phase, when the request expired, was rejected or already started", "requestBody": body("Decision"),
                    "responses": with(json!({ "200": ok("the execution", "Execution") }), error_responses(&[400, 401, 403, 404, 409])) }
            },
            "/api/v1/executions/{execution_id}/reject": {
                "parameters": [execution_id],
                "post": { "summary": "Reject a requested recovery (a comment is required). 409 NOT_AWAITING_APPROVAL, with details.phase, when nothing awaits approval", "requestBody": body("Decision"),
                    "responses": with(json!({ "200": ok("the execution", "Execution") }), error_responses(&[400, 401, 403, 404, 409])) }
            },
            "/api/v1/executions/{execution_id}/resume": {
                "parameters": [execution_id],
                "post": { "summary": "Release the gate before the next wave. 409 NOT_AWAITING_GATE, with details.phase, when no wave waits at a gate", "requestBody": body("Decision"),
                    "responses": with(json!({ "200": ok("the execution", "Execution") }), error_responses(&[400, 401, 403, 404, 409])) }
            },
            "/api/v1/executions/{execution_id}/cancel": {
                "parameters": [execution_id],
                "post": { "summary": "Cancel: no new jobs or waves start; jobs in flight finish and are recorded. 409 EXECUTION_ENDED, with details.phase, once the execution has ended", "requestBody": body("Decision"),
                    "responses": with(json!({ "200": ok("the execution", "Execution") }), error_responses(&[400, 401, 403, 404, 409])) }
            },
            "/api/v1/executions/{execution_id}/re-arm": {
                "parameters": [execution_id],
                "post": { "summary": "Re-arm what an ended failback left (its re-arm was abandoned or gave up): re-protect the originals, return the DR standbys to standby, re-apply the launch-into configuration. A failback re-arms by itself; this runs it again",
                    "responses": with(json!({ "200": ok("the execution", "Execution") }), error_responses(&[400, 401, 403, 404, 409])) }
            },
            "/api/v1/session": {
                "get": { "summary": "Who is signed in, and the session's CSRF token (send it as X-CSRF-Token with state-changing requests signed in by cookie)",
                    "responses": with(json!({ "200": ok("identity", "SessionInfo") }), error_responses(&[401])) },
                "post": { "summary": "Sign in with a user name and password; sets the HttpOnly session cookie", "requestBody": body("Credentials"),
                    "responses": with(json!({ "200": ok("identity", "SessionInfo") }), error_responses(&[400, 401, 429])) },
                "delete": { "summary": "Sign out", "responses": with(json!({ "204": { "description": "signed out" } }), error_responses(&[401])) }
            },
            "/api/v1/session/password": {
                "post": { "summary": "Change your own password (required after a one-time password)", "requestBody": body("PasswordChange"),
                    "responses": with(json!({ "200": ok("the user", "User") }), error_responses(&[400, 401, 403])) }
            },
            "/api/v1/cloud/access-check": {
                "post": { "summary": "Test access: try every read Roundtrip needs in every account and region, and name what is missing",
                    "responses": with(json!({ "200": { "description": "{\"ok\": bool, \"checks\": [{account_id, account_name, region, action, ok, detail}]}" } }), error_responses(&[401, 403])) }
            },
            "/api/v1/cloud/accounts": {
                "get": { "summary": "The accounts Roundtrip reaches: configured (settings or estate) and registered in the console", "responses": with(json!({ "200": { "description": "{\"accounts\": [{account_id, name, role_arn, regions, external_id_set, source}]}" } }), error_responses(&[401, 403])) },
                "post": { "summary": "Register an account (or change one registered here); the External ID is stored and never shown again",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["account_id", "name", "regions"], "properties": {
                        "account_id": { "type": "string" }, "name": { "type": "string" }, "role_arn": { "type": "string" }, "external_id": { "type": "string" }, "regions": { "type": "array", "items": { "type": "string" } } } } } } },
                    "responses": with(json!({ "200": { "description": "the account" } }), error_responses(&[400, 401, 403])) }
            },
            "/api/v1/cloud/accounts/{account_id}": {
                "parameters": [{ "name": "account_id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "delete": { "summary": "Remove an account registered in the console", "responses": with(json!({ "204": { "description": "removed" } }), error_responses(&[400, 401, 403])) }
            },
            "/api/v1/users": {
                "get": { "summary": "List users", "responses": with(json!({ "200": { "description": "{\"users\":[User]}" } }), error_responses(&[401, 403])) },
                "post": { "summary": "Create a user with a one-time password", "requestBody": body("NewUser"),
                    "responses": with(json!({ "201": ok("created", "User") }), error_responses(&[400, 401, 403, 409])) }
            },
            "/api/v1/users/{username}": {
                "parameters": [{ "name": "username", "in": "path", "required": true, "schema": { "type": "string" } }],
                "patch": { "summary": "Change a user's role, disable or enable them, or reset their password", "requestBody": body("UserChange"),
                    "responses": with(json!({ "200": ok("the user", "User") }), error_responses(&[400, 401, 403, 404, 409])) }
            },
            "/api/v1/tokens": {
                "get": { "summary": "List API tokens (never their secrets)", "responses": with(json!({ "200": { "description": "{\"tokens\":[ApiToken]}" } }), error_responses(&[401, 403])) },
                "post": { "summary": "Create an API token scoped to a role; the answer holds its secret, shown once", "requestBody": body("NewToken"),
                    "responses": with(json!({ "201": { "description": "{\"token\":\"rt_…\",\"details\":ApiToken}" } }), error_responses(&[400, 401, 403])) }
            },
            "/api/v1/tokens/{id}": {
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "delete": { "summary": "Revoke an API token", "responses": with(json!({ "200": { "description": "the revoked token" } }), error_responses(&[401, 403, 404])) }
            },
            "/api/v1/audit": {
                "get": { "summary": "The audit trail, newest first, filtered; format json (default), jsonl or csv for export",
                    "parameters": [
                        { "name": "actor", "in": "query", "schema": { "type": "string" } },
                        { "name": "action", "in": "query", "schema": { "type": "string" }, "description": "prefix, e.g. protection_group. or aws." },
                        { "name": "target", "in": "query", "schema": { "type": "string" } },
                        { "name": "since", "in": "query", "schema": { "type": "integer" } },
                        { "name": "until", "in": "query", "schema": { "type": "integer" } },
                        { "name": "limit", "in": "query", "schema": { "type": "integer", "maximum": 10000 } },
                        { "name": "format", "in": "query", "schema": { "type": "string", "enum": ["json", "jsonl", "csv"] } } ],
                    "responses": with(json!({ "200": { "description": "{\"entries\":[AuditEntry]}" } }), error_responses(&[400, 401])) }
            },
            "/api/v1/audit/verify": {
                "get": { "summary": "Walk the hash chain: 200 when intact, 409 AUDIT_CHAIN_BROKEN listing each edited or removed entry",
                    "responses": with(json!({ "200": { "description": "ChainReport" } }), error_responses(&[401, 409])) }
            },
            "/api/v1/share-links": {
                "get": { "summary": "List share links (never their tokens)", "responses": with(json!({ "200": { "description": "{\"share_links\":[ShareLink]}" } }), error_responses(&[401])) },
                "post": { "summary": "Create a share link for the stakeholder status page; the answer holds its token, shown once", "requestBody": body("NewShareLink"),
                    "responses": with(json!({ "201": { "description": "{\"token\",\"path\",\"details\"}" } }), error_responses(&[400, 401, 403])) }
            },
            "/api/v1/share-links/{id}": {
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }],
                "patch": { "summary": "Change the message stakeholders see", "requestBody": body("ShareLinkChange"),
                    "responses": with(json!({ "200": { "description": "the link" } }), error_responses(&[400, 401, 403, 404, 409])) },
                "delete": { "summary": "Revoke a share link", "responses": with(json!({ "200": { "description": "the revoked link" } }), error_responses(&[401, 403, 404])) }
            },
            "/api/v1/share/{token}": {
                "parameters": [{ "name": "token", "in": "path", "required": true, "schema": { "type": "string" } }],
                "get": { "summary": "What a share link shows: application names, verdicts, times and the operator's message; no sign-in",
                    "security": [],
                    "responses": with(json!({ "200": { "description": "StakeholderStatus" } }), error_responses(&[404])) }
            },
            "/api/v1/drs/instances/validate-ip": {
                "post": { "summary": "Check a group's standby private IPs: unchanged, inside the subnet CIDR, not AWS-reserved, not used twice",
                    "requestBody": body("GroupRef"),
                    "responses": with(json!({ "200": ok("per-pair findings", "ValidationReport") }), error_responses(&[400, 404, 502])) }
            }
        },
        "components": {
          "securitySchemes": {
            "bearer": { "type": "http", "scheme": "bearer", "description": "An API token (rt_…) or, when configured, a JWT from the OIDC issuer" },
            "session": { "type": "apiKey", "in": "cookie", "name": "rt_session", "description": "The console's session; state-changing requests also need X-CSRF-Token" } },
          "schemas": {
            "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message", "details"], "properties": {
                "code": { "type": "string", "enum": ["VALIDATION_FAILED", "MALFORMED_JSON", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", "ROUTE_NOT_FOUND", "PROTECTION_GROUP_NOT_FOUND", "PAIR_NOT_FOUND", "VERSION_CONFLICT", "DUPLICATE_NAME", "PAIR_REJECTED", "LAUNCH_CONFIGURATION_APPLIED", "CLOUD_ERROR", "THROTTLED", "INTERNAL",
                    "UNAUTHENTICATED", "FORBIDDEN", "CSRF_REJECTED", "LOGIN_FAILED", "LOGIN_THROTTLED", "PASSWORD_CHANGE_REQUIRED", "USER_NOT_FOUND", "DUPLICATE_USER", "TOKEN_NOT_FOUND", "SHARE_LINK_NOT_FOUND", "LAST_ADMIN", "SELF_APPROVAL", "NO_PERMISSION_DECLARED", "AUDIT_CHAIN_BROKEN", "RECOVERY_PLAN_NOT_FOUND", "EXECUTION_NOT_FOUND", "WEBHOOK_NOT_FOUND", "IN_RECOVERY_PLAN", "NOT_AWAITING_APPROVAL", "NOT_AWAITING_GATE", "EXECUTION_ENDED"] },
                "message": { "type": "string" }, "details": { "type": "object" } } } } },
            "StartExecution": { "type": "object", "required": ["plan_id", "mode"], "properties": {
                "plan_id": { "type": "string" }, "mode": { "type": "string", "enum": ["drill", "recovery"] },
                "kind": { "type": "string", "enum": ["planned", "disaster"], "default": "disaster", "description": "for a recovery: planned stops and drains the sources first" },
                "acknowledge_warnings": { "type": "boolean", "default": false } } },
            "StartFailback": { "type": "object", "required": ["execution_id"], "properties": {
                "execution_id": { "type": "string", "description": "the ended recovery to fail back" },
                "stop_originals": { "type": "boolean", "default": false, "description": "let Roundtrip stop running originals (DRS cannot)" },
                "tag_originals": { "type": "boolean", "default": false, "description": "let Roundtrip tag originals AWSDRS=AllowLaunchingIntoThisInstance" },
                "terminate_standbys_confirmation": { "type": "string", "description": "admins only: the plan's name, typed, to terminate the DR standbys afterwards instead of returning them to standby" },
                "leave_behind": { "type": "array", "items": { "type": "string" }, "description": "source server ids to leave on their DR standbys; a later failback can take them" },
                "ready_only": { "type": "boolean", "default": false, "description": "leave behind every server whose own prerequisites fail instead of refusing the whole failback" } } },
            "Decision": { "type": "object", "properties": { "comment": { "type": "string", "maxLength": 1000 } } },
            "Execution": { "type": "object", "properties": {
                "id": { "type": "string" }, "plan_id": { "type": "string" }, "plan_name": { "type": "string" }, "dr": { "$ref": "#/components/schemas/AccountRegion" },
                "rto_target_minutes": { "type": "integer" }, "version": { "type": "integer" },
                "state": { "type": "object", "description": "mode (drill, recovery, failback), kind (planned, disaster), phase (awaiting_approval, running, awaiting_gate, cleaning_up, succeeded, failed, cancelled, rejected, expired), requested_by, approved_by, waves[] with servers[] (state waiting, starting, launching, launched, verified, failed; job_id; error)" } } },
            "Wave": { "type": "object", "required": ["name", "pair_ids"], "properties": {
                "name": { "type": "string", "maxLength": 128 }, "pair_ids": { "type": "array", "items": { "type": "string" } },
                "pause_before": { "type": "boolean", "default": false, "description": "an approver releases the execution before this wave" },
                "on_failure": { "type": "string", "enum": ["stop", "continue"], "default": "stop" },
                "timeout_minutes": { "type": "integer", "minimum": 1, "maximum": 1440, "default": 60 } } },
            "RecoveryPlanInput": { "type": "object", "required": ["name", "protection_group_ids"], "properties": {
                "name": { "type": "string", "maxLength": 128 }, "description": { "type": "string" },
                "protection_group_ids": { "type": "array", "items": { "type": "string" } },
                "waves": { "type": "array", "maxItems": 100, "items": { "$ref": "#/components/schemas/Wave" }, "description": "derived from dr:wave tags when absent" },
                "rto_target_minutes": { "type": "integer", "minimum": 1, "maximum": 1440, "default": 30 },
                "expected_version": { "type": "integer", "description": "PUT only" } } },
            "RecoveryPlan": { "allOf": [ { "$ref": "#/components/schemas/RecoveryPlanInput" }, { "type": "object", "properties": {
                "id": { "type": "string" }, "created_at": { "type": "integer" }, "created_by": { "type": "string" }, "updated_at": { "type": "integer" }, "version": { "type": "integer" } } } ] },
            "Credentials": { "type": "object", "required": ["username", "password"], "properties": { "username": { "type": "string" }, "password": { "type": "string" } } },
            "SessionInfo": { "type": "object", "properties": { "principal": { "type": "object", "properties": {
                "subject": { "type": "string" }, "role": { "$ref": "#/components/schemas/Role" }, "method": { "type": "string", "enum": ["session", "token", "oidc"] },
                "must_change_password": { "type": "boolean" } } }, "csrf_token": { "type": ["string", "null"] } } },
            "PasswordChange": { "type": "object", "required": ["current_password", "new_password"], "properties": { "current_password": { "type": "string" }, "new_password": { "type": "string", "minLength": 12 } } },
            "Role": { "type": "string", "enum": ["viewer", "operator", "approver", "admin"] },
            "User": { "type": "object", "properties": { "username": { "type": "string" }, "role": { "$ref": "#/components/schemas/Role" }, "disabled": { "type": "boolean" },
                "must_change_password": { "type": "boolean" }, "created_at": { "type": "integer" }, "created_by": { "type": "string" }, "updated_at": { "type": "integer" }, "version": { "type": "integer" } } },
            "NewUser": { "type": "object", "required": ["username", "role", "password"], "properties": { "username": { "type": "string", "maxLength": 64 }, "role": { "$ref": "#/components/schemas/Role" }, "password": { "type": "string", "minLength": 12 } } },
            "UserChange": { "type": "object", "properties": { "role": { "$ref": "#/components/schemas/Role" }, "disabled": { "type": "boolean" }, "reset_password": { "type": "string" }, "expected_version": { "type": "integer" } } },
            "NewToken": { "type": "object", "required": ["name", "role"], "properties": { "name": { "type": "string", "maxLength": 80 }, "role": { "$ref": "#/components/schemas/Role" }, "expires_in_days": { "type": "integer", "minimum": 1, "maximum": 3650 } } },
            "NewShareLink": { "type": "object", "required": ["name"], "properties": { "name": { "type": "string", "maxLength": 80 }, "message": { "type": "string", "maxLength": 500 },
                "scope": { "type": "object", "properties": { "kind": { "type": "string", "enum": ["estate", "execution"] }, "execution_id": { "type": "string" } } },
                "expires_in_hours": { "type": "integer", "minimum": 1, "maximum": 8760 } } },
            "ShareLinkChange": { "type": "object", "required": ["message"], "properties": { "message": { "type": "string", "maxLength": 500 }, "expected_version": { "type": "integer" } } },
            "AccountRegion": { "type": "object", "required": ["account_id", "region"], "properties": {
                "account_id": { "type": "string", "pattern": "^[0-9]{12}$" }, "region": { "type": "string", "examples": ["us-west-2"] } } },
            "Selection": { "oneOf": [
                { "type": "object", "required": ["kind"], "properties": { "kind": { "const": "all" } } },
                { "type": "object", "required": ["kind", "tags"], "properties": { "kind": { "const": "tags" }, "tags": { "type": "object", "additionalProperties": { "type": "string" } } } },
                { "type": "object", "required": ["kind", "source_server_ids"], "properties": { "kind": { "const": "source_server_ids" }, "source_server_ids": { "type": "array", "items": { "type": "string" } } } } ] },
            "SourceNameKey": { "type": "string", "enum": ["name_tag_then_hostname", "name_tag", "hostname"] },
            "ProtectionGroupInput": { "type": "object", "required": ["name", "primary", "dr"], "properties": {
                "name": { "type": "string", "maxLength": 128 }, "description": { "type": "string", "maxLength": 1024 },
                "primary": { "$ref": "#/components/schemas/AccountRegion" }, "dr": { "$ref": "#/components/schemas/AccountRegion" },
                "selection": { "$ref": "#/components/schemas/Selection" }, "source_name_key": { "$ref": "#/components/schemas/SourceNameKey" } } },
            "ProtectionGroupReplace": { "allOf": [ { "$ref": "#/components/schemas/ProtectionGroupInput" },
                { "type": "object", "properties": { "expected_version": { "type": "integer" } } } ] },
            "ProtectionGroup": { "allOf": [ { "$ref": "#/components/schemas/ProtectionGroupInput" }, { "type": "object", "properties": {
                "id": { "type": "string" }, "created_at": { "type": "integer", "description": "Unix ms" }, "updated_at": { "type": "integer" }, "version": { "type": "integer" } } } ] },
            "PairRequest": { "type": "object", "required": ["source_server_id", "standby_instance_id"], "properties": {
                "source_server_id": { "type": "string", "pattern": "^s-[0-9a-f]{17}$" }, "standby_instance_id": { "type": "string", "pattern": "^i-[0-9a-f]{8,17}$" } } },
            "AcceptPairs": { "type": "object", "required": ["pairs"], "properties": { "pairs": { "type": "array", "maxItems": 10000, "items": { "$ref": "#/components/schemas/PairRequest" } } } },
            "SetPair": { "type": "object", "required": ["standby_instance_id"], "properties": { "standby_instance_id": { "type": "string" }, "expected_version": { "type": "integer" } } },
            "InstancePair": { "type": "object", "properties": {
                "id": { "type": "string" }, "protection_group_id": { "type": "string" }, "source_server_id": { "type": "string" }, "standby_instance_id": { "type": "string" },
                "origin": { "type": "string", "enum": ["matched", "manual"] }, "source_name": { "type": "string" }, "standby_name": { "type": "string" },
                "standby_private_ip": { "type": "string" }, "standby_subnet_id": { "type": "string" }, "wave": { "type": ["string", "null"] },
                "accepted_at": { "type": "integer" }, "accepted_by": { "type": "string" }, "version": { "type": "integer" } } },
            "MatchRequest": { "type": "object", "properties": {
                "protection_group_id": { "type": "string" }, "primary": { "$ref": "#/components/schemas/AccountRegion" }, "dr": { "$ref": "#/components/schemas/AccountRegion" },
                "selection": { "$ref": "#/components/schemas/Selection" }, "source_name_key": { "$ref": "#/components/schemas/SourceNameKey" } } },
            "ConfigureRequest": { "type": "object", "properties": { "dry_run": { "type": "boolean", "default": false },
                "pair_ids": { "type": "array", "items": { "type": "string" }, "description": "a subset of the group's pairs; all when absent" } } },
            "RollbackRequest": { "type": "object", "properties": { "pair_ids": { "type": "array", "items": { "type": "string" } } } },
            "ConfigureOutcome": { "type": "object", "properties": {
                "dry_run": { "type": "boolean" }, "writes": { "type": "integer" }, "calls": { "type": "integer" }, "throttled": { "type": "integer" },
                "counts": { "type": "object", "additionalProperties": { "type": "integer" } },
                "results": { "type": "array", "items": { "type": "object", "properties": {
                    "pair_id": { "type": "string" }, "source_server_id": { "type": "string" }, "standby_instance_id": { "type": "string" },
                    "status": { "type": "string", "enum": ["refused", "failed", "rolled_back", "would_change", "applied", "unchanged", "restored", "nothing_to_restore"] },
                    "changes": { "type": "array", "items": { "type": "object", "properties": { "field": { "type": "string" }, "current": { "type": "string" }, "desired": { "type": "string" }, "changes": { "type": "boolean" }, "step": { "type": "integer" } } } },
                    "writes": { "type": "integer" }, "reasons": { "type": "array" } } } } } },
            "ReadinessView": { "type": "object", "properties": {
                "readiness": { "type": "object", "properties": {
                    "verdict": { "type": "string", "enum": ["ready", "ready_with_warnings", "blocked"] }, "score": { "type": "integer" },
                    "evaluated_at": { "type": "integer" }, "group_checks": { "type": "array" }, "pairs": { "type": "array" },
                    "failing": { "type": "array", "description": "[check id, failing count], most frequent first" } } },
                "history": { "type": "array", "items": { "type": "object", "properties": { "verdict": { "type": "string" }, "since": { "type": "integer" }, "because": { "type": "array" } } } } } },
            "GroupRef": { "type": "object", "required": ["protection_group_id"], "properties": { "protection_group_id": { "type": "string" } } },
            "ValidationReport": { "type": "object", "properties": {
                "results": { "type": "array", "items": { "type": "object", "properties": {
                    "pair_id": { "type": "string" }, "source_server_id": { "type": "string" }, "standby_instance_id": { "type": "string" },
                    "status": { "type": "string", "enum": ["ready", "warning", "blocked"] },
                    "findings": { "type": "array", "items": { "type": "object", "properties": { "code": { "type": "string" }, "severity": { "type": "string", "enum": ["critical", "warning"] }, "message": { "type": "string" } } } } } } },
                "summary": { "type": "object" } } }
        } }
    })
}

/// The document with each operation's declared access (`x-access`) taken from the route table.
pub fn spec_with_access() -> Value {
    let mut doc = spec();
    for rule in super::route_rules() {
        let path = format!("{}{}", super::PREFIX, rule.path);
        let method = rule.method.as_str().to_lowercase();
        if let Some(op) = doc["paths"].get_mut(&path).and_then(|p| p.get_mut(&method)) {
            op["x-access"] = serde_json::to_value(rule.access).unwrap_or(Value::Null);
            if matches!(rule.access, domain::auth::Access::Public | domain::auth::Access::ShareLink) {
                op["security"] = json!([]);
            }
        }
    }
    doc
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec_with_access())
}
