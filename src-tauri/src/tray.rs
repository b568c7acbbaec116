//! The tray icon and its menu.
//!
//! [`TrayModel`] holds what the tray shows (connections, unseen critical
//! count, latest events, start-at-login) and [`watch`] keeps it current
//! from the daemon's bus and health; [`refresh`] turns the model into the
//! icon and the menu (built from [`kitedesk_desktop::menu::TrayMenu`]) when
//! it changed. Menu clicks arrive in [`on_menu`]; the pause submenu's
//! clicks call the daemon's notification service directly (the daemon runs
//! in this process) and its state follows the daemon's settings and status.

use std::sync::Mutex;
use std::time::Duration;

use kitedesk_core::Importance;
use kitedesk_daemon::Api;
use kitedesk_daemon::api::EventSummary;
use kitedesk_daemon::bus::DaemonEvent;
use kitedesk_desktop::menu::{Entry, MenuId, Pause, RECENT, Recent, RecentEvent, TrayMenu};
use kitedesk_desktop::pause::{PauseCommand, pause_state};
use kitedesk_desktop::tray::{Connection, TrayStatus, connections_from_health, status_line};
use tauri::image::Image;
use tauri::menu::{
    CheckMenuItem, IsMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu,
};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager as _, Wry};
use tokio::sync::broadcast::error::RecvError;

use crate::{Shell, autostart, window};

const TRAY_ID: &str = "kitedesk";

/// How often connection states and the notification server's availability
/// are re-read (and an ended pause noticed). They change rarely and a few
/// seconds' delay in the icon is fine; the menu's events and pause changes
/// are pushed.
const HEALTH_EVERY: Duration = Duration::from_secs(5);

/// A burst of webhooks rebuilds the menu once, this long after the first.
const COALESCE: Duration = Duration::from_millis(150);

#[derive(Debug, Clone)]
struct View {
    connections: Vec<Connection>,
    unseen_critical: u32,
    recent: Recent,
    autostart: bool,
    pause: Pause,
}

impl View {
    fn status(&self) -> TrayStatus {
        TrayStatus::from_parts(&self.connections, self.unseen_critical)
    }

    fn menu(&self) -> TrayMenu {
        TrayMenu {
            status_line: status_line(&self.connections, self.unseen_critical),
            recent: self.recent.clone(),
            pause: self.pause.clone(),
            autostart: self.autostart,
        }
    }
}

/// What the tray shows, and what it showed last (to skip no-op rebuilds).
#[derive(Debug)]
pub(crate) struct TrayModel {
    view: Mutex<View>,
    shown: Mutex<Option<(TrayStatus, TrayMenu)>>,
}

impl TrayModel {
    pub(crate) async fn load(api: &Api) -> Self {
        let view = View {
            connections: connections(api).await,
            unseen_critical: 0,
            recent: latest(api).await,
            autostart: autostart::is_enabled(),
            pause: pause_now(api),
        };
        Self {
            view: Mutex::new(view),
            shown: Mutex::new(None),
        }
    }

    fn update<T>(&self, f: impl FnOnce(&mut View) -> T) -> T {
        let mut v = self.view.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut v)
    }

    fn snapshot(&self) -> View {
        self.update(|v| v.clone())
    }

    /// The user opened the window: critical events are no longer unseen.
    pub(crate) fn mark_seen(&self, app: &AppHandle) {
        if self.update(|v| std::mem::take(&mut v.unseen_critical)) > 0 {
            refresh(app);
        }
    }
}

async fn latest(api: &Api) -> Recent {
    let params = [("limit".to_string(), RECENT.to_string())];
    let page = match kitedesk_daemon::event_query_from_params(&params) {
        Ok(q) => api.list_events(&q).await,
        Err(e) => Err(e),
    };
    match page {
        Ok(p) => Recent::from_newest_first(p.events.iter().map(RecentEvent::from)),
        Err(e) => {
            tracing::warn!(error = %e.message, "cannot read the latest events for the tray");
            Recent::default()
        }
    }
}

/// The pause submenu's state, from the daemon's notification status.
fn pause_now(api: &Api) -> Pause {
    pause_state(&api.notification_status(), &chrono::Local::now())
}

/// Re-read the pause state; returns whether it changed.
fn update_pause(app: &AppHandle, api: &Api) -> bool {
    let pause = pause_now(api);
    app.state::<Shell>().tray.update(|v| {
        let changed = v.pause != pause;
        v.pause = pause;
        changed
    })
}

