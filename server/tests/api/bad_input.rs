use crate::helpers::*;
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::json;

/// (method, path, body, expected status, expected code, why)
#[rstest]
#[case("POST", "/api/v1/protection-groups", "{not json", 400, "MALFORMED_JSON", "syntax error")]
#[case("POST", "/api/v1/protection-groups", "[1, 2]", 400, "MALFORMED_JSON", "wrong shape")]
#[case("POST", "/api/v1/protection-groups", r#"{"name": 5}"#, 400, "MALFORMED_JSON", "wrong type")]
#[case("POST", "/api/v1/protection-groups", r#"{"name":"x","primary":{"account_id":"12","region":"us-east-1"},"dr":{"account_id":"222222222222","region":"us-west-2"}}"#, 400, "VALIDATION_FAILED", "invalid account id")]
#[case("POST", "/api/v1/protection-groups", r#"{"name":"x","primary":{"account_id":"111111111111","region":"moon-1"},"dr":{"account_id":"222222222222","region":"us-west-2"}}"#, 400, "VALIDATION_FAILED", "invalid region")]
#[case("POST", "/api/v1/protection-groups", r#"{"name":"x","primary":{"account_id":"999999999999","region":"us-east-1"},"dr":{"account_id":"222222222222","region":"us-west-2"}}"#, 400, "VALIDATION_FAILED", "account outside the estate")]
#[case("POST", "/api/v1/protection-groups", r#"{"name":"","primary":{"account_id":"111111111111","region":"us-east-1"},"dr":{"account_id":"222222222222","region":"us-west-2"}}"#, 400, "VALIDATION_FAILED", "empty name")]
#[case("POST", "/api/v1/protection-groups", r#"{"name":"x","primary":{"account_id":"111111111111","region":"us-east-1"},"dr":{"account_id":"111111111111","region":"us-east-1"}}"#, 400, "VALIDATION_FAILED", "DR same as primary")]
#[case("GET", "/api/v1/protection-groups/pg-0123456789abcdef", "", 404, "PROTECTION_GROUP_NOT_FOUND", "unknown group")]
#[case("GET", "/api/v1/protection-groups/not-an-id", "", 400, "VALIDATION_FAILED", "malformed group id")]
#[case(
    "DELETE",
    "/api/v1/protection-groups/pg-0123456789abcdef",
    "",
    404,
    "PROTECTION_GROUP_NOT_FOUND",
    "delete unknown group"
)]
#[case(
    "GET",
    "/api/v1/protection-groups/pg-0123456789abcdef/instance-pairs",
    "",
    404,
    "PROTECTION_GROUP_NOT_FOUND",
    "pairs of unknown group"
)]
#[case(
    "POST",
    "/api/v1/drs/instances/match",
    r#"{"protection_group_id":"pg-0123456789abcdef"}"#,
    404,
    "PROTECTION_GROUP_NOT_FOUND",
    "match unknown group"
)]
#[case("POST", "/api/v1/drs/instances/match", "{}", 400, "VALIDATION_FAILED", "match without a group or sides")]
#[case(
    "POST",
    "/api/v1/drs/instances/match",
    r#"{"protection_group_id":"pg-1","extra":1}"#,
    400,
    "MALFORMED_JSON",
    "unknown field"
)]
#[case(
    "POST",
    "/api/v1/drs/instances/validate-pairs",
    r#"{"protection_group_id":"nope"}"#,
    400,
    "VALIDATION_FAILED",
    "malformed id in body"
)]
#[case(
    "POST",
    "/api/v1/drs/instances/validate-ip",
    r#"{"protection_group_id":"pg-77"}"#,
    404,
    "PROTECTION_GROUP_NOT_FOUND",
    "validate unknown group"
)]
#[case("GET", "/api/v1/nothing-here", "", 404, "ROUTE_NOT_FOUND", "unknown route")]
#[case("PATCH", "/api/v1/protection-groups", "{}", 405, "ROUTE_NOT_FOUND", "wrong method")]
#[case(
    "DELETE",
    "/api/v1/protection-groups/pg-0123456789abcdef?expected_version=abc",
    "",
    400,
    "VALIDATION_FAILED",
    "bad query value"
)]
#[case("POST", "/api/v1/protection-groups", r#"{"name":"x","primary":{"account_id":"111111111111","region":"us-east-1"},"dr":{"account_id":"222222222222","region":"us-west-2"},"selecton":{"kind":"tags","tags":{"app":"shop"}}}"#, 400, "MALFORMED_JSON", "a typo in a field name")]
#[case(
    "PUT",
    "/api/v1/protection-groups/pg-0123456789abcdef",
    r#"{"name":"x","expected_version":"one"}"#,
    400,
    "VALIDATION_FAILED",
    "expected_version not a number"
)]
#[tokio::test]
async fn bad_requests_get_a_stable_code(
    #[case] method: &str,
    #[case] path: &str,
    #[case] body: &str,
    #[case] status: u16,
    #[case] want: &str,
    #[case] why: &str,
) {
    let app = spawn_app().await;
    let mut req = app.client.request(Method::from_bytes(method.as_bytes()).unwrap(), app.url(path));
    if !body.is_empty() {
        req = req.header("content-type", "application/json").body(body.to_owned());
    }
    let r = req.send().await.unwrap();
    let got_status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    assert_eq!((got_status, code(&v)), (status, want), "{why}: {v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{why}: a message a person can act on");
}

#[tokio::test]
async fn every_invalid_field_is_listed() {
    let app = spawn_app().await;
    let (status, v) = app
        .post("/api/v1/protection-groups", &json!({ "name": "", "primary": { "account_id": "1", "region": "x" }, "dr": {}, "selection": { "kind": "source_server_ids", "source_server_ids": ["s-1"] } }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields: Vec<&str> =
        v["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "name",
            "primary.account_id",
            "primary.region",
            "dr.account_id",
            "dr.region",
            "selection.source_server_ids[0]"
        ]
    );
}

#[tokio::test]
async fn a_body_without_json_content_type_is_refused() {
    let app = spawn_app().await;
    let r =
        app.client.post(app.url("/api/v1/protection-groups")).body(group_body("x").to_string()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(code(&v), "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test]
async fn an_oversized_body_is_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    let mut body = group_body("big");
    body["description"] = json!("x".repeat(300 * 1024));
    let (status, v) = app.post("/api/v1/protection-groups", &body).await;
    assert_eq!((status, code(&v)), (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"));
    let (_, list) = app.get("/api/v1/protection-groups").await;
    assert!(list["protection_groups"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn malformed_pair_ids_are_named_per_item() {
    let app = spawn_app().await;
    let id = app.create_group("Shop").await["id"].as_str().unwrap().to_owned();
    let (status, v) = app
        .post(
            &format!("/api/v1/protection-groups/{id}/instance-pairs"),
            &json!({ "pairs": [{ "source_server_id": "s-1", "standby_instance_id": "i-0123456789abcdef0" }, { "source_server_id": "s-0123456789abcdef0", "standby_instance_id": "instance" }] }),
        )
        .await;
    assert_eq!((status, code(&v)), (StatusCode::BAD_REQUEST, "VALIDATION_FAILED"));
    let fields: Vec<&str> =
        v["error"]["details"]["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["pairs[0].source_server_id", "pairs[1].standby_instance_id"]);
    let (status, v) =
        app.post(&format!("/api/v1/protection-groups/{id}/instance-pairs"), &json!({ "pairs": [] })).await;
    assert_eq!((status, code(&v)), (StatusCode::BAD_REQUEST, "VALIDATION_FAILED"));
}
