//! The desktop backend: freedesktop notifications over D-Bus, on the tokio
//! runtime (never a blocking call).
//!
//! The notification is built as a notify-rust [`Notification`] (app name,
//! summary, body, urgency hint, the "Open" default action), and sent with
//! `Notify` over **one persistent zbus connection**. notify-rust's own
//! `show_async` opens a new session-bus connection per notification (socket,
//! SASL, `Hello`) and keeps it open while waiting for the action; measured
//! on the 2-core bench machine under load, that connection setup was ~64 ms
//! p50 per notification, far over the 25 ms budget, while one call on an
//! open connection is a single message. It also lets one task receive every
//! `ActionInvoked` (servers address it to the connection that called
//! `Notify`) instead of one task and connection per notification.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use notify_rust::{Hint, Notification, Urgency as NrUrgency};
use tokio::task::JoinHandle;
use zbus::Variant;

use crate::backend::{BoxFuture, Notifier, NotifyError, OpenHandler, OpenRequest};
use crate::engine::{Notice, Urgency};

pub const APP_NAME: &str = "Kite Desk";
/// How long a notification server may take to answer a call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Notices whose "Open" still works: the newest this many (older clicks
/// are ignored; the server has usually dropped those notices anyway).
pub const CLICKABLE: usize = 256;

const BUS_NAME: &str = "org.freedesktop.Notifications";
const OBJECT_PATH: &str = "/org/freedesktop/Notifications";

/// Notification id (from the server) → what "Open" opens.
#[derive(Debug, Default)]
struct Clickable {
    order: VecDeque<u32>,
    by_id: HashMap<u32, OpenRequest>,
}

impl Clickable {
    fn insert(&mut self, id: u32, req: OpenRequest) {
        if self.by_id.insert(id, req).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > CLICKABLE {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }
}

struct Live {
    conn: zbus::Connection,
    listener: Option<JoinHandle<()>>,
}

/// Freedesktop notifications on the session bus.
pub struct DesktopNotifier {
    on_open: Option<OpenHandler>,
    live: tokio::sync::Mutex<Option<Live>>,
    clickable: Arc<Mutex<Clickable>>,
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
            live: tokio::sync::Mutex::new(None),
            clickable: Arc::default(),
        }
    }

    /// Whether this process can reach a session bus at all (the address
    /// variable, or the systemd default socket).
    pub fn session_bus_present(env: impl Fn(&str) -> Option<String>) -> bool {
        env("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty())
            || env("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).join("bus").exists())
    }

    /// The notification as notify-rust models it.
    pub fn notification(notice: &Notice) -> Notification {
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

    /// The open connection, connecting (and starting the action listener)
    /// when there is none.
    async fn connection(&self) -> Result<zbus::Connection, NotifyError> {
        let mut live = self.live.lock().await;
        if let Some(l) = live.as_ref() {
            return Ok(l.conn.clone());
        }
        let conn = zbus::Connection::session()
            .await
            .map_err(|e| unavailable(format!("no D-Bus session bus: {e}")))?;
        let listener = match &self.on_open {
            Some(on_open) => Some(self.listen(&conn, on_open.clone()).await?),
            None => None,
        };
        *live = Some(Live {
            conn: conn.clone(),
            listener,
        });
        Ok(conn)
    }

    async fn listen(
        &self,
        conn: &zbus::Connection,
        on_open: OpenHandler,
    ) -> Result<JoinHandle<()>, NotifyError> {
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(BUS_NAME)
            .member("ActionInvoked")
            .build()
            .map_err(unavailable)?;
        let mut stream = zbus::MessageStream::for_match_rule(rule, conn, None)
            .await
            .map_err(unavailable)?;
        let clickable = self.clickable.clone();
        Ok(tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Ok((id, action)) = msg.body().deserialize::<(u32, String)>() else {
                    continue;
                };
                if action != "default" && action != "open" {
                    continue;
                }
                let req = clickable
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .by_id
                    .get(&id)
                    .cloned();
                if let Some(req) = req {
                    on_open(req);
                }
            }
        }))
    }

    /// Forget a broken connection so the next call reconnects.
    async fn reset(&self) {
        if let Some(l) = self.live.lock().await.take()
            && let Some(t) = l.listener
        {
            t.abort();
        }
    }

    async fn call_notify(
        &self,
        conn: &zbus::Connection,
        n: &Notification,
    ) -> Result<u32, zbus::Error> {
        let mut hints: HashMap<&str, Variant<'_>> = HashMap::new();
        for h in &n.hints {
            if let Hint::Urgency(u) = h {
                hints.insert("urgency", Variant::U8(*u as u8));
            }
        }
        let actions: Vec<&str> = n.actions.iter().map(String::as_str).collect();
        let reply = conn
            .call_method(
                Some(BUS_NAME),
                OBJECT_PATH,
                Some(BUS_NAME),
                "Notify",
                &(
                    n.appname.as_str(),
                    0u32,
                    n.icon.as_str(),
                    n.summary.as_str(),
                    n.body.as_str(),
                    actions,
                    hints,
                    i32::from(n.timeout),
                ),
            )
            .await?;
        reply.body().deserialize::<u32>()
    }
}

impl Drop for DesktopNotifier {
    fn drop(&mut self) {
        if let Some(l) = self.live.get_mut().take()
            && let Some(t) = l.listener
        {
            t.abort();
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> NotifyError {
    NotifyError::Unavailable(e.to_string())
}

/// D-Bus errors that mean nobody owns the notification service name.
fn no_server(error: &str) -> bool {
    ["ServiceUnknown", "NameHasNoOwner", "NoReply", "Spawn"]
        .iter()
        .any(|n| error.contains(&format!("org.freedesktop.DBus.Error.{n}")))
}

/// A method error from a present bus: no server, or a refusal. Anything
/// else means the connection itself is broken.
fn classify(e: &zbus::Error) -> (NotifyError, bool) {
    match e {
        zbus::Error::MethodError(name, _, _) if no_server(name.as_str()) => (unavailable(e), false),
        zbus::Error::MethodError(..) => (NotifyError::Refused(e.to_string()), false),
        _ => (unavailable(e), true),
    }
}

impl Notifier for DesktopNotifier {
    fn name(&self) -> &'static str {
        "desktop"
    }

    fn probe(&self) -> BoxFuture<'_, Result<(), NotifyError>> {
        Box::pin(async move {
            let call = async {
                let conn = self.connection().await?;
                let reply = conn
                    .call_method(
                        Some(BUS_NAME),
                        OBJECT_PATH,
                        Some(BUS_NAME),
                        "GetServerInformation",
                        &(),
                    )
                    .await;
                let reply = match reply {
                    Ok(r) => r,
                    Err(e) => {
                        let (err, broken) = classify(&e);
                        if broken {
                            self.reset().await;
                        }
                        return Err(err);
                    }
                };
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
            let call = async {
                let conn = self.connection().await?;
                match self.call_notify(&conn, &n).await {
                    Ok(id) => Ok(id),
                    Err(e) => {
                        let (err, broken) = classify(&e);
                        if broken {
                            self.reset().await;
                        }
                        Err(err)
                    }
                }
            };
            let id = tokio::time::timeout(CALL_TIMEOUT, call)
                .await
                .map_err(|_| NotifyError::Timeout(CALL_TIMEOUT))??;
            if let Some(url) = notice.open_url {
                self.clickable
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(
                        id,
                        OpenRequest {
                            event_id: notice.event_id,
                            url,
                        },
                    );
            }
            Ok(())
        })
    }
}
