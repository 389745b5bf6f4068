//! `/users`, `/tokens` and `/cloud/access-check`: local users, API tokens and the cloud access check, for
//! admins.

use super::Who;
use super::error::{ApiError, ApiJson, ApiPath};
use super::routes::Routes;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::auth::{Access, Permission};
use engine::Services;
use engine::auth::{ApiTokenView, CreatedToken, NewToken, NewUser, UserChange, UserView};
use serde::Serialize;

pub fn routes() -> Routes {
    let admin = Access::Role(Permission::Administer);
    Routes::new()
        .get("/users", admin, list_users)
        .post("/users", admin, create_user)
        .patch("/users/{username}", admin, update_user)
        .get("/tokens", admin, list_tokens)
        .post("/tokens", admin, create_token)
        .delete("/tokens/{id}", admin, revoke_token)
        .post("/cloud/access-check", admin, check_cloud_access)
        .get("/cloud/accounts", admin, list_cloud_accounts)
        .post("/cloud/accounts", admin, save_cloud_account)
        .delete("/cloud/accounts/{account_id}", admin, delete_cloud_account)
}

#[derive(Serialize)]
struct UserList {
    users: Vec<UserView>,
}

async fn list_users(State(s): State<Services>) -> Result<Json<UserList>, ApiError> {
    Ok(Json(UserList { users: s.auth.list_users().await? }))
}

async fn create_user(
    State(s): State<Services>,
    Who(who): Who,
    ApiJson(input): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.auth.create_user(&who, &input).await?)))
}

async fn update_user(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(name): ApiPath<String>,
    ApiJson(change): ApiJson<UserChange>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(s.auth.update_user(&who, &name, &change).await?))
}

#[derive(Serialize)]
struct TokenList {
    tokens: Vec<ApiTokenView>,
}

#[derive(Serialize)]
struct AccessReport {
    /// Whether every check passed.
    ok: bool,
    checks: Vec<domain::estate::AccessCheck>,
}

/// "Test access": every read Roundtrip needs, in every account and region, with what is missing.
async fn check_cloud_access(State(s): State<Services>) -> Result<Json<AccessReport>, ApiError> {
    let checks = s.check_cloud_access().await;
    Ok(Json(AccessReport { ok: checks.iter().all(|c| c.ok), checks }))
}

#[derive(Serialize)]
struct AccountList {
    accounts: Vec<domain::estate::CloudAccount>,
}

async fn list_cloud_accounts(State(s): State<Services>) -> Result<Json<AccountList>, ApiError> {
    Ok(Json(AccountList { accounts: s.list_cloud_accounts().await? }))
}

/// Registers (or changes) an account; its External ID is stored and never shown again.
async fn save_cloud_account(
    State(s): State<Services>,
    Who(who): Who,
    ApiJson(input): ApiJson<domain::estate::CloudAccountInput>,
) -> Result<Json<domain::estate::CloudAccount>, ApiError> {
    Ok(Json(s.save_cloud_account(&who, &input).await?))
}

async fn delete_cloud_account(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(account_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_cloud_account(&who, &account_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tokens(State(s): State<Services>) -> Result<Json<TokenList>, ApiError> {
    Ok(Json(TokenList { tokens: s.auth.list_tokens().await? }))
}

/// The answer carries the token's secret: the only time it is ever shown.
async fn create_token(
    State(s): State<Services>,
    Who(who): Who,
    ApiJson(input): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.auth.create_token(&who, &input).await?)))
}

async fn revoke_token(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ApiTokenView>, ApiError> {
    Ok(Json(s.auth.revoke_token(&who, &id).await?))
}
