//! The result of one delivery attempt.

use std::borrow::Cow;
use std::time::Duration;

/// How much of a response body, stderr or stdout an attempt keeps: enough to
/// show why a target refused an event, small enough to store with every
/// attempt in the outbox.
pub const CAPTURE_LIMIT: usize = 4 * 1024;

/// What one try at delivering an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub outcome: Outcome,
    /// From just before the request, command or write started to when its
    /// result (or the timeout) was known.
    pub latency: Duration,
    /// The HTTP status, whenever a response arrived (2xx, 3xx or error).
    pub status: Option<u16>,
    /// HTTP sink: the start of the response body.
    pub body: Option<Captured>,
    /// Exec sink: the start of the command's stderr.
    pub stderr: Option<Captured>,
    /// Exec sink: the start of the command's stdout (kept apart from ours).
    pub stdout: Option<Captured>,
}

impl Attempt {
    pub(crate) fn delivered(latency: Duration) -> Self {
        Self::new(Outcome::Delivered, latency)
    }

    pub(crate) fn failed(failure: Failure, latency: Duration) -> Self {
        Self::new(Outcome::Failed(failure), latency)
    }

    fn new(outcome: Outcome, latency: Duration) -> Self {
        Self {
            outcome,
            latency,
            status: None,
            body: None,
            stderr: None,
            stdout: None,
        }
    }

    /// A failed attempt that never reached the sink (the caller could not
    /// even prepare it), for callers that record attempts.
    pub fn not_sent(failure: Failure) -> Self {
        Self::failed(failure, Duration::ZERO)
    }

    pub fn is_delivered(&self) -> bool {
        matches!(self.outcome, Outcome::Delivered)
    }

    /// Why it failed, if it did.
    pub fn failure(&self) -> Option<&Failure> {
        match &self.outcome {
            Outcome::Delivered => None,
            Outcome::Failed(f) => Some(f),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Failed(Failure),
}

/// Why an attempt failed. [`Failure::code`] is stable for the API and UI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The target answered with a status other than 2xx or 3xx.
    #[error("target answered HTTP {0}")]
    Status(u16),
    /// The target answered with a redirect. Redirects are not followed: the
    /// payload and its signature were meant for the configured URL only.
    #[error("target answered HTTP {status} (redirect not followed{})", location.as_deref().map(|l| format!(", location: {l}")).unwrap_or_default())]
    Redirect {
        status: u16,
        location: Option<String>,
    },
    /// No result within the sink's timeout (a timed-out command is killed
    /// with its whole process group).
    #[error("no result within {}", fmt_duration(*.0))]
    Timeout(Duration),
    /// The target could not be reached: connection refused, no such host,
    /// no listener on the socket.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The HTTP exchange failed after connecting (reset, malformed response).
    #[error("request failed: {0}")]
    Request(String),
    /// The command exited with a non-zero code.
    #[error("command exited with code {0}")]
    Exit(i32),
    /// The command was ended by a signal.
    #[error("command was killed by signal {0}")]
    Signal(i32),
    /// The command could not be started (not found, not executable).
    #[error("cannot start command: {0}")]
    Spawn(String),
    /// A local read or write failed (file sink, pipes, socket writes).
    #[error("i/o error: {0}")]
    Io(String),
    /// The event could not be rendered as CloudEvent JSON.
    #[error("cannot render the event as a CloudEvent: {0}")]
    Envelope(String),
}

impl Failure {
    /// A stable machine code for the HTTP boundary and the outbox.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::Status(_) => "http_status",
            Failure::Redirect { .. } => "http_redirect",
            Failure::Timeout(_) => "timeout",
            Failure::Connect(_) => "connect",
            Failure::Request(_) => "request",
            Failure::Exit(_) => "exit",
            Failure::Signal(_) => "signal",
            Failure::Spawn(_) => "spawn",
            Failure::Io(_) => "io",
            Failure::Envelope(_) => "envelope",
        }
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The first [`CAPTURE_LIMIT`] bytes of some output. Text is cut on a UTF-8
/// character boundary, so [`Captured::as_text`] works on any cut of valid
/// text; binary output is kept as bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Captured {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The output as text, if it is UTF-8.
    pub fn as_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }

    /// The output as text, invalid bytes replaced.
    pub fn to_text_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    /// Whether the output was longer than what was kept.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Collects streamed output up to a limit, remembering whether more came.
#[derive(Debug)]
pub(crate) struct CaptureBuf {
    bytes: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl CaptureBuf {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            bytes: Vec::new(),
            limit,
            truncated: false,
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        let room = self.limit - self.bytes.len();
        if chunk.len() > room {
            self.truncated = true;
        }
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    /// Whether input beyond the limit has been seen (and dropped).
    pub(crate) fn is_truncated(&self) -> bool {
        self.truncated
    }

    pub(crate) fn mark_truncated(&mut self) {
        self.truncated = true;
    }

    pub(crate) fn finish(mut self) -> Captured {
        if self.truncated {
            // A cut inside a multi-byte character leaves an incomplete
            // sequence at the end (`error_len() == None`): drop those bytes
            // so text stays text. Anything else invalid is binary: keep it.
            if let Err(e) = std::str::from_utf8(&self.bytes)
                && e.error_len().is_none()
            {
                self.bytes.truncate(e.valid_up_to());
            }
        }
        Captured {
            bytes: self.bytes,
            truncated: self.truncated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(input: &[u8], limit: usize) -> Captured {
        let mut c = CaptureBuf::new(limit);
        for chunk in input.chunks(3) {
            c.push(chunk);
        }
        c.finish()
    }

    #[test]
    fn text_is_cut_on_a_char_boundary() {
        // "é" is two bytes: a 5-byte cut of "ééé" falls inside the third.
        let c = capture("ééé".as_bytes(), 5);
        assert_eq!(c.as_text(), Some("éé"), "the half character is dropped");
        assert!(c.is_truncated());
    }

    #[test]
    fn short_output_is_kept_whole() {
        let c = capture(b"boom", 4);
        assert_eq!(c.as_text(), Some("boom"));
        assert!(!c.is_truncated(), "exactly the limit is not a truncation");
    }

    #[test]
    fn binary_output_is_kept_as_bytes() {
        let c = capture(&[0xff, 0xfe, 0x00, 0x01, 0x02], 4);
        assert_eq!(c.as_bytes(), &[0xff, 0xfe, 0x00, 0x01]);
        assert_eq!(c.as_text(), None);
    }

    #[test]
    fn failure_messages_say_what_happened() {
        let redirect = Failure::Redirect {
            status: 302,
            location: Some("/login".into()),
        };
        assert_eq!(
            redirect.to_string(),
            "target answered HTTP 302 (redirect not followed, location: /login)"
        );
        assert_eq!(
            Failure::Timeout(Duration::from_millis(300)).to_string(),
            "no result within 300ms"
        );
        assert_eq!(
            Failure::Timeout(Duration::from_secs(10)).to_string(),
            "no result within 10s"
        );
    }
}