/// Run a pause-menu command on the daemon, then show the new state.
async fn run_pause(app: AppHandle, cmd: PauseCommand) {
    let api = app.state::<Shell>().api.clone();
    let result = match &cmd {
        PauseCommand::Pause(req) => api.pause_notifications(req).await,
        PauseCommand::Resume => api.resume_notifications().await,
    };
    match result {
        Ok(status) => tracing::info!(
            paused_until = status.paused_until.as_deref().unwrap_or("-"),
            "notifications {} from the tray",
            if status.paused_until.is_some() {
                "paused"
            } else {
                "resumed"
            }
        ),
        Err(e) => tracing::error!(error = %e, "cannot change the notification pause"),
    }
    if update_pause(&app, &api) {
        refresh(&app);
    }
}

async fn connections(api: &Api) -> Vec<Connection> {
    // Read through JSON: the connection list is part of the health document
    // (CONTRACTS.md "Connections"), and a daemon without relays has none.
    match api.health().await.map(serde_json::to_value) {
        Ok(Ok(v)) => connections_from_health(&v),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the daemon's health");
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(error = %e.message, "cannot read the daemon's health");
            Vec::new()
        }
    }
}

fn icon(status: TrayStatus) -> Image<'static> {
    match status {
        TrayStatus::Connected => tauri::include_image!("../icons/tray-connected.png"),
        TrayStatus::Reconnecting => tauri::include_image!("../icons/tray-reconnecting.png"),
        TrayStatus::Offline => tauri::include_image!("../icons/tray-offline.png"),
        TrayStatus::UnseenCritical => tauri::include_image!("../icons/tray-unseen-critical.png"),
    }
}

/// Build the tray icon (in the app's setup, on the main thread).
pub(crate) fn create(app: &AppHandle) -> tauri::Result<()> {
    let shell = app.state::<Shell>();
    let view = shell.tray.snapshot();
    let (status, model) = (view.status(), view.menu());
    let menu = build_menu(app, &model.entries())?;
    let mut builder = TrayIconBuilder::with_id(TRAY_ID);
    if let Some(dir) = icon_dir(&shell.args.data_dir()) {
        builder = builder.temp_dir_path(dir);
    }
    builder
        .icon(icon(status))
        .tooltip(&model.status_line)
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(on_menu)
        .build(app)?;
    *shell.tray.shown.lock().unwrap_or_else(|p| p.into_inner()) = Some((status, model));
    tracing::info!("tray icon created");
    Ok(())
}

/// Where the tray writes its icon files for the tray host to read (Linux
/// passes icons by file name). The default, `/tmp/tray-icon`, is shared by
/// every user and instance; `$XDG_RUNTIME_DIR` is private to the user, and
/// the data dir's name keeps two instances with different data apart.
fn icon_dir(data_dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty())?;
    let tag = format!("{:016x}", {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        data_dir.hash(&mut h);
        h.finish()
    });
    Some(std::path::PathBuf::from(runtime).join("kitedesk").join(tag))
}

/// Show the model's current state if it differs from what is shown.
pub(crate) fn refresh(app: &AppHandle) {
    let handle = app.clone();
    let run = app.run_on_main_thread(move || {
        if let Err(e) = refresh_now(&handle) {
            tracing::warn!(error = %e, "cannot update the tray");
        }
    });
    if let Err(e) = run {
        tracing::debug!(error = %e, "tray update skipped: the event loop has stopped");
    }
}

fn refresh_now(app: &AppHandle) -> tauri::Result<()> {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return Ok(());
    };
    let shell = app.state::<Shell>();
    let view = shell.tray.snapshot();
    let (status, model) = (view.status(), view.menu());
    let mut shown = shell.tray.shown.lock().unwrap_or_else(|p| p.into_inner());
    let (old_status, old_model) = match shown.as_ref() {
        Some((s, m)) => (Some(*s), Some(m)),
        None => (None, None),
    };
    if old_status != Some(status) {
        tray.set_icon(Some(icon(status)))?;
    }
    if old_model != Some(&model) {
        tray.set_tooltip(Some(&model.status_line))?;
        tray.set_menu(Some(build_menu(app, &model.entries())?))?;
    }
    *shown = Some((status, model));
    Ok(())
}

fn build_menu(app: &AppHandle, entries: &[Entry]) -> tauri::Result<Menu<Wry>> {
    let menu = Menu::new(app)?;
    for e in entries {
        menu.append(build_entry(app, e)?.as_ref())?;
    }
    Ok(menu)
}

