//! Provider adapters: (headers, raw body, received time) → CloudEvent fields.
//!
//! Each adapter is pure. It decides `type`, `source`, `id`, `time` and the
//! one-line `kitesummary`; verification and importance happen elsewhere.

mod generic;
mod github;
mod kiket;
mod paperclip;
mod stripe;
mod text;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::headers::Headers;
use crate::payload::{Doc, NULL, Payload};
use crate::verify::Scheme;

pub use github::changed_files as github_changed_files;
pub use kiket::sla_state as kiket_sla_state;
pub use text::{format_money, truncate_chars};

/// The kinds of source a manifest can declare (`sources[].type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    Github,
    Stripe,
    Paperclip,
    Kiket,
    StandardWebhooks,
    Generic,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 6] = [
        ProviderKind::Github,
        ProviderKind::Stripe,
        ProviderKind::Paperclip,
        ProviderKind::Kiket,
        ProviderKind::StandardWebhooks,
        ProviderKind::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Github => "github",
            ProviderKind::Stripe => "stripe",
            ProviderKind::Paperclip => "paperclip",
            ProviderKind::Kiket => "kiket",
            ProviderKind::StandardWebhooks => "standard-webhooks",
            ProviderKind::Generic => "generic",
        }
    }

    /// The signature scheme a provider signs with unless the manifest says
    /// otherwise. Paperclip and generic sources have no scheme of their own;
    /// Standard Webhooks is the documented common ground.
    pub fn default_scheme(self) -> Scheme {
        match self {
            ProviderKind::Github => Scheme::Github,
            ProviderKind::Stripe => Scheme::Stripe,
            ProviderKind::Kiket => Scheme::Kiket,
            ProviderKind::Paperclip | ProviderKind::StandardWebhooks | ProviderKind::Generic => {
                Scheme::StandardWebhooks
            }
        }
    }
}

impl std::str::FromStr for ProviderKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown provider {s:?}: expected one of github, stripe, paperclip, kiket, standard-webhooks, generic"
                )
            })
    }
}

/// One webhook request as the ingress received it.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    /// The configured source name (`/hooks/{source}`).
    pub source_name: &'a str,
    pub headers: &'a Headers,
    pub body: &'a [u8],
    pub received: DateTime<Utc>,
    /// Mints an id (the daemon: a UUIDv7) for a request that carries none.
    pub mint_id: MintId<'a>,
}

/// How the caller mints an id for a request that carries none of the
/// sender's. A provider calls it only then, so a GitHub delivery (which
/// always names its id) never pays for one: minting a UUIDv7 cost 0.7 % of
/// the daemon's CPU under a webhook burst, most of it a `getrandom` call.
#[derive(Clone, Copy)]
pub struct MintId<'a>(pub &'a dyn Fn() -> String);

impl MintId<'_> {
    pub fn mint(&self) -> String {
        (self.0)()
    }
}

impl std::fmt::Debug for MintId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MintId(..)")
    }
}

/// The CloudEvent fields a provider adapter decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub id: String,
    pub source: String,
    pub ty: String,
    pub time: DateTime<Utc>,
    pub summary: String,
    pub data: Payload,
}

/// Why a request body could not be turned into an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("body is not valid UTF-8 (first bad byte at offset {valid_up_to})")]
    InvalidUtf8 { valid_up_to: usize },
    #[error("body is not valid JSON: {message} (line {line}, column {column})")]
    InvalidJson {
        message: String,
        line: usize,
        column: usize,
    },
    #[error("body is empty")]
    EmptyBody,
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("payload field {field} is missing or not a {expected}")]
    MissingField {
        field: &'static str,
        expected: &'static str,
    },
    #[error("invalid CloudEvent: {0}")]
    InvalidCloudEvent(String),
}

impl NormalizeError {
    pub fn code(&self) -> &'static str {
        match self {
            NormalizeError::InvalidUtf8 { .. } => "invalid_utf8",
            NormalizeError::InvalidJson { .. } => "invalid_json",
            NormalizeError::EmptyBody => "empty_body",
            NormalizeError::MissingHeader(_) => "missing_header",
            NormalizeError::MissingField { .. } => "missing_field",
            NormalizeError::InvalidCloudEvent(_) => "invalid_cloudevent",
        }
    }
}

