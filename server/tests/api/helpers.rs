use reqwest::StatusCode;
use serde_json::{Value, json};
use server::settings::Settings;
use sim::Simulator;
use std::net::SocketAddr;
use std::sync::Arc;

/// The first admin's password in every test server.
pub const ADMIN_PASSWORD: &str = "test-passphrase-0001";

pub struct TestApp {
    pub addr: SocketAddr,
    /// Sends the admin's API token with every request.
    pub client: reqwest::Client,
    /// Sends no credentials.
    pub anonymous: reqwest::Client,
    pub simulator: Arc<Simulator>,
    pub services: engine::Services,
    settings: Settings,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    // Held so the data folder lives as long as the app.
    _dir: Arc<tempfile::TempDir>,
}

/// Starts the real server on 127.0.0.1:0 with a fresh data folder and the bundled default estate.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// As [`spawn_app`], with changed settings.
pub async fn spawn_app_with(change: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_owned(),
        site_root: dir.path().join("site"),
        max_body_bytes: 256 * 1024,
        ..Settings::default()
    };
    let mut settings = settings;
    settings.auth.admin_password = Some(server::settings::Secret::new(ADMIN_PASSWORD));
    change(&mut settings);
    start(settings, dir).await
}

async fn start(settings: Settings, dir: Arc<tempfile::TempDir>) -> TestApp {
    let wired = server::wire(&settings).await.expect("wire");
    let admin = admin_principal();
    let token = wired
        .services
        .auth
        .create_token(
            &admin,
            &engine::auth::NewToken { name: "tests".into(), role: "admin".into(), expires_in_days: None },
        )
        .await
        .expect("admin token")
        .token;
    let listener = tokio::net::TcpListener::bind(settings.listen).await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server::serve(listener, wired.router, async move {
            let _ = rx.await;
        })
        .await
        .expect("serve");
    });
    TestApp {
        addr,
        client: client_with_token(&token),
        anonymous: reqwest::Client::new(),
        simulator: wired.simulator.expect("the tests run on the simulated estate"),
        services: wired.services,
        settings,
        shutdown: Some(tx),
        task: Some(task),
        _dir: dir,
    }
}

/// The bootstrapped admin, as the engine sees them.
pub fn admin_principal() -> domain::auth::Principal {
    domain::auth::Principal {
        subject: "admin".into(),
        role: domain::auth::Role::Admin,
        method: domain::auth::AuthMethod::Session,
        token: None,
        must_change_password: false,
    }
}

/// A client that sends `Authorization: Bearer <token>`.
pub fn client_with_token(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().expect("header"));
    reqwest::Client::builder().default_headers(headers).build().expect("client")
}

impl TestApp {
    /// A new API token of `role`, owned by user `owner` (created if missing).
    pub async fn token_for(&self, owner: &str, role: &str) -> String {
        let admin = admin_principal();
        if owner != "admin" {
            let input = engine::auth::NewUser {
                username: owner.into(),
                role: role.into(),
                password: "long enough passphrase".into(),
            };
            if self.services.auth.create_user(&admin, &input).await.is_ok() {
                // New users start on a one-time password, which no token may act under: replace it.
                let me = domain::auth::Principal { subject: owner.into(), must_change_password: true, ..admin.clone() };
                self.services
                    .auth
                    .change_password(&me, "long enough passphrase", "their own passphrase", None)
                    .await
                    .expect("password change");
            }
        }
        let owner = domain::auth::Principal { subject: owner.into(), ..admin };
        let input = engine::auth::NewToken { name: format!("{role} token"), role: role.into(), expires_in_days: None };
        self.services.auth.create_token(&owner, &input).await.expect("token").token
    }

    /// A second person, `bob` the approver, approves execution `id` with `comment`; returns the status.
    pub async fn approve_as_bob(&self, id: &str, comment: &str) -> StatusCode {
        let bob = client_with_token(&self.token_for("bob", "approver").await);
        let url = self.url(&format!("/api/v1/executions/{id}/approve"));
        bob.post(url).json(&json!({ "comment": comment })).send().await.expect("request").status()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server and releases the data folder (its store lock included); the folder lives as long
    /// as the returned handle.
    pub async fn shutdown(mut self) -> Arc<tempfile::TempDir> {
        self.stop().await;
        self._dir.clone()
    }

    /// The data folder.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.settings.data_dir.clone()
    }

    /// Stops the server, lets `edit` change the data folder (as an intruder would), and starts it again.
    pub async fn restart_with(mut self, edit: impl FnOnce(&std::path::Path)) -> TestApp {
        self.stop().await;
        let mut settings = self.settings.clone();
        settings.listen = "127.0.0.1:0".parse().unwrap();
        let dir = self._dir.clone();
        drop(self);
        edit(&settings.data_dir);
        start(settings, dir).await
    }

    /// Stops the server as an operator would, then starts a new one on the same data folder.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let mut settings = self.settings.clone();
        settings.listen = "127.0.0.1:0".parse().unwrap();
        let dir = self._dir.clone();
        // Everything of the old server (its store's lock included) goes before the new one opens.
        drop(self);
        start(settings, dir).await
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("server task");
        }
        self.simulator.save().expect("save estate");
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.client.get(self.url(path)).send().await.expect("request");
        decode(r).await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self.client.request(method, self.url(path)).json(body).send().await.expect("request");
        decode(r).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let r = self.client.delete(self.url(path)).send().await.expect("request");
        decode(r).await
    }

    /// Creates a group over the bundled estate's primary and DR sides and returns its JSON.
    pub async fn create_group(&self, name: &str) -> Value {
        let (status, body) = self.post("/api/v1/protection-groups", &group_body(name)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn match_group(&self, id: &str) -> Value {
        let (status, body) = self.post("/api/v1/drs/instances/match", &json!({ "protection_group_id": id })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Accepts every ready pair of a match report.
    pub async fn accept_ready(&self, id: &str, report: &Value) -> (StatusCode, Value) {
        let pairs: Vec<Value> = report["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["status"] == "ready")
            .map(|p| json!({ "source_server_id": p["source_server_id"], "standby_instance_id": p["standby_instance_id"] }))
            .collect();
        self.post(&format!("/api/v1/protection-groups/{id}/instance-pairs"), &json!({ "pairs": pairs })).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn decode(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

pub fn group_body(name: &str) -> Value {
    json!({
        "name": name,
        "primary": { "account_id": "111111111111", "region": "us-east-1" },
        "dr": { "account_id": "222222222222", "region": "us-west-2" },
        "selection": { "kind": "all" }
    })
}

/// The error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}
