//! Who is asking, and may they: authentication of every request, CSRF protection, the guard in front of
//! the console's pages and server functions, the sign-in and sign-out form endpoints, and security headers (REST `/session` is `api::session`).
//!
//! Order of layers (outermost first): security headers → [`authenticate`] (identity + CSRF) → [`guard`]
//! (pages and console functions) → the router, where REST routes check their own declared access.
//!
//! Invariants: a request carries at most one identity ([`Principal`] in its extensions); an explicit but
//! invalid bearer token is refused, never downgraded to anonymous; a state-changing request authenticated
//! by cookie passes only with the session's CSRF token or from the console's own origin; secrets never
//! reach a log line.

use crate::api::error::ApiError;
use crate::api::routes::check_access;
use crate::oidc::Oidc;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use domain::ErrorCode;
use domain::auth::{Access, Principal};
use engine::Services;
use engine::auth::{TOKEN_PREFIX, constant_time_eq};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;

pub use domain::auth::SESSION_COOKIE;
/// Header carrying the session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What the security layers need.
#[derive(Clone)]
pub struct Security {
    pub services: Services,
    pub oidc: Option<Arc<Oidc>>,
    pub secure_cookies: bool,
    pub trust_forwarded_for: bool,
}

/// Facts about the request the sign-in handlers need.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    /// The client address, for sign-in throttling.
    pub address: String,
    /// Whether the session cookie must be `Secure` (TLS at a proxy, or configured).
    pub secure: bool,
    /// The session cookie's secret and CSRF token, when the request carries a valid one.
    pub session: Option<(String, String)>,
}

fn unsafe_method(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The value of cookie `name`, if present.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Whether the request's `Origin` names the host it was sent to.
fn same_origin(headers: &HeaderMap) -> Option<bool> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    Some(!host.is_empty() && origin_host.eq_ignore_ascii_case(host))
}

fn csrf_rejected(message: &str) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, ErrorCode::CsrfRejected, message).into_response()
}

fn unauthenticated(message: &str) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, message).into_response()
}

fn client_address(req: &Request, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(first) =
            req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()).and_then(|v| v.split(',').next())
    {
        return first.trim().to_owned();
    }
    req.extensions().get::<ConnectInfo<SocketAddr>>().map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string())
}

/// Resolves the identity of every request (bearer token, OIDC JWT or session cookie) and enforces CSRF.
pub async fn authenticate(State(sec): State<Security>, mut req: Request, next: Next) -> Response {
    let secure =
        sec.secure_cookies || req.headers().get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https");
    let mut facts = RequestFacts { address: client_address(&req, sec.trust_forwarded_for), secure, session: None };
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let Some(bearer) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim) else {
            return unauthenticated("use `Authorization: Bearer <token>`");
        };
        let found = if bearer.starts_with(TOKEN_PREFIX) {
            sec.services.auth.authenticate_token(bearer).await.map_err(|e| e.to_string())
        } else if let Some(oidc) = &sec.oidc {
            oidc.authenticate(bearer).await
        } else {
            Ok(None)
        };
        match found {
            Ok(Some(p)) => {
                req.extensions_mut().insert(p);
            }
            Ok(None) => return unauthenticated("the bearer token is invalid, expired or revoked"),
            Err(e) => {
                tracing::warn!(error = %e, "a bearer token could not be checked");
                return unauthenticated("the bearer token could not be verified");
            }
        }
        // Bearer requests cannot be forged by a browser on another site: no CSRF check.
        req.extensions_mut().insert(facts);
        return next.run(req).await;
    }
    if let Some(secret) = cookie(req.headers(), SESSION_COOKIE) {
        match sec.services.auth.session(&secret).await {
            Ok(Some((principal, session))) => {
                if unsafe_method(req.method()) {
                    let token_ok = req
                        .headers()
                        .get(CSRF_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|t| constant_time_eq(t, &session.csrf_token));
                    if !token_ok && same_origin(req.headers()) != Some(true) {
                        return csrf_rejected(
                            "a state-changing request signed in by cookie needs the X-CSRF-Token header (GET /api/v1/session gives it) or must come from the console itself",
                        );
                    }
                }
                req.extensions_mut().insert(principal);
                facts.session = Some((secret, session.csrf_token));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "sessions cannot be read");
                return ApiError::from(e).into_response();
            }
        }
    }
    if facts.session.is_none() && unsafe_method(req.method()) && same_origin(req.headers()) == Some(false) {
        // A form posted from another site without a session of ours (login CSRF).
        return csrf_rejected("this form must be posted from the Roundtrip console itself");
    }
    req.extensions_mut().insert(facts);
    next.run(req).await
}

/// Paths of the built site that anyone may load (code and styles are not secret).
fn is_asset(path: &str) -> bool {
    path.starts_with("/pkg/") || path == "/favicon.ico"
}

/// Whether a path is in its one canonical form: no empty, `.` or `..` segment, no backslash, no control
/// character, and no percent-encoded dot, slash or backslash. The page renderer resolves such segments
/// (`/auth/%2e%2e/audit` renders `/audit`), so a path that is not canonical could be checked as one page
/// and rendered as another; it is refused instead.
fn is_canonical(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    path.starts_with('/')
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && !["%2e", "%2f", "%5c", "%00"].iter().any(|e| lower.contains(e))
        && path.split('/').skip(1).enumerate().all(|(i, seg)| {
            let last = i + 1 == path.split('/').count() - 1;
            seg != "." && seg != ".." && (!seg.is_empty() || last)
        })
}

