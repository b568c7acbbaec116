//! One link: connect, hand events over, ack what was committed, watch the
//! connection, reconnect.

use std::time::Duration;

use chrono::Utc;
use futures_util::{SinkExt as _, StreamExt as _};
use kite_protocol::{
    ClientMessage, ERR_AUTH_FAILED, ERR_QUOTA_BLOCKED, ERR_SLOW_CONSUMER, ServerMessage,
};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::backoff::Backoff;
use crate::status::{Gap, State, Status};

/// A relay API token. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// `ws://…/ws` or `wss://…/ws`.
    pub url: String,
    pub team_id: String,
    pub token: Token,
    /// `*`, `source:NAME`, `type:NAME`; empty means `*`.
    pub scopes: Vec<String>,
    /// Stable across restarts so the relay resumes from this client's cursor.
    pub client_id: Option<String>,
    /// A WebSocket ping goes out this often; a connection that delivers
    /// nothing at all for twice this long is dead.
    pub ping_interval: Duration,
    /// Longest wait for the TCP/TLS/WebSocket handshake plus `connected`.
    pub handshake_timeout: Duration,
    pub backoff: Backoff,
    /// Events handed over but not yet taken by the consumer; when full, the
    /// link stops reading (the relay's per-client buffer absorbs the rest).
    pub buffer: usize,
}

impl LinkConfig {
    pub fn new(url: impl Into<String>, team_id: impl Into<String>, token: Token) -> Self {
        Self {
            url: url.into(),
            team_id: team_id.into(),
            token,
            scopes: vec!["*".into()],
            client_id: None,
            ping_interval: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            buffer: 1024,
        }
    }

    /// The URL without credentials or query, for logs and the API.
    pub fn display_url(&self) -> String {
        display_url(&self.url)
    }
}

/// `scheme://host[:port]/path`: drops `user:pass@`, the query and fragment.
pub(crate) fn display_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// One event from the relay, in delivery order.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The frame's delivery cursor: report it to [`Committer::commit`] once
    /// the event is durably stored (or deliberately dropped).
    pub seq: u64,
    /// The structured-mode CloudEvent JSON text as the relay sent it (valid
    /// JSON, not parsed further: the consumer parses it once, into what it
    /// needs).
    pub event: Box<RawValue>,
}

/// An `event` frame, read without building a `serde_json::Value` of the
/// CloudEvent (the hot path of a catch-up). Anything this does not read is
/// parsed as a [`ServerMessage`] instead.
#[derive(serde::Deserialize)]
struct EventFrame<'a> {
    #[serde(rename = "type", borrow)]
    ty: std::borrow::Cow<'a, str>,
    seq: u64,
    event: Box<RawValue>,
}

/// The frame as a ready [`Incoming`] when it is an `event` frame (`None`
/// for anything else, which the link parses as a [`ServerMessage`]).
pub fn event_frame(text: &str) -> Option<Incoming> {
    match serde_json::from_str::<EventFrame<'_>>(text) {
        // A `RawValue` (and an ignored field) skips `\u` escapes without
        // checking that surrogates are paired, which `ServerMessage` (parsing
        // every string) refuses: such a frame goes to the slow path.
        Ok(f) if f.ty == "event" && surrogates_paired(text) => Some(Incoming {
            seq: f.seq,
            event: f.event,
        }),
        _ => None,
    }
}

