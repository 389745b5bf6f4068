//! Webhook delivery over HTTP: the engine's [`engine::notify::Transport`] with reqwest (no redirects, a
//! timeout per attempt, any 2xx is a delivery). Errors never carry the URL: its path may be a secret.

use async_trait::async_trait;
use engine::notify::PostError;
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

/// What an answer that is not a 2xx means: 408, 429 and 5xx may pass; other answers will not.
pub fn answer_error(status: u16) -> PostError {
    PostError {
        message: format!("the receiver answered HTTP {status}"),
        permanent: (400..500).contains(&status) && status != 408 && status != 429,
    }
}

#[async_trait]
impl engine::notify::Transport for HttpTransport {
    async fn post(&self, url: &str, headers: Vec<(&'static str, String)>, body: Vec<u8>) -> Result<(), PostError> {
        let mut req = self.http.post(url).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(answer_error(r.status().as_u16())),
            Err(e) if e.is_timeout() => Err(PostError::retry("the receiver did not answer in time")),
            Err(e) if e.is_connect() => Err(PostError::retry("cannot connect to the receiver")),
            Err(e) if e.is_builder() => {
                Err(PostError { message: "the URL cannot be used for a request".into(), permanent: true })
            }
            Err(e) => Err(PostError::retry(format!("the request failed: {}", e.without_url()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_that_may_pass_are_retried() {
        for (status, permanent) in
            [(400, true), (404, true), (410, true), (408, false), (429, false), (500, false), (503, false)]
        {
            assert_eq!(answer_error(status).permanent, permanent, "{status}");
        }
    }
}
