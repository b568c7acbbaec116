//! The window: the daemon's web UI in a webview. It exists only while it
//! is open: closing it destroys the window and its webview (Tauri's default
//! close), so an idle tray app holds no WebKit processes; opening it again
//! builds a new one.

use tauri::{AppHandle, Manager as _, WebviewUrl, WebviewWindowBuilder};

use crate::Shell;

const LABEL: &str = "main";

/// Show the UI at `path` (e.g. `/` or `/events/42`): focus the window if it
/// is open, else create it. Errors are logged: a click that fails must not
/// take the tray down.
pub(crate) fn open(app: &AppHandle, path: &str) {
    if let Err(e) = try_open(app, path) {
        tracing::error!(error = %e, path, "cannot open the window");
    }
}

fn try_open(app: &AppHandle, path: &str) -> anyhow::Result<()> {
    // A second launch can knock while this one is still starting.
    let Some(shell) = app.try_state::<Shell>() else {
        anyhow::bail!("the app is still starting");
    };
    // The UI trades `?token=` for an HttpOnly cookie and redirects to the
    // same path without it, so the token never stays in the address.
    let mut url = tauri::Url::parse(&shell.base_url)?.join(path)?;
    url.query_pairs_mut()
        .append_pair("token", shell.api.token());
    shell.tray.mark_seen(app);
    if let Some(w) = app.get_webview_window(LABEL) {
        if path != "/" {
            w.navigate(url)?;
        }
        w.unminimize()?;
        w.show()?;
        w.set_focus()?;
        return Ok(());
    }
    let window = WebviewWindowBuilder::new(app, LABEL, WebviewUrl::External(url))
        .title("Kite Desk")
        .inner_size(1100.0, 760.0)
        .min_inner_size(480.0, 360.0)
        .build()?;
    #[cfg(target_os = "linux")]
    window.with_webview(|w| lean_webkit(&w.inner()))?;
    Ok(())
}

/// A list-and-detail UI needs neither GPU compositing nor WebKit's page
/// caches, and both cost memory all day: with accelerated compositing the
/// web process measured ~170 MB PSS idle, without it ~90 MB (release build,
/// bench/desktop-memory.sh). The policy can change while a page loads;
/// WebKit switches modes.
#[cfg(target_os = "linux")]
fn lean_webkit(view: &webkit2gtk::WebView) {
    use webkit2gtk::{
        CacheModel, HardwareAccelerationPolicy, SettingsExt as _, WebContextExt as _, WebViewExt,
    };
    if let Some(settings) = WebViewExt::settings(view) {
        settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
    }
    if let Some(context) = view.context() {
        context.set_cache_model(CacheModel::DocumentViewer);
    }
}

/// Whether the user is looking at the window right now.
pub(crate) fn is_focused(app: &AppHandle) -> bool {
    app.get_webview_window(LABEL)
        .and_then(|w| w.is_focused().ok())
        .unwrap_or(false)
}
