//! `POST /hooks/{team}/{source}[/{hook_token}]`: webhook ingress.
//!
//! Order: hook token (path or `Authorization: Bearer`) → the team's rate
//! and quota ([`crate::limits`], 429 with `Retry-After`) → body limit →
//! `kitedesk_core::ingest::prepare` (signature on the raw bytes when the
//! source has a secret, normalize, score) → append. A request is
//! authenticated by a valid hook token of the team, or, with no token, by a
//! valid provider signature when the source has a signing secret (Kite
//! spec §7.1). Anything else is 401 with nothing appended.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use kitedesk_core::ingest::{self, BodyError, IngestError, SourceSecrets};
use kitedesk_core::manifest::{SourceConfig, VerifyConfig};
use kitedesk_core::verify::Secret;
use kitedesk_core::{Headers, ProviderKind};
use serde::Serialize;

use crate::admin::TokenKind;
use crate::error::HttpError;
use crate::limits::{Refusal, retry_after_secs};
use crate::log::{Append, Appended, EventLog as _};
use crate::scope::{self, Facts};
use crate::{App, RelayConfig};

/// Kiket expects an answer within 10 s: every webhook gets one before that.
const DEADLINE: Duration = Duration::from_secs(9);

/// Signing secrets per manifest source, read from the environment at start.
pub(crate) fn secrets_from_env(config: &RelayConfig) -> SourceSecrets {
    SourceSecrets::from_env(&config.manifest.sources, |var| config.env_var(var))
}

/// The answer to an accepted webhook (the Kite relay's `{id, status,
/// created_at}` plus the seq).
#[derive(Debug, Clone, Serialize)]
pub struct HookOutcome {
    /// CloudEvent id.
    pub id: String,
    /// `accepted`, or `duplicate_ignored` for a redelivery.
    pub status: &'static str,
    pub seq: u64,
    pub created_at: String,
    pub verified: bool,
    pub summary: String,
}

