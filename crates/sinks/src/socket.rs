//! The Unix-socket sink: hand each event to a local listener.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::DEFAULT_LOCAL_TIMEOUT;
use crate::attempt::{Attempt, Failure};
use crate::delivery::Delivery;

/// Connects to a listening Unix socket and writes the structured CloudEvent
/// JSON as one line, then closes the connection: one connection per event,
/// so a listener that restarts between events loses nothing, and no listener
/// is a clear failure (the outbox retries) rather than a silent drop.
#[derive(Debug, Clone)]
pub struct SocketSink {
    path: PathBuf,
    timeout: Duration,
}

impl SocketSink {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            timeout: DEFAULT_LOCAL_TIMEOUT,
        }
    }

    /// Bounds connecting and writing: a listener that accepts but never
    /// reads fills the socket buffer and would otherwise block forever.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn deliver(&self, delivery: &Delivery) -> Attempt {
        let start = Instant::now();
        let mut line = match delivery.cloudevent_json() {
            Ok(json) => json.into_bytes(),
            Err(failure) => return Attempt::failed(failure, start.elapsed()),
        };
        line.push(b'\n');
        let result = match tokio::time::timeout(self.timeout, send(&self.path, &line)).await {
            Err(_elapsed) => Err(Failure::Timeout(self.timeout)),
            Ok(result) => result,
        };
        match result {
            Ok(()) => Attempt::delivered(start.elapsed()),
            Err(failure) => Attempt::failed(failure, start.elapsed()),
        }
    }
}

#[cfg(unix)]
async fn send(path: &Path, line: &[u8]) -> Result<(), Failure> {
    use tokio::io::AsyncWriteExt as _;

    let mut stream = tokio::net::UnixStream::connect(path).await.map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no socket at this path".to_string(),
            std::io::ErrorKind::ConnectionRefused => {
                "nothing is listening on this socket".to_string()
            }
            _ => e.to_string(),
        };
        Failure::Connect(format!("{}: {why} ({e})", path.display()))
    })?;
    let io = |e: std::io::Error| Failure::Io(format!("writing to {}: {e}", path.display()));
    stream.write_all(line).await.map_err(io)?;
    stream.shutdown().await.map_err(io)
}

#[cfg(not(unix))]
async fn send(path: &Path, _line: &[u8]) -> Result<(), Failure> {
    Err(Failure::Connect(format!(
        "{}: Unix sockets are not supported on this platform",
        path.display()
    )))
}
