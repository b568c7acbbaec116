//! Routes for forwarding and the outbox (see `crate::outbox`):
//! `/api/sinks`, `/api/forward`, `/api/deliveries…`,
//! `/api/events/{id}/deliveries`.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::api::{Api, ApiError};
use crate::outbox::{ForwardRequest, RetryAllRequest};

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/sinks", get(sinks))
        .route("/forward", post(forward))
        .route("/deliveries", get(list))
        .route("/deliveries/retry", post(retry_all))
        .route("/deliveries/{id}", get(get_one))
        .route("/deliveries/{id}/retry", post(retry_one))
        .route("/events/{id}/deliveries", get(event_deliveries))
}

/// Parse a JSON body into `{code, message}` errors (axum's own rejection
/// is plain text).
fn body<T: DeserializeOwned>(bytes: &[u8], empty_ok: bool) -> Result<T, ApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) && empty_ok {
        &b"{}"[..]
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("invalid_body", format!("request body: {e}")))
}

fn delivery_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found("delivery_not_found", format!("no delivery {id:?}")))
}

async fn sinks(State(api): State<Api>) -> impl IntoResponse {
    Json(api.sinks())
}

async fn forward(State(api): State<Api>, bytes: Bytes) -> Result<impl IntoResponse, ApiError> {
    let req: ForwardRequest = body(&bytes, false)?;
    Ok(Json(api.forward(req).await?))
}

async fn list(
    State(api): State<Api>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(api.list_deliveries(&params).await?))
}

async fn get_one(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(api.get_delivery(delivery_id(&id)?).await?))
}

async fn retry_one(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(api.retry_delivery(delivery_id(&id)?).await?))
}

async fn retry_all(State(api): State<Api>, bytes: Bytes) -> Result<impl IntoResponse, ApiError> {
    let req: RetryAllRequest = body(&bytes, true)?;
    Ok(Json(api.retry_deliveries(req).await?))
}

async fn event_deliveries(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(api.event_deliveries(&id).await?))
}
