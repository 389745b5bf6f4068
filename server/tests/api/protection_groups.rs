use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn health_names_the_estate() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((body["status"].as_str(), body["cloud"].as_str()), (Some("ok"), Some("simulated")));
}

#[tokio::test]
async fn a_group_is_created_read_listed_replaced_and_deleted() {
    let app = spawn_app().await;
    let g = app.create_group("Shop").await;
    let id = g["id"].as_str().unwrap();
    assert!(id.starts_with("pg-"));
    assert_eq!(g["version"], 1);

    let (status, read) = app.get(&format!("/api/v1/protection-groups/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["name"], "Shop");

    let (_, list) = app.get("/api/v1/protection-groups").await;
    assert_eq!(list["protection_groups"].as_array().unwrap().len(), 1);

    let mut body = group_body("Shop, renamed");
    body["selection"] = json!({ "kind": "tags", "tags": { "app": "shop" } });
    body["expected_version"] = json!(1);
    let (status, replaced) = app.send(Method::PUT, &format!("/api/v1/protection-groups/{id}"), &body).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!((replaced["name"].as_str(), replaced["version"].as_u64()), (Some("Shop, renamed"), Some(2)));

    // Only the shop servers are selected now.
    let report = app.match_group(id).await;
    assert_eq!(report["counts"]["source_servers"], 7);

    let (status, _) = app.delete(&format!("/api/v1/protection-groups/{id}?expected_version=2")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&format!("/api/v1/protection-groups/{id}")).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "PROTECTION_GROUP_NOT_FOUND"));
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_and_changes_nothing() {
    let app = spawn_app().await;
    let g = app.create_group("Shop").await;
    let id = g["id"].as_str().unwrap();
    let mut body = group_body("Other");
    body["expected_version"] = json!(7);
    let (status, err) = app.send(Method::PUT, &format!("/api/v1/protection-groups/{id}"), &body).await;
    assert_eq!((status, code(&err)), (StatusCode::CONFLICT, "VERSION_CONFLICT"));
    assert_eq!(err["error"]["details"]["actual"], 1);
    let (_, read) = app.get(&format!("/api/v1/protection-groups/{id}")).await;
    assert_eq!(read["name"], "Shop");
    let (status, _) = app.delete(&format!("/api/v1/protection-groups/{id}?expected_version=9")).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn names_are_unique_whatever_their_case_and_spacing() {
    let app = spawn_app().await;
    app.create_group("Shop Estate").await;
    let (status, err) = app.post("/api/v1/protection-groups", &group_body("  shop   ESTATE ")).await;
    assert_eq!((status, code(&err)), (StatusCode::CONFLICT, "DUPLICATE_NAME"));
    let other = app.create_group("Billing").await;
    let mut body = group_body("SHOP estate");
    body["expected_version"] = json!(1);
    let (status, err) =
        app.send(Method::PUT, &format!("/api/v1/protection-groups/{}", other["id"].as_str().unwrap()), &body).await;
    assert_eq!((status, code(&err)), (StatusCode::CONFLICT, "DUPLICATE_NAME"));
}

#[tokio::test]
async fn groups_and_pairs_survive_a_restart() {
    let app = spawn_app().await;
    let g = app.create_group("Shop").await;
    let id = g["id"].as_str().unwrap().to_owned();
    let report = app.match_group(&id).await;
    let (status, accepted) = app.accept_ready(&id, &report).await;
    assert_eq!(status, StatusCode::CREATED, "{accepted}");
    let n = accepted["accepted"].as_array().unwrap().len();
    assert!(n > 80, "the bundled estate has many ready pairs, got {n}");

    let app = app.restart().await;
    let (status, pairs) = app.get(&format!("/api/v1/protection-groups/{id}/instance-pairs")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pairs["pairs"].as_array().unwrap().len(), n);
    let (_, list) = app.get("/api/v1/protection-groups").await;
    assert_eq!(list["protection_groups"][0]["pairs"], n);
}

#[tokio::test]
async fn the_console_renders_the_matching_page_with_its_conflicts() {
    let app = spawn_app().await;
    let g = app.create_group("Shop").await;
    let html = app.client.get(app.url(&format!("/matching?group={}", g["id"].as_str().unwrap()))).send().await.unwrap();
    assert_eq!(html.status(), StatusCode::OK);
    let html = html.text().await.unwrap();
    assert!(html.contains("Conflicts (1)"), "server-rendered page lists the conflict");
    assert!(html.contains("shop-web-02"));
    let missing = app.client.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app().await;
    let (status, doc) = app.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "pg-0").replace("{pair_id}", "pair-00000000000000000");
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = app.send(m, &concrete, &json!({})).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_ne!(code(&body), "ROUTE_NOT_FOUND", "{method} {path} is documented but not routed");
            checked += 1;
        }
    }
    assert_eq!(checked, server::api::route_rules().len());
}

#[tokio::test]
async fn estate_names_are_rendered_as_text_never_as_markup() {
    let app = spawn_app().await;
    let g = app.create_group("Shop").await;
    let hostile = "<img src=x onerror=alert(1)>";
    let breakout = "</script><script>alert(2)</script>";
    app.simulator.with_world(|w| {
        for (name, payload) in [("hr-web-01", hostile), ("hr-web-02", breakout)] {
            let s =
                w.scenario.source_servers.iter_mut().find(|s| s.tags.get("Name").is_some_and(|n| n == name)).unwrap();
            s.tags.insert("Name".into(), payload.into());
        }
    });
    let report = app.match_group(g["id"].as_str().unwrap()).await;
    assert!(report["unmatched_sources"].as_array().unwrap().iter().any(|u| u["source_name"] == hostile));
    let html = app
        .client
        .get(app.url(&format!("/matching?group={}", g["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains(hostile), "the raw name must not reach the page as markup");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "it is shown, escaped");
    assert!(!html.contains(breakout), "nor can a name close the hydration data's script element");
}
