//! Single instance, and running with nothing on the bus.

use crate::harness::*;

/// The app's WebKit helper processes (children named `WebKit…`).
fn webkit_children(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may hold spaces, so split at ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
        let ppid = rest.split_whitespace().nth(1).unwrap_or("");
        if ppid == pid.to_string() && comm.starts_with("WebKit") {
            out.push(comm.to_string());
        }
    }
    out
}

#[test]
fn second_launch_opens_the_first_window_and_exits_0() {
    let session = desktop_session(true);
    let mut first = App::start(&session, "first");
    assert!(
        windows_named(&session, "^Kite Desk$").is_empty(),
        "--hidden starts without a window"
    );
    let log = session.dir().join("second.log");
    let mut second = app_command(&session, &first.data_dir, &log)
        .spawn()
        .unwrap();
    let status = wait_for("the second launch to exit", DEADLINE, || {
        second.try_wait().unwrap()
    });
    assert_eq!(
        status.code(),
        Some(0),
        "a second launch exits 0: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        first.is_running(),
        "the first keeps running: {}",
        first.log()
    );
    let (code, _) = http(&first.url, "GET", "/api/health", "", Some(TOKEN));
    assert_eq!(code, 200, "the first instance's daemon still answers");
    // The first one was started --hidden, so it had no webview; the second
    // launch made it open its window.
    let windows = wait_for("the window to appear", DEADLINE, || {
        let w = windows_named(&session, "^Kite Desk$");
        (!w.is_empty()).then_some(w)
    });
    let pid = first.child.id();
    wait_for("a WebKit web process for the window", DEADLINE, || {
        webkit_children(pid)
            .iter()
            .any(|c| c.starts_with("WebKitWebProces"))
            .then_some(())
    });

    // Closing the window keeps the app (in the tray) and ends the web process.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/desktop/close_window.py"
    );
    let closed = session
        .command("/usr/bin/python3")
        .arg(script)
        .args(&windows)
        .status()
        .unwrap();
    assert!(closed.success());
    wait_for("the window to go", DEADLINE, || {
        windows_named(&session, "^Kite Desk$")
            .is_empty()
            .then_some(())
    });
    wait_for("the web process to end", DEADLINE, || {
        (!webkit_children(pid)
            .iter()
            .any(|c| c.starts_with("WebKitWebProces")))
        .then_some(())
    });
    assert!(
        first.is_running(),
        "closing the window keeps the app: {}",
        first.log()
    );
}

#[test]
fn without_tray_host_or_notification_server_the_app_keeps_running() {
    // A bus with no service activation: no tray host, no notification
    // server, no keychain.
    let session = desktop_session(false);
    let mut app = App::start(&session, "app");
    post_hook(&app.url, "demo", r#"{"message": "still here"}"#);
    let (code, body) = http(&app.url, "GET", "/api/events?limit=1", "", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("still here"), "{body}");
    assert!(app.is_running(), "the app keeps running: {}", app.log());
    // SIGTERM ends it like Quit: exit 0 and a clean daemon shutdown.
    let pid = app.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = app.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "log: {}", app.log());
    assert!(
        !app.data_dir.join("daemon.json").exists(),
        "log: {}",
        app.log()
    );
}