pub(crate) async fn hook(
    State(app): State<App>,
    Path((team, source)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    respond(&app, &team, &source, bearer, headers, body).await
}

pub(crate) async fn hook_with_token(
    State(app): State<App>,
    Path((team, source, token)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(&app, &team, &source, Some(token), headers, body).await
}

async fn respond(
    app: &App,
    team: &str,
    source: &str,
    token: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let work = handle(app, team, source, token, headers, body);
    match tokio::time::timeout(DEADLINE, work).await {
        Ok(Ok(outcome)) => {
            let status = if outcome.status == "accepted" {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            (status, Json(outcome)).into_response()
        }
        Ok(Err(e)) => {
            tracing::info!(
                team,
                source,
                code = e.code,
                "webhook rejected: {}",
                e.message
            );
            e.into_response()
        }
        Err(_) => {
            tracing::error!(team, source, "webhook not logged within the deadline");
            HttpError::unavailable("timeout", "the event could not be stored in time; retry")
                .into_response()
        }
    }
}

/// `^[a-z0-9][a-z0-9-]{0,63}$`, and not `kite` (reserved for federation).
fn valid_source(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && s != "kite"
}

async fn handle(
    app: &App,
    team: &str,
    source_name: &str,
    token: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<HookOutcome, HttpError> {
    if !valid_source(source_name) {
        return Err(HttpError::bad_request(
            "invalid_source",
            "source must match ^[a-z0-9][a-z0-9-]{0,63}$ and not be \"kite\"",
        ));
    }
    let secrets = app.secrets.get(source_name);
    // The token is checked before the body is read: an unauthenticated
    // sender costs no more than its headers.
    let token_ok = match token {
        Some(t) => {
            let info = app
                .tokens
                .lookup(&t)
                .await
                .map_err(|e| HttpError::internal(&e))?;
            match info {
                Some(i) if i.kind == TokenKind::Hook && i.team_id == team => {
                    let scopes = scope::parse_all(&i.scopes).unwrap_or_default();
                    let facts = Facts {
                        source_name,
                        ce_source: "",
                        ce_type: "",
                        event_json: "",
                    };
                    if !scopes.iter().any(|s| {
                        matches!(s, scope::Scope::All | scope::Scope::Source(_))
                            && s.matches(&facts)
                    }) {
                        return Err(HttpError::new(
                            StatusCode::FORBIDDEN,
                            "token_scope",
                            format!("this hook token may not post to source {source_name:?}"),
                        ));
                    }
                    true
                }
                _ => {
                    return Err(HttpError::unauthorized(
                        "invalid_token",
                        "invalid hook token for this team",
                    ));
                }
            }
        }
        None if secrets.is_empty() => {
            return Err(HttpError::unauthorized(
                "missing_token",
                "a hook token is required: /hooks/{team}/{source}/{token} or Authorization: Bearer",
            ));
        }
        None => false,
    };
    // After the token (an unknown sender must not use up a team's budget),
    // before the body is read. The quota reservation is given back when no
    // new event is appended.
    app.limiter
        .admit(team, tokio::time::Instant::now())
        .map_err(refused)?;
    let result = admitted(app, team, source_name, token_ok, secrets, headers, body).await;
    if !matches!(&result, Ok(o) if o.status == "accepted") {
        app.limiter.release(team, tokio::time::Instant::now());
    }
    result
}

fn refused(r: Refusal) -> HttpError {
    let (code, message, after) = match r {
        Refusal::RateLimited { retry_after } => (
            "rate_limited",
            "too many webhook requests for this team; retry later".to_string(),
            retry_after,
        ),
        Refusal::QuotaExceeded {
            retry_after,
            used,
            limit,
        } => (
            "quota_exceeded",
            format!("the team's event quota is used up ({used} of {limit} this period)"),
            retry_after,
        ),
    };
    HttpError {
        extra: Some(serde_json::json!({"retry_after_secs": retry_after_secs(after)})),
        ..HttpError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
    }
}

async fn admitted(
    app: &App,
    team: &str,
    source_name: &str,
    token_ok: bool,
    secrets: &[Secret],
    headers: HeaderMap,
    body: Body,
) -> Result<HookOutcome, HttpError> {
    let config = &app.config;
    let body = read_limited(&headers, body, config.max_body_bytes).await?;
    let headers: Headers = headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut source = config
        .manifest
        .source(source_name)
        .cloned()
        .unwrap_or_else(|| SourceConfig {
            name: source_name.to_string(),
            kind: source_name
                .parse::<ProviderKind>()
                .unwrap_or(ProviderKind::Generic),
            verify: VerifyConfig::default(),
        });
    // A valid hook token authenticates the sender: a source without a
    // signing secret is accepted (marked unverified). Without a token the
    // signature is the only proof, and prepare() insists on it.
    source.verify.allow_unsigned = token_ok;
    let now = Utc::now();
    let mint = || uuid::Uuid::now_v7().to_string();
    let prepared = ingest::prepare(
        &config.manifest.scoring,
        &source,
        secrets,
        &headers,
        &body,
        now,
        kitedesk_core::MintId(&mint),
    )
    .map_err(|e| match e {
        IngestError::SecretMissing { .. } => HttpError::unauthorized(
            "missing_token",
            "a hook token is required for a source without a signing secret",
        ),
        IngestError::Verify(_) => HttpError::unauthorized(e.code(), e.to_string()),
        IngestError::Normalize(_) => HttpError::bad_request(e.code(), e.to_string()),
    })?;
    let ev = prepared.event;
    let json = ev
        .to_cloudevent()
        .map_err(|e| HttpError::internal(&e))
        .and_then(|ce| serde_json::to_string(&ce).map_err(|e| HttpError::internal(&e)))?;
    let appended = app
        .log
        .append(Append {
            team_id: team.to_string(),
            ce_source: ev.source.clone(),
            ce_id: ev.id.clone(),
            source_name: ev.source_name.clone(),
            ce_type: ev.ty.clone(),
            received: now,
            event_json: json,
        })
        .await
        .map_err(|e| {
            if e.is_disk_full() {
                HttpError::unavailable("storage_full", "the relay disk is full; retry later")
            } else if let crate::log::LogError::UnknownTeam(t) = &e {
                HttpError::unauthorized("invalid_token", format!("no team {t:?}"))
            } else {
                tracing::error!(error = %e, "cannot append event");
                HttpError::unavailable(
                    "storage_unavailable",
                    "the event log cannot be written; retry later",
                )
            }
        })?;
    Ok(HookOutcome {
        id: ev.id,
        status: match appended {
            Appended::New(_) => "accepted",
            Appended::Duplicate(_) => "duplicate_ignored",
        },
        seq: appended.seq(),
        created_at: kitedesk_core::event::format_time(now),
        verified: ev.verification.verified,
        summary: ev.summary,
    })
}

async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<bytes::Bytes, HttpError> {
    read_body(headers, body, limit).await.map_err(|e| match e {
        BodyError::TooLarge { limit } => HttpError {
            // The Kite relay's 413 carries the limit.
            extra: Some(serde_json::json!({"max_bytes": limit})),
            ..HttpError::new(StatusCode::PAYLOAD_TOO_LARGE, e.code(), e.to_string())
        },
        BodyError::Unreadable(_) => HttpError::bad_request(e.code(), e.to_string()),
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
