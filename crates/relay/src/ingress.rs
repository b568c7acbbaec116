//! `POST /hooks/{team}/{source}[/{hook_token}]`: webhook ingress.
//!
//! Order: hook token (path or `Authorization: Bearer`) → body limit →
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
use kitedesk_core::ingest::{self, IngestError};
use kitedesk_core::manifest::{SourceConfig, VerifyConfig};
use kitedesk_core::verify::Secret;
use kitedesk_core::{Headers, ProviderKind};
use serde::Serialize;

use crate::admin::TokenKind;
use crate::error::HttpError;
use crate::log::{Append, Appended, EventLog as _};
use crate::scope::{self, Facts};
use crate::{App, RelayConfig};

/// Kiket expects an answer within 10 s: every webhook gets one before that.
const DEADLINE: Duration = Duration::from_secs(9);

/// Signing secrets per manifest source, read from the environment at start.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceSecrets(Vec<(String, Vec<Secret>)>);

impl SourceSecrets {
    pub(crate) fn from_config(config: &RelayConfig) -> Self {
        Self(
            config
                .manifest
                .sources
                .iter()
                .map(|s| {
                    let secrets = s
                        .verify
                        .secret_env
                        .iter()
                        .filter_map(|var| config.env_var(var))
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                        .map(Secret::new)
                        .collect();
                    (s.name.clone(), secrets)
                })
                .collect(),
        )
    }

    fn get(&self, source: &str) -> &[Secret] {
        self.0
            .iter()
            .find(|(n, _)| n == source)
            .map(|(_, s)| s.as_slice())
            .unwrap_or(&[])
    }
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
    let config = &app.config;
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
    let minted = uuid::Uuid::now_v7().to_string();
    let prepared = ingest::prepare(
        &config.manifest.scoring,
        &source,
        secrets,
        &headers,
        &body,
        now,
        &minted,
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
    let too_large = || HttpError {
        extra: Some(serde_json::json!({"max_bytes": limit})),
        ..HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("body exceeds the {limit}-byte limit"),
        )
    };
    // Refuse early on a declared length; the streaming limit below catches
    // bodies that lie or are chunked.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(HttpError::bad_request(
            "body_read_failed",
            format!("cannot read the request body: {e}"),
        )),
    }
}
