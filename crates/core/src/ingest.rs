//! One webhook request → one event, the decisions every ingress shares (the
//! daemon's local `/hooks/{source}` and the relay's
//! `/hooks/{team}/{source}`): verify the raw bytes, normalize, score.
//!
//! Pure: the caller supplies the clock, the minted id and the secrets, and
//! decides what to do with the result (store it, append it to a log).

use chrono::{DateTime, Utc};

use crate::event::{KiteEvent, Verification};
use crate::headers::Headers;
use crate::importance::{self, Facts};
use crate::manifest::{Scoring, SourceConfig};
use crate::providers::{self, Inbound, NormalizeError};
use crate::verify::{self, Secret, VerifyError};

/// An event ready to keep, with its payload as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub event: KiteEvent,
    /// The body as received (so forwarding replays the exact bytes a
    /// signature was computed over); for a structured CloudEvent, its `data`.
    pub payload: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// The source requires a signature but no secret is available: a
    /// configuration problem on our side (503), not the sender's.
    #[error(
        "source {source_name:?} requires a signature but no secret is set (environment variable {env})"
    )]
    SecretMissing { source_name: String, env: String },
    /// The signature check failed (401).
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The body is not an event this source can carry (400).
    #[error(transparent)]
    Normalize(#[from] NormalizeError),
}

impl IngestError {
    /// A stable machine code for the HTTP boundary.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::SecretMissing { .. } => "secret_missing",
            IngestError::Verify(e) => e.code(),
            IngestError::Normalize(e) => e.code(),
        }
    }
}

/// Verify (when `secrets` is not empty), normalize and score one request.
///
/// With no secret, the request is accepted as unverified only if the source
/// allows unsigned requests (`verify.allowUnsigned`, or a caller that
/// authenticated the sender another way, such as the relay's hook token).
pub fn prepare(
    scoring: &Scoring,
    source: &SourceConfig,
    secrets: &[Secret],
    headers: &Headers,
    body: &[u8],
    now: DateTime<Utc>,
    minted_id: &str,
) -> Result<Prepared, IngestError> {
    let verification = if secrets.is_empty() {
        if !source.verify.allow_unsigned {
            return Err(IngestError::SecretMissing {
                source_name: source.name.clone(),
                env: source.verify.secret_env.join(" or "),
            });
        }
        Verification::unverified("unsigned: no secret configured for this source")
    } else {
        let scheme = source.verify.scheme.unwrap_or(source.kind.default_scheme());
        let v = verify::verify(
            scheme,
            headers,
            body,
            secrets,
            now,
            source.verify.tolerance(),
        )?;
        Verification::verified(v.describe(secrets.len()))
    };
    let inbound = Inbound {
        source_name: &source.name,
        headers,
        body,
        received: now,
        minted_id,
    };
    let n = providers::normalize(source.kind, &inbound)?;
    let changed = if n.ty == "com.github.push" {
        providers::github_changed_files(&n.data)
    } else {
        Vec::new()
    };
    let score = importance::score(
        scoring,
        &Facts {
            source_name: &source.name,
            ty: &n.ty,
            data: &n.data,
            changed_files: &changed,
        },
    );
    let payload = if !providers::is_structured_cloudevent(headers) {
        // normalize() parsed the body as JSON, so it is valid UTF-8.
        String::from_utf8(body.to_vec())
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    } else {
        n.data.to_string()
    };
    Ok(Prepared {
        payload,
        event: KiteEvent {
            id: n.id,
            source: n.source,
            ty: n.ty,
            time: n.time,
            source_name: source.name.clone(),
            summary: n.summary,
            data: n.data,
            seq: None,
            original_headers: headers.for_storage(),
            verification,
            importance: score.importance,
            importance_reason: score.reason,
        },
    })
}
