//! A watch on `org.freedesktop.Notifications.Notify` calls, through the bus's
//! monitoring interface (so it sees calls whether or not a server answers).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::DesktopSession;

const MONITOR_SCRIPT: &str = include_str!("notify_monitor.py");

/// One observed `Notify` call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Notification {
    pub app_name: String,
    pub summary: String,
    pub body: String,
    /// The `urgency` hint: 0 low, 1 normal, 2 critical.
    pub urgency: Option<u8>,
    /// Action keys and labels, alternating (`["default", "Open"]`).
    pub actions: Vec<String>,
}

#[derive(Debug, Default)]
struct Seen {
    list: Vec<Notification>,
    ended: bool,
}

/// Collects `Notify` calls in the background; see [`DesktopSession::notifications`].
#[derive(Debug)]
pub struct NotificationWatch {
    child: Child,
    seen: Arc<(Mutex<Seen>, Condvar)>,
}

impl NotificationWatch {
    pub(crate) fn start(session: &DesktopSession) -> anyhow::Result<Self> {
        let script = session.dir().join("notify_monitor.py");
        std::fs::write(&script, MONITOR_SCRIPT)?;
        // Debian's python3 has python3-dbus and python3-gi; a pyenv or venv
        // python on PATH usually has neither.
        let python = if std::path::Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let mut child = session
            .command(python)
            .arg(&script)
            .arg(session.bus_address())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(
                session.dir().join("notify-monitor.log"),
            )?)
            .spawn()
            .context("cannot start the notification monitor (python3-dbus, python3-gi)")?;
        let mut lines = BufReader::new(child.stdout.take().context("piped stdout")?).lines();
        match lines.next() {
            Some(Ok(line)) if line.contains("\"ready\"") => {}
            other => {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "the notification monitor did not start ({other:?}): {}",
                    session.log_tail("notify-monitor")
                );
            }
        }
        let seen = Arc::new((Mutex::new(Seen::default()), Condvar::new()));
        let shared = Arc::clone(&seen);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(n) = serde_json::from_str::<Notification>(&line) {
                    let (lock, cvar) = &*shared;
                    if let Ok(mut s) = lock.lock() {
                        s.list.push(n);
                    }
                    cvar.notify_all();
                }
            }
            let (lock, cvar) = &*shared;
            if let Ok(mut s) = lock.lock() {
                s.ended = true;
            }
            cvar.notify_all();
        });
        Ok(Self { child, seen })
    }

    /// Every notification seen so far, in order.
    pub fn all(&self) -> Vec<Notification> {
        self.seen
            .0
            .lock()
            .map(|s| s.list.clone())
            .unwrap_or_default()
    }

    /// The first notification (seen so far or arriving before `timeout`)
    /// that matches `pred`.
    ///
    /// To show that something did *not* notify, make it happen, then make a
    /// marker event notify, wait for the marker, and check `all()`: the
    /// daemon handles events in order, so no sleep is needed.
    pub fn wait_for(
        &self,
        pred: impl Fn(&Notification) -> bool,
        timeout: Duration,
    ) -> Option<Notification> {
        self.wait_for_count(&pred, 1, timeout)
            .and_then(|mut v| v.pop())
    }

    /// Waits until `count` notifications match `pred`; returns them, or
    /// `None` at the deadline.
    pub fn wait_for_count(
        &self,
        pred: &dyn Fn(&Notification) -> bool,
        count: usize,
        timeout: Duration,
    ) -> Option<Vec<Notification>> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.seen;
        let mut seen = lock.lock().ok()?;
        loop {
            let matching: Vec<_> = seen.list.iter().filter(|n| pred(n)).cloned().collect();
            if matching.len() >= count {
                return Some(matching);
            }
            let now = Instant::now();
            if now >= deadline || seen.ended {
                return None;
            }
            seen = cvar.wait_timeout(seen, deadline - now).ok()?.0;
        }
    }
}

impl Drop for NotificationWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
