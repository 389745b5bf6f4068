//! Webhook delivery over HTTP: the engine's [`engine::notify::Transport`] with reqwest (no redirects, a
//! timeout per attempt, any 2xx is a delivery).

use async_trait::async_trait;
use std::time::Duration;

pub struct HttpTransport {
    http: reqwest::Client,
}

impl HttpTransport {
    /// # Errors
    /// When the HTTP client cannot be built (no TLS roots).
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("roundtrip/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http })
    }
}

#[async_trait]
impl engine::notify::Transport for HttpTransport {
    async fn post(&self, url: &str, headers: Vec<(&'static str, String)>, body: Vec<u8>) -> Result<(), String> {
        let mut req = self.http.post(url).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("the receiver answered HTTP {}", r.status().as_u16())),
            Err(e) if e.is_timeout() => Err("the receiver did not answer in time".into()),
            Err(e) if e.is_connect() => Err("cannot connect to the receiver".into()),
            Err(e) => Err(format!("the request failed: {e}")),
        }
    }
}
