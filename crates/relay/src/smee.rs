//! `GET /smee/{team}?token=<api token>`: a smee.io-compatible Server-Sent
//! Events channel, so `smee-client --url http://relay/smee/TEAM?token=…`
//! (which hands its URL straight to an `EventSource`) can forward a team's
//! webhooks too.
//!
//! The stream opens with a `ready` event (as smee.io does; smee-client
//! ignores it, tests use it as the "subscribed" signal), then sends each
//! event appended to the team's log from then on (live only: no catch-up,
//! no cursor) as a `message` whose `data` is the object smee.io sends: the
//! original request headers as lowercase top-level keys, `body` (the
//! payload as JSON), `query` (`{}`) and `timestamp` (ms since the epoch).
//!
//! Headers are those the relay keeps with an event (the CloudEvent's
//! `kiteoriginalheaders`): credentials (`authorization`, `cookie`, …) and
//! hop-by-hop headers (`host`, `content-length`, …) are never stored, so they
//! are never sent either. `timestamp` is the event's CloudEvent `time`.
//! Events outside the token's scopes are not sent.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::admin::TokenKind;
use crate::log::{Entry, EventLog as _};
use crate::scope::{self, Facts, Scope};
use crate::{App, HttpError};

/// Events read from the log per query.
const READ_PAGE: usize = 256;

#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

pub(crate) async fn channel(
    State(app): State<App>,
    Path(team): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, HttpError> {
    let invalid = || HttpError::unauthorized("invalid_token", "Invalid API key");
    let token = q.token.filter(|t| !t.is_empty()).ok_or_else(invalid)?;
    let info = app
        .tokens
        .lookup(&token)
        .await
        .map_err(|e| HttpError::internal(&e))?;
    let info = match info {
        Some(i) if i.kind == TokenKind::Api && i.team_id == team => i,
        _ => return Err(invalid()),
    };
    let token_scopes = scope::parse_all(&info.scopes).unwrap_or_default();
    let mut head = app
        .log
        .subscribe(&team)
        .await
        .map_err(|e| HttpError::internal(&e))?;
    let next = head.borrow_and_update().saturating_add(1);
    let feed = Feed {
        stop: app.shutdown.clone(),
        app,
        team,
        next,
        head,
        token_scopes,
        pending: VecDeque::from([Event::default().event("ready").data("{}")]),
    };
    let stream = futures_util::stream::unfold(feed, next_event);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

struct Feed {
    app: App,
    team: String,
    /// The next seq to read.
    next: u64,
    head: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
    token_scopes: Vec<Scope>,
    pending: VecDeque<Event>,
}

/// The next SSE event, waiting for the log to grow; `None` ends the stream
/// (relay shutdown or an unreadable log).
async fn next_event(mut f: Feed) -> Option<(Result<Event, Infallible>, Feed)> {
    loop {
        if let Some(ev) = f.pending.pop_front() {
            return Some((Ok(ev), f));
        }
        if f.next <= *f.head.borrow_and_update() {
            let page = match f.app.log.read_from(&f.team, f.next, READ_PAGE).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the event log for a smee client");
                    return None;
                }
            };
            match page.last() {
                Some(l) => f.next = l.seq + 1,
                // Removed by retention meanwhile: skip to the head.
                None => f.next = *f.head.borrow() + 1,
            }
            for e in page.iter().filter(|e| in_scope(&f.token_scopes, e)) {
                match message(e) {
                    Some(data) => f.pending.push_back(Event::default().data(data)),
                    None => tracing::warn!(seq = e.seq, "logged event is not a JSON object"),
                }
            }
            continue;
        }
        tokio::select! {
            changed = f.head.changed() => if changed.is_err() { return None },
            _ = f.stop.wait_for(|s| *s) => return None,
        }
    }
}

fn in_scope(token_scopes: &[Scope], e: &Entry) -> bool {
    scope::any_match(
        token_scopes,
        &Facts {
            source_name: &e.source_name,
            ce_source: &e.ce_source,
            ce_type: &e.ce_type,
            event_json: &e.event_json,
        },
    )
}

/// The smee.io message for a logged CloudEvent.
fn message(e: &Entry) -> Option<String> {
    let Value::Object(ce) = serde_json::from_str::<Value>(&e.event_json).ok()? else {
        return None;
    };
    Some(smee_json(&ce).to_string())
}

/// `{<header>: value, …, body, query, timestamp}` from structured-mode
/// CloudEvent JSON.
pub(crate) fn smee_json(ce: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    if let Some(Value::String(h)) = ce.get(kitedesk_core::event::ext::ORIGINAL_HEADERS)
        && let Ok(Value::Object(headers)) = serde_json::from_str::<Value>(h)
    {
        for (k, v) in headers {
            if let Value::String(v) = v {
                out.insert(k.to_ascii_lowercase(), Value::String(v));
            }
        }
    }
    let body = match ce.get("data") {
        // A JSON payload stored as a string (non-JSON content type) stays
        // a string unless it parses.
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
        Some(v) => v.clone(),
        None => Value::Null,
    };
    let timestamp = ce
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(
            || chrono::Utc::now().timestamp_millis(),
            |t| t.timestamp_millis(),
        );
    out.insert("body".into(), body);
    out.insert("query".into(), Value::Object(Map::new()));
    out.insert("timestamp".into(), Value::from(timestamp));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_become_lowercase_keys_and_reserved_keys_win() {
        let ce = serde_json::json!({
            "id": "1",
            "time": "2026-01-02T03:04:05.678Z",
            "data": {"a": 1},
            "kiteoriginalheaders": r#"{"X-GitHub-Event":"push","body":"spoof","timestamp":"x"}"#,
        });
        let got = smee_json(ce.as_object().unwrap());
        assert_eq!(got["x-github-event"], "push");
        assert_eq!(got["body"], serde_json::json!({"a": 1}));
        assert_eq!(got["query"], serde_json::json!({}));
        assert_eq!(got["timestamp"], 1_767_323_045_678_i64);
    }

    #[test]
    fn no_headers_and_string_data() {
        let ce = serde_json::json!({"data": "plain text"});
        let got = smee_json(ce.as_object().unwrap());
        assert_eq!(got["body"], "plain text");
        assert_eq!(got.as_object().unwrap().len(), 3);
        assert!(got["timestamp"].as_i64().unwrap() > 0);
    }
}
