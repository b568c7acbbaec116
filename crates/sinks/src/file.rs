//! The file sink: append each event as one NDJSON line.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::DEFAULT_LOCAL_TIMEOUT;
use crate::attempt::{Attempt, Failure};
use crate::delivery::Delivery;

/// Appends the structured CloudEvent JSON, one line per event, to a file
/// (created, with its directories, on first use; mode 0600 on Unix, since
/// payloads may hold personal data).
///
/// Each line is written with a single `write` on a file opened `O_APPEND`,
/// so concurrent deliveries (and other appenders) never interleave within a
/// line.
#[derive(Debug, Clone)]
pub struct FileSink {
    path: PathBuf,
    timeout: Duration,
}

impl FileSink {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            timeout: DEFAULT_LOCAL_TIMEOUT,
        }
    }

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
        let path = self.path.clone();
        // Blocking file I/O on the blocking pool. On timeout the write may
        // still finish later; the attempt is reported failed and a retry
        // may then append the line twice (consumers dedup on source + id).
        let write = tokio::task::spawn_blocking(move || append_line(&path, &line));
        let result = match tokio::time::timeout(self.timeout, write).await {
            Err(_elapsed) => Err(Failure::Timeout(self.timeout)),
            Ok(Err(join)) => Err(Failure::Io(format!("file write task failed: {join}"))),
            Ok(Ok(result)) => result,
        };
        match result {
            Ok(()) => Attempt::delivered(start.elapsed()),
            Err(failure) => Attempt::failed(failure, start.elapsed()),
        }
    }
}

fn append_line(path: &Path, line: &[u8]) -> Result<(), Failure> {
    let io = |what: &str, e: std::io::Error| Failure::Io(format!("{what} {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io("cannot create the directory for", e))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(path).map_err(|e| io("cannot open", e))?;
    // One buffer, one write_all: on a regular file that is one write(2).
    file.write_all(line).map_err(|e| io("cannot append to", e))
}
