//! Relay links: the daemon as a Kite-protocol client, beside the local
//! ingress.
//!
//! Each configured link runs a [`kitedesk_stream::Link`]. Its events go
//! through the same pipeline as a webhook on the local ingress (score →
//! dedup → the single writer → live feed), several at a time so the
//! writer's group commit works, and each seq is reported to the link (which
//! acks it to the relay) only after its row is committed, in order. The
//! last committed seq and the link's stable client id live in the store
//! (`relay_links`), so a restart resumes where it stopped.
//!
//! `GET /api/health` lists every connection ([`Connection`]); each change of
//! a link's state is published on the bus and reaches the live feed as
//! `event: connection`.
//!
//! A link's API token is either given ([`RelayToken::Value`], from an
//! environment variable) or read from the keychain at start
//! ([`RelayToken::Keychain`]). A link whose keychain secret is missing or
//! unreadable does not stop the daemon: it waits, `offline` with an error
//! naming the secret, and starts as soon as that secret is set (through the
//! API, so `kitedesk secrets set NAME` works against the running daemon).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesOrdered;
use kitedesk_core::event::format_time;
use kitedesk_core::importance::{self, Facts};
use kitedesk_core::{KiteEvent, Manifest, providers};
use kitedesk_store::NewEvent;
use kitedesk_stream::{Committer, Gap, Incoming, Link, LinkConfig, LinkHandle, Status, Token};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::api::Api;
use crate::bus::DaemonEvent;
use crate::writer::{WriteError, Writer};

/// Events of one link in flight to the writer at once: enough for the
/// writer's group commit to fill its batches during a catch-up.
const IN_FLIGHT: usize = 1024;
/// How often a link's last committed seq is written to the store (also on
/// shutdown). The relay keeps the authoritative cursor (by acks); this one
/// is for display and for the gap computation after a restart.
const PERSIST_EVERY: Duration = Duration::from_millis(250);

/// Where a link's API token is.
#[derive(Debug, Clone)]
pub enum RelayToken {
    /// The value itself (read from an environment variable by the caller).
    Value(Token),
    /// The keychain secret of this name (e.g. `relay/acme`).
    Keychain(String),
}

/// One relay link as configured (flags, environment or `relays` in the
/// manifest).
#[derive(Debug, Clone)]
pub struct RelayLink {
    pub name: String,
    /// WebSocket URL (`ws://…/ws`, `wss://…/ws`).
    pub url: String,
    pub team_id: String,
    pub token: RelayToken,
    pub scopes: Vec<String>,
    pub ping_interval: Option<Duration>,
    /// First reconnect delay (default 1 s, doubling to 30 s, with jitter).
    pub backoff_initial: Option<Duration>,
}

/// A connection as `GET /api/health` and the live feed show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    pub name: String,
    /// `ingress` (the local `/hooks`) or `relay`.
    pub kind: String,
    pub url: String,
    /// `connected`, `reconnecting`, `offline` or `cursor_expired`.
    pub state: String,
    pub since: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<Gap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Connection {
    fn relay(name: &str, url: &str, s: &Status) -> Self {
        Self {
            name: name.to_string(),
            kind: "relay".into(),
            url: url.to_string(),
            state: s.state.as_str().into(),
            since: format_time(s.since),
            last_seq: s.last_seq,
            gap: s.gap,
            error: s.error.clone(),
        }
    }
}

struct Running {
    name: String,
    handle: LinkHandle,
    tasks: Vec<JoinHandle<()>>,
}

/// A link waiting for its keychain secret.
struct Waiting {
    link: RelayLink,
    secret: String,
    error: String,
    since: DateTime<Utc>,
}

/// The daemon's links.
pub struct Links {
    started: DateTime<Utc>,
    running: Mutex<Vec<Running>>,
    waiting: Mutex<Vec<Waiting>>,
    /// Serialises starting waiting links (a set and a rotate at once must
    /// not start one link twice).
    starting: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.running.lock().map(|r| r.len()).unwrap_or(0);
        f.debug_struct("Links")
            .field("started", &self.started)
            .field("links", &n)
            .finish()
    }
}

