//! `/webhooks`: where notices go. Admins register, test and delete them; anyone signed in sees them and
//! their delivery failures (never a URL path or a secret).

use super::Who;
use super::error::{ApiError, ApiJson, ApiPath};
use super::routes::Routes;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::auth::{Access, Permission};
use domain::notify::{WebhookInput, WebhookView};
use engine::Services;
use serde::Serialize;

pub fn routes() -> Routes {
    let admin = Access::Role(Permission::Administer);
    Routes::new()
        .get("/webhooks", Access::Role(Permission::Read), list)
        .post("/webhooks", admin, create)
        .delete("/webhooks/{webhook_id}", admin, remove)
        .post("/webhooks/{webhook_id}/test", admin, test)
}

#[derive(Serialize)]
struct WebhookList {
    webhooks: Vec<WebhookView>,
    /// Notices waiting for delivery in this server.
    queued: usize,
}

async fn list(State(s): State<Services>) -> Result<Json<WebhookList>, ApiError> {
    Ok(Json(WebhookList { webhooks: s.list_webhooks().await?, queued: s.notifier.queued() }))
}

/// Registers a webhook; its URL and secret are stored and never shown again.
async fn create(
    State(s): State<Services>,
    Who(who): Who,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.create_webhook(&who, &input).await?)))
}

async fn remove(
    State(s): State<Services>,
    Who(who): Who,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_webhook(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a test notice; its delivery shows in the webhook's status.
async fn test(State(s): State<Services>, Who(who): Who, ApiPath(id): ApiPath<String>) -> Result<StatusCode, ApiError> {
    s.test_webhook(&who, &id).await?;
    Ok(StatusCode::ACCEPTED)
}
