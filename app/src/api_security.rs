//! Console functions for identities and records: who am I, my password, users and API tokens (admins),
//! the audit trail, share links, and the stakeholder status a share link shows.

use crate::api::ConsoleError;
#[cfg(feature = "ssr")]
use crate::api::{require, services, services_for_anyone, who};
use domain::audit::{AuditEntry, AuditFilter, ChainReport};
use domain::auth::{ApiTokenView, CreatedToken, NewToken, NewUser, Role, UserChange, UserView};
use domain::share::{CreatedShareLink, NewShareLink, ShareLinkChange, ShareLinkView, StakeholderStatus};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The signed-in identity as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub name: String,
    pub role: Role,
    pub must_change_password: bool,
    /// Whether the identity is a console session (only sessions can change a password or sign out).
    pub session: bool,
}

/// Who is signed in, or `None`.
#[server(prefix = "/console", endpoint = "whoami", input = leptos::server_fn::codec::Json)]
pub async fn whoami() -> Result<Option<Me>, ConsoleError> {
    Ok(who().ok().map(|p| Me {
        name: p.subject.clone(),
        role: p.role,
        must_change_password: p.must_change_password,
        session: p.method == domain::auth::AuthMethod::Session,
    }))
}

/// Changes the signed-in user's password.
#[server(prefix = "/console", endpoint = "change_password", input = leptos::server_fn::codec::Json)]
pub async fn change_password(current_password: String, new_password: String) -> Result<UserView, ConsoleError> {
    // This session stays; every other session of the user ends.
    let keep = use_context::<http::request::Parts>().and_then(|p| {
        p.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == domain::auth::SESSION_COOKIE)
            .map(|(_, v)| v.to_owned())
    });
    Ok(services_for_anyone()?.auth.change_password(&who()?, &current_password, &new_password, keep.as_deref()).await?)
}

#[server(prefix = "/console", endpoint = "list_users", input = leptos::server_fn::codec::Json)]
pub async fn list_users() -> Result<Vec<UserView>, ConsoleError> {
    require(domain::auth::Permission::Administer)?;
    Ok(services()?.auth.list_users().await?)
}

#[server(prefix = "/console", endpoint = "create_user", input = leptos::server_fn::codec::Json)]
pub async fn create_user(input: NewUser) -> Result<UserView, ConsoleError> {
    let who = require(domain::auth::Permission::Administer)?;
    Ok(services()?.auth.create_user(&who, &input).await?)
}

#[server(prefix = "/console", endpoint = "update_user", input = leptos::server_fn::codec::Json)]
pub async fn update_user(username: String, change: UserChange) -> Result<UserView, ConsoleError> {
    let who = require(domain::auth::Permission::Administer)?;
    Ok(services()?.auth.update_user(&who, &username, &change).await?)
}

#[server(prefix = "/console", endpoint = "list_tokens", input = leptos::server_fn::codec::Json)]
pub async fn list_tokens() -> Result<Vec<ApiTokenView>, ConsoleError> {
    require(domain::auth::Permission::Administer)?;
    Ok(services()?.auth.list_tokens().await?)
}

/// Creates a token; the answer holds its secret, shown once.
#[server(prefix = "/console", endpoint = "create_token", input = leptos::server_fn::codec::Json)]
pub async fn create_token(input: NewToken) -> Result<CreatedToken, ConsoleError> {
    let who = require(domain::auth::Permission::Administer)?;
    Ok(services()?.auth.create_token(&who, &input).await?)
}

#[server(prefix = "/console", endpoint = "revoke_token", input = leptos::server_fn::codec::Json)]
pub async fn revoke_token(id: String) -> Result<ApiTokenView, ConsoleError> {
    let who = require(domain::auth::Permission::Administer)?;
    Ok(services()?.auth.revoke_token(&who, &id).await?)
}

#[server(prefix = "/console", endpoint = "audit_query", input = leptos::server_fn::codec::Json)]
pub async fn audit_query(filter: AuditFilter) -> Result<Vec<AuditEntry>, ConsoleError> {
    Ok(services()?.audit.query(&filter).await.map_err(engine::ServiceError::from)?)
}

#[server(prefix = "/console", endpoint = "audit_verify", input = leptos::server_fn::codec::Json)]
pub async fn audit_verify() -> Result<ChainReport, ConsoleError> {
    Ok(services()?.audit.verify().await.map_err(engine::ServiceError::from)?)
}

#[server(prefix = "/console", endpoint = "list_share_links", input = leptos::server_fn::codec::Json)]
pub async fn list_share_links() -> Result<Vec<ShareLinkView>, ConsoleError> {
    Ok(services()?.list_share_links().await?)
}

/// Creates a share link; the answer holds its token, shown once.
#[server(prefix = "/console", endpoint = "create_share_link", input = leptos::server_fn::codec::Json)]
pub async fn create_share_link(input: NewShareLink) -> Result<CreatedShareLink, ConsoleError> {
    let who = require(domain::auth::Permission::Operate)?;
    Ok(services()?.create_share_link(&who, &input).await?)
}

#[server(prefix = "/console", endpoint = "update_share_link", input = leptos::server_fn::codec::Json)]
pub async fn update_share_link(id: String, change: ShareLinkChange) -> Result<ShareLinkView, ConsoleError> {
    let who = require(domain::auth::Permission::Operate)?;
    Ok(services()?.update_share_link(&who, &id, &change).await?)
}

#[server(prefix = "/console", endpoint = "revoke_share_link", input = leptos::server_fn::codec::Json)]
pub async fn revoke_share_link(id: String) -> Result<ShareLinkView, ConsoleError> {
    let who = require(domain::auth::Permission::Operate)?;
    Ok(services()?.revoke_share_link(&who, &id).await?)
}

/// What a share link shows; anyone holding the token may ask.
#[server(prefix = "/console", endpoint = "stakeholder_status", input = leptos::server_fn::codec::Json)]
pub async fn get_stakeholder_status(token: String) -> Result<StakeholderStatus, ConsoleError> {
    Ok(services_for_anyone()?.stakeholder_status(&token).await?)
}
