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
    let below = descendants(app.child.id());
    assert!(!below.is_empty(), "the window runs in a child process");

    // Quit with the window open ends the window process and WebKit's too.
    tray.click("Quit");
    let status = app.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "Quit exits 0; log: {}", app.log());
    wait_for("the window's processes to end", DEADLINE, || {
        (!below.iter().any(|(p, _)| alive(*p))).then_some(())
    });
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

/// `GET /api/notifications/status` of the app's daemon.
fn notification_status(app: &App) -> serde_json::Value {
    let (code, body) = http(
        &app.url,
        "GET",
        "/api/notifications/status",
        "",
        Some(TOKEN),
    );
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn paused_until(app: &App) -> Option<chrono::DateTime<chrono::Local>> {
    let st = notification_status(app);
    let t = st.get("paused_until")?.as_str()?;
    Some(
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .with_timezone(&chrono::Local),
    )
}

#[test]
fn pause_submenu_pauses_and_resumes_the_daemons_notifications() {
    let session = kitedesk_testkit::DesktopSession::builder()
        .display(true)
        .notifications(true)
        .start()
        .unwrap();
    let watcher = Watcher::start(&session);
    let app = App::start(&session, "app");
    let tray = TrayItem::find(&session, &watcher);
    let st = notification_status(&app);
    assert_eq!(
        st["backend"],
        "available",
        "dunst is on the bus: {st}; log: {}",
        app.log()
    );
    assert!(st.get("paused_until").is_none(), "{st}");
    let layout = tray.wait_layout("the active pause submenu", |l| {
        l.contains("'Pause notifications'")
    });
    assert!(item_id(&layout, "For 1 hour").is_some(), "{layout}");
    assert!(
        item_id(&layout, "Resume notifications").is_none(),
        "nothing to resume yet: {layout}"
    );

    // The daemon keeps milliseconds: a second's slack below.
    let before = chrono::Local::now() - chrono::Duration::seconds(1);
    tray.click("For 1 hour");
    let until = wait_for("the daemon to be paused", DEADLINE, || paused_until(&app));
    let after = chrono::Local::now();
    assert!(
        until >= before + chrono::Duration::minutes(60)
            && until <= after + chrono::Duration::minutes(60),
        "an hour from the click: {until}"
    );
    let label = format!("Notifications paused until {}", until.format("%H:%M"));
    let label = if until.date_naive() == after.date_naive() {
        label
    } else {
        format!(
            "Notifications paused until tomorrow {}",
            until.format("%H:%M")
        )
    };
    let layout = tray.wait_layout("the paused state", |l| l.contains(&label));
    assert!(
        item_id(&layout, "Resume notifications").is_some(),
        "paused: Resume is offered: {layout}"
    );

    tray.click("Resume notifications");
    wait_for("the daemon to resume", DEADLINE, || {
        paused_until(&app).is_none().then_some(())
    });
    tray.wait_layout("the active state again", |l| {
        l.contains("'Pause notifications'") && !l.contains("paused until")
    });

    // A pause made elsewhere (the UI, the CLI) shows in the tray too.
    let (code, body) = http(
        &app.url,
        "POST",
        "/api/notifications/pause",
        r#"{"until_tomorrow": true}"#,
        Some(TOKEN),
    );
    assert_eq!(code, 200, "{body}");
    let until = paused_until(&app).expect("paused through the API");
    tray.wait_layout("the pause made through the API", |l| {
        l.contains(&format!(
            "Notifications paused until tomorrow {}",
            until.format("%H:%M")
        ))
    });

    tray.click("Pause until tomorrow");
    let again = wait_for("the daemon's pause", DEADLINE, || paused_until(&app));
    assert_eq!(
        again, until,
        "until tomorrow is tomorrow morning either way"
    );
}

#[test]
fn pause_submenu_is_disabled_without_a_notification_server() {
    // No activation: the bus has the tray host stand-in and nothing else.
    let session = desktop_session(false);
    let watcher = Watcher::start(&session);
    let app = App::start(&session, "app");
    let tray = TrayItem::find(&session, &watcher);
    let st = notification_status(&app);
    assert_eq!(st["backend"], "unavailable", "{st}");
    let layout = tray.layout();
    let Some(id) = item_id(&layout, "Pause notifications (unavailable)") else {
        panic!("the submenu says it is unavailable: {layout}");
    };
    let item = layout
        .split("<(")
        .find(|i| i.starts_with(&format!("{id},")))
        .unwrap();
    assert!(item.contains("'enabled': <false>"), "disabled: {item}");
}
