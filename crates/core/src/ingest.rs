//! One webhook request → one event, the decisions every ingress shares (the
//! daemon's local `/hooks/{source}` and the relay's
//! `/hooks/{team}/{source}`): verify the raw bytes, normalize, score.
//!
//! Pure: the caller supplies the clock, the id minting and the secrets, and
//! decides what to do with the result (store it, append it to a log).
//!
//! Also shared by both ingresses: [`SourceSecrets`] (each source's signing
//! secrets from the variables its `verify.secretEnv` names, with the
//! environment passed in) and the request-body limit ([`BodyError`],
//! [`check_declared_length`]); reading the body stays with the HTTP layer.

use chrono::{DateTime, Utc};

use crate::event::{KiteEvent, Verification};
use crate::headers::Headers;
use crate::importance::{self, Facts};
use crate::manifest::{Scoring, SourceConfig};
use crate::providers::{self, Inbound, MintId, NormalizeError};
use crate::verify::{self, Secret, VerifyError};

/// Signing secrets per source, from the environment variables each
/// source's `verify.secretEnv` names (current first, then the ones kept
/// during a rotation).
#[derive(Debug, Clone, Default)]
pub struct SourceSecrets(Vec<(String, Vec<Secret>)>);

impl SourceSecrets {
    /// Read every source's variables through `env` (the process environment,
    /// or a test's map). Unset and blank values are skipped; values are
    /// trimmed (a trailing newline from `$(cat file)` is not part of a key).
    pub fn from_env(sources: &[SourceConfig], env: impl Fn(&str) -> Option<String>) -> Self {
        Self(
            sources
                .iter()
                .map(|s| {
                    let secrets = s
                        .verify
                        .secret_env
                        .iter()
                        .filter_map(|var| env(var))
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                        .map(Secret::new)
                        .collect();
                    (s.name.clone(), secrets)
                })
                .collect(),
        )
    }

    /// The secrets of `source` (none for an unknown source).
    pub fn get(&self, source: &str) -> &[Secret] {
        self.0
            .iter()
            .find(|(n, _)| n == source)
            .map(|(_, s)| s.as_slice())
            .unwrap_or(&[])
    }
}

/// Why a request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Over the limit (413), declared or counted while reading.
    #[error("body exceeds the {limit}-byte limit")]
    TooLarge { limit: usize },
    /// The connection failed while the body was read (400).
    #[error("cannot read the request body: {0}")]
    Unreadable(String),
}

impl BodyError {
    /// A stable machine code for the HTTP boundary.
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::TooLarge { .. } => "payload_too_large",
            BodyError::Unreadable(_) => "body_read_failed",
        }
    }
}

/// Refuse a body whose declared `Content-Length` is over `limit` before
/// reading any of it. A missing or unparsable length passes: the reader's
/// own limit catches bodies that lie or are chunked.
pub fn check_declared_length(content_length: Option<&str>, limit: usize) -> Result<(), BodyError> {
    match content_length.and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(n) if n > limit as u64 => Err(BodyError::TooLarge { limit }),
        _ => Ok(()),
    }
}

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
    mint_id: MintId<'_>,
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
        mint_id,
    };
    let text = providers::body_text(body)?;
    let doc = providers::parse_json(text)?;
    let n = providers::normalize_parsed(source.kind, &inbound, text, &doc)?;
    let data = providers::data_of(headers, &doc);
    let changed = if n.ty == "com.github.push" {
        providers::github_changed_files(data)
    } else {
        Vec::new()
    };
    let score = importance::score(
        scoring,
        &Facts {
            source_name: &source.name,
            ty: &n.ty,
            data,
            changed_files: &changed,
        },
    );
    // The body as received, or a structured CloudEvent's `data`.
    let payload = n.data.text().to_string();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Manifest;

    #[test]
    fn source_secrets_come_from_the_named_variables_trimmed() {
        let m = Manifest::from_json(
            br#"{"sources": [
                {"name": "github", "type": "github", "verify": {"secretEnv": ["GH_NEW", "GH_OLD", "GH_UNSET"]}},
                {"name": "blank", "type": "generic", "verify": {"secretEnv": "BLANK"}}
            ]}"#,
        )
        .unwrap();
        let env = |k: &str| match k {
            "GH_NEW" => Some("new\n".to_string()),
            "GH_OLD" => Some("old".to_string()),
            "BLANK" => Some("  ".to_string()),
            _ => None,
        };
        let s = SourceSecrets::from_env(&m.sources, env);
        let got: Vec<&str> = s.get("github").iter().map(Secret::expose).collect();
        assert_eq!(got, ["new", "old"], "in order, trimmed, unset skipped");
        assert!(s.get("blank").is_empty(), "a blank value is no secret");
        assert!(s.get("nope").is_empty());
    }

    #[test]
    fn declared_length_over_the_limit_is_refused_early() {
        assert_eq!(
            check_declared_length(Some("11"), 10),
            Err(BodyError::TooLarge { limit: 10 })
        );
        assert_eq!(check_declared_length(Some("10"), 10), Ok(()));
        assert_eq!(
            check_declared_length(None, 10),
            Ok(()),
            "chunked: the reader counts"
        );
        assert_eq!(check_declared_length(Some("lots"), 10), Ok(()));
        assert_eq!(
            BodyError::TooLarge { limit: 10 }.code(),
            "payload_too_large"
        );
    }
}
