//! `/api/settings/notifications` and `/api/notifications/*` (see
//! CONTRACTS.md, "Notifications and settings").

use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use kitedesk_notify::{PauseRequest, parse_settings};

use crate::api::{Api, ApiError};

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route(
            "/settings/notifications",
            get(get_settings).put(put_settings),
        )
        .route("/notifications/pause", post(pause))
        .route("/notifications/resume", post(resume))
        .route("/notifications/status", get(status))
}

async fn get_settings(State(api): State<Api>) -> impl IntoResponse {
    Json(api.notification_settings())
}

/// The body is parsed here rather than by axum's `Json`, so a bad value is
/// answered with the field's path (`quiet_hours.start: …`).
async fn put_settings(State(api): State<Api>, body: Bytes) -> Result<impl IntoResponse, ApiError> {
    let settings = parse_settings(&body)
        .map_err(|e| ApiError::bad_request("invalid_settings", e.to_string()))?;
    Ok(Json(api.set_notification_settings(settings).await?))
}

async fn pause(State(api): State<Api>, body: Bytes) -> Result<impl IntoResponse, ApiError> {
    let req: PauseRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PauseRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_pause", e.to_string()))?
    };
    Ok(Json(api.pause_notifications(&req).await?))
}

async fn resume(State(api): State<Api>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(api.resume_notifications().await?))
}

async fn status(State(api): State<Api>) -> impl IntoResponse {
    Json(api.notification_status())
}
