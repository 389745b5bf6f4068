//! Sign-in, roles, CSRF, tokens, the audit chain, share links and hardening, through the real server.

use crate::helpers::{ADMIN_PASSWORD, client_with_token, code, group_body, spawn_app};
use domain::auth::{Access, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Fills a route's path parameters with values that parse (or at least reach the handler).
fn concrete(path: &str) -> String {
    path.replace("{id}", "pg-00000000000000aa")
        .replace("{pair_id}", "pair-0123456789abcdef0")
        .replace("{username}", "nobody")
        .replace("{plan_id}", "plan-0000000000000000")
        .replace("{execution_id}", "exec-0000000000000000")
        .replace("{token}", "sl_000000000000_000000000000000000000000000000000000000000000000")
}

fn allowed(access: Access, role: Option<Role>) -> bool {
    match (access, role) {
        (Access::Public | Access::ShareLink, _) => true,
        (_, None) => false,
        (Access::SignedIn, Some(_)) => true,
        (Access::Role(p), Some(r)) => r.grants(p),
    }
}

#[tokio::test]
async fn every_route_answers_each_role_as_it_declares() {
    let app = spawn_app().await;
    let mut clients = vec![(None, app.anonymous.clone())];
    for role in Role::ALL {
        let token = app.token_for(&format!("matrix-{role}"), role.as_str()).await;
        clients.push((Some(role), client_with_token(&token)));
    }
    let rules = server::api::route_rules();
    assert!(rules.len() >= 35, "the table lists every route ({})", rules.len());
    let mut checked = 0;
    for rule in &rules {
        let url = app.url(&format!("{}{}", server::api::PREFIX, concrete(rule.path)));
        for (role, client) in &clients {
            // DELETE /session would end nothing here (tokens have no session); everything else is harmless
            // with an empty body or unknown ids.
            let mut req = client.request(rule.method.clone(), &url);
            if rule.method != Method::GET && rule.method != Method::DELETE {
                req = req.json(&json!({}));
            }
            let r = req.send().await.unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let who = role.map_or("anonymous".to_owned(), |r| r.to_string());
            if allowed(rule.access, *role) {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{who} may {} {}: got {status} {body}",
                    rule.method,
                    rule.path
                );
            } else if role.is_none() {
                assert_eq!(
                    (status, code(&body)),
                    (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
                    "{} {}",
                    rule.method,
                    rule.path
                );
            } else {
                assert_eq!(
                    (status, code(&body)),
                    (StatusCode::FORBIDDEN, "FORBIDDEN"),
                    "{who} {} {}",
                    rule.method,
                    rule.path
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, rules.len() * 5);
}

#[tokio::test]
async fn the_openapi_document_and_the_route_table_list_the_same_operations() {
    let app = spawn_app().await;
    let (_, doc) = app.get("/api/v1/openapi.json").await;
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if let Some(op) = item.get(method) {
                documented.push((method.to_uppercase(), path.clone()));
                assert!(op.get("x-access").is_some(), "{method} {path} states its access");
            }
        }
    }
    let mut routed: Vec<(String, String)> = server::api::route_rules()
        .iter()
        .map(|r| (r.method.to_string(), format!("{}{}", server::api::PREFIX, r.path)))
        .collect();
    documented.sort();
    routed.sort();
    assert_eq!(documented, routed);
}

#[tokio::test]
async fn every_console_function_and_page_declares_its_access() {
    let registered: Vec<String> = leptos::server_fn::axum::server_fn_paths().map(|(p, _)| p.to_owned()).collect();
    for path in &registered {
        if path.starts_with(app::access::CONSOLE_PREFIX) {
            assert!(app::access::server_fn_access(path).is_some(), "console function {path} declares no access");
        }
    }
    for (name, _) in app::access::SERVER_FNS {
        let path = format!("{}{name}", app::access::CONSOLE_PREFIX);
        assert!(registered.contains(&path), "{path} is declared but no such function exists");
    }
    let pages: Vec<String> = server::page_routes().iter().map(|r| r.path().to_owned()).collect();
    for page in &pages {
        assert!(app::access::PAGES.iter().any(|(p, _)| p == page), "page {page} declares no access");
    }
    for (p, _) in app::access::PAGES {
        assert!(pages.iter().any(|x| x == p), "{p} is declared but no such page exists");
    }
}

#[tokio::test]
async fn console_functions_are_refused_to_anonymous_callers_and_to_roles_without_the_permission() {
    let app = spawn_app().await;
    let url = app.url("/console/list_groups");
    let r = app.anonymous.post(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let viewer = client_with_token(&app.token_for("vera", "viewer").await);
    assert_eq!(viewer.post(&url).json(&json!({})).send().await.unwrap().status(), StatusCode::OK);
    let save = app.url("/console/save_group");
    let body = json!({ "id": null, "input": group_body("Viewer's group"), "expected_version": null });
    let r = viewer.post(&save).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.anonymous.post(app.url("/console/no_such_function")).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "undeclared console functions are refused");
}

#[tokio::test]
async fn without_signing_in_only_the_login_page_health_and_share_links_answer() {
    let app = spawn_app().await;
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for page in ["/", "/protection-groups", "/matching", "/audit", "/admin/users", "/no/such/page"] {
        let r = no_redirect.get(app.url(page)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{page}");
        let to = r.headers()["location"].to_str().unwrap();
        assert!(to.starts_with("/login?next="), "{page} → {to}");
    }
    assert_eq!(no_redirect.get(app.url("/login")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.anonymous.get(app.url("/api/v1/health")).send().await.unwrap().status(), StatusCode::OK);
    for api in ["/api/v1/estate", "/api/v1/no/such/route", "/api/v1/audit"] {
        let r = app.anonymous.get(app.url(api)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{api}");
    }
}

/// Signs in with JSON and returns a client holding the cookie, plus the CSRF token.
async fn sign_in(app: &crate::helpers::TestApp, username: &str, password: &str) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let r = client
        .post(app.url("/api/v1/session"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP without a TLS proxy: no Secure flag");
    let body: Value = r.json().await.unwrap();
    (client, body["csrf_token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_cookie_session_needs_the_csrf_token_or_the_console_origin_to_change_anything() {
    let app = spawn_app().await;
    let (client, csrf) = sign_in(&app, "admin", ADMIN_PASSWORD).await;
    let url = app.url("/api/v1/protection-groups");
    assert_eq!(client.get(&url).send().await.unwrap().status(), StatusCode::OK, "reads need no token");

    let r = client.post(&url).json(&group_body("No token")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(&r.json().await.unwrap()), "CSRF_REJECTED");
    let r = client.post(&url).header("origin", "http://evil.example").json(&group_body("Evil")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = client.post(&url).header("x-csrf-token", "0".repeat(48)).json(&group_body("Wrong")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = client.post(&url).header("x-csrf-token", &csrf).json(&group_body("With token")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let origin = format!("http://{}", app.addr);
    let r = client.post(&url).header("origin", origin).json(&group_body("Same origin")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, groups) = app.get("/api/v1/protection-groups").await;
    assert_eq!(groups["protection_groups"].as_array().unwrap().len(), 2, "only the two allowed writes landed");

    // Signing out ends the session.
    let r = client.delete(app.url("/api/v1/session")).header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(client.get(&url).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_sign_in_form_posted_from_another_site_is_refused() {
    let app = spawn_app().await;
    let r = app
        .anonymous
        .post(app.url("/auth/login"))
        .header("origin", "http://evil.example")
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_login_form_sets_the_cookie_and_goes_where_it_was_asked_on_this_site_only() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = [("username", "admin"), ("password", ADMIN_PASSWORD), ("next", "//evil.example/x")];
    let r = client.post(app.url("/auth/login")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/");
    assert!(r.headers()["set-cookie"].to_str().unwrap().starts_with("rt_session="));
    let form = [("username", "admin"), ("password", "wrong"), ("next", "/matching")];
    let r = client.post(app.url("/auth/login")).form(&form).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/login?error=LOGIN_FAILED&next=/matching");
    assert!(r.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled_with_retry_after() {
    let app = spawn_app().await;
    for _ in 0..5 {
        let (status, body) = app.post("/api/v1/session", &json!({ "username": "admin", "password": "guess" })).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "LOGIN_FAILED"));
    }
    let r = app
        .anonymous
        .post(app.url("/api/v1/session"))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "900");
}

#[tokio::test]
async fn a_revoked_token_is_refused() {
    let app = spawn_app().await;
    let (status, created) =
        app.post("/api/v1/tokens", &json!({ "name": "pipeline", "role": "operator", "expires_in_days": 30 })).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap();
    let client = client_with_token(token);
    assert_eq!(client.get(app.url("/api/v1/estate")).send().await.unwrap().status(), StatusCode::OK);
    let (_, list) = app.get("/api/v1/tokens").await;
    assert!(!list.to_string().contains(token), "the secret is shown once only");
    let id = created["details"]["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/api/v1/tokens/{id}")).await.0, StatusCode::OK);
    let r = client.get(app.url("/api/v1/estate")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app.anonymous.get(app.url("/api/v1/estate")).bearer_auth("rt_garbage").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a bad bearer token is refused, not treated as anonymous");
}

#[tokio::test]
async fn a_one_time_password_allows_nothing_but_changing_it() {
    let app = spawn_app().await;
    let (status, _) = app
        .post("/api/v1/users", &json!({ "username": "olga", "role": "operator", "password": "one-time secret 1" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (client, csrf) = sign_in(&app, "olga", "one-time secret 1").await;
    let r = client.get(app.url("/api/v1/estate")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(&r.json().await.unwrap()), "PASSWORD_CHANGE_REQUIRED");
    let r = client
        .post(app.url("/api/v1/session/password"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "current_password": "one-time secret 1", "new_password": "a brand new secret" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(client.get(app.url("/api/v1/estate")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn the_audit_chain_verifies_after_a_session_of_changes_and_catches_an_edited_entry() {
    let app = spawn_app().await;
    let id = app.create_group("Shop").await["id"].as_str().unwrap().to_owned();
    let report = app.match_group(&id).await;
    assert_eq!(app.accept_ready(&id, &report).await.0, StatusCode::CREATED);
    let (status, _) = app.post(&format!("/api/v1/protection-groups/{id}/configure-allow-launching"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.post(&format!("/api/v1/protection-groups/{id}/readiness"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, chain) = app.get("/api/v1/audit/verify").await;
    assert_eq!((status, chain["intact"].as_bool()), (StatusCode::OK, Some(true)), "{chain}");
    let (_, all) = app.get("/api/v1/audit?limit=10000").await;
    let actions: std::collections::BTreeSet<&str> =
        all["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in [
        "user.bootstrap",
        "token.create",
        "protection_group.create",
        "pairs.accept",
        "aws.drs.UpdateLaunchConfiguration",
        "launch_configuration.apply",
        "readiness.evaluate",
    ] {
        assert!(actions.contains(expected), "{expected} missing from {actions:?}");
    }

    // Filters and exports.
    let (_, groups) = app.get("/api/v1/audit?action=protection_group.").await;
    let entries = groups["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0]["actor"].as_str(), entries[0]["target"].as_str()),
        (Some("admin (token tests)"), Some(id.as_str()))
    );
    let r = app.client.get(app.url("/api/v1/audit?format=csv&action=pairs.")).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    assert_eq!(csv.lines().count(), 2, "a header and one pairs.accept entry: {csv}");
    let jsonl = app.client.get(app.url("/api/v1/audit?format=jsonl")).send().await.unwrap().text().await.unwrap();
    assert!(jsonl.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));

    // Stop the server, edit one entry in the store file, start again: the chain no longer verifies.
    let data_dir = app.data_dir();
    let app = app
        .restart_with(|dir| {
            let file = dir.join("roundtrip-store.jsonl");
            let text = std::fs::read_to_string(&file).unwrap();
            let mut edited = false;
            let lines: Vec<String> = text
                .lines()
                .map(|line| {
                    let mut v: Value = serde_json::from_str(line).unwrap();
                    if !edited && line.contains("\"audit_log\"") && line.contains("protection_group.create") {
                        let s = v.to_string().replace("protection_group.create", "protection_group.view");
                        v = serde_json::from_str(&s).unwrap();
                        edited = true;
                    }
                    v.to_string()
                })
                .collect();
            assert!(edited, "the store file holds the entry");
            std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        })
        .await;
    let (status, body) = app.get("/api/v1/audit/verify").await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "AUDIT_CHAIN_BROKEN"), "{body}");
    assert!(body["error"]["details"]["problems"][0]["problem"].as_str().unwrap().contains("edited"));
    let _kept = app.shutdown().await;

    // The command line finds it too, with its own exit code.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roundtrip"))
        .args(["audit", "verify", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("edited"));
}

/// Text that must never reach a stakeholder: instance ids, source server ids, IPv4 addresses, account numbers.
pub(crate) fn leaks(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 20)].iter().collect();
        if (rest.starts_with("i-") || rest.starts_with("s-"))
            && rest[2..].chars().take(8).filter(char::is_ascii_hexdigit).count() == 8
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
        {
            found.push(rest.clone());
        }
        i += 1;
    }
    let digits_runs = text.split(|c: char| !c.is_ascii_digit()).filter(|r| r.len() == 12);
    found.extend(digits_runs.map(str::to_owned));
    for w in text.split(|c: char| !(c.is_ascii_digit() || c == '.')) {
        let parts: Vec<&str> = w.split('.').collect();
        if parts.len() == 4 && parts.iter().all(|p| !p.is_empty() && p.len() <= 3) {
            found.push(w.to_owned());
        }
    }
    found
}

#[tokio::test]
async fn the_stakeholder_status_shows_verdicts_and_leaks_nothing_internal() {
    let app = spawn_app().await;
    let id = app.create_group("Web shop").await["id"].as_str().unwrap().to_owned();
    let report = app.match_group(&id).await;
    app.accept_ready(&id, &report).await;
    app.post(&format!("/api/v1/protection-groups/{id}/readiness"), &json!({})).await;
    app.create_group("Billing").await;
    let (status, link) = app
        .post(
            "/api/v1/share-links",
            &json!({ "name": "Incident bridge", "message": "DR test at 14:00 UTC", "expires_in_hours": 24 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let token = link["token"].as_str().unwrap().to_owned();

    let r = app.anonymous.get(app.url(&format!("/api/v1/share/{token}"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let status_json: Value = r.json().await.unwrap();
    let apps = status_json["applications"].as_array().unwrap();
    assert_eq!(apps.iter().map(|a| a["name"].as_str().unwrap()).collect::<Vec<_>>(), ["Billing", "Web shop"]);
    assert!(apps[1]["verdict"].is_string() && apps[0]["verdict"].is_null());
    assert_eq!(status_json["message"], "DR test at 14:00 UTC");

    let page = app.anonymous.get(app.url(link["path"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Web shop") && html.contains("DR test at 14:00 UTC"), "{html}");
    for text in [html.as_str(), &status_json.to_string()] {
        assert_eq!(leaks(text), Vec::<String>::new());
        assert!(!text.contains("admin"), "no user names");
        assert!(!text.contains(&id), "no internal ids");
    }

    // A wrong secret, a revoked link and an expired link all answer the same 404.
    let wrong = format!("{}{}", &token[..token.len() - 1], if token.ends_with('0') { '1' } else { '0' });
    let r = app.anonymous.get(app.url(&format!("/api/v1/share/{wrong}"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let link_id = link["details"]["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/api/v1/share-links/{link_id}")).await.0, StatusCode::OK);
    let r = app.anonymous.get(app.url(&format!("/api/v1/share/{token}"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (_, expiring) = app.post("/api/v1/share-links", &json!({ "name": "Short", "expires_in_hours": 1 })).await;
    let rec =
        app.services.store.get("share_links", expiring["details"]["id"].as_str().unwrap()).await.unwrap().unwrap();
    let mut value = rec.value.to_value();
    value["expires_at"] = json!(1);
    app.services
        .store
        .transact(vec![engine::store::WriteOp::Put {
            table: "share_links".into(),
            key: rec.key.clone(),
            value: value.into(),
            expect: engine::store::Expect::Version(rec.version),
        }])
        .await
        .unwrap();
    let r = app
        .anonymous
        .get(app.url(&format!("/api/v1/share/{}", expiring["token"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[test]
fn the_leak_detector_finds_what_it_must() {
    let found = leaks("i-0abc12345def67890 at 10.0.1.25 in 123456789012, s-1234567890abcdef0");
    assert_eq!(found.len(), 4, "{found:?}");
    assert!(leaks("Web shop: ready since 14:00, score 97").is_empty());
}

#[tokio::test]
async fn responses_carry_security_headers_and_pages_allow_only_their_nonce() {
    let app = spawn_app().await;
    let r = app.anonymous.get(app.url("/login")).send().await.unwrap();
    let h = r.headers().clone();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    let csp = h["content-security-policy"].to_str().unwrap().to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'")
            && !csp.contains(" 'unsafe-eval'")
            && !csp.contains("script-src 'self' 'unsafe-inline'"),
        "{csp}"
    );
    let nonce = csp.split("'nonce-").nth(1).and_then(|s| s.split('\'').next()).expect("a nonce").to_owned();
    let html = r.text().await.unwrap();
    let tags: Vec<&str> = html.split("<script").skip(1).map(|t| t.split('>').next().unwrap_or_default()).collect();
    assert!(!tags.is_empty());
    for tag in tags {
        assert!(tag.contains(&format!("nonce=\"{nonce}\"")), "a script without the page's nonce: <script{tag}>");
    }
    let api = app.anonymous.get(app.url("/api/v1/health")).send().await.unwrap();
    assert!(api.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
}

#[tokio::test]
async fn roles_gate_admin_work_and_the_last_admin_stays() {
    let app = spawn_app().await;
    let operator = client_with_token(&app.token_for("oscar", "operator").await);
    let r = operator.get(app.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (status, body) = app.send(Method::PATCH, "/api/v1/users/admin", &json!({ "role": "viewer" })).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "LAST_ADMIN"));
    let (status, body) =
        app.post("/api/v1/users", &json!({ "username": "<script>", "role": "root", "password": "x" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["details"]["fields"].as_array().unwrap().len(), 2, "{body}");
}

/// Sends a request line exactly as written (HTTP clients clean `..` and `%2e%2e` out of paths first).
async fn raw_get(app: &crate::helpers::TestApp, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", app.addr);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn dot_segments_cannot_smuggle_a_page_past_the_guard() {
    let app = spawn_app().await;
    for path in [
        "/auth/%2e%2e/admin/users",
        "/auth/../audit",
        "/pkg/%2E%2E/audit",
        "/api/v1x/../admin/tokens",
        "/status/..",
        "/admin/./users",
        "//audit",
        "/audit%2f",
    ] {
        let (status, text) = raw_get(&app, path).await;
        assert_eq!(status, 404, "{path}: {text}");
        assert!(
            !text.contains("users-table") && !text.contains("audit-table") && !text.contains("user.bootstrap"),
            "{path}"
        );
    }
    let (status, _) = raw_get(&app, "/audit").await;
    assert_eq!(status, 303, "the canonical path still goes to the login page");
}

#[tokio::test]
async fn a_next_that_a_browser_would_clean_into_another_site_goes_home() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for next in ["/\t/evil.example", "/\\evil.example", "/ /evil.example"] {
        let form = [("username", "admin"), ("password", ADMIN_PASSWORD), ("next", next)];
        let r = client.post(app.url("/auth/login")).form(&form).send().await.unwrap();
        assert_eq!(r.headers()["location"], "/", "{next:?}");
    }
}

#[tokio::test]
async fn a_token_does_no_more_than_its_owner_may_now() {
    let app = spawn_app().await;
    let dora = client_with_token(&app.token_for("dora", "admin").await);
    assert_eq!(dora.get(app.url("/api/v1/users")).send().await.unwrap().status(), StatusCode::OK);
    let (status, _) = app.send(Method::PATCH, "/api/v1/users/dora", &json!({ "role": "operator" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(dora.get(app.url("/api/v1/users")).send().await.unwrap().status(), StatusCode::FORBIDDEN, "demoted");
    let r = dora.post(app.url("/api/v1/protection-groups")).json(&group_body("Dora's")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "still an operator");
    let (status, _) =
        app.send(Method::PATCH, "/api/v1/users/dora", &json!({ "reset_password": "reset one-time pw" })).await;
    assert_eq!(status, StatusCode::OK);
    let r = dora.get(app.url("/api/v1/estate")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a reset (one-time) password stops the owner's tokens");
}

#[tokio::test]
async fn changing_a_password_ends_the_other_sessions() {
    let app = spawn_app().await;
    let (mine, csrf) = sign_in(&app, "admin", ADMIN_PASSWORD).await;
    let (stolen, _) = sign_in(&app, "admin", ADMIN_PASSWORD).await;
    let r = mine
        .post(app.url("/api/v1/session/password"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "current_password": ADMIN_PASSWORD, "new_password": "a brand new passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(mine.get(app.url("/api/v1/estate")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(stolen.get(app.url("/api/v1/estate")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_cookie_session_gets_exactly_its_role() {
    let app = spawn_app().await;
    app.post("/api/v1/users", &json!({ "username": "vera", "role": "viewer", "password": "first one-time 1" })).await;
    let (client, csrf) = sign_in(&app, "vera", "first one-time 1").await;
    client
        .post(app.url("/api/v1/session/password"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "current_password": "first one-time 1", "new_password": "a viewer's passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(client.get(app.url("/api/v1/protection-groups")).send().await.unwrap().status(), StatusCode::OK);
    let r = client
        .post(app.url("/api/v1/protection-groups"))
        .header("x-csrf-token", &csrf)
        .json(&group_body("V"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = client
        .post(app.url("/console/save_group"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "id": null, "input": group_body("V"), "expected_version": null }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_guessed_user_name_of_any_size_enters_the_audit_trail_bounded() {
    let app = spawn_app().await;
    let huge = "x".repeat(100_000);
    let (status, _) = app.post("/api/v1/session", &json!({ "username": huge, "password": "guess" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, audit) = app.get("/api/v1/audit?action=auth.login").await;
    let entry = &audit["entries"][0];
    assert_eq!(entry["target"], "<not a valid user name>");
    assert!(entry.to_string().len() < 1_000);
}

#[tokio::test]
async fn test_access_reports_every_read_in_every_account_and_region_for_admins_only() {
    let app = spawn_app().await;
    let (status, report) = app.post("/api/v1/cloud/access-check", &serde_json::json!({})).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let checks = report["checks"].as_array().unwrap();
    assert!(report["ok"].as_bool().unwrap(), "the simulated estate grants every read: {report}");
    let places: std::collections::BTreeSet<(String, String)> = checks
        .iter()
        .map(|c| (c["account_id"].as_str().unwrap().to_owned(), c["region"].as_str().unwrap().to_owned()))
        .collect();
    let (_, estate) = app.get("/api/v1/estate").await;
    let slices: std::collections::BTreeSet<(String, String)> = estate["slices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["account_id"].as_str().unwrap().to_owned(), s["region"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(places, slices, "one set of checks per account and region of the estate");
    assert!(checks.iter().any(|c| c["action"] == "drs:DescribeSourceServers"));
    let operator = client_with_token(&app.token_for("olga", "operator").await);
    let r = operator.post(app.url("/api/v1/cloud/access-check")).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_simulated_estates_accounts_are_listed_and_cannot_be_registered_or_changed() {
    let app = spawn_app().await;
    let (status, body) = app.get("/api/v1/cloud/accounts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let accounts = body["accounts"].as_array().unwrap();
    assert!(!accounts.is_empty() && accounts.iter().all(|a| a["source"] == "estate"), "{body}");
    let estate_account = accounts[0]["account_id"].as_str().unwrap().to_owned();
    let cases = [
        (json!({ "account_id": "12", "name": "x", "regions": ["us-east-1"] }), "INVALID_ACCOUNT_ID"),
        (json!({ "account_id": "123456789012", "name": "x", "regions": [] }), "INVALID_REGIONS"),
        (
            json!({ "account_id": "123456789012", "name": "x", "external_id": "abc", "regions": ["us-east-1"] }),
            "EXTERNAL_ID_WITHOUT_ROLE",
        ),
        (json!({ "account_id": estate_account, "name": "x", "regions": ["us-east-1"] }), "ACCOUNT_CONFIGURED"),
        (json!({ "account_id": "123456789012", "name": "x", "regions": ["us-east-1"] }), "ACCOUNTS_FIXED"),
    ];
    for (input, want) in cases {
        let (status, body) = app.post("/api/v1/cloud/accounts", &input).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{input}: {body}");
        assert!(body.to_string().contains(want), "{input}: expected {want}, got {body}");
    }
    let (status, body) = app.delete("/api/v1/cloud/accounts/123456789012").await;
    assert_eq!(
        (status, body.to_string().contains("ACCOUNT_NOT_REGISTERED")),
        (StatusCode::BAD_REQUEST, true),
        "{body}"
    );
}
