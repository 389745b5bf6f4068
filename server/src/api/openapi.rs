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
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Roundtrip REST API",
            "version": "1",
            "description": "Disaster recovery into pre-provisioned standbys with AWS Elastic Disaster Recovery. Errors are {\"error\":{\"code\",\"message\",\"details\"}} with stable codes."
        },
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
            "/api/v1/drs/instances/validate-ip": {
                "post": { "summary": "Check a group's standby private IPs: unchanged, inside the subnet CIDR, not AWS-reserved, not used twice",
                    "requestBody": body("GroupRef"),
                    "responses": with(json!({ "200": ok("per-pair findings", "ValidationReport") }), error_responses(&[400, 404, 502])) }
            }
        },
        "components": { "schemas": {
            "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message", "details"], "properties": {
                "code": { "type": "string", "enum": ["VALIDATION_FAILED", "MALFORMED_JSON", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", "ROUTE_NOT_FOUND", "PROTECTION_GROUP_NOT_FOUND", "PAIR_NOT_FOUND", "VERSION_CONFLICT", "DUPLICATE_NAME", "PAIR_REJECTED", "LAUNCH_CONFIGURATION_APPLIED", "CLOUD_ERROR", "THROTTLED", "INTERNAL"] },
                "message": { "type": "string" }, "details": { "type": "object" } } } } },
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

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec())
}
