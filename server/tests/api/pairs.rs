use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn first(list: &Value, pred: impl Fn(&Value) -> bool) -> &Value {
    list.as_array().unwrap().iter().find(|v| pred(v)).expect("no such item")
}

#[tokio::test]
async fn accepting_is_idempotent_and_all_or_nothing() {
    let app = spawn_app().await;
    let id = app.create_group("Shop").await["id"].as_str().unwrap().to_owned();
    let report = app.match_group(&id).await;
    let ready = report["counts"]["ready_pairs"].as_u64().unwrap() as usize;
    let (status, out) = app.accept_ready(&id, &report).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(out["accepted"].as_array().unwrap().len(), ready);
    assert!(
        out["accepted"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["origin"] == "matched" && p["accepted_by"] == "admin (token tests)")
    );

    let (status, again) = app.accept_ready(&id, &report).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((again["accepted"].as_array().unwrap().len(), again["unchanged"].as_u64()), (0, Some(ready as u64)));

    // One bad pair in a batch refuses the whole batch.
    let blocked = first(&report["unmatched_sources"], |u| u["reason"] == "NO_NAME");
    let other_standby = first(&report["pairs"], |p| p["status"] == "ready")["standby_instance_id"].clone();
    let (status, err) = app
        .post(
            &format!("/api/v1/protection-groups/{id}/instance-pairs"),
            &json!({ "pairs": [{ "source_server_id": blocked["source_server_id"], "standby_instance_id": other_standby }] }),
        )
        .await;
    assert_eq!((status, code(&err)), (StatusCode::UNPROCESSABLE_ENTITY, "PAIR_REJECTED"));
    assert_eq!(err["error"]["details"]["rejections"][0]["reasons"][0]["code"], "STANDBY_ALREADY_PAIRED");
    let (_, pairs) = app.get(&format!("/api/v1/protection-groups/{id}/instance-pairs")).await;
    assert_eq!(pairs["pairs"].as_array().unwrap().len(), ready);
}

#[tokio::test]
async fn a_pair_set_by_hand_is_validated_and_recorded_as_manual() {
    let app = spawn_app().await;
    let id = app.create_group("Shop").await["id"].as_str().unwrap().to_owned();
    let report = app.match_group(&id).await;
    // The nameless source server cannot be matched; the operator knows it is crm-app-01.
    let nameless = first(&report["unmatched_sources"], |u| u["reason"] == "NO_NAME")["source_server_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let standby =
        first(&report["unmatched_standbys"], |u| u["name"] == "crm-app-01")["instance_id"].as_str().unwrap().to_owned();
    let pair_id = format!("pair-{}", &nameless[2..]);
    let path = format!("/api/v1/protection-groups/{id}/instance-pairs/{pair_id}");
    let (status, p) = app.send(Method::PUT, &path, &json!({ "standby_instance_id": standby })).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!((p["origin"].as_str(), p["version"].as_u64()), (Some("manual"), Some(1)));

    // An override onto a standby of another architecture or platform is refused with the reason.
    let mismatched = app.simulator.with_world(|w| {
        w.scenario
            .instances
            .iter()
            .find(|i| i.is_standby() && i.platform == domain::estate::Platform::Windows)
            .unwrap()
            .instance_id
            .to_string()
    });
    let (status, err) =
        app.send(Method::PUT, &path, &json!({ "standby_instance_id": mismatched, "expected_version": 1 })).await;
    assert_eq!((status, code(&err)), (StatusCode::UNPROCESSABLE_ENTITY, "PAIR_REJECTED"), "{err}");
    let reasons: Vec<&str> = err["error"]["details"]["rejections"][0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"PLATFORM_MISMATCH"), "{reasons:?}");

    // A stale version is a conflict; the right one replaces.
    let (status, err) =
        app.send(Method::PUT, &path, &json!({ "standby_instance_id": standby, "expected_version": 5 })).await;
    assert_eq!((status, code(&err)), (StatusCode::CONFLICT, "VERSION_CONFLICT"));

    let (status, _) = app.delete(&format!("{path}?expected_version=1")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, err) = app.delete(&path).await;
    assert_eq!((status, code(&err)), (StatusCode::NOT_FOUND, "PAIR_NOT_FOUND"));
    // An edit of the pair the client read, which someone removed meanwhile, is refused, not re-created.
    let (status, err) =
        app.send(Method::PUT, &path, &json!({ "standby_instance_id": standby, "expected_version": 1 })).await;
    assert_eq!((status, code(&err)), (StatusCode::CONFLICT, "VERSION_CONFLICT"));
}

#[tokio::test]
async fn a_standby_pairs_with_one_source_server_across_groups() {
    let app = spawn_app().await;
    let a = app.create_group("A").await["id"].as_str().unwrap().to_owned();
    let b = app.create_group("B").await["id"].as_str().unwrap().to_owned();
    let report = app.match_group(&a).await;
    assert_eq!(app.accept_ready(&a, &report).await.0, StatusCode::CREATED);
    let (status, err) = app.accept_ready(&b, &report).await;
    assert_eq!((status, code(&err)), (StatusCode::UNPROCESSABLE_ENTITY, "PAIR_REJECTED"));
    let reasons: Vec<&str> = err["error"]["details"]["rejections"][0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["STANDBY_ALREADY_PAIRED", "SOURCE_PAIRED_IN_OTHER_GROUP"]);
}

#[tokio::test]
async fn deleting_a_group_removes_its_pairs() {
    let app = spawn_app().await;
    let id = app.create_group("Shop").await["id"].as_str().unwrap().to_owned();
    let report = app.match_group(&id).await;
    app.accept_ready(&id, &report).await;
    assert_eq!(app.delete(&format!("/api/v1/protection-groups/{id}")).await.0, StatusCode::NO_CONTENT);
    // A new group can now take the same standbys.
    let again = app.create_group("Shop").await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.accept_ready(&again, &report).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn concurrent_accepts_cannot_pair_one_standby_twice() {
    let app = spawn_app().await;
    let a = app.create_group("A").await["id"].as_str().unwrap().to_owned();
    let b = app.create_group("B").await["id"].as_str().unwrap().to_owned();
    let report = app.match_group(&a).await;
    for _ in 0..5 {
        let ((sa, _), (sb, _)) = tokio::join!(app.accept_ready(&a, &report), app.accept_ready(&b, &report));
        let created = [sa, sb].iter().filter(|s| **s == StatusCode::CREATED).count();
        assert!(created <= 1, "both groups got the same standbys: {sa} {sb}");
        if created == 1 {
            break;
        }
    }
    let (_, pa) = app.get(&format!("/api/v1/protection-groups/{a}/instance-pairs")).await;
    let (_, pb) = app.get(&format!("/api/v1/protection-groups/{b}/instance-pairs")).await;
    let total = pa["pairs"].as_array().unwrap().len() + pb["pairs"].as_array().unwrap().len();
    assert_eq!(total as u64, report["counts"]["ready_pairs"].as_u64().unwrap(), "each standby is paired once");
}