impl Default for Links {
    fn default() -> Self {
        Self {
            started: Utc::now(),
            running: Mutex::new(Vec::new()),
            waiting: Mutex::new(Vec::new()),
            starting: tokio::sync::Mutex::new(()),
        }
    }
}

impl Api {
    /// Start every configured relay link. Called once by the daemon.
    pub(crate) async fn start_links(&self) -> anyhow::Result<()> {
        for link in self.0.config.relays.clone() {
            match self.link_token(&link).await {
                Ok(token) => self.start_link(link, token).await?,
                Err((secret, error)) => {
                    tracing::error!(link = %link.name, secret = %secret, "{error}");
                    lock(&self.0.links.waiting).push(Waiting {
                        link,
                        secret,
                        error,
                        since: Utc::now(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The link's token; for a keychain token that cannot be had, the
    /// secret's name and why.
    async fn link_token(&self, link: &RelayLink) -> Result<Token, (String, String)> {
        let name = match &link.token {
            RelayToken::Value(t) => return Ok(t.clone()),
            RelayToken::Keychain(name) => name,
        };
        if let Err(e) = kitedesk_secrets::check_name(name) {
            return Err((
                name.clone(),
                format!("relay link {:?}: bad keychain secret name: {e}", link.name),
            ));
        }
        match self.read_secret(name).await {
            Ok(Some(s)) => Ok(Token::new(s.expose())),
            Ok(None) => Err((
                name.clone(),
                format!(
                    "relay link {:?}: the keychain has no secret {name:?} for its API token; \
                     store it with `kitedesk secrets set {name} --kind relay_token` \
                     (the value is read from stdin) and the link starts",
                    link.name
                ),
            )),
            Err(e) => Err((
                name.clone(),
                format!(
                    "relay link {:?}: cannot read its API token, keychain secret {name:?}: {}",
                    link.name, e.message
                ),
            )),
        }
    }

    /// A secret was set or rotated: start the links that waited for it.
    pub(crate) async fn secret_changed(&self, name: &str) {
        let _one_at_a_time = self.0.links.starting.lock().await;
        let ready: Vec<Waiting> = {
            let mut w = lock(&self.0.links.waiting);
            let (ready, rest) = std::mem::take(&mut *w)
                .into_iter()
                .partition(|x| x.secret == name);
            *w = rest;
            ready
        };
        for mut x in ready {
            let started = match self.link_token(&x.link).await {
                Ok(token) => self
                    .start_link(x.link.clone(), token)
                    .await
                    .map_err(|e| format!("relay link {:?} did not start: {e:#}", x.link.name)),
                Err((_, error)) => Err(error),
            };
            if let Err(error) = started {
                tracing::error!(link = %x.link.name, secret = %x.secret, "{error}");
                x.error = error;
                x.since = Utc::now();
                lock(&self.0.links.waiting).push(x);
            }
        }
    }

    async fn start_link(&self, link: RelayLink, token: Token) -> anyhow::Result<()> {
        let store = self.store();
        let shown = display_url(&link.url);
        let cursor = store
            .ensure_link(
                &link.name,
                &shown,
                &link.team_id,
                &format!("kitedesk-{}", uuid::Uuid::now_v7()),
            )
            .await?;
        let mut cfg = LinkConfig::new(link.url.clone(), link.team_id.clone(), token);
        cfg.client_id = Some(cursor.client_id.clone());
        if !link.scopes.is_empty() {
            cfg.scopes = link.scopes.clone();
        }
        if let Some(p) = link.ping_interval {
            cfg.ping_interval = p;
        }
        if let Some(b) = link.backoff_initial {
            cfg.backoff.initial = b;
        }
        tracing::info!(
            link = %link.name, url = %shown, team = %link.team_id,
            client_id = %cursor.client_id, last_seq = ?cursor.last_seq,
            "starting relay link"
        );
        let (handle, rx) = Link::spawn(cfg, cursor.last_seq);
        let committer = handle.committer();
        let consumer = tokio::spawn(consume(
            self.clone(),
            link.name.clone(),
            link.team_id.clone(),
            rx,
            committer.clone(),
        ));
        let persister = tokio::spawn(persist(
            self.clone(),
            link.name.clone(),
            committer,
            cursor.last_seq,
        ));
        let announcer = {
            let api = self.clone();
            let mut watch = handle.watch();
            let name = link.name.clone();
            let url = shown.clone();
            let committer = handle.committer();
            tokio::spawn(async move {
                loop {
                    let mut s = watch.borrow_and_update().clone();
                    s.last_seq = committer.last();
                    api.bus()
                        .publish(DaemonEvent::Connection(Arc::new(Connection::relay(
                            &name, &url, &s,
                        ))));
                    if watch.changed().await.is_err() {
                        return;
                    }
                }
            })
        };
        if let Ok(mut r) = self.0.links.running.lock() {
            r.push(Running {
                name: link.name,
                handle,
                tasks: vec![consumer, persister, announcer],
            });
        }
        Ok(())
    }

    /// Every connection: the local ingress first, then the relay links.
    pub fn connections(&self) -> Vec<Connection> {
        let mut out = vec![Connection {
            name: "local".into(),
            kind: "ingress".into(),
            url: self.hook_base(),
            state: "connected".into(),
            since: format_time(self.0.links.started),
            last_seq: None,
            gap: None,
            error: None,
        }];
        if let Ok(r) = self.0.links.running.lock() {
            out.extend(
                r.iter().map(|l| {
                    Connection::relay(&l.name, l.handle.display_url(), &l.handle.status())
                }),
            );
        }
        out.extend(lock(&self.0.links.waiting).iter().map(|w| Connection {
            name: w.link.name.clone(),
            kind: "relay".into(),
            url: display_url(&w.link.url),
            state: "offline".into(),
            since: format_time(w.since),
            last_seq: None,
            gap: None,
            error: Some(w.error.clone()),
        }));
        out
    }

    /// Close every link (events not yet committed are not acked: the relay
    /// sends them again next time) and record the last committed seqs.
    pub(crate) async fn stop_links(&self) {
        let running = match self.0.links.running.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => return,
        };
        for l in running {
            let committer = l.handle.committer();
            l.handle.shutdown().await;
            for t in l.tasks {
                t.abort();
            }
            if let Some(seq) = committer.last()
                && let Err(e) = self.store().set_link_seq(&l.name, seq).await
            {
                tracing::warn!(link = %l.name, error = %e, "cannot record the link's last seq");
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Take a link's events, store them (several in flight), report each seq
/// once its row is committed, in delivery order.
async fn consume(
    api: Api,
    name: String,
    team_id: String,
    mut rx: mpsc::Receiver<Incoming>,
    committer: Committer,
) {
    let writer = api.0.writer.clone();
    let manifest = Arc::new(api.0.config.manifest.clone());
    let mut in_flight = FuturesOrdered::new();
    loop {
        tokio::select! {
            biased;
            Some(seq) = in_flight.next(), if !in_flight.is_empty() => committer.commit(seq),
            incoming = rx.recv(), if in_flight.len() < IN_FLIGHT => {
                let Some(incoming) = incoming else { break };
                let writer = writer.clone();
                let manifest = manifest.clone();
                let (name, team_id) = (name.clone(), team_id.clone());
                in_flight.push_back(async move {
                    let seq = incoming.seq;
                    match prepare(&manifest, &team_id, incoming, Utc::now()) {
                        Ok(new) => store_retrying(&writer, &name, new).await,
                        // Nothing can be stored for it; say so loudly and
                        // move on rather than block the stream forever.
                        Err(e) => tracing::error!(link = %name, seq, error = %e, "relay event skipped: not a valid CloudEvent"),
                    }
                    seq
                });
            }
            else => break,
        }
    }
    while let Some(seq) = in_flight.next().await {
        committer.commit(seq);
    }
}

/// Insert until it is committed (or known as a duplicate). A full disk or a
/// locked file is waited out: the seq is not acked meanwhile, and the link
/// stops reading once its buffer fills.
async fn store_retrying(writer: &Writer, link: &str, new: NewEvent) {
    let mut delay = Duration::from_millis(100);
    loop {
        match writer.insert(new.clone()).await {
            Ok(_) => return,
            Err(WriteError::Stopped) => {
                // Shutting down: never report this seq as committed.
                std::future::pending::<()>().await;
            }
            Err(WriteError::Store(e)) => {
                tracing::error!(link, error = %e, "cannot store a relay event; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Write the last committed seq to the store now and then.
async fn persist(api: Api, name: String, committer: Committer, mut saved: Option<u64>) {
    let mut tick = tokio::time::interval(PERSIST_EVERY);
    loop {
        tick.tick().await;
        let last = committer.last();
        if last != saved
            && let Some(seq) = last
        {
            match api.store().set_link_seq(&name, seq).await {
                Ok(()) => saved = last,
                Err(e) => {
                    tracing::warn!(link = %name, error = %e, "cannot record the link's last seq")
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayEventError {
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Envelope(#[from] kitedesk_core::event::EnvelopeError),
}

/// A relay's CloudEvent → an event ready to store: our own scoring (the
/// manifest's rules and the built-in defaults), the frame's seq, and the
/// payload as the JSON text of `data`.
pub(crate) fn prepare(
    manifest: &Manifest,
    team_id: &str,
    incoming: Incoming,
    now: DateTime<Utc>,
) -> Result<NewEvent, RelayEventError> {
    let ce: cloudevents::Event = serde_json::from_value(incoming.event)?;
    let mut event = KiteEvent::from_cloudevent(&ce)?;
    event.seq = Some(incoming.seq);
    let changed = if event.ty == "com.github.push" {
        providers::github_changed_files(&event.data)
    } else {
        Vec::new()
    };
    let score = importance::score(
        &manifest.scoring,
        &Facts {
            source_name: &event.source_name,
            ty: &event.ty,
            data: &event.data,
            changed_files: &changed,
        },
    );
    event.importance = score.importance;
    event.importance_reason = score.reason;
    if event.verification.reason == "no verification result from upstream" {
        event.verification.reason =
            format!("relayed by team {team_id}; the relay sent no verification result");
    }
    let payload = match &event.data {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        v => v.to_string(),
    };
    Ok(NewEvent {
        event,
        payload,
        received: now,
    })
}

/// `scheme://host[:port]/path`, without credentials or query.
pub fn display_url(url: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_events_are_rescored_and_keep_the_frame_seq() {
        let manifest = Manifest::embedded_default();
        let ce = serde_json::json!({
            "specversion": "1.0", "id": "evt_1", "source": "https://relay/hooks/t1/stripe",
            "type": "com.stripe.payment_intent.payment_failed", "time": "2026-11-24T12:00:00Z",
            "datacontenttype": "application/json", "kitesummary": "payment failed", "kiteseq": 7,
            "data": {"id": "evt_1", "object": "event"}
        });
        let new = prepare(&manifest, "t1", Incoming { seq: 9, event: ce }, Utc::now()).unwrap();
        assert_eq!(new.event.seq, Some(9), "the frame seq is the cursor");
        assert_eq!(new.event.importance, kitedesk_core::Importance::Critical);
        assert_eq!(new.event.source_name, "stripe");
        assert_eq!(new.event.summary, "payment failed");
        assert_eq!(new.payload, r#"{"id":"evt_1","object":"event"}"#);
        let bad = prepare(
            &manifest,
            "t1",
            Incoming {
                seq: 1,
                event: serde_json::json!({"nope": 1}),
            },
            Utc::now(),
        );
        assert!(bad.is_err());
    }
}
