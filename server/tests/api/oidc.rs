//! Bearer JWTs from a configured OIDC issuer, with a key pair generated here and its JWKS served on
//! 127.0.0.1.

use crate::helpers::{code, group_body, spawn_app_with};
use base64::Engine;
use reqwest::StatusCode;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const ISSUER: &str = "https://idp.test.invalid";
const AUDIENCE: &str = "roundtrip";

struct Issuer {
    pkcs8: Vec<u8>,
    /// The public key as an uncompressed point: public knowledge.
    public: Vec<u8>,
    jwks_url: String,
    fetches: Arc<AtomicUsize>,
}

async fn issuer() -> Issuer {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap().as_ref().to_vec();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = json!({ "keys": [{ "kty": "EC", "crv": "P-256", "x": b64(&public[1..33]), "y": b64(&public[33..65]), "kid": "k1", "alg": "ES256", "use": "sig" }] });
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Issuer { pkcs8, public: public.to_vec(), jwks_url: format!("http://{addr}/jwks"), fetches }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

impl Issuer {
    fn token(&self, claims: Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8)).unwrap()
    }

    fn claims(&self, sub: &str, groups: &[&str]) -> Value {
        json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "groups": groups, "exp": now() + 600, "iat": now() })
    }
}

async fn app_trusting(issuer: &Issuer) -> crate::helpers::TestApp {
    let jwks_url = issuer.jwks_url.clone();
    spawn_app_with(move |s| {
        s.oidc = Some(server::settings::OidcConfig {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            jwks_url,
            subject_claim: "sub".into(),
            groups_claim: "groups".into(),
            roles: [
                ("dr-operators".to_owned(), domain::auth::Role::Operator),
                ("dr-approvers".to_owned(), domain::auth::Role::Approver),
            ]
            .into_iter()
            .collect(),
        });
    })
    .await
}

async fn call(app: &crate::helpers::TestApp, token: &str, method: reqwest::Method, path: &str) -> (StatusCode, Value) {
    let r = app
        .anonymous
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&group_body("Via OIDC"))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_token_from_the_issuer_acts_with_the_role_its_groups_map_to() {
    let issuer = issuer().await;
    let app = app_trusting(&issuer).await;
    let operator = issuer.token(issuer.claims("carol@example.com", &["staff", "dr-operators"]));
    let (status, body) = call(&app, &operator, reqwest::Method::POST, "/api/v1/protection-groups").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, audit) = app.get("/api/v1/audit?action=protection_group.create").await;
    assert_eq!(audit["entries"][0]["actor"], "oidc:carol@example.com");

    let both = issuer.token(issuer.claims("dave@example.com", &["dr-operators", "dr-approvers"]));
    let (_, me) = call(&app, &both, reqwest::Method::GET, "/api/v1/session").await;
    assert_eq!(me["principal"]["role"], "approver", "the most powerful mapped role");
    let (status, body) = call(&app, &both, reqwest::Method::POST, "/api/v1/protection-groups").await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "FORBIDDEN"), "an approver does not operate");
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1, "the key set is fetched once and cached");
}

#[tokio::test]
async fn tokens_that_do_not_verify_or_map_to_no_role_are_refused() {
    let issuer = issuer().await;
    let app = app_trusting(&issuer).await;
    let mut wrong_audience = issuer.claims("eve", &["dr-operators"]);
    wrong_audience["aud"] = json!("someone-else");
    let mut wrong_issuer = issuer.claims("eve", &["dr-operators"]);
    wrong_issuer["iss"] = json!("https://evil.invalid");
    let mut expired = issuer.claims("eve", &["dr-operators"]);
    expired["exp"] = json!(now() - 3600);
    let unmapped = issuer.claims("eve", &["staff"]);
    // Algorithm confusion: an HMAC signed with the issuer's public key (what an attacker knows).
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some("k1".into());
    let symmetric = jsonwebtoken::encode(
        &hs,
        &issuer.claims("eve", &["dr-operators"]),
        &jsonwebtoken::EncodingKey::from_secret(&issuer.public),
    )
    .unwrap();
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned =
        format!("{}.{}.", b64(&json!({ "alg": "none", "kid": "k1" })), b64(&issuer.claims("eve", &["dr-operators"])));
    let mut no_kid = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    no_kid.kid = None;
    let no_kid = jsonwebtoken::encode(
        &no_kid,
        &issuer.claims("eve", &["dr-operators"]),
        &jsonwebtoken::EncodingKey::from_ec_der(&issuer.pkcs8),
    )
    .unwrap();
    let mut other_kid = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    other_kid.kid = Some("k2".into());
    let other_kid = jsonwebtoken::encode(
        &other_kid,
        &issuer.claims("eve", &["dr-operators"]),
        &jsonwebtoken::EncodingKey::from_ec_der(&issuer.pkcs8),
    )
    .unwrap();
    let mut not_yet = issuer.claims("eve", &["dr-operators"]);
    not_yet["nbf"] = json!(now() + 3600);
    let tokens = [
        issuer.token(wrong_audience),
        issuer.token(wrong_issuer),
        issuer.token(expired),
        issuer.token(unmapped),
        symmetric,
        unsigned,
        no_kid,
        other_kid,
        issuer.token(not_yet),
        "not.a.jwt".to_owned(),
    ];
    for (i, t) in tokens.iter().enumerate() {
        let (status, body) = call(&app, t, reqwest::Method::GET, "/api/v1/estate").await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"), "token {i}");
    }
}

#[tokio::test]
async fn without_an_issuer_configured_jwts_are_refused() {
    let issuer = issuer().await;
    let app = spawn_app_with(|_| {}).await;
    let t = issuer.token(issuer.claims("carol", &["dr-operators"]));
    assert_eq!(call(&app, &t, reqwest::Method::GET, "/api/v1/estate").await.0, StatusCode::UNAUTHORIZED);
}