/// The body as text, refusing an empty one and invalid UTF-8.
pub fn body_text(body: &[u8]) -> Result<&str, NormalizeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(NormalizeError::EmptyBody);
    }
    std::str::from_utf8(body).map_err(|e| NormalizeError::InvalidUtf8 {
        valid_up_to: e.valid_up_to(),
    })
}

/// Parse a JSON body, naming UTF-8 and syntax problems separately.
pub fn parse_json(text: &str) -> Result<Doc<'_>, NormalizeError> {
    Doc::parse(text).map_err(|e| NormalizeError::InvalidJson {
        message: e.to_string(),
        line: e.line(),
        column: e.column(),
    })
}

/// Turn one inbound webhook into CloudEvent fields.
///
/// A body sent as `application/cloudevents+json` is a structured CloudEvent
/// from an SDK: its `type`, `source`, `id` and `kitesummary` are kept.
pub fn normalize(kind: ProviderKind, input: &Inbound<'_>) -> Result<Normalized, NormalizeError> {
    let text = body_text(input.body)?;
    normalize_parsed(kind, input, text, &parse_json(text)?)
}

/// [`normalize`] for a body already parsed: `text` is the body and `body`
/// its [`parse_json`].
pub fn normalize_parsed(
    kind: ProviderKind,
    input: &Inbound<'_>,
    text: &str,
    body: &Doc<'_>,
) -> Result<Normalized, NormalizeError> {
    let mut n = if is_structured_cloudevent(input.headers) {
        generic::structured_cloudevent(input, text, body)?
    } else {
        let data = Payload::from_text(text.to_string());
        match kind {
            ProviderKind::Github => github::normalize(input, body, data)?,
            ProviderKind::Stripe => stripe::normalize(input, body, data)?,
            ProviderKind::Paperclip => paperclip::normalize(input, body, data)?,
            ProviderKind::Kiket => kiket::normalize(input, body, data)?,
            ProviderKind::StandardWebhooks => generic::standard_webhooks(input, body, data)?,
            ProviderKind::Generic => generic::normalize(input, body, data),
        }
    };
    // Adapters splice payload fields (logins, branch names, titles) into the
    // summary; whatever they contain, the result is one printable line.
    n.summary = truncate_chars(&n.summary, SUMMARY_MAX_CHARS);
    Ok(n)
}

/// The part of a parsed body that is the event's data: the `data` member of
/// a structured CloudEvent, else the whole body.
pub fn data_of<'d, 'a>(headers: &Headers, body: &'d Doc<'a>) -> &'d Doc<'a> {
    if is_structured_cloudevent(headers) {
        body.get("data").unwrap_or(&NULL)
    } else {
        body
    }
}

/// Longest `kitesummary` we produce: a notification line, not a paragraph.
pub const SUMMARY_MAX_CHARS: usize = 200;

/// Whether the body is a structured-mode CloudEvent (its payload is the
/// `data` member, not the whole body).
pub fn is_structured_cloudevent(headers: &Headers) -> bool {
    headers
        .get("content-type")
        .is_some_and(|ct| ct.trim_start().starts_with("application/cloudevents+json"))
}

/// String at a JSON path, if every step exists and the leaf is a string.
pub(crate) fn s<'v>(v: &'v Doc<'_>, path: &[&str]) -> Option<&'v str> {
    at(v, path)?.as_str()
}

pub(crate) fn at<'v, 'a>(v: &'v Doc<'a>, path: &[&str]) -> Option<&'v Doc<'a>> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

pub(crate) fn i(v: &Doc<'_>, path: &[&str]) -> Option<i64> {
    at(v, path)?.as_i64()
}

/// First string found among several paths.
pub(crate) fn first<'v>(v: &'v Doc<'_>, paths: &[&[&str]]) -> Option<&'v str> {
    paths.iter().find_map(|p| s(v, p).filter(|x| !x.is_empty()))
}
