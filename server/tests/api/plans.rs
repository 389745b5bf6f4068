//! Recovery plans: derived from `dr:wave` tags, validated on save, versioned, audited.

use crate::helpers::{TestApp, client_with_token, code, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A group over the bundled estate with its ready pairs accepted; returns (group id, pair ids).
async fn group_with_pairs(app: &TestApp) -> (String, Vec<String>) {
    let id = app.create_group("Shop").await["id"].as_str().unwrap().to_owned();
    let report = app.match_group(&id).await;
    let (status, accepted) = app.accept_ready(&id, &report).await;
    assert_eq!(status, StatusCode::CREATED);
    let pairs = accepted["accepted"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect();
    (id, pairs)
}

async fn configure(app: &TestApp, id: &str) {
    let (status, out) =
        app.post(&format!("/api/v1/protection-groups/{id}/configure-allow-launching"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{out}");
}

fn fields(body: &Value) -> Vec<(String, String)> {
    body["error"]["details"]["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| (f["field"].as_str().unwrap().to_owned(), f["code"].as_str().unwrap().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_plan_is_refused_until_its_pairs_launch_into_their_standbys() {
    let app = spawn_app().await;
    let (id, pairs) = group_with_pairs(&app).await;
    let (status, body) =
        app.post("/api/v1/recovery-plans", &json!({ "name": "Shop", "protection_group_ids": [id] })).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "VALIDATION_FAILED"));
    let unconfigured = fields(&body).iter().filter(|(_, c)| c == "TARGET_NOT_CONFIGURED").count();
    assert_eq!(unconfigured, pairs.len(), "every pair is named");
}

#[tokio::test]
async fn without_waves_the_plan_follows_the_dr_wave_tags() {
    let app = spawn_app().await;
    let (id, pairs) = group_with_pairs(&app).await;
    configure(&app, &id).await;
    let (status, plan) =
        app.post("/api/v1/recovery-plans", &json!({ "name": "Shop failover", "protection_group_ids": [id] })).await;
    assert_eq!(status, StatusCode::CREATED, "{plan}");
    let waves = plan["waves"].as_array().unwrap();
    let names: Vec<&str> = waves.iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Wave 1", "Wave 2", "Wave 3"], "the bundled estate tags its tiers 1 to 3");
    let placed: usize = waves.iter().map(|w| w["pair_ids"].as_array().unwrap().len()).sum();
    assert_eq!(placed, pairs.len());
    assert_eq!((plan["rto_target_minutes"].as_u64(), plan["version"].as_u64()), (Some(30), Some(1)));
    let (_, audit) = app.get("/api/v1/audit?action=recovery_plan.").await;
    assert_eq!(audit["entries"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn edited_waves_are_checked_and_versions_guard_replacements() {
    let app = spawn_app().await;
    let (id, pairs) = group_with_pairs(&app).await;
    configure(&app, &id).await;
    let (_, plan) = app.post("/api/v1/recovery-plans", &json!({ "name": "Shop", "protection_group_ids": [id] })).await;
    let plan_id = plan["id"].as_str().unwrap();
    let path = format!("/api/v1/recovery-plans/{plan_id}");

    let bad = json!({
        "name": "Shop", "protection_group_ids": [id],
        "waves": [
            { "name": "first", "pair_ids": [pairs[0], pairs[1]], "pause_before": true },
            { "name": "again", "pair_ids": [pairs[0]] },
            { "name": "empty", "pair_ids": [] },
            { "name": "stranger", "pair_ids": ["pair-0ffffffffffffffff"] }
        ]
    });
    let (status, body) = app.send(Method::PUT, &path, &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        fields(&body),
        [
            ("waves[1].pair_ids[0]".to_owned(), "SERVER_TWICE".to_owned()),
            ("waves[2].pair_ids".to_owned(), "EMPTY_WAVE".to_owned()),
            ("waves[3].pair_ids[0]".to_owned(), "PAIR_NOT_IN_PLAN_GROUPS".to_owned()),
        ]
    );
    let (_, unchanged) = app.get(&path).await;
    assert_eq!(unchanged["version"], 1, "nothing was written");

    let good = json!({
        "name": "Shop, two waves", "protection_group_ids": [id], "rto_target_minutes": 20, "expected_version": 1,
        "waves": [
            { "name": "first", "pair_ids": [pairs[0]], "pause_before": true, "on_failure": "continue" },
            { "name": "rest", "pair_ids": pairs[1..] }
        ]
    });
    let (status, saved) = app.send(Method::PUT, &path, &good).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!((saved["version"].as_u64(), saved["waves"][0]["pause_before"].as_bool()), (Some(2), Some(true)));
    let (status, body) = app.send(Method::PUT, &path, &good).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "VERSION_CONFLICT"), "version 1 is gone");

    let viewer = client_with_token(&app.token_for("vic", "viewer").await);
    assert_eq!(viewer.delete(app.url(&path)).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(viewer.get(app.url(&path)).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.delete(&path).await.0, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&path).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "RECOVERY_PLAN_NOT_FOUND"));
}

#[tokio::test]
async fn plan_names_are_unique() {
    let app = spawn_app().await;
    let (id, _) = group_with_pairs(&app).await;
    configure(&app, &id).await;
    let input = json!({ "name": "Shop", "protection_group_ids": [id] });
    assert_eq!(app.post("/api/v1/recovery-plans", &input).await.0, StatusCode::CREATED);
    let (status, body) =
        app.post("/api/v1/recovery-plans", &json!({ "name": " shop ", "protection_group_ids": [id] })).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "DUPLICATE_NAME"));
}

#[tokio::test]
async fn a_group_or_pair_in_a_plan_cannot_be_deleted_until_the_plan_lets_go() {
    let app = spawn_app().await;
    let (id, pairs) = group_with_pairs(&app).await;
    configure(&app, &id).await;
    let (_, plan) = app.post("/api/v1/recovery-plans", &json!({ "name": "Shop", "protection_group_ids": [id] })).await;
    let rollback = format!("/api/v1/protection-groups/{id}/configure-allow-launching/rollback");
    assert_eq!(app.post(&rollback, &json!({})).await.0, StatusCode::OK);
    let (status, body) = app.delete(&format!("/api/v1/protection-groups/{id}/instance-pairs/{}", pairs[0])).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "IN_RECOVERY_PLAN"));
    let (status, body) = app.delete(&format!("/api/v1/protection-groups/{id}")).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "IN_RECOVERY_PLAN"));
    assert_eq!(body["error"]["details"]["recovery_plans"], json!(["Shop"]));
    assert_eq!(
        app.delete(&format!("/api/v1/recovery-plans/{}", plan["id"].as_str().unwrap())).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.delete(&format!("/api/v1/protection-groups/{id}")).await.0, StatusCode::NO_CONTENT);
}