/// Pages and console functions: deny by default, as declared in [`app::access`].
pub async fn guard(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !is_canonical(&path) {
        return ApiError::new(StatusCode::NOT_FOUND, ErrorCode::RouteNotFound, "no such path").into_response();
    }
    let is_api = path == crate::api::routes::PREFIX || path.starts_with(&format!("{}/", crate::api::routes::PREFIX));
    // `/metrics` checks its token itself.
    if is_api || path == "/auth/login" || path == "/auth/logout" || path == "/metrics" || is_asset(&path) {
        return next.run(req).await;
    }
    let who = req.extensions().get::<Principal>();
    if path.starts_with(app::access::CONSOLE_PREFIX) {
        let Some(access) = app::access::server_fn_access(&path) else {
            tracing::error!(path, "a console function without a declared permission was refused");
            return ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::NoPermissionDeclared,
                "this console function declares no permission, so nobody may call it",
            )
            .into_response();
        };
        return match check_access(access, who) {
            Ok(()) => next.run(req).await,
            Err(e) => e.into_response(),
        };
    }
    // Pages: unknown paths need a signed-in identity too (they render the not-found page).
    let access = app::access::page_access(&path).unwrap_or(Access::SignedIn);
    match (access, who) {
        (Access::Public | Access::ShareLink, _) => next.run(req).await,
        (_, None) => {
            let next_path = req.uri().path_and_query().map_or("/", |p| p.as_str());
            Redirect::to(&format!("/login?next={}", encode_component(next_path))).into_response()
        }
        (_, Some(p)) if p.must_change_password && path != "/account" => Redirect::to("/account").into_response(),
        (access, Some(p)) if !p.allows(access) => (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html><title>Not allowed</title><p>Your role does not allow this page. <a href=\"/\">Back to the console</a></p>",
        )
            .into_response(),
        _ => next.run(req).await,
    }
}

/// Percent-encodes a query component.
fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where to go after signing in: a path on this site only (never `//host`, a full URL, or anything a
/// browser would clean into one: whitespace, control characters and backslashes are refused).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() <= 2048
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

pub(crate) fn session_cookie(secret: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(crate) fn clear_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub next: Option<String>,
}

/// `POST /auth/login` from the login page's form: a cookie and a redirect, or back to the form with a code.
pub async fn login_form(
    State(s): State<Services>,
    axum::Extension(facts): axum::Extension<RequestFacts>,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    match s.auth.login(&form.username, &form.password, &facts.address).await {
        Ok(signed) => {
            let to = if signed.principal.must_change_password { "/account".to_owned() } else { next };
            let mut r = Redirect::to(&to).into_response();
            r.headers_mut().insert(header::SET_COOKIE, session_cookie(&signed.session_secret, facts.secure));
            r
        }
        Err(e) => {
            let code = e.code().as_str();
            Redirect::to(&format!("/login?error={code}&next={}", encode_component(&next))).into_response()
        }
    }
}

/// `POST /auth/logout` from the user menu.
pub async fn logout_form(
    State(s): State<Services>,
    axum::Extension(facts): axum::Extension<RequestFacts>,
    who: Option<axum::Extension<Principal>>,
) -> Response {
    if let (Some((secret, _)), Some(axum::Extension(p))) = (&facts.session, who)
        && let Err(e) = s.auth.logout(secret, &p).await
    {
        tracing::error!(error = %e, "sign-out failed");
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(header::SET_COOKIE, clear_cookie(facts.secure));
    r
}

/// The signed-in identity and, for cookie sessions, the CSRF token to send back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    pub principal: Principal,
    pub csrf_token: Option<String>,
}

/// A JSON sign-in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// A change of one's own password.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// The Content-Security-Policy of console pages: scripts only from this site or with the page's nonce
/// (Leptos' hydration and resource scripts carry it), WebAssembly compilation allowed, no framing.
pub fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// The policy of every other response (JSON, files, redirects): nothing may run.
const STRICT_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers every response carries.
pub async fn headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(STRICT_CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Share-link tokens live in URLs: never send them to another site as a referrer. (`no-referrer` would
    // also make browsers send `Origin: null` on the console's own form posts, defeating the origin check.)
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/protection-groups?x=1")), "/protection-groups?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "\\\\evil",
            "/\\evil",
            "evil",
            "/\t/evil.example",
            "/ /evil",
            "/\n/x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
    }

    #[test]
    fn only_canonical_paths_pass() {
        for good in
            ["/", "/audit", "/protection-groups/pg-1/configuration", "/status/sl_a_b", "/pkg/webapp.js", "/matching/"]
        {
            assert!(is_canonical(good), "{good}");
        }
        for bad in [
            "/auth/../audit",
            "/auth/%2e%2e/admin/users",
            "/pkg/%2E%2E/audit",
            "/admin/./users",
            "//audit",
            "/a//b",
            "/status/..",
            "/x\\y",
            "/a%2fb",
        ] {
            assert!(!is_canonical(bad), "{bad}");
        }
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; rt_session=abc; b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
    }

    #[test]
    fn origins_are_compared_with_the_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        assert_eq!(same_origin(&h), None);
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:3000"));
        assert_eq!(same_origin(&h), Some(true));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert_eq!(same_origin(&h), Some(false));
    }
}
