//! Single instance, and running with nothing on the bus.

use crate::harness::*;

/// The window process: the app's direct child running `--window`.
fn window_process(pid: u32) -> Option<u32> {
    descendants(pid).into_iter().find_map(|(p, _)| {
        let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
        let parent = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        let ppid = parent
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .to_string();
        (ppid == pid.to_string() && cmdline.split(|b| *b == 0).any(|a| a == b"--window"))
            .then_some(p)
    })
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
    // The webview lives in a window process of its own, with WebKit's
    // processes below it: the tray process has no WebKit child.
    let window_pid = wait_for("the window process", DEADLINE, || window_process(pid));
    wait_for("a WebKit web process for the window", DEADLINE, || {
        descendants(window_pid)
            .iter()
            .any(|(_, c)| c.starts_with("WebKitWebProces"))
            .then_some(())
    });
    assert!(
        !descendants(pid).iter().any(|(p, c)| c.starts_with("WebKit")
            && !descendants(window_pid).iter().any(|(q, _)| q == p)),
        "every WebKit process is below the window process: {:?}",
        descendants(pid)
    );
    // The window process opens no GL display: WebKit's renderer probes would
    // load Mesa's driver (with llvmpipe also libLLVM, ~28 MB PSS) for a view
    // that never composites on the GPU (src-tauri/src/lean_env.rs). By now
    // they would have run: they come before the web process starts.
    let maps = std::fs::read_to_string(format!("/proc/{window_pid}/maps")).unwrap();
    assert!(
        !maps.lines().any(|l| l.ends_with("_dri.so")),
        "the window process loaded a GL driver"
    );

    // A third launch while the window is open focuses it: no second window
    // and no second window process.
    let log = session.dir().join("third.log");
    let mut third = app_command(&session, &first.data_dir, &log)
        .spawn()
        .unwrap();
    let status = wait_for("the third launch to exit", DEADLINE, || {
        third.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0));
    assert_eq!(windows_named(&session, "^Kite Desk$"), windows);
    assert_eq!(window_process(pid), Some(window_pid), "{}", first.log());

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
    // The window process ends, and with it every WebKit process, the
    // network process included: the tray process is alone again.
    wait_for("the window process and WebKit's to end", DEADLINE, || {
        descendants(pid).is_empty().then_some(())
    });
    assert!(!alive(window_pid));
    // The webview's website data is ephemeral (window_process.rs): no
    // cookie jar on disk, which a persistent store writes as the window
    // opens. (Tauri still sets up a persistent context for its data
    // directory, unused, so WebKit's empty HSTS and cache stores are there.)
    let jar = session
        .dir()
        .join("data")
        .join("dev.kitedesk.app")
        .join("cookies");
    assert!(
        !jar.exists(),
        "the webview kept a cookie jar: {}",
        jar.display()
    );
    assert!(
        first.is_running(),
        "closing the window keeps the app: {}",
        first.log()
    );

    // Opening it again starts a new window process.
    let log = session.dir().join("fourth.log");
    let status = app_command(&session, &first.data_dir, &log)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let again = wait_for("a new window process", DEADLINE, || window_process(pid));
    assert_ne!(again, window_pid);
    wait_for("the window again", DEADLINE, || {
        (!windows_named(&session, "^Kite Desk$").is_empty()).then_some(())
    });
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
