//! Kite Desk's self-hostable relay, speaking the Kite protocol v1.
//!
//! * Ingress ([`ingress`]): `POST /hooks/{team}/{source}[/{hook_token}]`
//!   (or the hook token as a bearer header), verified and normalized by
//!   `kitedesk_core::ingest`, appended to the team's event log with the next
//!   `seq`. Provider retries (same CloudEvent source and id) are answered
//!   `duplicate_ignored` and not appended twice.
//! * Event log ([`log`]): the narrow [`log::EventLog`] trait (append, read
//!   from seq, cursors, retention) and its SQLite implementation
//!   [`log::SqliteLog`], with a single group-commit writer.
//! * WebSocket ([`ws`]): `GET /ws`, the Kite handshake (`connect` →
//!   `connected`), `event` frames in seq order, cumulative `ack`s persisted
//!   per `client_id`, resume and `cursor_expired`, scopes, server pings,
//!   bounded per-client buffers (slow consumers are cut off with 4004).
//! * smee.io-compatible SSE ([`smee`]): `GET /smee/{team}?token=…` for
//!   `smee-client`.
//! * Teams and tokens ([`admin`]): created on the data dir directly, tokens
//!   stored as sha256 hashes.
//! * Limits ([`limits`]): a per-team webhook rate and event quota (429 with
//!   `Retry-After` at the ingress; `billing_block` and 4005 on the
//!   WebSocket when the quota is used up).
//!
//! [`Relay::start`] binds and returns a [`RunningRelay`].

pub mod admin;
mod db;
mod error;
pub mod frames;
mod ingress;
pub mod limits;
pub mod log;
pub mod scope;
mod smee;
mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use kitedesk_core::Manifest;
use kitedesk_core::manifest::{DEFAULT_MAX_BODY, MAX_BODY_LIMIT};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use admin::{Team, TokenInfo, TokenKind};
pub use error::HttpError;
pub use log::{EventLog, Retention};

/// Where a Kite CLI looks for a local relay (`ws://localhost:7700/ws`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";

/// Relay settings. [`RelayConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Holds `relay.db` (teams, tokens, event log, cursors).
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Server WebSocket pings; a client silent for twice this is dropped.
    pub ping_interval: Duration,
    pub retention: Retention,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// Largest webhook body accepted (413 beyond); at most 25 MB.
    pub max_body_bytes: usize,
    /// Frames queued for one WebSocket client before it counts as slow.
    pub client_buffer: usize,
    /// A client whose buffer stays full this long is cut off (4004).
    pub slow_consumer_timeout: Duration,
    /// Largest client frame (4002 beyond): clients send small JSON frames.
    pub max_frame_bytes: usize,
    /// Time a new WebSocket has to send its `connect` frame.
    pub handshake_timeout: Duration,
    /// Client frames per second before 4003 (rate limited).
    pub client_frames_per_sec: u32,
    /// How long a token lookup is cached (a revocation takes this long to
    /// reach a running relay).
    pub token_cache_ttl: Duration,
    /// Sources (provider type, signing-secret variables) and scoring rules.
    /// Sources not listed are typed by name (`github`, `stripe`, …, else
    /// generic) and authenticated by the hook token alone.
    pub manifest: Manifest,
    /// Variables to read signing secrets from instead of the process
    /// environment (tests, and shells that hold secrets elsewhere).
    pub env_override: Option<HashMap<String, String>>,
    /// Base URL senders reach this relay at (behind a proxy), for printed
    /// hook URLs. Default: `http://<listen address>`.
    pub public_url: Option<String>,
    /// Webhook requests per team and window (429 `rate_limited` beyond).
    /// Default: none.
    pub team_rate_limit: Option<limits::RateLimit>,
    /// New events per team and period (429 `quota_exceeded` beyond, 4005
    /// on the WebSocket). Default: none.
    pub team_quota: Option<limits::Quota>,
}

impl RelayConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            ping_interval: Duration::from_secs(20),
            retention: Retention::default(),
            retention_interval: Duration::from_secs(60),
            max_body_bytes: DEFAULT_MAX_BODY,
            client_buffer: 1024,
            slow_consumer_timeout: Duration::from_secs(10),
            max_frame_bytes: 64 * 1024,
            handshake_timeout: Duration::from_secs(10),
            client_frames_per_sec: 50_000,
            token_cache_ttl: Duration::from_secs(1),
            manifest: Manifest::embedded_default(),
            env_override: None,
            public_url: None,
            team_rate_limit: None,
            team_quota: None,
        }
    }

    pub(crate) fn env_var(&self, name: &str) -> Option<String> {
        match &self.env_override {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.max_body_bytes == 0 || self.max_body_bytes > MAX_BODY_LIMIT {
            anyhow::bail!(
                "max_body_bytes must be between 1 and {MAX_BODY_LIMIT} (25 MB), got {}",
                self.max_body_bytes
            );
        }
        if self.client_buffer == 0 {
            anyhow::bail!("client_buffer must be at least 1");
        }
        if self.ping_interval.is_zero() {
            anyhow::bail!("ping_interval must be positive");
        }
        Ok(())
    }
}

