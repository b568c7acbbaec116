//! End-to-end tests of the real `kitedesk-app` binary in a private desktop
//! session (Xvfb + its own D-Bus bus, from `kitedesk-testkit`), with the
//! StatusNotifierWatcher stand-in `tests/desktop/sni_watcher.py` as the tray
//! host. The tray's menu is read and clicked over D-Bus (`gdbus`), the way a
//! panel does it.
#![expect(clippy::unwrap_used, reason = "tests")]

mod harness;
mod lifecycle;
mod tray;