fn build_entry(app: &AppHandle, e: &Entry) -> tauri::Result<Box<dyn IsMenuItem<Wry>>> {
    Ok(match e {
        Entry::Item { id, label, enabled } => Box::new(MenuItem::with_id(
            app,
            id.as_str(),
            label,
            *enabled,
            None::<&str>,
        )?),
        Entry::Check { id, label, checked } => Box::new(CheckMenuItem::with_id(
            app,
            id.as_str(),
            label,
            true,
            *checked,
            None::<&str>,
        )?),
        Entry::Submenu { id, label, items } => {
            let sub = Submenu::with_id(app, id.as_str(), label, true)?;
            for i in items {
                sub.append(build_entry(app, i)?.as_ref())?;
            }
            Box::new(sub)
        }
        Entry::Separator => Box::new(PredefinedMenuItem::separator(app)?),
    })
}

fn on_menu(app: &AppHandle, event: MenuEvent) {
    let Some(id) = MenuId::parse(event.id().as_ref()) else {
        tracing::warn!(id = event.id().as_ref(), "unknown tray menu id");
        return;
    };
    tracing::debug!(id = %id.as_str(), "tray menu");
    match id {
        MenuId::Event(n) => window::open(app, &format!("/events/{n}")),
        MenuId::Open => window::open(app, "/"),
        MenuId::Quit => app.exit(0),
        MenuId::Autostart => {
            let shell = app.state::<Shell>();
            let want = !shell.tray.update(|v| v.autostart);
            let now = autostart::set(&shell.args, want).unwrap_or_else(|e| {
                tracing::error!(error = %format!("{e:#}"), "cannot change start at login");
                !want
            });
            shell.tray.update(|v| v.autostart = now);
            // Rebuild even if unchanged: the check item flipped itself on click.
            *shell.tray.shown.lock().unwrap_or_else(|p| p.into_inner()) = None;
            refresh(app);
        }
        MenuId::PauseHour | MenuId::PauseTomorrow | MenuId::Resume => {
            if let Some(cmd) = PauseCommand::for_menu(id) {
                tauri::async_runtime::spawn(run_pause(app.clone(), cmd));
            }
        }
        MenuId::Status | MenuId::NoEvents | MenuId::PauseMenu => {}
    }
}

/// Keep the model current: new events from the bus and notification
/// settings changes (pushed), connection states and the notification
/// server's availability from health and status (polled). Ends when the
/// daemon shuts down.
pub(crate) async fn watch(app: AppHandle) {
    let api = app.state::<Shell>().api.clone();
    let mut rx = api.bus().subscribe();
    let mut settings = api.watch_notification_settings();
    let mut health = tokio::time::interval(HEALTH_EVERY);
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flush_at: Option<tokio::time::Instant> = None;
    loop {
        let flush = async {
            match flush_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = rx.recv() => {
                let changed = match msg {
                    Ok(DaemonEvent::Stored(ev)) => on_stored(&app, &EventSummary::from(&*ev)),
                    Ok(DaemonEvent::ShuttingDown) | Err(RecvError::Closed) => break,
                    // The tray follows notification settings through their
                    // own watch.
                    Ok(DaemonEvent::NotificationSettings(_)) => false,
                    Err(RecvError::Lagged(n)) => {
                        // Missed some: re-read the latest from the history.
                        tracing::debug!(missed = n, "tray lagged behind the bus");
                        let recent = latest(&api).await;
                        app.state::<Shell>().tray.update(|v| v.recent = recent);
                        true
                    }
                    // A link changed state: re-read them all now rather than
                    // at the next health tick.
                    Ok(DaemonEvent::Connection(_)) => {
                        let conns = connections(&api).await;
                        app.state::<Shell>().tray.update(|v| {
                            let changed = v.connections != conns;
                            v.connections = conns;
                            changed
                        })
                    }
                };
                if changed && flush_at.is_none() {
                    flush_at = Some(tokio::time::Instant::now() + COALESCE);
                }
            }
            // A pause or resume from anywhere (tray, UI, CLI).
            Ok(()) = settings.changed() => {
                if update_pause(&app, &api) {
                    refresh(&app);
                }
            }
            _ = health.tick() => {
                let conns = connections(&api).await;
                let changed = app.state::<Shell>().tray.update(|v| {
                    let changed = v.connections != conns;
                    v.connections = conns;
                    changed
                });
                if update_pause(&app, &api) || changed {
                    refresh(&app);
                }
            }
            _ = flush => {
                flush_at = None;
                refresh(&app);
            }
        }
    }
}

fn on_stored(app: &AppHandle, e: &EventSummary) -> bool {
    let critical_unseen = e.importance == Importance::Critical && !window::is_focused(app);
    app.state::<Shell>().tray.update(|v| {
        let mut changed = v.recent.insert(RecentEvent::from(e));
        if critical_unseen {
            v.unseen_critical += 1;
            changed = true;
        }
        changed
    })
}
