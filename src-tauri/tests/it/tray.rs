//! The tray registers with the host, its menu lists the latest events,
//! critical events show, and Quit ends the app with code 0.

use std::time::Duration;

use crate::harness::*;

fn deploy(n: u32) -> String {
    format!(r#"{{"type": "deploy.finished", "message": "Deploy {n} finished"}}"#)
}

#[test]
fn menu_lists_the_latest_events_and_quit_exits_0() {
    let session = desktop_session(true);
    let watcher = Watcher::start(&session);
    let mut app = App::start(&session, "app");
    let tray = TrayItem::find(&session, &watcher);

    let layout = tray.layout();
    assert!(
        layout.contains("'No events yet'"),
        "fresh history: {layout}"
    );
    assert!(
        item_id(&layout, "Quit").is_some(),
        "Quit is in the menu: {layout}"
    );
    assert!(item_id(&layout, "Open Kite Desk").is_some(), "{layout}");
    assert!(item_id(&layout, "Start at login").is_some(), "{layout}");

    for n in 1..=7 {
        post_hook(&app.url, "demo", &deploy(n));
    }
    let layout = tray.wait_layout("the 7th event", |l| l.contains("Deploy 7 finished"));
    for n in 3..=7 {
        assert!(
            layout.contains(&format!("Deploy {n} finished")),
            "event {n} is among the latest five: {layout}"
        );
    }
    assert!(
        !layout.contains("Deploy 2 finished"),
        "only the latest five are listed: {layout}"
    );
    assert!(!layout.contains("No events yet"), "{layout}");
    // Newest first.
    let pos = |n: u32| layout.find(&format!("Deploy {n} finished")).unwrap();
    assert!(pos(7) < pos(3), "newest first: {layout}");

    // Clicking an event opens the window (the app was started --hidden).
    assert!(
        windows_named(&session, "^Kite Desk$").is_empty(),
        "no window yet"
    );
    tray.click("demo: Deploy 7 finished");
    wait_for("the window", DEADLINE, || {
        (!windows_named(&session, "^Kite Desk$").is_empty()).then_some(())
    });

    tray.click("Quit");
    let status = app.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "Quit exits 0; log: {}", app.log());
    assert!(
        !app.data_dir.join("daemon.json").exists(),
        "a clean daemon shutdown removes daemon.json; log: {}",
        app.log()
    );
}

#[test]
fn critical_event_changes_the_icon_and_status_line() {
    let session = desktop_session(true);
    let watcher = Watcher::start(&session);
    let app = App::start(&session, "app");
    let tray = TrayItem::find(&session, &watcher);
    let layout = tray.layout();
    assert!(layout.contains("'Kite Desk: connected'"), "{layout}");
    let icon_before = tray.property("IconName");

    let failed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/daemon/samples/stripe-payment_intent.payment_failed.json"
    ))
    .unwrap();
    post_hook(&app.url, "stripe", &failed);
    let layout = tray.wait_layout("the unseen critical event", |l| {
        l.contains("1 unseen critical event")
    });
    assert!(
        layout.contains("[critical]"),
        "the event is marked critical: {layout}"
    );
    let icon_after = wait_for("the icon to change", Duration::from_secs(10), || {
        let now = tray.property("IconName");
        (now != icon_before).then_some(now)
    });
    assert_ne!(icon_after, icon_before);
}

#[test]
fn start_at_login_writes_and_removes_the_autostart_entry() {
    let session = desktop_session(true);
    let watcher = Watcher::start(&session);
    let app = App::start(&session, "app");
    let tray = TrayItem::find(&session, &watcher);
    let entry = session.dir().join("config/autostart/kitedesk.desktop");
    assert!(!entry.exists());

    tray.click("Start at login");
    let text = wait_for("the autostart entry", DEADLINE, || {
        std::fs::read_to_string(&entry).ok()
    });
    assert!(
        text.contains(env!("CARGO_BIN_EXE_kitedesk-app")),
        "Exec runs this binary: {text}"
    );
    assert!(text.contains("--hidden"), "starts in the tray: {text}");
    assert!(
        text.contains(&app.data_dir.display().to_string()),
        "same data dir: {text}"
    );
    // The menu shows it checked ('toggle-state': <1>) after the rebuild.
    tray.wait_layout("the checked state", |l| {
        l.split("<(")
            .any(|item| item.contains("'Start at login'") && item.contains("'toggle-state': <1>"))
    });

    tray.click("Start at login");
    wait_for("the entry to go", DEADLINE, || {
        (!entry.exists()).then_some(())
    });
}
