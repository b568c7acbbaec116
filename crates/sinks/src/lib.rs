//! Kite Desk's forwarding: deliver one stored event to one destination and
//! say exactly what happened.
//!
//! * [`Delivery`]: what is forwarded — the [`KiteEvent`](kitedesk_core::KiteEvent),
//!   the payload bytes as received, the provider's original headers and the
//!   team id when known.
//! * [`Sink`]: the destinations — [`HttpSink`] (POST the original payload,
//!   or the CloudEvent on request, optionally re-signed), [`ExecSink`] (a
//!   command with the CloudEvent on stdin), [`FileSink`] (NDJSON lines) and
//!   [`SocketSink`] (a Unix-socket listener, one JSON object per line).
//! * [`Attempt`]: the result of one try — delivered or a [`Failure`] with its
//!   reason, the latency, and the capped response body or stderr. Delivering
//!   never panics and never runs past the sink's timeout.
//! * [`retry`]: the pure backoff schedule (1 s, 4 s, 16 s, 64 s plus jitter,
//!   then dead letter) the outbox follows.
//!
//! This crate does not decide importance, keep the outbox or read the
//! keychain: callers pass in the event, the sink settings and any secret.

mod attempt;
mod delivery;
mod exec;
mod file;
mod http;
pub mod retry;
mod socket;

use std::time::Duration;

use kitedesk_core::manifest::SinkConfig;

pub use attempt::{Attempt, CAPTURE_LIMIT, Captured, Failure, Outcome};
pub use delivery::{Delivery, team_id_from_source};
pub use exec::{ExecCommand, ExecSink, ExecSinkConfig};
pub use file::FileSink;
pub use http::{HttpSink, HttpSinkConfig, Resign};
pub use retry::{Schedule, next_delay};
pub use socket::SocketSink;

/// Default timeout for the file and socket sinks: a local write that takes
/// longer than this is stuck (a full disk on NFS, a listener that never
/// reads), and the outbox should move on.
pub const DEFAULT_LOCAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a sink could not be built from its settings. Delivery problems are
/// never errors: they are [`Failure`]s inside an [`Attempt`].
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("invalid forwarding target {target:?}: {problem}")]
    InvalidTarget { target: String, problem: String },
    #[error("cannot build the HTTP client for {target}: {source}")]
    Client {
        target: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the exec sink has an empty command")]
    EmptyCommand,
    #[error("the {kind} sink is not a forwarding sink (it is handled by the daemon itself)")]
    Unsupported { kind: &'static str },
}

/// The kinds of sink, for display and for the outbox's `sink` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SinkKind {
    Http,
    Exec,
    File,
    Socket,
}

impl SinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Http => "http",
            SinkKind::Exec => "exec",
            SinkKind::File => "file",
            SinkKind::Socket => "socket",
        }
    }
}

impl std::fmt::Display for SinkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One configured destination.
#[derive(Debug, Clone)]
pub enum Sink {
    Http(HttpSink),
    Exec(ExecSink),
    File(FileSink),
    Socket(SocketSink),
}

impl Sink {
    /// Build the sink a `kite.json` `sink` block describes, with its
    /// timeout (or the default) and no re-signing. `stdout` is not a
    /// forwarding sink and is refused. The exec sink's `importance`
    /// threshold is the daemon's to apply (this crate does not decide
    /// importance); `batch` is unused, as in the Kite CLI.
    pub fn from_manifest(config: &SinkConfig) -> Result<Sink, SinkError> {
        Sink::from_manifest_with(config, None)
    }

    /// Like [`Sink::from_manifest`], with the secret a proxy sink's
    /// `resign` block names (the caller reads it; this crate reads no
    /// environment or keychain).
    pub fn from_manifest_with(
        config: &SinkConfig,
        resign: Option<Resign>,
    ) -> Result<Sink, SinkError> {
        Ok(match config {
            SinkConfig::Proxy {
                target,
                envelope,
                timeout,
                ..
            } => {
                let mut c = HttpSinkConfig::new(target.as_str());
                c.envelope = *envelope;
                c.resign = resign;
                if let Some(t) = timeout {
                    c.timeout = *t;
                }
                Sink::Http(HttpSink::new(c)?)
            }
            SinkConfig::Exec {
                command, timeout, ..
            } => {
                let mut c = ExecSinkConfig::new(ExecCommand::Shell(command.clone()));
                if let Some(t) = timeout {
                    c.timeout = *t;
                }
                Sink::Exec(ExecSink::new(c)?)
            }
            SinkConfig::File { path } => Sink::File(FileSink::new(path)),
            SinkConfig::Socket { path } => Sink::Socket(SocketSink::new(path)),
            SinkConfig::Stdout { .. } => return Err(SinkError::Unsupported { kind: "stdout" }),
        })
    }

    /// Try once. Never panics. Returns by the sink's timeout; the exec sink
    /// may add a bounded moment to collect a finished command's output
    /// (200 ms) or reap a killed one (at most 2 s).
    pub async fn deliver(&self, delivery: &Delivery) -> Attempt {
        let attempt = match self {
            Sink::Http(s) => s.deliver(delivery).await,
            Sink::Exec(s) => s.deliver(delivery).await,
            Sink::File(s) => s.deliver(delivery).await,
            Sink::Socket(s) => s.deliver(delivery).await,
        };
        match &attempt.outcome {
            Outcome::Delivered => tracing::debug!(
                sink = %self.kind(), target = %self.target(), event = %delivery.event.id,
                latency_ms = attempt.latency.as_millis() as u64, "delivered"
            ),
            Outcome::Failed(why) => tracing::info!(
                sink = %self.kind(), target = %self.target(), event = %delivery.event.id,
                latency_ms = attempt.latency.as_millis() as u64, reason = %why, "delivery failed"
            ),
        }
        attempt
    }

    pub fn kind(&self) -> SinkKind {
        match self {
            Sink::Http(_) => SinkKind::Http,
            Sink::Exec(_) => SinkKind::Exec,
            Sink::File(_) => SinkKind::File,
            Sink::Socket(_) => SinkKind::Socket,
        }
    }

    /// Where deliveries go, for logs and the UI: the URL, the command, the
    /// path. Never contains a secret.
    pub fn target(&self) -> String {
        match self {
            Sink::Http(s) => s.target().to_string(),
            Sink::Exec(s) => s.command().to_string(),
            Sink::File(s) => s.path().display().to_string(),
            Sink::Socket(s) => s.path().display().to_string(),
        }
    }
}
