//! `GET /api/stream`: Server-Sent Events of newly stored events.
//!
//! On connect the feed first replays what the client missed (events after
//! `Last-Event-ID` or `?after=`), then sends `event: ready`, then live
//! events. If the client falls behind the bus it catches up from the store,
//! so a slow reader misses nothing and blocks no one.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use kitedesk_core::glob::Glob;
use kitedesk_store::{EventQuery, StoredEvent};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::api::{Api, ApiError, EventSummary};
use crate::bus::DaemonEvent;

/// SSE frames buffered per client before its task waits on it.
const CLIENT_BUFFER: usize = 256;

pub(crate) async fn sse(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let mut q = super::query::event_query(&params)?;
    if q.q.is_some() || q.before.is_some() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "the live feed filters by source, type, min_importance and verified; use /api/events for search",
        ));
    }
    let after = params
        .iter()
        .find(|(k, _)| k == "after")
        .map(|(_, v)| v.as_str())
        .or_else(|| headers.get("last-event-id").and_then(|v| v.to_str().ok()))
        .map(|v| v.trim().parse::<i64>())
        .transpose()
        .map_err(|_| {
            ApiError::bad_request("invalid_query", "after / Last-Event-ID must be an event id")
        })?;
    let type_glob = q
        .type_glob
        .as_deref()
        .map(Glob::new)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?;
    q.limit = Some(kitedesk_store::MAX_LIMIT);
    q.oldest_first = true;

    // Subscribe before reading the backlog so nothing falls between them.
    let bus = api.bus().subscribe();
    let (tx, rx) = mpsc::channel(CLIENT_BUFFER);
    tokio::spawn(feed(api, bus, tx, q, type_glob, after));
    Ok(Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn frame(e: &StoredEvent) -> Event {
    let body = serde_json::to_string(&EventSummary::from(e)).unwrap_or_else(|_| "{}".into());
    Event::default()
        .id(e.id.to_string())
        .event("event")
        .data(body)
}

fn matches(q: &EventQuery, glob: Option<&Glob>, e: &StoredEvent) -> bool {
    (q.sources.is_empty() || q.sources.contains(&e.event.source_name))
        && glob.is_none_or(|g| g.is_match(&e.event.ty))
        && q.min_importance.is_none_or(|m| e.event.importance >= m)
        && q.verified
            .is_none_or(|v| e.event.verification.verified == v)
}

type Tx = mpsc::Sender<Result<Event, Infallible>>;

/// Send every stored event after `last` (matching `q`) in order; returns the
/// new last id, or `None` when the client has gone.
async fn catch_up(api: &Api, tx: &Tx, q: &EventQuery, mut last: i64) -> Option<i64> {
    loop {
        let page = match api
            .store()
            .list(&EventQuery {
                after: Some(last),
                ..q.clone()
            })
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "live feed catch-up failed");
                return Some(last);
            }
        };
        let full = page.events.len() as u32 >= kitedesk_store::MAX_LIMIT;
        for e in &page.events {
            tx.send(Ok(frame(e))).await.ok()?;
            last = e.id;
        }
        if !full {
            return Some(last);
        }
    }
}

async fn feed(
    api: Api,
    mut bus: broadcast::Receiver<DaemonEvent>,
    tx: Tx,
    q: EventQuery,
    glob: Option<Glob>,
    after: Option<i64>,
) {
    // Without a resume point, start from the newest stored event.
    let start = match after {
        Some(a) => a,
        None => api
            .store()
            .list(&EventQuery {
                limit: Some(1),
                ..Default::default()
            })
            .await
            .ok()
            .and_then(|p| p.events.first().map(|e| e.id))
            .unwrap_or(0),
    };
    let Some(mut last) = catch_up(&api, &tx, &q, start).await else {
        return;
    };
    let ready = Event::default()
        .event("ready")
        .data(format!("{{\"last_id\":{last}}}"));
    if tx.send(Ok(ready)).await.is_err() {
        return;
    }
    loop {
        match bus.recv().await {
            Ok(DaemonEvent::Stored(e)) => {
                if e.id <= last {
                    continue;
                }
                if e.id > last + 1 {
                    // Events between may have been filtered, or we may have
                    // skipped some: the store is the truth.
                    let Some(l) = catch_up(&api, &tx, &q, last).await else {
                        return;
                    };
                    last = l.max(e.id);
                    continue;
                }
                last = e.id;
                if matches(&q, glob.as_ref(), &e) && tx.send(Ok(frame(&e))).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!(
                    skipped = n,
                    "live feed client lagged; catching up from the store"
                );
                let Some(l) = catch_up(&api, &tx, &q, last).await else {
                    return;
                };
                last = l;
            }
            Ok(DaemonEvent::Connection(c)) => {
                let body = serde_json::to_string(&*c).unwrap_or_else(|_| "{}".into());
                if tx
                    .send(Ok(Event::default().event("connection").data(body)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Ok(DaemonEvent::NotificationSettings(_)) => {}
            Ok(DaemonEvent::ShuttingDown) | Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
