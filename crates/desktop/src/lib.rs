//! The desktop shell's logic, kept out of the Tauri crate so it is plain,
//! fast to build and unit-tested: `src-tauri` only turns these models into
//! tray icons, menus and windows.
//!
//! * [`args::AppArgs`]: the app's flags (the same `--data-dir`, `--listen`,
//!   `--manifest` as `kitedesk serve`) and the [`kitedesk_daemon::DaemonConfig`]
//!   they make.
//! * [`tray::TrayStatus`]: which icon the tray shows, from the daemon's
//!   connections and whether critical events are unseen.
//! * [`menu::MenuId`] and [`menu::TrayMenu`]: the tray menu's ids (declared
//!   once) and its contents (the latest events).
//! * [`pause::PauseCommand`] and [`pause::pause_state`]: the "Pause
//!   notifications" submenu's clicks and its state from the daemon's status.
//! * [`autostart`]: the XDG autostart entry behind "Start at login".
//! * [`window_link`]: the line protocol between the tray process and the
//!   window process (`kitedesk-app --window`).

pub mod args;
pub mod autostart;
pub mod menu;
pub mod pause;
pub mod tray;
pub mod window_link;
