//! The desktop backend: freedesktop notifications through notify-rust
//! (D-Bus via zbus on the tokio runtime; `show_async`, never the blocking
//! `show`).
//!
//! "Open" is the notification's default action. Notification servers send
//! `ActionInvoked` to the connection that called `Notify` (dunst and GNOME
//! Shell address the signal to the sender), and notify-rust opens one
//! connection per notification, so a notice stays clickable only while its
//! handle (and connection) lives. We keep the newest [`CLICKABLE`] handles
//! waiting for their action; older ones are dropped, and a click on them
//! does nothing.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use notify_rust::{Notification, NotificationResponse, Urgency as NrUrgency};
use tokio::task::JoinHandle;

use crate::backend::{BoxFuture, Notifier, NotifyError, OpenHandler, OpenRequest};
use crate::engine::{Notice, Urgency};

pub const APP_NAME: &str = "Kite Desk";
/// How long a notification server may take to answer a call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Notices whose "Open" still works (each holds a D-Bus connection).
pub const CLICKABLE: usize = 32;

const BUS_NAME: &str = "org.freedesktop.Notifications";
const OBJECT_PATH: &str = "/org/freedesktop/Notifications";

/// notify-rust on the session bus.
pub struct DesktopNotifier {
    on_open: Option<OpenHandler>,
    waiting: Mutex<VecDeque<JoinHandle<()>>>,
}

impl std::fmt::Debug for DesktopNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesktopNotifier")
            .field("on_open", &self.on_open.is_some())
            .finish_non_exhaustive()
    }
}

impl DesktopNotifier {
    /// `on_open` runs when the user clicks a notification (or its "Open").
    pub fn new(on_open: Option<OpenHandler>) -> Self {
        Self {
            on_open,
            waiting: Mutex::new(VecDeque::new()),
        }
    }

    /// Whether this process can reach a session bus at all (the address
    /// variable, or the systemd default socket).
    pub fn session_bus_present(env: impl Fn(&str) -> Option<String>) -> bool {
        env("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty())
            || env("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).join("bus").exists())
    }

    fn notification(notice: &Notice) -> Notification {
        let mut n = Notification::new();
        n.appname(APP_NAME)
            .summary(&notice.title)
            .body(&notice.body)
            .urgency(match notice.urgency {
                Urgency::Low => NrUrgency::Low,
                Urgency::Normal => NrUrgency::Normal,
                Urgency::Critical => NrUrgency::Critical,
            });
        // "default" is the spec's key for a click on the notification body;
        // servers that draw buttons label it "Open".
        n.action("default", "Open");
        n
    }

    fn keep_clickable(&self, task: JoinHandle<()>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.retain(|t| !t.is_finished());
        waiting.push_back(task);
        while waiting.len() > CLICKABLE {
            if let Some(old) = waiting.pop_front() {
                old.abort();
            }
        }
    }
}

impl Drop for DesktopNotifier {
    fn drop(&mut self) {
        let waiting = self.waiting.get_mut().unwrap_or_else(|p| p.into_inner());
        for t in waiting.drain(..) {
            t.abort();
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> NotifyError {
    NotifyError::Unavailable(e.to_string())
}

/// Map a zbus error: "no such name" means no server; anything else is a
/// refusal by a server that is there.
fn from_zbus(e: &zbus::Error) -> NotifyError {
    match e {
        zbus::Error::MethodError(name, _, _) if no_server(name.as_str()) => unavailable(e),
        zbus::Error::MethodError(..) => NotifyError::Refused(e.to_string()),
        _ => unavailable(e),
    }
}

/// D-Bus errors that mean nobody owns the notification service name.
fn no_server(error: &str) -> bool {
    ["ServiceUnknown", "NameHasNoOwner", "NoReply", "Spawn"]
        .iter()
        .any(|n| error.contains(&format!("org.freedesktop.DBus.Error.{n}")))
}

impl Notifier for DesktopNotifier {
    fn name(&self) -> &'static str {
        "desktop"
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), NotifyError>> {
        Box::pin(async move {
            let call = async {
                let conn = zbus::Connection::session()
                    .await
                    .map_err(|e| unavailable(format!("no D-Bus session bus: {e}")))?;
                let reply = conn
                    .call_method(
                        Some(BUS_NAME),
                        OBJECT_PATH,
                        Some(BUS_NAME),
                        "GetServerInformation",
                        &(),
                    )
                    .await
                    .map_err(|e| from_zbus(&e))?;
                let (name, vendor, version, _spec): (String, String, String, String) = reply
                    .body()
                    .deserialize()
                    .map_err(|e| NotifyError::Refused(e.to_string()))?;
                tracing::debug!(%name, %vendor, %version, "notification server found");
                Ok(())
            };
            tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .map_err(|_| NotifyError::Timeout(CALL_TIMEOUT))?
        })
    }

    fn show(&self, notice: Notice) -> BoxFuture<'_, Result<(), NotifyError>> {
        Box::pin(async move {
            let n = Self::notification(&notice);
            let handle = tokio::time::timeout(CALL_TIMEOUT, n.show_async())
                .await
                .map_err(|_| NotifyError::Timeout(CALL_TIMEOUT))?
                .map_err(|e| {
                    // notify-rust's error does not expose its kind: classify
                    // by the D-Bus error name in the message.
                    let msg = e.to_string();
                    if msg.contains(".Error.") && !no_server(&msg) {
                        NotifyError::Refused(msg)
                    } else {
                        unavailable(msg)
                    }
                })?;
            if let (Some(on_open), Some(url)) = (self.on_open.clone(), notice.open_url.clone()) {
                let event_id = notice.event_id;
                let task = tokio::spawn(async move {
                    handle
                        .wait_for_action_async(move |r: &NotificationResponse| {
                            let clicked = match r {
                                NotificationResponse::Default => true,
                                NotificationResponse::Action(a) => a == "default" || a == "open",
                                _ => false,
                            };
                            if clicked {
                                on_open(OpenRequest {
                                    event_id,
                                    url: url.clone(),
                                });
                            }
                        })
                        .await;
                });
                self.keep_clickable(task);
            }
            Ok(())
        })
    }
}
