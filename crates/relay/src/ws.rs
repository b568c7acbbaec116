//! `GET /ws`: the Kite protocol v1 server side.
//!
//! A session: the client's first frame must be `connect` (version 1, an API
//! token of `team_id`, scopes, optional `client_id`), answered `connected
//! {last_seq, client_id}` or `error 4001` and a close. Delivery then starts
//! after the client's cursor: its last acknowledged seq, or for a client id
//! the relay has not seen, the team's current last seq (live from now on).
//! If events after the cursor were removed by retention, `cursor_expired`
//! names the oldest available seq and delivery goes on from there.
//!
//! Events are read from the log in pages (catch-up and live alike), so a
//! session only ever holds a page and its bounded outgoing buffer. When that
//! buffer stays full for `slow_consumer_timeout` the client is cut off with
//! 4004; other sessions never wait for it.

use std::collections::VecDeque;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::App;
use crate::admin::TokenKind;
use crate::frames::{
    self, ClientMessage, ERR_AUTH_FAILED, ERR_INVALID_MESSAGE, ERR_QUOTA_BLOCKED, ERR_RATE_LIMITED,
    ERR_SLOW_CONSUMER, FrameError, ServerMessage,
};
use crate::log::{Entry, EventLog as _};
use crate::scope::{self, Facts, Scope};

/// Events read from the log per query.
const READ_PAGE: usize = 256;
/// Most frames written to a client's socket with one flush.
const WRITE_BATCH: usize = 64;
/// How long closing frames may take to reach a client before the socket is
/// dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Close code for "going away" (relay shutdown) and "message too big".
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_TOO_BIG: u16 = 1009;

pub(crate) async fn upgrade(State(app): State<App>, ws: WebSocketUpgrade) -> Response {
    // tungstenite refuses frames beyond this outright; up to it, the session
    // answers oversized frames with 4002 itself.
    let hard_limit = app.config.max_frame_bytes.saturating_mul(16).max(1 << 20);
    ws.max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |socket| async move {
            app.sessions.send_modify(|n| *n += 1);
            let _guard = SessionGuard(app.clone());
            session(app, socket).await;
        })
}

/// Resolves once the relay is shutting down.
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

struct SessionGuard(App);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.sessions.send_modify(|n| *n = n.saturating_sub(1));
    }
}

fn text(s: String) -> Message {
    Message::Text(s.into())
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;
type Stream = futures_util::stream::SplitStream<WebSocket>;

/// Queue frames in the socket's write buffer, then flush them at once.
async fn send_all(sink: &mut Sink, frames: Vec<Message>) -> Result<(), axum::Error> {
    for f in frames {
        sink.feed(f).await?;
    }
    sink.flush().await
}

/// Send closing frames with a bound, then drop the socket.
async fn finish(mut sink: Sink, frames: Vec<Message>) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        for f in frames {
            if sink.send(f).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    })
    .await;
}

/// Refuse the handshake: an error frame, then a close with the same code.
async fn refuse(sink: Sink, code: u32, message: &str) {
    tracing::info!(code, "WebSocket handshake refused: {message}");
    let close_code = u16::try_from(code).unwrap_or(1008);
    finish(
        sink,
        vec![
            text(frames::error_frame(code, message)),
            close(close_code, message),
        ],
    )
    .await;
}

struct Connected {
    team: String,
    client_id: String,
    scopes: Vec<Scope>,
    /// The token's own scopes: events must match these too.
    token_scopes: Vec<Scope>,
}

