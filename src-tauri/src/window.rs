//! The window, seen from the tray process. The webview lives in a child
//! process, `kitedesk-app --window` ([`crate::window_process`]), started
//! when the user opens the window and ending when they close it: WebKit's
//! web and network processes are its children and end with it, so an idle
//! tray process holds none of WebKit's memory (on Linux, WebKit keeps its
//! network process for the life of the process that made a webview, and
//! GTK/Mesa state stays mapped). The two talk over the child's stdin and
//! stdout ([`kitedesk_desktop::window_link`]).

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use kitedesk_desktop::window_link::{FromWindow, ToWindow};
use tauri::{AppHandle, Manager as _};

use crate::Shell;

/// Show the UI at `path` (e.g. `/` or `/events/42`): focus the window if it
/// is open, else start the window process. Errors are logged: a click that
/// fails must not take the tray down.
pub(crate) fn open(app: &AppHandle, path: &str) {
    if let Err(e) = try_open(app, path) {
        tracing::error!(error = %format!("{e:#}"), path, "cannot open the window");
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
    // An open window stays where it is when only asked to show itself.
    let msg = if path == "/" {
        ToWindow::Show
    } else {
        ToWindow::Open(url.to_string())
    };
    shell.window.open(url.as_str(), &msg)
}

/// Whether the user is looking at the window right now.
pub(crate) fn is_focused(app: &AppHandle) -> bool {
    app.try_state::<Shell>()
        .is_some_and(|s| s.window.focused.load(Ordering::Relaxed))
}

/// The window process, while there is one.
#[derive(Debug, Clone, Default)]
pub(crate) struct WindowProcess {
    running: Arc<Mutex<Option<Running>>>,
    focused: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Running {
    pid: u32,
    stdin: ChildStdin,
    /// Reads the child's stdout; ends (after reaping it) when it exits.
    reader: std::thread::JoinHandle<()>,
}

fn lock(m: &Mutex<Option<Running>>) -> MutexGuard<'_, Option<Running>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl WindowProcess {
    fn open(&self, url: &str, msg: &ToWindow) -> anyhow::Result<()> {
        let mut slot = lock(&self.running);
        if let Some(r) = slot.as_mut() {
            match writeln!(r.stdin, "{msg}") {
                Ok(()) => return Ok(()),
                // It is ending (its window just closed): start a new one.
                Err(e) => tracing::debug!(error = %e, pid = r.pid, "the window process is gone"),
            }
        }
        *slot = Some(self.spawn(url)?);
        Ok(())
    }

    fn spawn(&self, url: &str) -> anyhow::Result<Running> {
        let exe = std::env::current_exe().context("cannot find the app's own binary")?;
        let mut cmd = Command::new(exe);
        crate::lean_env::window_env(&mut cmd);
        let mut child = cmd
            .arg("--window")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the window process")?;
        let pid = child.id();
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            anyhow::bail!("the window process has no pipes");
        };
        // Where to go: over the pipe, as the URL holds the API token.
        writeln!(stdin, "{}", ToWindow::Open(url.to_string()))
            .context("cannot talk to the window process")?;
        let running = self.running.clone();
        let focused = self.focused.clone();
        let reader = std::thread::Builder::new()
            .name("window-link".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    match FromWindow::parse(&line) {
                        Some(FromWindow::Focused(f)) => focused.store(f, Ordering::Relaxed),
                        None => tracing::debug!(line, "unknown line from the window process"),
                    }
                }
                focused.store(false, Ordering::Relaxed);
                match child.wait() {
                    Ok(status) => tracing::info!(pid, %status, "the window process ended"),
                    Err(e) => tracing::warn!(pid, error = %e, "cannot reap the window process"),
                }
                let mut slot = lock(&running);
                if slot.as_ref().is_some_and(|r| r.pid == pid) {
                    *slot = None;
                }
            })
            .context("cannot start the window link thread")?;
        tracing::info!(pid, "window process started");
        Ok(Running { pid, stdin, reader })
    }

    /// The app is quitting: close the window process's stdin (it exits on
    /// that) and wait for it a little, so it does not outlive the daemon.
    pub(crate) fn close(&self, within: Duration) {
        let Some(r) = lock(&self.running).take() else {
            return;
        };
        drop(r.stdin);
        let end = Instant::now() + within;
        while !r.reader.is_finished() {
            if Instant::now() >= end {
                tracing::warn!(pid = r.pid, "the window process did not end in time");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
