//! Routes that declare their access: the only way a REST route is added.
//!
//! Every route is registered with an [`Access`]; the table of (method, path, access) is kept beside the
//! axum router and an authorisation layer looks each request's matched route up in it. A route that is
//! somehow registered without an entry is refused (deny by default), and `server/tests/api/security.rs`
//! walks the table with every role.

use super::error::ApiError;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use domain::ErrorCode;
use domain::auth::{Access, Principal};
use engine::Services;
use std::collections::HashMap;
use std::sync::Arc;

/// Where the REST API is mounted.
pub const PREFIX: &str = "/api/v1";

/// One declared route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    pub method: Method,
    /// The path as registered, relative to `/api/v1`, e.g. `/protection-groups/{id}`.
    pub path: &'static str,
    pub access: Access,
}

/// A router whose every route has an access rule.
pub struct Routes {
    router: Router<Services>,
    rules: Vec<RouteRule>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! method {
    ($name:ident, $filter:ident, $method:ident) => {
        /// Registers a handler for this method with its access rule.
        pub fn $name<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
        where
            H: Handler<T, Services>,
            T: 'static,
        {
            self.add(Method::$method, MethodFilter::$filter, path, access, handler)
        }
    };
}

impl Routes {
    pub fn new() -> Self {
        Self { router: Router::new(), rules: Vec::new() }
    }

    fn add<H, T>(mut self, method: Method, filter: MethodFilter, path: &'static str, access: Access, h: H) -> Self
    where
        H: Handler<T, Services>,
        T: 'static,
    {
        self.router = self.router.route(path, on(filter, h));
        self.rules.push(RouteRule { method, path, access });
        self
    }

    method!(get, GET, GET);
    method!(post, POST, POST);
    method!(put, PUT, PUT);
    method!(patch, PATCH, PATCH);
    method!(delete, DELETE, DELETE);

    /// Adds every route of `other`.
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.rules.extend(other.rules);
        self
    }

    /// The declared routes.
    pub fn rules(&self) -> &[RouteRule] {
        &self.rules
    }

    /// The router with the authorisation layer over every route, and the table it enforces.
    pub fn into_parts(self) -> (Router<Services>, Vec<RouteRule>) {
        let table: Arc<HashMap<(Method, String), Access>> =
            Arc::new(self.rules.iter().map(|r| ((r.method.clone(), r.path.to_owned()), r.access)).collect());
        let router = self.router.route_layer(axum::middleware::from_fn_with_state(table, authorize));
        (router, self.rules)
    }
}

/// Whether `who` may pass `access`: `Ok`, or the 401/403 to answer.
///
/// # Errors
/// `UNAUTHENTICATED` without an identity; `PASSWORD_CHANGE_REQUIRED` or `FORBIDDEN` when the role falls short.
pub fn check_access(access: Access, who: Option<&Principal>) -> Result<(), ApiError> {
    match (access, who) {
        (Access::Public | Access::ShareLink, _) => Ok(()),
        (_, None) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "sign in, or send `Authorization: Bearer <API token>`",
        )),
        (access, Some(p)) if p.allows(access) => Ok(()),
        (_, Some(p)) if p.must_change_password => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::PasswordChangeRequired,
            "change your one-time password first (Account page, or POST /api/v1/session/password)",
        )),
        (access, Some(p)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!("the {} role does not allow this ({})", p.role, describe(access)),
        )),
    }
}

fn describe(a: Access) -> &'static str {
    use domain::auth::Permission::*;
    match a {
        Access::Role(Read) => "reading needs any role",
        Access::Role(Operate) => "it needs the operator or admin role",
        Access::Role(Approve) => "it needs the approver or admin role",
        Access::Role(Administer) => "it needs the admin role",
        _ => "it needs a signed-in identity",
    }
}

async fn authorize(
    State(table): State<Arc<HashMap<(Method, String), Access>>>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let method = if req.method() == Method::HEAD { Method::GET } else { req.method().clone() };
    let path = matched.as_ref().map_or("", |m| m.as_str());
    let path = path.strip_prefix(super::PREFIX).unwrap_or(path);
    let Some(access) = table.get(&(method, path.to_owned())).copied() else {
        tracing::error!(path, method = %req.method(), "a route without a declared permission was refused");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::NoPermissionDeclared,
            "this route declares no permission, so nobody may call it",
        )
        .into_response();
    };
    let label = crate::RouteLabel(format!("{PREFIX}{path}"));
    let mut r = match check_access(access, req.extensions().get::<Principal>()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    };
    r.extensions_mut().insert(label);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    async fn status(router: Router, path: &str, who: Option<Principal>) -> (StatusCode, String) {
        let mut req = Request::builder().uri(format!("{}{path}", super::super::PREFIX)).body(Body::empty()).unwrap();
        if let Some(p) = who {
            req.extensions_mut().insert(p);
        }
        let r = router.oneshot(req).await.unwrap();
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Services over the bundled simulated estate and a memory store (these handlers never call them).
    fn services() -> Services {
        let scenario = sim::Scenario::from_toml(sim::DEFAULT_SCENARIO).unwrap();
        let clock = std::sync::Arc::new(sim::clock::SimClock::manual(0));
        let cloud = std::sync::Arc::new(sim::Simulator::new(scenario, clock.clone()));
        Services::new(cloud, std::sync::Arc::new(engine::store::memory::MemoryStore::default()), clock)
    }

    #[tokio::test]
    async fn a_route_added_without_a_rule_is_refused_even_to_an_admin() {
        let mut routes = Routes::new().get("/declared", Access::Public, || async { "ok" });
        // Bypass the builder, as a careless change might.
        routes.router = routes.router.route("/sneaky", axum::routing::get(|| async { "secret" }));
        let (router, rules) = routes.into_parts();
        assert_eq!(rules.len(), 1);
        let router = Router::new().nest(super::super::PREFIX, router.with_state(services()));
        let admin = Principal::system("test");
        assert_eq!(status(router.clone(), "/declared", None).await.0, StatusCode::OK);
        let (code, body) = status(router, "/sneaky", Some(admin)).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert!(body.contains("NO_PERMISSION_DECLARED") && !body.contains("secret"), "{body}");
    }
}