/// Read frames until the first text frame (pings are answered by the
/// library; anything else before `connect` is an error).
async fn handshake(app: &App, stream: &mut Stream) -> Result<Connected, (u32, String, u16)> {
    let invalid = |m: String| (ERR_INVALID_MESSAGE, m, 1008);
    let first = loop {
        match stream.next().await {
            Some(Ok(Message::Text(t))) => break t,
            Some(Ok(Message::Binary(_))) => {
                return Err(invalid(FrameError::Binary.to_string()));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None => {
                return Err((0, "closed before connect".into(), 1000));
            }
            Some(Err(e)) => {
                return Err((
                    ERR_INVALID_MESSAGE,
                    format!("bad frame: {e}"),
                    CLOSE_TOO_BIG,
                ));
            }
        }
    };
    let msg = frames::parse_client_frame(first.as_str(), app.config.max_frame_bytes)
        .map_err(|e| invalid(e.to_string()))?;
    let ClientMessage::Connect {
        version,
        token,
        team_id,
        scopes,
        client_id,
    } = msg
    else {
        return Err(invalid("the first frame must be connect".into()));
    };
    if version != frames::PROTOCOL_VERSION {
        return Err(invalid(format!(
            "unsupported protocol version {version}; this relay speaks 1"
        )));
    }
    let info = app.tokens.lookup(&token).await.map_err(|e| {
        tracing::error!(error = %e, "token lookup failed");
        (ERR_AUTH_FAILED, "Invalid API key".to_string(), 4001)
    })?;
    let info = match info {
        Some(i) if i.kind == TokenKind::Api && i.team_id == team_id => i,
        _ => return Err((ERR_AUTH_FAILED, "Invalid API key".into(), 4001)),
    };
    let scopes = scope::parse_all(&scopes).map_err(|e| invalid(e.to_string()))?;
    let token_scopes = scope::parse_all(&info.scopes).unwrap_or_default();
    let client_id = match client_id.map(|c| c.trim().to_string()) {
        Some(c) if !c.is_empty() && c.len() <= 200 && !c.chars().any(char::is_control) => c,
        Some(c) if !c.is_empty() => {
            return Err(invalid(
                "client_id must be at most 200 characters without control characters".into(),
            ));
        }
        _ => format!("cl_{}", uuid::Uuid::now_v7().simple()),
    };
    Ok(Connected {
        team: team_id,
        client_id,
        scopes,
        token_scopes,
    })
}

async fn session(app: App, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let mut stop = app.shutdown.clone();
    let hs = tokio::select! {
        r = tokio::time::timeout(app.config.handshake_timeout, handshake(&app, &mut stream)) => r,
        _ = stopped(&mut stop) => {
            finish(sink, vec![close(CLOSE_GOING_AWAY, "relay shutting down")]).await;
            return;
        }
    };
    let c = match hs {
        Ok(Ok(c)) => c,
        Ok(Err((0, _, _))) => return,
        Ok(Err((code, message, _))) => return refuse(sink, code, &message).await,
        Err(_) => {
            return refuse(sink, ERR_INVALID_MESSAGE, "no connect frame in time").await;
        }
    };
    // Position the client: after its cursor, or live from the current head.
    let start = async {
        let head = app.log.subscribe(&c.team).await?;
        let cursor = match app.log.cursor(&c.team, &c.client_id).await? {
            Some(s) => s,
            None => {
                let last = *head.borrow();
                app.log.set_cursor(&c.team, &c.client_id, last);
                app.log.flush_cursor(&c.team, &c.client_id).await?;
                last
            }
        };
        let bounds = app.log.bounds(&c.team).await?;
        Ok::<_, crate::log::LogError>((head, cursor, bounds))
    };
    let (head, cursor, bounds) = match start.await {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "cannot position a WebSocket client");
            return refuse(sink, ERR_INVALID_MESSAGE, "the relay cannot read its log").await;
        }
    };
    let connected = frames::server_frame(&ServerMessage::Connected {
        last_seq: cursor,
        client_id: c.client_id.clone(),
    });
    if sink.send(text(connected)).await.is_err() {
        return;
    }
    let mut next = cursor + 1;
    let first = bounds.first_available();
    if next < first && cursor < bounds.last {
        let expired = frames::server_frame(&ServerMessage::CursorExpired {
            oldest_available_seq: first,
            message: format!(
                "events {next} to {} were removed by retention; resuming at {first}",
                first - 1
            ),
        });
        tracing::info!(team = %c.team, client = %c.client_id, cursor, first, "cursor expired");
        if sink.send(text(expired)).await.is_err() {
            return;
        }
        next = first;
    }
    for frame in quota_frames(&app, &c.team) {
        if sink.send(text(frame)).await.is_err() {
            return;
        }
    }
    tracing::debug!(team = %c.team, client = %c.client_id, cursor, "WebSocket client connected");
    run(app, c, sink, stream, head, cursor, next).await;
}

/// With a quota configured: `quota_snapshot`, and when the team has used
/// it up, `billing_block` and error 4005. The session goes on: events
/// already logged are still the client's to read; only new ones are refused
/// (at the ingress).
fn quota_frames(app: &App, team: &str) -> Vec<String> {
    let Some(u) = app.limiter.usage(team, Instant::now()) else {
        return Vec::new();
    };
    let left = chrono::Duration::from_std(u.period_left).unwrap_or(chrono::Duration::zero());
    let end = kitedesk_core::event::format_time(chrono::Utc::now() + left);
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let mut out = vec![frames::server_frame(&ServerMessage::QuotaSnapshot {
        provider: frames::PROVIDER.into(),
        events_used: count(u.used),
        events_limit: count(u.limit),
        current_period_end: end.clone(),
    })];
    if u.exhausted() {
        tracing::info!(
            team,
            used = u.used,
            limit = u.limit,
            "quota used up: told the client"
        );
        out.push(frames::server_frame(&ServerMessage::BillingBlock {
            provider: frames::PROVIDER.into(),
            reason: "quota_exceeded".into(),
            retryable: true,
            action: serde_json::json!({
                "retry_after_secs": crate::limits::retry_after_secs(u.period_left),
                "current_period_end": end,
            }),
        }));
        out.push(frames::error_frame(
            ERR_QUOTA_BLOCKED,
            format!(
                "event quota used up ({} of {}); new webhooks are refused until {end}",
                u.used, u.limit
            ),
        ));
    }
    out
}

