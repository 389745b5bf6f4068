//! `/share-links`: stakeholder share links (operators manage them), and `/share/{token}`: what a link shows,
//! without sign-in.

use super::Who;
use super::error::{ApiError, ApiJson, ApiPath};
use super::routes::Routes;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::auth::{Access, Permission};
use domain::share::{CreatedShareLink, NewShareLink, ShareLinkChange, ShareLinkView, StakeholderStatus};
use engine::Services;
use serde::Serialize;

pub fn routes() -> Routes {
    let operate = Access::Role(Permission::Operate);
    Routes::new()
        .get("/share-links", Access::Role(Permission::Read), list)
        .post("/share-links", operate, create)
        .patch("/share-links/{id}", operate, update)
        .delete("/share-links/{id}", operate, revoke)
        .get("/share/{token}", Access::ShareLink, status)
}

#[derive(Serialize)]
struct ShareLinkList {
    share_links: Vec<ShareLinkView>,
}

async fn list(State(s): State<Services>) -> Result<Json<ShareLinkList>, ApiError> {
    Ok(Json(ShareLinkList { share_links: s.list_share_links().await? }))
}

async fn create(
    State(s): State<Services>,
    Who(who): Who,
    ApiJson(input): ApiJson<NewShareLink>,
) -> Result<(StatusCode, Json<CreatedShareLink>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.create_share_link(&who, &input).await?)))
}

async fn update(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
    ApiJson(change): ApiJson<ShareLinkChange>,
) -> Result<Json<ShareLinkView>, ApiError> {
    Ok(Json(s.update_share_link(&who, &id, &change).await?))
}

async fn revoke(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ShareLinkView>, ApiError> {
    Ok(Json(s.revoke_share_link(&who, &id).await?))
}

async fn status(
    State(s): State<Services>,
    ApiPath(token): ApiPath<String>,
) -> Result<Json<StakeholderStatus>, ApiError> {
    Ok(Json(s.stakeholder_status(&token).await?))
}
