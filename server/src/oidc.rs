//! Optional OIDC: bearer JWTs from one configured issuer, verified against its published keys (JWKS), with
//! the issuer's groups mapped to Roundtrip roles.
//!
//! Invariants: a token passes only with a known key id, an asymmetric algorithm that matches its key, the
//! configured issuer and audience, and a valid expiry; symmetric (`HS*`) tokens are refused, so a public
//! key can never be used as an HMAC secret; a key that names its algorithm serves only that one; `nbf` is
//! checked. Subjects are `oidc:<claim>`, apart from local user names. The key set is fetched at first use and again when a token
//! names an unknown key, at most once a minute. A person in several mapped groups gets the most powerful
//! role; a person in none is refused.

use crate::settings::OidcConfig;
use domain::auth::{AuthMethod, Principal, Role};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// Shortest time between two fetches of the key set.
const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// A verifier of one issuer's tokens.
pub struct Oidc {
    config: OidcConfig,
    http: reqwest::Client,
    keys: RwLock<Option<(JwkSet, Instant)>>,
    /// One fetch at a time: tokens naming an unknown key wait for it instead of each fetching.
    fetching: tokio::sync::Mutex<()>,
}

impl Oidc {
    /// A verifier for `config`; keys are fetched on first use.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(config: OidcConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { config, http, keys: RwLock::new(None), fetching: tokio::sync::Mutex::new(()) })
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let r = self.http.get(&self.config.jwks_url).send().await.map_err(|e| format!("JWKS fetch: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("JWKS fetch answered {}", r.status()));
        }
        r.json::<JwkSet>().await.map_err(|e| format!("JWKS does not decode: {e}"))
    }

    /// The key `kid` for algorithm `alg`, fetching the key set when the key is unknown (at most once a minute).
    async fn key(&self, kid: &str, alg: Algorithm) -> Result<Option<DecodingKey>, String> {
        if let Some(found) = self.cached(kid, alg).await {
            return found;
        }
        let _turn = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(found) = self.cached(kid, alg).await {
            return found;
        }
        if self.keys.read().await.as_ref().is_some_and(|(_, at)| at.elapsed() < REFETCH_AFTER) {
            return Ok(None);
        }
        let set = self.fetch().await?;
        *self.keys.write().await = Some((set, Instant::now()));
        self.cached(kid, alg).await.unwrap_or(Ok(None))
    }

    /// `Some` when the cached set has `kid`: its key, or `None` when the key is not for `alg`.
    async fn cached(&self, kid: &str, alg: Algorithm) -> Option<Result<Option<DecodingKey>, String>> {
        let keys = self.keys.read().await;
        let jwk = keys.as_ref()?.0.find(kid)?;
        // A key that names its algorithm is used for that algorithm only.
        if let Some(key_alg) = jwk.common.key_algorithm
            && format!("{key_alg:?}") != format!("{alg:?}")
        {
            return Some(Ok(None));
        }
        Some(DecodingKey::from_jwk(jwk).map(Some).map_err(|e| format!("key {kid}: {e}")))
    }

    /// The identity a bearer JWT proves, `Ok(None)` when it does not verify or maps to no role.
    ///
    /// # Errors
    /// When the key set cannot be fetched.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, String> {
        let Ok(header) = decode_header(token) else { return Ok(None) };
        if matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Ok(None);
        }
        let Some(kid) = header.kid else { return Ok(None) };
        let Some(key) = self.key(&kid, header.alg).await? else { return Ok(None) };
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.config.issuer]);
        v.set_audience(&[&self.config.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        v.validate_nbf = true;
        v.leeway = 30;
        let Ok(data) = decode::<serde_json::Value>(token, &key, &v) else { return Ok(None) };
        Ok(self.principal(&data.claims))
    }

    fn principal(&self, claims: &serde_json::Value) -> Option<Principal> {
        let subject = claims.get(&self.config.subject_claim)?.as_str()?.trim();
        if subject.is_empty() || subject.len() > 256 {
            return None;
        }
        let groups: Vec<&str> = match claims.get(&self.config.groups_claim) {
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|g| g.as_str()).collect(),
            Some(serde_json::Value::String(s)) => vec![s.as_str()],
            _ => Vec::new(),
        };
        let role: Role = groups.iter().filter_map(|g| self.config.roles.get(*g).copied()).max()?;
        Some(Principal {
            // Its own namespace: an issuer's `alice` is not the local user `alice` (local names cannot hold ':').
            subject: format!("oidc:{subject}"),
            role,
            method: AuthMethod::Oidc,
            token: None,
            must_change_password: false,
        })
    }
}