/// Why a session ended.
enum End {
    /// The client closed or the socket failed.
    Gone,
    /// Cut off: these frames are sent (bounded) before the socket drops.
    With(Vec<Message>),
}

async fn run(
    app: App,
    c: Connected,
    sink: Sink,
    mut stream: Stream,
    mut head: tokio::sync::watch::Receiver<u64>,
    cursor: u64,
    mut next: u64,
) {
    let cfg = &app.config;
    // The writer task owns the sink; `out` is the client's bounded buffer.
    let (out, mut out_rx) = mpsc::channel::<Message>(cfg.client_buffer);
    let (final_tx, mut final_rx) = oneshot::channel::<Vec<Message>>();
    let writer = tokio::spawn(async move {
        let mut sink = sink;
        loop {
            let msg = tokio::select! {
                biased;
                f = &mut final_rx => return finish(sink, f.unwrap_or_default()).await,
                m = out_rx.recv() => m,
            };
            let Some(msg) = msg else {
                return finish(sink, Vec::new()).await;
            };
            // What else is queued goes out with it: one write (and one
            // wake-up of the client) per batch rather than per frame.
            let mut batch = vec![msg];
            while batch.len() < WRITE_BATCH {
                match out_rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            // Dropping a pending send leaves each frame whole in the
            // socket's buffer, so closing frames queued after it stay
            // well-formed.
            tokio::select! {
                biased;
                f = &mut final_rx => return finish(sink, f.unwrap_or_default()).await,
                r = send_all(&mut sink, batch) => if r.is_err() { return },
            }
        }
    });

    let mut pending: VecDeque<Entry> = VecDeque::new();
    let mut last_sent = cursor;
    let mut acked = cursor;
    let mut last_heard = Instant::now();
    let mut last_progress = Instant::now();
    let mut ping = tokio::time::interval_at(Instant::now() + cfg.ping_interval, cfg.ping_interval);
    let mut stop = app.shutdown.clone();
    let mut window_start = Instant::now();
    let mut frames_in_window = 0u32;
    let facts_match = |e: &Entry| {
        let f = Facts {
            source_name: &e.source_name,
            ce_source: &e.ce_source,
            ce_type: &e.ce_type,
            event_json: &e.event_json,
        };
        scope::any_match(&c.scopes, &f) && scope::any_match(&c.token_scopes, &f)
    };

    let end = loop {
        // Read the next page when the last one is out and more is logged.
        if pending.is_empty() && next <= *head.borrow_and_update() {
            match app.log.read_from(&c.team, next, READ_PAGE).await {
                Ok(page) => {
                    match page.last() {
                        Some(l) => next = l.seq + 1,
                        // Removed by retention meanwhile: skip to the head.
                        None => next = *head.borrow() + 1,
                    }
                    pending.extend(page.into_iter().filter(|e| facts_match(e)));
                    last_progress = Instant::now();
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the event log for a client");
                    break End::With(vec![close(1011, "relay log unavailable")]);
                }
            }
            continue;
        }
        let have = !pending.is_empty();
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => {
                break End::With(vec![close(CLOSE_GOING_AWAY, "relay shutting down")]);
            }
            frame = stream.next() => {
                last_heard = Instant::now();
                let t = match frame {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Binary(_))) => {
                        let _ = out.try_send(text(frames::error_frame(ERR_INVALID_MESSAGE, FrameError::Binary.to_string())));
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => break End::Gone,
                    Some(Err(e)) => {
                        // tungstenite's own size limit, or a broken stream.
                        break End::With(vec![
                            text(frames::error_frame(ERR_INVALID_MESSAGE, format!("bad frame: {e}"))),
                            close(CLOSE_TOO_BIG, "bad frame"),
                        ]);
                    }
                };
                // Rate limit: frames per one-second window.
                if window_start.elapsed() >= Duration::from_secs(1) {
                    window_start = Instant::now();
                    frames_in_window = 0;
                }
                frames_in_window += 1;
                if frames_in_window > cfg.client_frames_per_sec {
                    break End::With(vec![
                        text(frames::error_frame(ERR_RATE_LIMITED, "rate limited: too many frames per second")),
                        close(4003, "rate limited"),
                    ]);
                }
                match frames::parse_client_frame(t.as_str(), cfg.max_frame_bytes) {
                    Ok(ClientMessage::Ack { seq }) if seq > last_sent => {
                        let _ = out.try_send(text(frames::error_frame(
                            ERR_INVALID_MESSAGE,
                            format!("ack for seq {seq}, which was never sent (last sent: {last_sent})"),
                        )));
                    }
                    Ok(ClientMessage::Ack { seq }) => {
                        if seq > acked {
                            acked = seq;
                            app.log.set_cursor(&c.team, &c.client_id, seq);
                        }
                    }
                    Ok(ClientMessage::Connect { .. }) => {
                        let _ = out.try_send(text(frames::error_frame(ERR_INVALID_MESSAGE, "already connected")));
                    }
                    Ok(ClientMessage::Request { id, method, params }) => {
                        let (ok, payload) = match rpc(&app, &c, &method, &params).await {
                            Ok(p) => (true, p),
                            Err(e) => (false, serde_json::json!({"error": e})),
                        };
                        let resp = frames::server_frame(&ServerMessage::Response { id, ok, payload });
                        let _ = out.try_send(text(resp));
                    }
                    Err(e) => {
                        let _ = out.try_send(text(frames::error_frame(ERR_INVALID_MESSAGE, e.to_string())));
                    }
                }
            }
            permit = out.reserve(), if have => {
                let Ok(permit) = permit else { break End::Gone };
                if let Some(e) = pending.pop_front() {
                    last_sent = e.seq;
                    permit.send(text(frames::event_frame(e.seq, &e.event_json)));
                }
                // As many more as the buffer takes now, without a turn of
                // the loop each.
                while !pending.is_empty() {
                    let Ok(permit) = out.try_reserve() else { break };
                    if let Some(e) = pending.pop_front() {
                        last_sent = e.seq;
                        permit.send(text(frames::event_frame(e.seq, &e.event_json)));
                    }
                }
                last_progress = Instant::now();
            }
            _ = tokio::time::sleep_until(last_progress + cfg.slow_consumer_timeout), if have => {
                tracing::info!(team = %c.team, client = %c.client_id, last_sent, "slow consumer cut off");
                break End::With(vec![
                    text(frames::error_frame(ERR_SLOW_CONSUMER, "slow consumer")),
                    close(4004, "slow consumer"),
                ]);
            }
            changed = head.changed(), if !have => {
                if changed.is_err() {
                    break End::With(vec![close(CLOSE_GOING_AWAY, "relay shutting down")]);
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > cfg.ping_interval * 2 {
                    tracing::info!(team = %c.team, client = %c.client_id, "no answer to pings; dropping");
                    break End::Gone;
                }
                let _ = out.try_send(Message::Ping(Default::default()));
            }
        }
    };
    match end {
        End::Gone => drop(final_tx),
        End::With(frames) => {
            let _ = final_tx.send(frames);
        }
    }
    drop(out);
    let _ = writer.await;
    if let Err(e) = app.log.flush_cursor(&c.team, &c.client_id).await {
        tracing::warn!(error = %e, "cannot save a client cursor");
    }
    tracing::debug!(team = %c.team, client = %c.client_id, acked, "WebSocket client gone");
}

