use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn reasons(list: &Value, key: &str) -> Vec<String> {
    list.as_array().unwrap().iter().map(|u| u[key].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_bundled_estate_shows_every_planted_problem() {
    let app = spawn_app().await;
    let g = app.create_group("Everything").await;
    let r = app.match_group(g["id"].as_str().unwrap()).await;
    let c = &r["counts"];
    assert_eq!((c["source_servers"].as_u64(), c["standbys"].as_u64()), (Some(96), Some(96)));

    // Two standbys whose names normalise alike: one conflict, nobody paired on that name.
    assert_eq!(r["conflicts"].as_array().unwrap().len(), 1);
    let conflict = &r["conflicts"][0];
    assert_eq!(
        (conflict["side"].as_str(), conflict["normalized_name"].as_str()),
        (Some("standbys"), Some("shop-web-02"))
    );
    assert_eq!(conflict["standby_instance_ids"].as_array().unwrap().len(), 2);
    assert!(r["pairs"].as_array().unwrap().iter().all(|p| p["normalized_name"] != "shop-web-02"));

    // Every unmatched item has a reason; the planted ones are there.
    let src = reasons(&r["unmatched_sources"], "reason");
    for want in ["NO_NAME", "CONFLICT", "NO_STANDBY_WITH_NAME"] {
        assert!(src.iter().any(|s| s == want), "missing source reason {want}: {src:?}");
    }
    let sb = reasons(&r["unmatched_standbys"], "reason");
    for want in ["AWSDRS_TAG_NOT_EXACT", "CONFLICT", "NO_SOURCE_WITH_NAME"] {
        assert!(sb.iter().any(|s| s == want), "missing standby reason {want}: {sb:?}");
    }

    // A running standby blocks its pair; a stalled source warns.
    let findings = |status: &str| -> Vec<String> {
        r["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["status"] == status)
            .flat_map(|p| p["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap().to_owned()))
            .collect()
    };
    assert_eq!(findings("blocked"), ["STANDBY_NOT_STOPPED"]);
    assert_eq!(findings("warning"), ["SOURCE_NOT_CONTINUOUS"]);

    // The typo in a standby's name is a suggestion, not a pair.
    let s = r["suggestions"].as_array().unwrap();
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!((s[0]["source_name"].as_str(), s[0]["standby_name"].as_str()), (Some("crm-app-02"), Some("crmapp-02")));
}

#[tokio::test]
async fn matching_works_for_explicit_accounts_and_regions_without_a_group() {
    let app = spawn_app().await;
    let body = json!({
        "primary": { "account_id": "111111111111", "region": "us-east-1" },
        "dr": { "account_id": "222222222222", "region": "us-west-2" },
        "selection": { "kind": "tags", "tags": { "tier": "db" } }
    });
    let (status, r) = app.post("/api/v1/drs/instances/match", &body).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(r["pairs"].as_array().unwrap().iter().all(|p| p["source_name"].as_str().unwrap().contains("-db-")));
    assert!(r["counts"]["source_servers"].as_u64().unwrap() > 5);
}

#[tokio::test]
async fn validation_finds_what_changed_in_the_estate_since_pairs_were_accepted() {
    let app = spawn_app().await;
    let g = app.create_group("Shop").await;
    let id = g["id"].as_str().unwrap().to_owned();
    let report = app.match_group(&id).await;
    let (status, _) = app.accept_ready(&id, &report).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, v) = app.post("/api/v1/drs/instances/validate-pairs", &json!({ "protection_group_id": id })).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["summary"]["blocked"], 0, "freshly accepted ready pairs validate clean: {v}");
    assert_eq!(v["summary"]["warning"], 0);

    // The estate moves on: someone starts one standby, re-addresses another, strips a tag, and gives two
    // standbys the same IP.
    let targets: Vec<String> = report["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "ready")
        .take(5)
        .map(|p| p["standby_instance_id"].as_str().unwrap().to_owned())
        .collect();
    app.simulator.with_world(|w| {
        let find = |w: &mut sim::world::World, id: &str| {
            w.scenario.instances.iter().position(|i| i.instance_id.as_str() == id).unwrap()
        };
        let a = find(w, &targets[0]);
        w.scenario.instances[a].state = domain::estate::InstanceState::Running;
        let b = find(w, &targets[1]);
        w.scenario.instances[b].private_ip = "10.1.0.0".parse().unwrap();
        let c = find(w, &targets[2]);
        w.scenario.instances[c].tags.insert("AWSDRS".into(), "no".into());
        let (d, e) = (find(w, &targets[3]), find(w, &targets[4]));
        let ip = w.scenario.instances[e].private_ip;
        w.scenario.instances[d].private_ip = ip;
    });
    let (_, v) = app.post("/api/v1/drs/instances/validate-pairs", &json!({ "protection_group_id": id })).await;
    let codes_of = |standby: &str| -> Vec<String> {
        v["results"].as_array().unwrap().iter().find(|r| r["standby_instance_id"] == standby).unwrap()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(codes_of(&targets[0]), ["STANDBY_NOT_STOPPED"]);
    assert_eq!(codes_of(&targets[1]), ["IP_CHANGED", "IP_OUTSIDE_SUBNET"]);
    assert_eq!(codes_of(&targets[2]), ["STANDBY_NOT_TAGGED"]);
    assert_eq!(codes_of(&targets[3]), ["IP_CHANGED", "IP_IN_USE_TWICE"]);
    assert_eq!(codes_of(&targets[4]), ["IP_IN_USE_TWICE"]);
    assert_eq!(v["summary"]["blocked"], 5);

    let (status, ips) = app.post("/api/v1/drs/instances/validate-ip", &json!({ "protection_group_id": id })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ips["summary"]["blocked"], 3, "only the IP problems count here: {}", ips["summary"]);
}
