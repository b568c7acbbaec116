//! HTTP routes over the service layer.
//!
//! * `POST /hooks/{source}`: the local ingress (no API token: senders
//!   authenticate with their signatures).
//! * `/api/*`: the JSON API and the live feed, behind the API token and the
//!   `Host`/`Origin` checks.
//! * `GET /health`: liveness, no auth, no data.

mod guard;
mod ingress;
mod notify;
mod outbox;
mod query;
mod relays;
mod retention;
mod secrets;
mod sinks;
mod stream;
mod ui;

pub use query::event_query as event_query_from_params;
pub use query::{VolumeParams, volume_params};
pub use relays::{RelayRequest, parse_new_relay};
pub use retention::{Retention, RetentionUpdate, parse_retention_update};
pub use sinks::check_new_sink;

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};

use crate::api::{Api, ApiError};

/// Kiket expects an answer within 10 s; every ingress request gets one well
/// before that even if the history is stuck.
pub(crate) const INGRESS_DEADLINE: Duration = Duration::from_secs(9);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            Json(serde_json::json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

pub(crate) fn router(api: Api) -> Router {
    let authed = Router::new()
        .route("/events", get(list_events))
        .route("/events/{id}", get(get_event))
        .route("/stats/volume", get(volume))
        .route("/health", get(health))
        .route("/stream", get(stream::sse))
        .merge(secrets::routes())
        .merge(ui::api_routes())
        .merge(outbox::routes())
        .merge(notify::routes())
        .merge(relays::routes())
        .merge(retention::routes())
        .merge(sinks::routes())
        .fallback(|| async { ApiError::not_found("no_route", "no such API endpoint") })
        .layer(middleware::from_fn_with_state(
            api.clone(),
            guard::require_local_and_token,
        ));
    Router::new()
        .route("/hooks/{source}", post(ingress::hook))
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .nest("/api", authed)
        .fallback(ui::fallback)
        .with_state(api)
}

async fn list_events(
    State(api): State<Api>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<impl IntoResponse, ApiError> {
    let q = query::event_query(&params)?;
    Ok(Json(api.list_events(&q).await?))
}

async fn get_event(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(api.get_event(&id).await?))
}

async fn volume(
    State(api): State<Api>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<impl IntoResponse, ApiError> {
    let v = query::volume_params(&params)?;
    Ok(Json(api.volume(v.from, v.to, v.bucket_secs).await?))
}

async fn health(State(api): State<Api>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(api.health().await?))
}
