//! Any other source (`com.{source}.event`), Standard Webhooks senders, and
//! structured CloudEvents posted by SDKs.

use crate::payload::{Doc, NULL, Payload};
use chrono::{DateTime, Utc};

use super::{Inbound, NormalizeError, Normalized, first, s, truncate_chars};

pub(super) fn normalize(input: &Inbound<'_>, d: &Doc<'_>, data: Payload) -> Normalized {
    let src = input.source_name;
    Normalized {
        id: input.mint_id.mint(),
        source: format!("https://{src}"),
        ty: format!("com.{src}.event"),
        time: input.received,
        summary: describe(src, d),
        data,
    }
}

/// Fields that usually hold a human-readable line, in order of preference.
const TEXT_FIELDS: &[&[&str]] = &[
    &["summary"],
    &["message"],
    &["title"],
    &["text"],
    &["description"],
];

/// A summary for a payload we know nothing about: a `summary`, `message`,
/// `title` or `text` field if there is one, else the event name if any.
fn describe(src: &str, data: &Doc<'_>) -> String {
    match first(data, TEXT_FIELDS) {
        Some(text) => format!("{src}: {}", truncate_chars(text, 100)),
        None => match first(data, &[&["type"], &["event"], &["action"]]) {
            Some(ev) => format!("{src} {ev}"),
            None => format!("{src} event"),
        },
    }
}

/// Standard Webhooks bodies are `{type, timestamp, data}`; `webhook-id` is
/// the id and stays the same on retries.
pub(super) fn standard_webhooks(
    input: &Inbound<'_>,
    d: &Doc<'_>,
    data: Payload,
) -> Result<Normalized, NormalizeError> {
    let src = input.source_name;
    let event = s(d, &["type"]).filter(|t| !t.is_empty());
    let time = s(d, &["timestamp"])
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(input.received);
    Ok(Normalized {
        id: input
            .headers
            .get("webhook-id")
            .map_or_else(|| input.mint_id.mint(), str::to_string),
        source: format!("https://{src}"),
        ty: match event {
            Some(ev) => format!("com.{src}.{ev}"),
            None => format!("com.{src}.event"),
        },
        time,
        summary: match d.get("data") {
            Some(inner) if inner.is_object() => {
                match first(inner, &[&["summary"], &["message"], &["title"]]) {
                    Some(t) => format!(
                        "{src} {}: {}",
                        event.unwrap_or("event"),
                        truncate_chars(t, 100)
                    ),
                    None => match first(inner, &[&["id"], &["name"], &["email"]]) {
                        Some(id) => format!("{src} {} ({id})", event.unwrap_or("event")),
                        None => format!("{src} {}", event.unwrap_or("event")),
                    },
                }
            }
            _ => describe(src, d),
        },
        data,
    })
}

/// A structured-mode CloudEvent (`application/cloudevents+json`): the
/// sender's `id`, `type`, `source`, `time` and `kitesummary` are kept and
/// `data` is the payload.
pub(super) fn structured_cloudevent(
    input: &Inbound<'_>,
    text: &str,
    body: &Doc<'_>,
) -> Result<Normalized, NormalizeError> {
    let ce: cloudevents::Event =
        serde_json::from_str(text).map_err(|e| NormalizeError::InvalidCloudEvent(e.to_string()))?;
    use cloudevents::AttributesReader as _;
    // The SDK's parser accepts empty strings, but CloudEvents requires these
    // to be non-empty and its builder rejects an empty source: refuse here,
    // with a reason, rather than fail later when the event is re-emitted.
    for (name, value) in [("id", ce.id()), ("source", ce.source()), ("type", ce.ty())] {
        if value.is_empty() {
            return Err(NormalizeError::InvalidCloudEvent(format!(
                "{name} must be a non-empty string"
            )));
        }
    }
    let data = body.get("data").unwrap_or(&NULL);
    let ty = ce.ty().to_string();
    // Without a `kitesummary`: a text field of the data if there is one,
    // else the CloudEvent type (and subject), as the Kite CLI's compact mode
    // falls back to the type.
    let summary = match body.get("kitesummary").and_then(Doc::as_str) {
        Some(sum) => truncate_chars(sum, 200),
        None => match first(data, TEXT_FIELDS) {
            Some(text) => format!("{}: {}", input.source_name, truncate_chars(text, 100)),
            None => match ce.subject() {
                Some(subject) => format!("{ty}: {}", truncate_chars(subject, 100)),
                None => ty.clone(),
            },
        },
    };
    Ok(Normalized {
        id: ce.id().to_string(),
        source: ce.source().to_string(),
        time: ce.time().copied().unwrap_or(input.received),
        ty,
        summary,
        data: Payload::from_value(data.to_value()),
    })
}