/// Whether every `\u` escape of a surrogate in `json` (text serde_json has
/// already read as valid JSON, so a `\` only ever starts an escape inside a
/// string) is a high surrogate followed by a `\u` low surrogate, as
/// serde_json requires of a string it unescapes.
fn surrogates_paired(json: &str) -> bool {
    let bytes = json.as_bytes();
    let hex = |at: usize| -> Option<u16> {
        let digits = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
        u16::from_str_radix(digits, 16).ok()
    };
    let mut i = 0;
    while let Some(off) = bytes
        .get(i..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\\'))
    {
        let at = i + off;
        if bytes.get(at + 1) != Some(&b'u') {
            i = at + 2; // `\"`, `\\`, `\n`, …
            continue;
        }
        let Some(unit) = hex(at + 2) else {
            return false;
        };
        match unit {
            0xD800..=0xDBFF => {
                let low = match bytes.get(at + 6..at + 8) {
                    Some(b"\\u") => hex(at + 8),
                    _ => None,
                };
                if !matches!(low, Some(0xDC00..=0xDFFF)) {
                    return false;
                }
                i = at + 12;
            }
            0xDC00..=0xDFFF => return false,
            _ => i = at + 6,
        }
    }
    true
}

/// The consumer's side of "ack after commit".
#[derive(Debug, Clone)]
pub struct Committer {
    tx: std::sync::Arc<watch::Sender<Option<u64>>>,
}

impl Committer {
    /// Everything handed over up to and including `seq` is committed (or
    /// deliberately dropped). Call in delivery order; the link acks it.
    pub fn commit(&self, seq: u64) {
        self.tx.send_replace(Some(seq));
    }

    pub fn last(&self) -> Option<u64> {
        *self.tx.borrow()
    }
}

/// A running link.
#[derive(Debug)]
pub struct LinkHandle {
    status: watch::Receiver<Status>,
    committer: Committer,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    url: String,
}

impl LinkHandle {
    pub fn committer(&self) -> Committer {
        self.committer.clone()
    }

    /// The current status, with `last_seq` the last committed seq.
    pub fn status(&self) -> Status {
        let mut s = self.status.borrow().clone();
        s.last_seq = self.committer.last();
        s
    }

    /// Changes of state, gap or error (not of `last_seq`).
    pub fn watch(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    pub fn display_url(&self) -> &str {
        &self.url
    }

    /// Close the connection and end the task. Events handed over but not
    /// committed are not acked; the relay sends them again next time.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Entry point.
#[derive(Debug)]
pub struct Link;

impl Link {
    /// Start the link. `committed` is the last seq the consumer committed in
    /// an earlier run (for `last_seq` and gap reporting; the relay itself
    /// resumes from the client id's acked cursor).
    pub fn spawn(
        config: LinkConfig,
        committed: Option<u64>,
    ) -> (LinkHandle, mpsc::Receiver<Incoming>) {
        let (tx, rx) = mpsc::channel(config.buffer.max(1));
        let (status_tx, status_rx) = watch::channel(Status::new(State::Reconnecting));
        let (commit_tx, commit_rx) = watch::channel(committed);
        let (stop_tx, stop_rx) = watch::channel(false);
        let url = config.display_url();
        let task = tokio::spawn(
            Runner {
                config,
                events: tx,
                status: status_tx,
                committed: commit_rx,
                stop: stop_rx,
                gap: None,
                gap_note: None,
                relay_cursor: None,
            }
            .run(),
        );
        (
            LinkHandle {
                status: status_rx,
                committer: Committer {
                    tx: std::sync::Arc::new(commit_tx),
                },
                stop: stop_tx,
                task,
                url,
            },
            rx,
        )
    }
}

/// How a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    #[error("stopped")]
    Stopped,
    #[error("the consumer has gone")]
    ConsumerGone,
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no answer to the handshake within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("relay refused the connection: {message} ({code})")]
    Refused { code: u32, message: String },
    #[error("relay error {code}: {message}")]
    Server { code: u32, message: String },
    #[error("connection closed by the relay{0}")]
    Closed(String),
    #[error("connection lost: {0}")]
    Transport(String),
    #[error("connection dead: nothing received for {0:?} (2 × the ping interval)")]
    Dead(Duration),
}

impl SessionEnd {
    /// Refusals that need a person (a new token, a paid plan): the link
    /// says `offline` and retries only at the slowest pace.
    fn needs_attention(&self) -> bool {
        matches!(self, SessionEnd::Refused { code, .. } | SessionEnd::Server { code, .. }
            if *code == ERR_AUTH_FAILED || *code == ERR_QUOTA_BLOCKED)
    }
}

struct Runner {
    config: LinkConfig,
    events: mpsc::Sender<Incoming>,
    status: watch::Sender<Status>,
    committed: watch::Receiver<Option<u64>>,
    stop: watch::Receiver<bool>,
    /// A gap seen in this run stays reported, with the relay's words.
    gap: Option<Gap>,
    gap_note: Option<String>,
    /// `connected.last_seq` of the current connection.
    relay_cursor: Option<u64>,
}

impl Runner {
    fn set(&self, state: State, error: Option<String>) {
        let gap = self.gap;
        let state = if state == State::Connected && gap.is_some() {
            State::CursorExpired
        } else {
            state
        };
        let error = match (error, state) {
            (None, State::CursorExpired) => self.gap_note.clone(),
            (e, _) => e,
        };
        self.status.send_if_modified(|s| {
            if s.state == state && s.error == error && s.gap == gap {
                return false;
            }
            if s.state != state {
                s.since = Utc::now();
            }
            s.state = state;
            s.error = error;
            s.gap = gap;
            true
        });
    }

    async fn run(mut self) {
        let url = self.config.display_url();
        let mut failures: u32 = 0;
        loop {
            if *self.stop.borrow() {
                break;
            }
            tracing::info!(url = %url, "connecting to relay");
            let (end, was_connected) = self.session().await;
            match end {
                SessionEnd::Stopped | SessionEnd::ConsumerGone => break,
                _ => {}
            }
            if was_connected {
                failures = 0;
            }
            let attention = end.needs_attention();
            let delay = if attention {
                self.config.backoff.max
            } else {
                self.config.backoff.delay(failures, rand::random::<f64>())
            };
            failures = failures.saturating_add(1);
            let message = end.to_string();
            if attention {
                tracing::error!(url = %url, error = %message, "relay refused this link; retrying in {delay:?}");
                self.set(State::Offline, Some(message));
            } else {
                tracing::warn!(url = %url, error = %message, "relay link down; reconnecting in {delay:?}");
                self.set(State::Reconnecting, Some(message));
            }
            let mut stop = self.stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped(&mut stop) => break,
            }
        }
        self.set(State::Offline, Some("stopped".into()));
    }

    /// One connection, from TCP connect to its end. The bool says whether
    /// the handshake completed (which resets the backoff).
    async fn session(&mut self) -> (SessionEnd, bool) {
        let timeout = self.config.handshake_timeout;
        let mut stop = self.stop.clone();
        let handshake = tokio::time::timeout(timeout, self.handshake());
        let (mut sink, mut stream, last_seq) = tokio::select! {
            r = handshake => match r {
                Ok(Ok(parts)) => parts,
                Ok(Err(end)) => return (end, false),
                Err(_) => return (SessionEnd::HandshakeTimeout(timeout), false),
            },
            _ = stopped(&mut stop) => return (SessionEnd::Stopped, false),
        };
        tracing::info!(url = %self.config.display_url(), last_seq, "connected to relay");
        self.set(State::Connected, None);
        let end = self.pump(&mut sink, &mut stream).await;
        if matches!(end, SessionEnd::Stopped) {
            let _ = sink.send(Message::Close(None)).await;
        }
        (end, true)
    }

    async fn handshake(&mut self) -> Result<(WsSink, WsStream, u64), SessionEnd> {
        self.relay_cursor = None;
        let (ws, _) = tokio_tungstenite::connect_async(self.config.url.as_str())
            .await
            .map_err(|e| SessionEnd::Connect(e.to_string()))?;
        let (mut sink, mut stream) = ws.split();
        let connect = ClientMessage::Connect {
            version: crate::PROTOCOL_VERSION,
            token: self.config.token.expose().to_string(),
            team_id: self.config.team_id.clone(),
            scopes: if self.config.scopes.is_empty() {
                vec!["*".into()]
            } else {
                self.config.scopes.clone()
            },
            client_id: self.config.client_id.clone(),
        };
        sink.send(Message::text(to_json(&connect)))
            .await
            .map_err(|e| SessionEnd::Transport(e.to_string()))?;
        loop {
            let msg = match stream.next().await {
                None => return Err(SessionEnd::Closed(String::new())),
                Some(Err(e)) => return Err(SessionEnd::Transport(e.to_string())),
                Some(Ok(m)) => m,
            };
            let text = match msg {
                Message::Text(t) => t,
                Message::Close(frame) => return Err(SessionEnd::Closed(close_reason(frame))),
                _ => continue,
            };
            // Before `connected`, frames we do not know are skipped (forward
            // compatibility, as the Kite CLI does).
            match serde_json::from_str::<ServerMessage>(text.as_str()) {
                Ok(ServerMessage::Connected {
                    last_seq,
                    client_id,
                }) => {
                    tracing::debug!(client_id, last_seq, "handshake complete");
                    self.relay_cursor = Some(last_seq);
                    return Ok((sink, stream, last_seq));
                }
                Ok(ServerMessage::Error { code, message }) => {
                    return Err(SessionEnd::Refused { code, message });
                }
                Ok(ServerMessage::CursorExpired {
                    oldest_available_seq,
                    message,
                }) => self.cursor_expired(oldest_available_seq, &message),
                Ok(other) => tracing::debug!(?other, "frame before connected ignored"),
                Err(e) => tracing::debug!(error = %e, "unparsable frame before connected ignored"),
            }
        }
    }

    fn cursor_expired(&mut self, oldest_available_seq: u64, message: &str) {
        // The last seq this client has: what it committed, or the relay's
        // cursor for it (`connected.last_seq`, when that is below the oldest
        // available seq, so it cannot be the team's head instead).
        let relay_cursor = self
            .relay_cursor
            .filter(|c| *c < oldest_available_seq)
            .unwrap_or(0);
        let have = self.committed.borrow().unwrap_or(0).max(relay_cursor);
        let from = have.saturating_add(1);
        let to = oldest_available_seq.saturating_sub(1);
        tracing::warn!(
            from,
            to,
            relay_message = message,
            "relay cursor expired: events in between were dropped by the relay's retention"
        );
        if to >= from {
            self.gap = Some(match self.gap {
                // Keep the widest gap seen by this run.
                Some(g) => Gap {
                    from: g.from.min(from),
                    to: g.to.max(to),
                },
                None => Gap { from, to },
            });
            self.gap_note = Some(format!("cursor expired: {message}"));
            let state = self.status.borrow().state;
            let state = if state == State::CursorExpired {
                State::Connected
            } else {
                state
            };
            self.set(state, self.gap_note.clone());
        }
    }

    /// The connected loop.
    async fn pump(&mut self, sink: &mut WsSink, stream: &mut WsStream) -> SessionEnd {
        let ping = self.config.ping_interval.max(Duration::from_millis(10));
        let dead_after = ping * 2;
        let mut ticker = tokio::time::interval_at(Instant::now() + ping, ping);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_rx = Instant::now();
        let mut pending: Option<Incoming> = None;
        // Seqs delivered on this connection: only those are acked on it.
        let mut received_max: u64 = 0;
        let mut acked: u64 = 0;
        self.committed.mark_unchanged();
        // Locals, so the select's outputs borrow them and not `self`.
        let events = self.events.clone();
        let mut stop = self.stop.clone();
        loop {
            tokio::select! {
                biased;
                _ = stopped(&mut stop) => return SessionEnd::Stopped,
                changed = self.committed.changed() => {
                    if changed.is_err() {
                        return SessionEnd::ConsumerGone;
                    }
                    let c = *self.committed.borrow_and_update();
                    if let Some(c) = c.filter(|c| *c > acked && *c <= received_max) {
                        if let Err(e) = sink.send(Message::text(to_json(&ClientMessage::Ack { seq: c }))).await {
                            return SessionEnd::Transport(e.to_string());
                        }
                        acked = c;
                    }
                }
                permit = events.reserve(), if pending.is_some() => {
                    let Ok(permit) = permit else { return SessionEnd::ConsumerGone };
                    if let Some(ev) = pending.take() {
                        permit.send(ev);
                    }
                    // Time spent waiting on the consumer is not the relay's silence.
                    last_rx = Instant::now();
                }
                msg = stream.next(), if pending.is_none() => {
                    last_rx = Instant::now();
                    let msg = match msg {
                        None => return SessionEnd::Closed(String::new()),
                        Some(Err(e)) => return SessionEnd::Transport(e.to_string()),
                        Some(Ok(m)) => m,
                    };
                    let text = match msg {
                        Message::Text(t) => t,
                        Message::Close(frame) => return SessionEnd::Closed(close_reason(frame)),
                        // Ping is answered by tungstenite; Pong just proves life.
                        _ => continue,
                    };
                    if let Some(incoming) = event_frame(text.as_str()) {
                        received_max = received_max.max(incoming.seq);
                        pending = Some(incoming);
                        continue;
                    }
                    match serde_json::from_str::<ServerMessage>(text.as_str()) {
                        Ok(ServerMessage::Event { seq, event }) => {
                            // An event frame the fast path did not take (a
                            // duplicated field, say): the same, via a Value.
                            let Ok(event) = serde_json::value::to_raw_value(&event) else { continue };
                            received_max = received_max.max(seq);
                            pending = Some(Incoming { seq, event });
                        }
                        Ok(ServerMessage::CursorExpired { oldest_available_seq, message }) => {
                            self.cursor_expired(oldest_available_seq, &message);
                        }
                        Ok(ServerMessage::Error { code, message }) => {
                            if code == ERR_SLOW_CONSUMER || code == ERR_AUTH_FAILED || code == ERR_QUOTA_BLOCKED {
                                return SessionEnd::Server { code, message };
                            }
                            tracing::warn!(code, message, "relay error");
                            let state = self.status.borrow().state;
                            self.set(if state == State::CursorExpired { State::Connected } else { state },
                                Some(format!("relay error {code}: {message}")));
                        }
                        Ok(ServerMessage::BillingBlock { provider, reason, retryable, .. }) => {
                            tracing::warn!(provider, reason, retryable, "relay billing block");
                            let state = self.status.borrow().state;
                            self.set(if state == State::CursorExpired { State::Connected } else { state },
                                Some(format!("billing block ({provider}): {reason}")));
                        }
                        Ok(other) => tracing::debug!(?other, "relay frame ignored"),
                        Err(e) => tracing::warn!(error = %e, "unparsable relay frame ignored"),
                    }
                }
                _ = ticker.tick() => {
                    if let Err(e) = sink.send(Message::Ping(Vec::new().into())).await {
                        return SessionEnd::Transport(e.to_string());
                    }
                }
                _ = tokio::time::sleep_until(last_rx + dead_after), if pending.is_none() => {
                    return SessionEnd::Dead(dead_after);
                }
            }
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type WsSink = futures_util::stream::SplitSink<Ws, Message>;
type WsStream = futures_util::stream::SplitStream<Ws>;

/// Resolves once the link is told to stop (owning nothing borrowed, so it
/// can sit in a `select!` across awaits).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn to_json(msg: &ClientMessage) -> String {
    // Serializing these plain structs cannot fail.
    serde_json::to_string(msg).unwrap_or_default()
}

fn close_reason(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> String {
    match frame {
        Some(f) if !f.reason.is_empty() => format!(": {} ({})", f.reason, u16::from(f.code)),
        Some(f) => format!(" ({})", u16::from(f.code)),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_url_drops_credentials_and_query() {
        assert_eq!(
            display_url("wss://user:pw@relay.example/ws?token=x#f"),
            "wss://relay.example/ws"
        );
        assert_eq!(
            display_url("ws://127.0.0.1:7700/ws"),
            "ws://127.0.0.1:7700/ws"
        );
        assert_eq!(display_url("ws://h"), "ws://h");
    }

    #[test]
    fn token_debug_hides_the_value() {
        assert_eq!(format!("{:?}", Token::new("kite_secret")), "Token(***)");
    }
}
