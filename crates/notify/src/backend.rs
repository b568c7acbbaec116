//! Where notices go: the [`Notifier`] trait, an in-memory backend for unit
//! tests, and the shell's "Open" callback type.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::engine::Notice;

/// A boxed future: the trait is used as `Arc<dyn Notifier>` (the daemon
/// picks the backend at run time), so its async methods return these.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The user clicked "Open" on a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRequest {
    pub event_id: i64,
    /// `<daemon url>/events/<id>`.
    pub url: String,
}

/// What the desktop shell (or `kitedesk serve`) does on "Open". Called on a
/// runtime task; it must not block.
pub type OpenHandler = Arc<dyn Fn(OpenRequest) + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// No notification server answers (no session bus, no server on it).
    #[error("no notification server: {0}")]
    Unavailable(String),
    /// The server took too long.
    #[error("the notification server did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The server answered with an error.
    #[error("the notification server refused the notification: {0}")]
    Refused(String),
}

/// A notification backend.
pub trait Notifier: Send + Sync + std::fmt::Debug + 'static {
    /// Short name for the status (`desktop`, `memory`).
    fn name(&self) -> &'static str;
    /// Check that a notification server is there (without showing anything).
    fn probe(&self) -> BoxFuture<'_, Result<(), NotifyError>>;
    /// Show one notice. Returns once the server accepted it.
    fn show(&self, notice: Notice) -> BoxFuture<'_, Result<(), NotifyError>>;
}

/// Keeps notices in memory; can be made unavailable; "clicks" call the
/// open handler. For unit tests of the logic above the backend.
#[derive(Clone)]
pub struct MemoryNotifier {
    inner: Arc<Mutex<MemoryState>>,
    on_open: Option<OpenHandler>,
}

#[derive(Debug, Default)]
struct MemoryState {
    shown: Vec<Notice>,
    unavailable: Option<String>,
}

impl std::fmt::Debug for MemoryNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryNotifier")
            .field("shown", &self.shown().len())
            .finish_non_exhaustive()
    }
}

impl MemoryNotifier {
    pub fn new(on_open: Option<OpenHandler>) -> Self {
        Self {
            inner: Arc::default(),
            on_open,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        // A panic while holding this lock is a test failure anyway; keep the data.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn shown(&self) -> Vec<Notice> {
        self.state().shown.clone()
    }

    /// `Some(error)`: behave as if no server were there.
    pub fn set_unavailable(&self, error: Option<&str>) {
        self.state().unavailable = error.map(str::to_string);
    }

    /// Simulate a click on "Open" of the `n`th notice shown. False if there
    /// is no such notice, no URL or no handler.
    pub fn click(&self, n: usize) -> bool {
        let notice = self.state().shown.get(n).cloned();
        match (notice, &self.on_open) {
            (
                Some(Notice {
                    event_id,
                    open_url: Some(url),
                    ..
                }),
                Some(h),
            ) => {
                h(OpenRequest { event_id, url });
                true
            }
            _ => false,
        }
    }
}

impl Notifier for MemoryNotifier {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn probe(&self) -> BoxFuture<'_, Result<(), NotifyError>> {
        let r = match &self.state().unavailable {
            Some(e) => Err(NotifyError::Unavailable(e.clone())),
            None => Ok(()),
        };
        Box::pin(async move { r })
    }
    fn show(&self, notice: Notice) -> BoxFuture<'_, Result<(), NotifyError>> {
        let r = {
            let mut s = self.state();
            match &s.unavailable {
                Some(e) => Err(NotifyError::Unavailable(e.clone())),
                None => {
                    s.shown.push(notice);
                    Ok(())
                }
            }
        };
        Box::pin(async move { r })
    }
}