/// Shared state of a running relay.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: RelayConfig,
    pub(crate) log: log::SqliteLog,
    pub(crate) tokens: admin::TokenCache,
    pub(crate) secrets: kitedesk_core::ingest::SourceSecrets,
    pub(crate) limiter: limits::Limiter,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Open WebSocket sessions; shutdown waits for zero.
    pub(crate) sessions: watch::Sender<usize>,
}

pub(crate) type App = Arc<Inner>;

/// Entry point.
#[derive(Debug)]
pub struct Relay;

/// A started relay.
#[derive(Debug)]
pub struct RunningRelay {
    pub addr: SocketAddr,
    inner: App,
    stop: watch::Sender<bool>,
    server: JoinHandle<anyhow::Result<()>>,
    retention: JoinHandle<()>,
}

impl Relay {
    /// Open the log, bind the listener and start serving. Returns once the
    /// socket is bound (port 0 is fine: see [`RunningRelay::addr`]).
    pub async fn start(config: RelayConfig) -> anyhow::Result<RunningRelay> {
        config.validate()?;
        let pool = db::open(&config.data_dir).await?;
        let log = log::SqliteLog::new(pool.clone()).await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let (stop, shutdown) = watch::channel(false);
        let (sessions, _) = watch::channel(0usize);
        let inner = Arc::new(Inner {
            secrets: ingress::secrets_from_env(&config),
            tokens: admin::TokenCache::new(pool, config.token_cache_ttl),
            limiter: limits::Limiter::new(config.team_rate_limit, config.team_quota),
            log,
            shutdown: shutdown.clone(),
            sessions,
            config,
        });
        let app = router(inner.clone());
        let mut rx = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await
                .context("relay HTTP server failed")
        });
        let retention = tokio::spawn(retention_loop(inner.clone()));
        tracing::info!(%addr, data_dir = %inner.config.data_dir.display(), "kitedesk relay listening");
        Ok(RunningRelay {
            addr,
            inner,
            stop,
            server,
            retention,
        })
    }
}

fn router(app: App) -> Router {
    Router::new()
        .route("/hooks/{team}/{source}", post(ingress::hook))
        .route(
            "/hooks/{team}/{source}/{token}",
            post(ingress::hook_with_token),
        )
        .route("/ws", get(ws::upgrade))
        .route("/smee/{team}", get(smee::channel))
        .route("/health", get(health))
        .fallback(|| async { HttpError::not_found("no_route", "no such endpoint") })
        .with_state(app)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

async fn retention_loop(app: App) {
    let mut tick = tokio::time::interval(app.config.retention_interval);
    let mut stop = app.shutdown.clone();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
        }
        match app
            .log
            .retain(&app.config.retention, chrono::Utc::now())
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "relay retention removed old events"),
            Err(e) => tracing::warn!(error = %e, "relay retention failed"),
        }
    }
}

impl RunningRelay {
    /// `ws://ADDR/ws`: what `KITE_WS_URL` should be.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// `http://ADDR` (or the configured public URL).
    pub fn base_url(&self) -> String {
        match &self.inner.config.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.addr),
        }
    }

    /// Where a sender posts webhooks for `team`'s `source`.
    pub fn hook_url(&self, team: &str, source: &str) -> String {
        format!("{}/hooks/{team}/{source}", self.base_url())
    }

    /// Apply the retention policy now (it also runs every
    /// `retention_interval`). Returns the number of events removed.
    pub async fn apply_retention(&self) -> anyhow::Result<u64> {
        Ok(self
            .inner
            .log
            .retain(&self.inner.config.retention, chrono::Utc::now())
            .await?)
    }

    /// The last seq handed out for `team` (0 before the first event).
    pub async fn last_seq(&self, team: &str) -> anyhow::Result<u64> {
        Ok(self.inner.log.bounds(team).await?.last)
    }

    /// The running relay's event log, through the narrow [`EventLog`]
    /// interface: to seed a large backlog without one HTTP request per event
    /// (catch-up tests and benchmarks), or to read a client's cursor.
    /// Appends made here reach WebSocket clients like webhooks do.
    pub fn log(&self) -> &log::SqliteLog {
        &self.inner.log
    }

    /// Stop accepting, finish in-flight webhooks, close every WebSocket
    /// with 1001 (going away), then flush the log and cursors.
    pub async fn shutdown(self) {
        let RunningRelay {
            inner,
            stop,
            server,
            retention,
            ..
        } = self;
        let _ = stop.send(true);
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "relay server ended with an error"),
            Err(e) => tracing::warn!(error = %e, "relay server task failed"),
        }
        let _ = retention.await;
        // Sessions close promptly on the stop signal; the bound is for a
        // client that never reads its close frame.
        let mut open = inner.sessions.subscribe();
        if tokio::time::timeout(Duration::from_secs(5), open.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            tracing::warn!("some WebSocket sessions did not close within 5 s");
        }
        inner.log.close().await;
    }
}
