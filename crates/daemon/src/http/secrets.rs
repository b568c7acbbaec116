//! `/api/secrets`: list, create, rotate, reveal, delete.
//!
//! Names contain `/` (`webhook/github`); `/api/secrets/webhook/github/rotate`
//! and `/api/secrets/webhook%2Fgithub/rotate` both work.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::api::{Api, ApiError};
use crate::secrets::{NewSecret, RotateSecret};

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/secrets", get(list).post(create))
        .route(
            "/secrets/{*rest}",
            axum::routing::post(action).delete(remove),
        )
}

/// Parse a JSON body without echoing any of it back: serde's messages can
/// quote the offending input, and the input may be a secret.
fn body<T: DeserializeOwned>(bytes: &[u8], shape: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!(
                "invalid request body (line {}, column {}); expected {shape}",
                e.line(),
                e.column()
            ),
        )
    })
}

async fn list(State(api): State<Api>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(api.list_secrets().await?))
}

async fn create(State(api): State<Api>, bytes: Bytes) -> Result<Response, ApiError> {
    let req: NewSecret = body(
        &bytes,
        "{name, kind: webhook|relay_token|api_token, source?, value: string}",
    )?;
    let meta = api.create_secret(req).await?;
    Ok((StatusCode::CREATED, Json(meta)).into_response())
}

async fn action(
    State(api): State<Api>,
    Path(rest): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let rest = rest.trim_start_matches('/');
    if let Some(name) = rest.strip_suffix("/rotate") {
        let req: RotateSecret = body(&bytes, "{value: string, grace_hours?: u32}")?;
        return Ok(Json(api.rotate_secret(name, req).await?).into_response());
    }
    if let Some(name) = rest.strip_suffix("/reveal") {
        return Ok(Json(api.reveal_secret(name).await?).into_response());
    }
    Err(ApiError::not_found(
        "no_route",
        "POST /api/secrets/{name}/rotate or /reveal",
    ))
}

async fn remove(State(api): State<Api>, Path(name): Path<String>) -> Result<Response, ApiError> {
    api.delete_secret(name.trim_start_matches('/')).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
