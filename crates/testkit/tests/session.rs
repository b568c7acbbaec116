//! The session services really start, and the watches see what happens.

use std::time::Duration;

use kitedesk_testkit::DesktopSession;

#[test]
fn notifications_are_observed_through_dunst() {
    let session = DesktopSession::builder()
        .notifications(true)
        .start()
        .unwrap();
    assert!(session.display().is_some());
    let watch = session.notifications().unwrap();
    let status = session
        .command("notify-send")
        .args(["-u", "critical", "-a", "testkit", "Disk full", "on /var"])
        .status()
        .unwrap();
    assert!(status.success());
    let n = watch
        .wait_for(|n| n.summary == "Disk full", Duration::from_secs(10))
        .unwrap();
    assert_eq!(n.app_name, "testkit");
    assert_eq!(n.body, "on /var");
    assert_eq!(n.urgency, Some(2));
}

#[test]
fn keyring_is_unlocked_and_private() {
    let session = DesktopSession::builder().keyring(true).start().unwrap();
    let mut store = session
        .command("secret-tool")
        .args([
            "store",
            "--label=kd",
            "service",
            "kitedesk-testkit",
            "username",
            "a",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        store.stdin.take().unwrap().write_all(b"s3cret").unwrap();
    }
    assert!(store.wait().unwrap().success());
    assert_eq!(
        session
            .secret_lookup(&[("service", "kitedesk-testkit"), ("username", "a")])
            .as_deref(),
        Some("s3cret")
    );
    // Another session does not see it.
    let other = DesktopSession::builder().keyring(true).start().unwrap();
    assert_eq!(
        other.secret_lookup(&[("service", "kitedesk-testkit"), ("username", "a")]),
        None
    );
}

#[test]
fn without_activation_nothing_answers() {
    let session = DesktopSession::builder().activation(false).start().unwrap();
    assert!(
        !session
            .name_has_owner("org.freedesktop.Notifications")
            .unwrap()
    );
    assert!(!session.name_has_owner("org.freedesktop.secrets").unwrap());
    // A Notify call fails instead of starting a server.
    let out = session
        .command("notify-send")
        .arg("nobody listens")
        .output()
        .unwrap();
    assert!(!out.status.success());
}
