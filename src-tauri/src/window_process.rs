//! The window process (`kitedesk-app --window`): the daemon's web UI in a
//! webview, and nothing else (no daemon, no tray, no single-instance
//! check). The tray process starts it ([`crate::window`]) and tells it
//! where to go over stdin ([`ToWindow`]); it reports focus changes on
//! stdout ([`FromWindow`]). It exits when its window closes, and when its
//! stdin closes (the tray process quit or died); WebKit's processes end
//! with it.

use std::io::{BufRead, BufReader, Write as _};

use anyhow::Context as _;
use kitedesk_desktop::window_link::{FromWindow, ToWindow};
use tauri::{AppHandle, Manager as _, RunEvent, WebviewUrl, WebviewWindowBuilder, WindowEvent};

const LABEL: &str = "main";

pub(crate) fn run() -> anyhow::Result<i32> {
    let mut input = BufReader::new(std::io::stdin());
    let mut first = String::new();
    input
        .read_line(&mut first)
        .context("cannot read where the window goes")?;
    let Some(ToWindow::Open(url)) = ToWindow::parse(&first) else {
        anyhow::bail!("the window process expects `open <url>` on stdin first");
    };
    let url = tauri::Url::parse(&url).context("bad window URL")?;
    let app = tauri::Builder::default()
        .build(crate::context())
        .context("cannot start the window")?;
    let handle = app.handle().clone();
    std::thread::Builder::new()
        .name("window-link".into())
        .spawn(move || follow(&handle, input))
        .context("cannot start the window link thread")?;
    let mut url = Some(url);
    // The last window closing ends the loop (Tauri's default).
    Ok(app.run_return(move |app, event| {
        if let RunEvent::Ready = event
            && let Some(url) = url.take()
            && let Err(e) = create(app, url)
        {
            tracing::error!(error = %format!("{e:#}"), "cannot open the window");
            app.exit(1);
        }
    }))
}

/// Carry out the tray process's requests until it closes our stdin.
fn follow(app: &AppHandle, input: impl BufRead) {
    for line in input.lines() {
        let Ok(line) = line else { break };
        let Some(msg) = ToWindow::parse(&line) else {
            tracing::warn!("unknown request from the tray process");
            continue;
        };
        let handle = app.clone();
        let run = app.run_on_main_thread(move || {
            if let Err(e) = show(&handle, &msg) {
                tracing::error!(error = %format!("{e:#}"), "cannot show the window");
            }
        });
        if run.is_err() {
            return;
        }
    }
    tracing::debug!("the tray process closed the link; closing the window");
    app.exit(0);
}

fn show(app: &AppHandle, msg: &ToWindow) -> anyhow::Result<()> {
    let Some(w) = app.get_webview_window(LABEL) else {
        return Ok(());
    };
    if let ToWindow::Open(url) = msg {
        w.navigate(tauri::Url::parse(url)?)?;
    }
    w.unminimize()?;
    w.show()?;
    w.set_focus()?;
    Ok(())
}

fn create(app: &AppHandle, url: tauri::Url) -> anyhow::Result<()> {
    let window = WebviewWindowBuilder::new(app, LABEL, WebviewUrl::External(url))
        .title("Kite Desk")
        .inner_size(1100.0, 760.0)
        .min_inner_size(480.0, 360.0)
        // An ephemeral website data store: the UI keeps nothing in the
        // browser (no cookies, storage or cache it needs again; the token
        // comes with the URL). WebKit's network process then measured
        // ~0.7 MB PSS less (bench/RESULTS.md, "Session 6"); it would be
        // ~2 MB, but Tauri still creates the persistent context for its
        // data directory, unused.
        .incognito(true)
        .build()?;
    window.on_window_event(|e| {
        if let WindowEvent::Focused(f) = e {
            // A tray process that is gone closes stdin too; ignore errors.
            let _ = writeln!(std::io::stdout().lock(), "{}", FromWindow::Focused(*f));
        }
    });
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