/// The read-only RPC methods the Kite CLI's `logs` and `status` use.
/// Management (`hooks.*`, `keys.*`) is `kitedesk relay teams|tokens` on the
/// relay host instead.
async fn rpc(
    app: &App,
    c: &Connected,
    method: &str,
    params: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let log_err = |e: crate::log::LogError| {
        tracing::error!(error = %e, "RPC cannot read the log");
        "the relay cannot read its log".to_string()
    };
    match method {
        "events.recent" => {
            let limit = params
                .get("limit")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(100)
                .clamp(1, 1000);
            let bounds = app.log.bounds(&c.team).await.map_err(log_err)?;
            let from = bounds.last.saturating_sub(limit - 1).max(1);
            let entries = app
                .log
                .read_from(&c.team, from, limit as usize)
                .await
                .map_err(log_err)?;
            let events: Vec<serde_json::Value> = entries
                .iter()
                .rev()
                .filter_map(|e| {
                    let event: serde_json::Value = serde_json::from_str(&e.event_json).ok()?;
                    let created_at = event.get("time").cloned().unwrap_or_default();
                    Some(
                        serde_json::json!({"seq": e.seq, "created_at": created_at, "event": event}),
                    )
                })
                .collect();
            Ok(serde_json::json!({ "events": events }))
        }
        "dashboard.stats" => Ok(serde_json::json!({
            "team_id": c.team,
            "plan_name": "self-hosted",
            // Read-only: management happens on the relay host.
            "current_key_permissions": ["read"],
        })),
        _ => Err(format!(
            "method {method:?} is not supported by this relay; manage it with `kitedesk relay` on its host"
        )),
    }
}
