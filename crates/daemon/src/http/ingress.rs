//! `POST /hooks/{source}`: the local webhook ingress.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use kitedesk_core::Headers;
use kitedesk_core::ingest::{self, BodyError};

use super::INGRESS_DEADLINE;
use crate::api::{Api, ApiError};

pub(crate) async fn hook(
    State(api): State<Api>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = api.0.config.manifest.ingress.max_body_bytes;
    let work = async {
        let body = read_limited(&headers, body, limit).await?;
        let headers: Headers = headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        api.ingest(&source, &headers, &body).await
    };
    match tokio::time::timeout(INGRESS_DEADLINE, work).await {
        Ok(Ok(outcome)) => {
            let status = if outcome.status == "accepted" {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            (status, Json(outcome)).into_response()
        }
        Ok(Err(e)) => {
            tracing::info!(source, code = e.code, "webhook rejected: {}", e.message);
            e.into_response()
        }
        Err(_) => {
            tracing::error!(source, "webhook not stored within the deadline");
            ApiError::unavailable("timeout", "the event could not be stored in time; retry")
                .into_response()
        }
    }
}

async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, ApiError> {
    read_body(headers, body, limit).await.map_err(|e| match e {
        BodyError::TooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            e.code(),
            format!("{e} (ingress.maxBodyBytes)"),
        ),
        BodyError::Unreadable(_) => ApiError::bad_request(e.code(), e.to_string()),
    })
}

/// The body, at most `limit` bytes: refused early on a declared length,
/// counted while read for bodies that lie or are chunked.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok());
    ingest::check_declared_length(declared, limit)?;
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge { limit })
        }
        Err(e) => Err(BodyError::Unreadable(e.to_string())),
    }
}
