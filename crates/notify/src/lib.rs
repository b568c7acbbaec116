//! Kite Desk's notifications: which stored events raise a desktop
//! notification, and the backends that show them.
//!
//! * [`settings`]: [`NotificationSettings`], the object behind
//!   `/api/settings/notifications`, validated with errors naming the field.
//! * [`engine`]: [`Engine`], the pure policy (threshold, dedup, mute,
//!   pause, quiet hours, grouping, rate limit) answering a [`Decision`] per
//!   event; time is passed in as a [`Clock`].
//! * [`backend`]: the [`Notifier`] trait and [`MemoryNotifier`] for tests.
//! * `desktop` (feature `desktop`): [`DesktopNotifier`], notify-rust over
//!   D-Bus, with an "Open" action that calls the shell's [`OpenHandler`].

pub mod backend;
#[cfg(feature = "desktop")]
pub mod desktop;
pub mod engine;
pub mod settings;

pub use backend::{MemoryNotifier, Notifier, NotifyError, OpenHandler, OpenRequest};
#[cfg(feature = "desktop")]
pub use desktop::DesktopNotifier;
pub use engine::{Clock, Decision, Engine, EventFacts, Notice, Suppression, Urgency};
pub use settings::{NotificationSettings, PauseRequest, SettingsError, parse_settings};
