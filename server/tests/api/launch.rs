use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sim::world::Fault;

/// A group over the bundled estate with its ready pairs accepted; returns (group id, match report).
async fn group_with_pairs(app: &TestApp) -> (String, Value) {
    let id = app.create_group("Shop").await["id"].as_str().unwrap().to_owned();
    let report = app.match_group(&id).await;
    assert_eq!(app.accept_ready(&id, &report).await.0, StatusCode::CREATED);
    (id, report)
}

fn configure_path(id: &str) -> String {
    format!("/api/v1/protection-groups/{id}/configure-allow-launching")
}

/// Successful `UpdateLaunchConfiguration` calls the simulated DRS received.
fn drs_writes(app: &TestApp) -> usize {
    app.simulator
        .with_world(|w| w.calls_of("drs:UpdateLaunchConfiguration").iter().filter(|c| c.outcome == "ok").count())
}

fn count(outcome: &Value, status: &str) -> u64 {
    outcome["counts"][status].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn a_group_is_previewed_applied_and_rolled_back_with_every_write_accounted_for() {
    let app = spawn_app().await;
    let (id, _) = group_with_pairs(&app).await;
    let status_of = |v: &Value| -> std::collections::BTreeMap<String, Value> {
        v["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["source_server_id"].as_str().unwrap().to_owned(), s.clone()))
            .collect()
    };
    let status_path = format!("/api/v1/protection-groups/{id}/launch-config-status");
    // What DRS answers before Roundtrip touches anything.
    let before = status_of(&app.get(&status_path).await.1);
    let pairs = before.len();
    assert!(pairs > 80);

    // Dry run: every server would change (at least the launch-into instance); nothing is written.
    let (status, dry) = app.post(&configure_path(&id), &json!({ "dry_run": true })).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!((count(&dry, "would_change") as usize, dry["writes"].as_u64()), (pairs, Some(0)));
    assert_eq!(drs_writes(&app), 0);
    let fields: Vec<&str> =
        dry["results"][0]["changes"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"launchIntoInstanceProperties.launchIntoEC2InstanceID"), "{fields:?}");

    // Apply: step 1 where a setting conflicts, step 2 for every server; the simulator saw exactly the
    // writes the outcome reports.
    let (_, applied) = app.post(&configure_path(&id), &json!({})).await;
    assert_eq!(count(&applied, "applied") as usize, pairs, "{}", applied["counts"]);
    let writes = drs_writes(&app);
    assert_eq!(applied["writes"].as_u64().unwrap() as usize, writes);
    let step1: usize = applied["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["changes"].as_array().unwrap().iter().any(|c| c["step"] == 1 && c["changes"] == true))
        .count();
    assert_eq!(writes, pairs + step1);
    let st = status_of(&app.get(&status_path).await.1);
    assert!(st.values().all(|s| s["state"] == "configured" && s["backed_up"] == true));

    // A configured group, or one of its configured pairs, cannot be deleted: DRS would be left pointing at
    // its standbys with nothing to roll back from.
    let some_pair = format!("pair-{}", &before.keys().next().unwrap()[2..]);
    let (status, err) = app.delete(&format!("/api/v1/protection-groups/{id}/instance-pairs/{some_pair}")).await;
    assert_eq!((status, code(&err)), (StatusCode::CONFLICT, "LAUNCH_CONFIGURATION_APPLIED"));
    let (status, err) = app.delete(&format!("/api/v1/protection-groups/{id}")).await;
    assert_eq!((status, code(&err)), (StatusCode::CONFLICT, "LAUNCH_CONFIGURATION_APPLIED"));

    // Idempotent: applying again writes nothing.
    let (_, again) = app.post(&configure_path(&id), &json!({})).await;
    assert_eq!((count(&again, "unchanged") as usize, again["writes"].as_u64()), (pairs, Some(0)));
    assert_eq!(drs_writes(&app), writes);

    // Rollback restores every configuration exactly as it was.
    let (status, rb) = app.post(&format!("{}/rollback", configure_path(&id)), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rb}");
    assert_eq!(count(&rb, "restored") as usize, pairs, "{}", rb["counts"]);
    let after = status_of(&app.get(&status_path).await.1);
    for (sid, s) in &after {
        assert_eq!(s["current"], before[sid]["current"], "{sid} restored exactly");
        assert_eq!((s["state"].as_str(), s["backed_up"].as_bool()), (Some("not_configured"), Some(false)));
    }
    let (_, rb2) = app.post(&format!("{}/rollback", configure_path(&id)), &json!({})).await;
    assert_eq!(
        app.delete(&format!("/api/v1/protection-groups/{id}")).await.0,
        StatusCode::NO_CONTENT,
        "deletable once rolled back"
    );
    assert_eq!(count(&rb2, "nothing_to_restore") as usize, pairs);

    // Every DRS write Roundtrip made is in the audit trail, with who made it, and the trail verifies.
    let (status, audit) = app.get("/api/v1/audit?action=aws.drs.&limit=10000").await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let recorded = audit["entries"].as_array().unwrap();
    assert_eq!(recorded.len(), drs_writes(&app));
    assert!(recorded.iter().all(|e| e["actor"] == "admin (token tests)" && e["outcome"] == "ok"), "{recorded:?}");
    let (status, chain) = app.get("/api/v1/audit/verify").await;
    assert_eq!((status, chain["intact"].as_bool()), (StatusCode::OK, Some(true)), "{chain}");
}

#[tokio::test]
async fn a_step_two_failure_undoes_step_one_and_the_others_continue() {
    let app = spawn_app().await;
    let (id, report) = group_with_pairs(&app).await;
    // An x86_64 server, whose default right-sizing (BASIC) makes step 1 write something to undo.
    let victim = report["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["status"] == "ready" && p["facts"]["source_architecture"] == "x86_64")
        .unwrap()["source_server_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sid = domain::ids::SourceServerId::parse(&victim).unwrap();
    let dr = domain::estate::AccountRegion {
        account_id: domain::ids::AccountId::parse("222222222222").unwrap(),
        region: domain::ids::Region::parse("us-west-2").unwrap(),
    };
    use engine::cloud::Cloud;
    let before = app.simulator.get_launch_configuration(&dr, &sid).await.unwrap();
    app.simulator
        .set_fault(&sid, Some(Fault::RejectLaunchInto { message: "instance settings conflict (injected)".into() }));

    let (_, out) = app.post(&configure_path(&id), &json!({})).await;
    let mine = out["results"].as_array().unwrap().iter().find(|r| r["source_server_id"] == victim.as_str()).unwrap();
    assert_eq!(mine["status"], "rolled_back", "{mine}");
    assert_eq!(mine["writes"], 2, "step 1, then its undo");
    assert!(mine["reasons"][0]["message"].as_str().unwrap().contains("injected"));
    assert_eq!(count(&out, "rolled_back"), 1);
    assert!(count(&out, "applied") > 80, "the others went on: {}", out["counts"]);
    assert_eq!(app.simulator.get_launch_configuration(&dr, &sid).await.unwrap(), before, "step 1 was undone");
    // Roundtrip's own undo is not drift.
    let (_, st) = app.get(&format!("/api/v1/protection-groups/{id}/launch-config-status")).await;
    let s = st["servers"].as_array().unwrap().iter().find(|s| s["source_server_id"] == victim.as_str()).unwrap();
    assert_eq!(s["state"], "not_configured", "{s}");
}

#[tokio::test]
async fn a_throttling_storm_is_ridden_out_without_losing_a_write() {
    let app = spawn_app().await;
    let (id, _) = group_with_pairs(&app).await;
    let (_, pairs) = app.get(&format!("/api/v1/protection-groups/{id}/instance-pairs")).await;
    let subset: Vec<Value> = pairs["pairs"].as_array().unwrap().iter().take(12).map(|p| p["id"].clone()).collect();
    app.simulator.set_drs_rate_limit(Some(25.0), 2);
    let (status, out) = app.post(&configure_path(&id), &json!({ "pair_ids": subset })).await;
    app.simulator.set_drs_rate_limit(None, 0);
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(count(&out, "applied"), 12, "{}", out["counts"]);
    assert!(out["throttled"].as_u64().unwrap() > 0, "the storm happened");
    assert_eq!(out["writes"].as_u64().unwrap() as usize, drs_writes(&app));
    let throttled_in_sim =
        app.simulator.with_world(|w| w.calls.iter().filter(|c| c.outcome == "ThrottlingException").count());
    assert_eq!(out["throttled"].as_u64().unwrap() as usize, throttled_in_sim, "every throttle was seen and retried");
}

#[tokio::test]
async fn a_pair_failing_a_prerequisite_is_refused_and_never_written() {
    let app = spawn_app().await;
    let (id, report) = group_with_pairs(&app).await;
    // Pair the running standby by hand: allowed (it can be stopped later), but not configurable yet.
    let blocked = report["pairs"].as_array().unwrap().iter().find(|p| p["status"] == "blocked").unwrap();
    let (status, _) = app
        .post(
            &format!("/api/v1/protection-groups/{id}/instance-pairs"),
            &json!({ "pairs": [{ "source_server_id": blocked["source_server_id"], "standby_instance_id": blocked["standby_instance_id"] }] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let pair_id = format!("pair-{}", &blocked["source_server_id"].as_str().unwrap()[2..]);
    let (_, out) = app.post(&configure_path(&id), &json!({ "pair_ids": [pair_id] })).await;
    assert_eq!(out["results"][0]["status"], "refused");
    assert_eq!(out["results"][0]["reasons"][0]["code"], "STANDBY_NOT_STOPPED");
    assert_eq!(drs_writes(&app), 0);
}

#[tokio::test]
async fn readiness_shows_the_planted_problems_and_turns_green_when_they_are_fixed() {
    let app = spawn_app().await;
    let (id, report) = group_with_pairs(&app).await;
    // Also pair the running standby and the stalled source, which matching flagged.
    let flagged: Vec<Value> = report["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] != "ready")
        .map(|p| json!({ "source_server_id": p["source_server_id"], "standby_instance_id": p["standby_instance_id"] }))
        .collect();
    assert_eq!(flagged.len(), 2);
    app.post(&format!("/api/v1/protection-groups/{id}/instance-pairs"), &json!({ "pairs": flagged })).await;
    let readiness = format!("/api/v1/protection-groups/{id}/readiness");
    let (status, r) = app.post(&readiness, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["readiness"]["verdict"], "blocked");
    let failing: Vec<&str> =
        r["readiness"]["failing"].as_array().unwrap().iter().map(|f| f[0].as_str().unwrap()).collect();
    for want in ["launch_config.applied", "standby.stopped", "replication.continuous", "group.all_sources_paired"] {
        assert!(failing.contains(&want), "{want} should fail: {failing:?}");
    }
    let any_check = &r["readiness"]["pairs"][0]["checks"][0];
    for key in ["id", "severity", "expected", "actual", "remediation"] {
        assert!(any_check.get(key).is_some(), "a check carries {key}: {any_check}");
    }

    // Fix them in the estate: stop the standby, let replication catch up, apply the configuration.
    app.simulator.with_world(|w| {
        for i in w.scenario.instances.iter_mut().filter(|i| i.is_standby()) {
            i.state = domain::estate::InstanceState::Stopped;
        }
        for s in &mut w.scenario.source_servers {
            s.replication_state = domain::estate::ReplicationState::Continuous;
            s.lag_seconds = 5;
        }
    });
    let (_, out) = app.post(&configure_path(&id), &json!({})).await;
    assert_eq!(count(&out, "refused") + count(&out, "failed"), 0, "{}", out["counts"]);
    let (_, r) = app.post(&readiness, &json!({})).await;
    let pairs_blocked = r["readiness"]["blocked_pairs"].as_u64().unwrap();
    assert_eq!(pairs_blocked, 0, "every pair passes: {}", r["readiness"]["failing"]);
    assert_eq!(
        r["readiness"]["verdict"], "ready_with_warnings",
        "only the unpaired sources remain: {}",
        r["readiness"]["failing"]
    );
    assert_eq!(r["history"].as_array().unwrap().len(), 2, "blocked, then ready with warnings");
    let (_, stored) = app.get(&readiness).await;
    let verdicts: Vec<&str> =
        stored["history"].as_array().unwrap().iter().map(|h| h["verdict"].as_str().unwrap()).collect();
    assert_eq!(verdicts, ["ready_with_warnings", "blocked"], "the stored history, newest first");

    // Drift: someone turns copy tags back on in DRS behind Roundtrip's back.
    let drifted = r["readiness"]["pairs"][0]["source_server_id"].as_str().unwrap().to_owned();
    app.simulator.with_world(|w| {
        let sid = domain::ids::SourceServerId::parse(&drifted).unwrap();
        w.launch_configurations.get_mut(&sid).unwrap().copy_tags = true;
    });
    let (_, st) = app.get(&format!("/api/v1/protection-groups/{id}/launch-config-status")).await;
    let s = st["servers"].as_array().unwrap().iter().find(|s| s["source_server_id"] == drifted.as_str()).unwrap();
    assert_eq!((s["state"].as_str(), s["drift"][0]["field"].as_str()), (Some("drifted"), Some("copyTags")));
    let (_, r) = app.post(&readiness, &json!({})).await;
    assert_eq!(r["readiness"]["verdict"], "blocked");
    assert!(r["readiness"]["failing"].as_array().unwrap().iter().any(|f| f[0] == "launch_config.drift"));

    // The overview's list of verdicts has the group.
    let (_, all) = app.get("/api/v1/readiness").await;
    assert_eq!(all["protection_groups"][0]["verdict"], "blocked");
}

#[tokio::test]
async fn a_server_in_an_active_drs_job_blocks_readiness() {
    let app = spawn_app().await;
    let (id, report) = group_with_pairs(&app).await;
    let busy = report["pairs"].as_array().unwrap().iter().find(|p| p["status"] == "ready").unwrap()["source_server_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.simulator.with_world(|w| {
        w.scenario.jobs.push(sim::scenario::ScenarioJob {
            job_id: "drsjob-0123456789abcdef0".into(),
            account_id: domain::ids::AccountId::parse("222222222222").unwrap(),
            region: domain::ids::Region::parse("us-west-2").unwrap(),
            status: "STARTED".into(),
            source_server_ids: vec![domain::ids::SourceServerId::parse(&busy).unwrap()],
        })
    });
    let (_, r) = app.post(&format!("/api/v1/protection-groups/{id}/readiness"), &json!({})).await;
    let pair =
        r["readiness"]["pairs"].as_array().unwrap().iter().find(|p| p["source_server_id"] == busy.as_str()).unwrap();
    let check = pair["checks"].as_array().unwrap().iter().find(|c| c["id"] == "source.no_active_job").unwrap();
    assert_eq!((check["passed"].as_bool(), check["actual"].as_str()), (Some(false), Some("in an active job")));
}

#[tokio::test]
async fn configuration_requests_are_checked() {
    let app = spawn_app().await;
    let (id, _) = group_with_pairs(&app).await;
    let (status, v) = app.post(&configure_path(&id), &json!({ "pair_ids": ["pair-0123456789abcdef0"] })).await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "PAIR_NOT_FOUND"));
    let (status, v) = app.post(&configure_path(&id), &json!({ "pair_ids": ["nope"] })).await;
    assert_eq!((status, code(&v)), (StatusCode::BAD_REQUEST, "VALIDATION_FAILED"));
    let (status, v) = app.post(&configure_path(&id), &json!({ "dry": true })).await;
    assert_eq!((status, code(&v)), (StatusCode::BAD_REQUEST, "MALFORMED_JSON"));
    let (status, v) = app.post(&configure_path("pg-0123456789abcdef"), &json!({})).await;
    assert_eq!((status, code(&v)), (StatusCode::NOT_FOUND, "PROTECTION_GROUP_NOT_FOUND"));
    assert_eq!(drs_writes(&app), 0);
}

#[tokio::test]
async fn a_fully_paired_group_turns_green_once_configured() {
    let app = spawn_app().await;
    let mut body = group_body("Billing");
    body["selection"] = json!({ "kind": "tags", "tags": { "app": "billing" } });
    let (_, g) = app.post("/api/v1/protection-groups", &body).await;
    let id = g["id"].as_str().unwrap().to_owned();
    let report = app.match_group(&id).await;
    assert_eq!(report["counts"]["pairs"], report["counts"]["source_servers"], "billing has no planted problem");
    assert_eq!(app.accept_ready(&id, &report).await.0, StatusCode::CREATED);
    let readiness = format!("/api/v1/protection-groups/{id}/readiness");
    let (_, r) = app.post(&readiness, &json!({})).await;
    assert_eq!(r["readiness"]["verdict"], "blocked", "not configured yet");
    let (_, out) = app.post(&configure_path(&id), &json!({})).await;
    assert_eq!(count(&out, "applied"), report["counts"]["pairs"].as_u64().unwrap());
    let (_, r) = app.post(&readiness, &json!({})).await;
    assert_eq!(
        (r["readiness"]["verdict"].as_str(), r["readiness"]["score"].as_u64()),
        (Some("ready"), Some(100)),
        "{}",
        r["readiness"]["failing"]
    );
}

#[tokio::test]
async fn a_group_recovering_into_its_primary_region_is_accepted_with_a_readiness_warning() {
    let app = spawn_app().await;
    let mut body = group_body("Same region");
    body["dr"] = json!({ "account_id": "222222222222", "region": "us-east-1" });
    let (status, group) = app.post("/api/v1/protection-groups", &body).await;
    assert_eq!(status, StatusCode::CREATED, "another account in the same region is legal in DRS: {group}");
    let (_, r) =
        app.post(&format!("/api/v1/protection-groups/{}/readiness", group["id"].as_str().unwrap()), &json!({})).await;
    let checks = r["readiness"]["group_checks"].as_array().unwrap();
    let same = checks.iter().find(|c| c["id"] == "group.dr_region_differs").expect("the region check is listed");
    assert_eq!((same["passed"].as_bool(), same["severity"].as_str()), (Some(false), Some("warning")));
    assert!(same["actual"].as_str().unwrap().contains("us-east-1"), "{same}");
    assert!(same["remediation"].as_str().unwrap().contains("another"), "{same}");
    assert!(r["readiness"]["failing"].as_array().unwrap().iter().any(|f| f[0] == "group.dr_region_differs"));

    let (id, _) = group_with_pairs(&app).await;
    let (_, r) = app.post(&format!("/api/v1/protection-groups/{id}/readiness"), &json!({})).await;
    let checks = r["readiness"]["group_checks"].as_array().unwrap();
    assert_eq!(checks.iter().find(|c| c["id"] == "group.dr_region_differs").unwrap()["passed"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evaluations_at_once_record_one_verdict_change() {
    let app = spawn_app().await;
    let (id, _) = group_with_pairs(&app).await;
    let path = format!("/api/v1/protection-groups/{id}/readiness");
    let body = json!({});
    // On several threads, as a server runs: the evaluations really overlap.
    let (a, b, c, d) =
        tokio::join!(app.post(&path, &body), app.post(&path, &body), app.post(&path, &body), app.post(&path, &body));
    for (status, v) in [&a, &b, &c, &d] {
        assert_eq!(*status, StatusCode::OK, "{v}");
    }
    let (_, stored) = app.get(&path).await;
    let history = stored["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "one change from no verdict to blocked, however many evaluated it: {history:?}");
}
