//! REST `/session`: sign in and out with JSON, read who you are, change your password.

use super::Who;
use super::error::{ApiError, ApiJson};
use super::routes::Routes;
use crate::security::{Credentials, PasswordChange, RequestFacts, SessionInfo, clear_cookie, session_cookie};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::auth::Access;
use engine::Services;

/// The routes, with their access.
pub fn routes() -> Routes {
    Routes::new()
        .get("/session", Access::SignedIn, read)
        .post("/session", Access::Public, create)
        .delete("/session", Access::SignedIn, remove)
        .post("/session/password", Access::SignedIn, change_password)
}

async fn read(Who(who): Who, axum::Extension(facts): axum::Extension<RequestFacts>) -> Json<SessionInfo> {
    Json(SessionInfo { principal: who, csrf_token: facts.session.map(|s| s.1) })
}

async fn create(
    State(s): State<Services>,
    axum::Extension(facts): axum::Extension<RequestFacts>,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let signed = s.auth.login(&c.username, &c.password, &facts.address).await?;
    let info = SessionInfo { principal: signed.principal, csrf_token: Some(signed.session.csrf_token) };
    let mut r = Json(info).into_response();
    r.headers_mut().insert(header::SET_COOKIE, session_cookie(&signed.session_secret, facts.secure));
    Ok(r)
}

async fn remove(
    State(s): State<Services>,
    Who(who): Who,
    axum::Extension(facts): axum::Extension<RequestFacts>,
) -> Result<Response, ApiError> {
    if let Some((secret, _)) = &facts.session {
        s.auth.logout(secret, &who).await?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(header::SET_COOKIE, clear_cookie(facts.secure));
    Ok(r)
}

async fn change_password(
    State(s): State<Services>,
    Who(who): Who,
    axum::Extension(facts): axum::Extension<RequestFacts>,
    ApiJson(c): ApiJson<PasswordChange>,
) -> Result<Json<engine::auth::UserView>, ApiError> {
    let keep = facts.session.as_ref().map(|(secret, _)| secret.as_str());
    Ok(Json(s.auth.change_password(&who, &c.current_password, &c.new_password, keep).await?))
}
