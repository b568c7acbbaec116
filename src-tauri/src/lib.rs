//! `kitedesk-app`: Kite Desk in the tray. A thin shell: it starts the
//! daemon in-process (the same flags and API as `kitedesk serve`), shows a
//! tray icon and menu ([`tray`]), and the daemon's web UI in a window that
//! exists only while it is open, in a child process of its own ([`window`],
//! [`window_process`]). Everything it knows comes
//! from the daemon's [`Api`]; the models behind the tray and the autostart
//! entry live in the `kitedesk-desktop` crate.

mod autostart;
mod lean_env;
mod tray;
mod window;
mod window_process;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use kitedesk_daemon::notifier::NotifyBackend;
use kitedesk_daemon::{Api, Daemon};
use kitedesk_desktop::args::AppArgs;
use tauri::{Manager as _, RunEvent};

/// What the shell's handlers share (managed Tauri state).
#[derive(Debug)]
pub(crate) struct Shell {
    pub api: Api,
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    pub args: AppArgs,
    pub tray: tray::TrayModel,
    pub window: window::WindowProcess,
}

pub fn run() -> ExitCode {
    lean_env::reexec();
    let args = AppArgs::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KITEDESK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = if args.window {
        window_process::run()
    } else {
        run_app(args)
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_app(args: AppArgs) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Tauri's own tasks and ours share one runtime.
    tauri::async_runtime::set(runtime.handle().clone());
    let mut config = args.daemon_config()?;

    // Plugins initialise in `build()`: a second launch hands its arguments to
    // the first over D-Bus and exits 0 there, before it opens the history.
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            window::open(app, "/");
        }))
        .setup(|app| {
            tray::create(app.handle())?;
            Ok(())
        })
        .build(context())
        .context("cannot start the desktop shell")?;

    config.notify = notify_backend(app.handle());
    let daemon = runtime.block_on(Daemon::start(config))?;
    let base_url = daemon.url();
    println!("Kite Desk is running");
    println!("  UI:    {base_url}/");
    println!("  Hooks: {}/<source>", daemon.api.hook_base());
    println!("  Data:  {}", args.data_dir().display());
    let api = daemon.api.clone();
    let hidden = args.hidden;
    let tray_model = runtime.block_on(tray::TrayModel::load(&api));
    let window = window::WindowProcess::default();
    app.manage(Shell {
        api,
        base_url,
        args,
        tray: tray_model,
        window: window.clone(),
    });

    let handle = app.handle().clone();
    runtime.spawn(tray::watch(handle.clone()));
    runtime.spawn(exit_on_signal(handle));

    let code = app.run_return(move |app, event| match event {
        RunEvent::Ready if !hidden => window::open(app, "/"),
        // The last window closed: stay in the tray. Quit passes a code.
        RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        _ => {}
    });
    window.close(std::time::Duration::from_secs(5));
    runtime
        .block_on(daemon.shutdown())
        .context("the daemon did not shut down cleanly")?;
    tracing::info!(code, "Kite Desk stopped");
    Ok(code)
}

/// The app's configuration and assets (one copy, for both processes).
fn context() -> tauri::Context<tauri::Wry> {
    tauri::generate_context!("../tauri.conf.json")
}

/// Desktop notifications whose "Open" opens the event in the window. With
/// no session bus at all they are off, with the reason in the status (and
/// the tray's pause submenu disabled); a bus without a notification server
/// is found by the notifier's probe and reported the same way.
fn notify_backend(app: &tauri::AppHandle) -> NotifyBackend {
    use kitedesk_notify::{DesktopNotifier, OpenHandler};
    if !DesktopNotifier::session_bus_present(|k| std::env::var(k).ok()) {
        return NotifyBackend::Off("no D-Bus session bus".into());
    }
    let app = app.clone();
    let on_open: OpenHandler = std::sync::Arc::new(move |r| {
        let handle = app.clone();
        let path = format!("/events/{}", r.event_id);
        // Windows are made on the main thread; this runs on a runtime task.
        if let Err(e) = app.run_on_main_thread(move || window::open(&handle, &path)) {
            tracing::debug!(error = %e, "notification click ignored: the app is stopping");
        }
    });
    NotifyBackend::On(std::sync::Arc::new(DesktopNotifier::new(Some(on_open))))
}

/// SIGTERM / Ctrl-C end the app the way Quit does, so the daemon flushes.
async fn exit_on_signal(app: tauri::AppHandle) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("signal received, quitting");
    app.exit(0);
}
