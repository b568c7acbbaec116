//! Notifications end to end: `kitedesk serve` as a child inside a private
//! desktop session (D-Bus, Xvfb, dunst from kitedesk-testkit); the test
//! watches the `Notify` calls on the bus.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use kitedesk_testkit::{DesktopSession, Notification};
use serde_json::{Value, json};

/// A Stripe source (unsigned allowed: the secret variable is never set) for
/// a real critical payload, and a generic `acme` source whose events are
/// high, or critical when the sender is `crit`.
const MANIFEST: &str = r#"{
  "sources": [
    {"name": "stripe", "type": "stripe", "verify": {"secretEnv": "KITEDESK_E2E_UNSET_SECRET", "allowUnsigned": true}},
    {"name": "acme", "type": "generic", "verify": {"allowUnsigned": true}}
  ],
  "scoring": {"rules": [
    {"match": {"source": "acme", "actor": "crit"}, "importance": "critical", "reason": "e2e: critical"},
    {"match": {"source": "acme"}, "importance": "high", "reason": "e2e: high"}
  ]}
}"#;

const WAIT: Duration = Duration::from_secs(15);

struct Daemon {
    child: Child,
    url: String,
    token: String,
    http: reqwest::Client,
    log: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kitedesk serve` inside the session, on port 0, with its own data dir.
fn serve(session: &DesktopSession, data_dir: &Path) -> Daemon {
    let manifest = data_dir.join("kite.json");
    std::fs::create_dir_all(data_dir).unwrap();
    std::fs::write(&manifest, MANIFEST).unwrap();
    let log = data_dir.join("serve.log");
    let mut child = session
        .command(env!("CARGO_BIN_EXE_kitedesk"))
        .args(["serve", "--listen", "127.0.0.1:0", "--manifest"])
        .arg(&manifest)
        .env("KITEDESK_DATA_DIR", data_dir)
        .env("KITEDESK_LOG", "info,kitedesk_daemon=debug")
        .env_remove("KITEDESK_URL")
        .env_remove("KITEDESK_API_TOKEN")
        .env_remove("KITEDESK_NO_NOTIFY")
        .env_remove("KITEDESK_E2E_UNSET_SECRET")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut found = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("UI:") {
            let (u, t) = rest.trim().split_once("/?token=").unwrap();
            found = Some((u.to_string(), t.to_string()));
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let (url, token) = found.unwrap_or_else(|| {
        panic!(
            "serve printed no URL: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    Daemon {
        child,
        url,
        token,
        http: reqwest::Client::new(),
        log,
    }
}

impl Daemon {
    async fn hook(&self, source: &str, body: &[u8]) -> Value {
        let resp = self
            .http
            .post(format!("{}/hooks/{source}", self.url))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        resp.json().await.unwrap()
    }

    async fn acme(&self, sender: &str, message: &str) -> Value {
        let body = json!({"message": message, "sender": {"login": sender}}).to_string();
        self.hook("acme", body.as_bytes()).await
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/api{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    async fn edit_settings(&self, edit: impl FnOnce(&mut Value)) {
        let (_, mut s) = self
            .api(reqwest::Method::GET, "/settings/notifications", None)
            .await;
        edit(&mut s);
        let (status, v) = self
            .api(reqwest::Method::PUT, "/settings/notifications", Some(s))
            .await;
        assert_eq!(status, 200, "{v}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Wait on a blocking watch from async code.
async fn wait_for(
    watch: &std::sync::Arc<kitedesk_testkit::NotificationWatch>,
    pred: impl Fn(&Notification) -> bool + Send + 'static,
) -> Option<Notification> {
    let w = watch.clone();
    tokio::task::spawn_blocking(move || w.wait_for(pred, WAIT))
        .await
        .unwrap()
}

fn desktop() -> (
    DesktopSession,
    std::sync::Arc<kitedesk_testkit::NotificationWatch>,
) {
    let session = DesktopSession::builder()
        .display(true)
        .notifications(true)
        .start()
        .unwrap();
    let watch = std::sync::Arc::new(session.notifications().unwrap());
    (session, watch)
}

fn stripe_payment_failed() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../core/tests/fixtures/stripe/payment_intent.payment_failed.json"
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_critical_webhook_notifies_once_through_dunst() {
    let (session, watch) = desktop();
    let dir = tempfile::tempdir().unwrap();
    let d = serve(&session, dir.path());

    let body = stripe_payment_failed();
    let first = d.hook("stripe", &body).await;
    assert_eq!(first["status"], "accepted");
    assert_eq!(first["importance"], "critical", "{first}");
    let summary = first["summary"].as_str().unwrap().to_string();
    let s = summary.clone();
    let n = wait_for(&watch, move |n| n.summary == s)
        .await
        .unwrap_or_else(|| {
            panic!(
                "no Notify call with {summary:?}; seen {:#?}\n{}",
                watch.all(),
                d.log()
            )
        });
    assert_eq!(n.app_name, "Kite Desk");
    assert_eq!(n.urgency, Some(2), "critical importance → critical urgency");
    assert_eq!(
        n.actions,
        vec!["default", "Open"],
        "an Open action, as the default action"
    );
    assert!(
        n.body.contains("stripe") && n.body.contains("payment_intent.payment_failed"),
        "{}",
        n.body
    );

    // Clicking it (dunst's default action) asks the shell to open the
    // event; `kitedesk serve` logs the deep link.
    let id = first["id"].as_i64().unwrap();
    let status = session
        .command("dunstctl")
        .args(["action", "0"])
        .status()
        .unwrap();
    assert!(status.success());
    let want = format!("{}/events/{id}", d.url);
    let deadline = std::time::Instant::now() + WAIT;
    while !d.log().contains(&want) {
        assert!(
            std::time::Instant::now() < deadline,
            "no open request for {want} after the click:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The same delivery again: stored once, notified once.
    let again = d.hook("stripe", &body).await;
    assert_eq!(again["status"], "duplicate_ignored");
    let marker = d.acme("crit", "marker after the redelivery").await;
    let m = marker["summary"].as_str().unwrap().to_string();
    wait_for(&watch, move |n| n.summary == m)
        .await
        .expect("the marker notifies");
    let stripe_notices = watch.all().iter().filter(|n| n.summary == summary).count();
    assert_eq!(
        stripe_notices,
        1,
        "the redelivery did not notify again: {:#?}",
        watch.all()
    );

    // The counter moves once the server's reply is back, just after the
    // monitor saw the call.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, st) = d
            .api(reqwest::Method::GET, "/notifications/status", None)
            .await;
        assert_eq!(st["backend"], "available", "{st}");
        assert_eq!(st["kind"], "desktop");
        if st["sent_total"] == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{st}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_from_one_source_becomes_one_grouped_notification() {
    let (session, watch) = desktop();
    let dir = tempfile::tempdir().unwrap();
    let d = serve(&session, dir.path());
    // A 2-second window keeps the test short; the grouping rule is the same.
    d.edit_settings(|s| s["group"]["window_secs"] = 2.into())
        .await;
    for i in 0..12 {
        d.acme("deployer", &format!("deploy step {i} failed")).await;
    }
    let group = wait_for(&watch, |n| n.summary.contains("new events from"))
        .await
        .unwrap_or_else(|| panic!("no group notice: {:#?}\n{}", watch.all(), d.log()));
    assert_eq!(group.summary, "9 new events from acme");
    assert_eq!(group.urgency, Some(1), "high → normal urgency");
    let all = watch.all();
    let individual = all
        .iter()
        .filter(|n| n.summary.starts_with("acme: deploy step"))
        .count();
    assert_eq!(
        individual, 3,
        "max_individual shown on their own, the rest grouped: {all:#?}"
    );
    assert_eq!(all.len(), 4, "4 notifications instead of 12: {all:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_hours_hold_back_high_but_not_critical() {
    let (session, watch) = desktop();
    let dir = tempfile::tempdir().unwrap();
    let d = serve(&session, dir.path());
    // Quiet hours around the current local time (the daemon runs in the
    // same time zone as this test).
    let now = chrono::Local::now();
    let hhmm = |t: chrono::DateTime<chrono::Local>| t.format("%H:%M").to_string();
    let (start, end) = (
        hhmm(now - chrono::Duration::hours(1)),
        hhmm(now + chrono::Duration::hours(1)),
    );
    d.edit_settings(|s| {
        s["quiet_hours"] =
            json!({"enabled": true, "start": start, "end": end, "critical_breaks_through": true});
    })
    .await;
    let high = d.acme("someone", "high during quiet hours").await;
    assert_eq!(high["importance"], "high");
    let crit = d.acme("crit", "critical during quiet hours").await;
    let c = crit["summary"].as_str().unwrap().to_string();
    wait_for(&watch, move |n| n.summary == c)
        .await
        .unwrap_or_else(|| panic!("critical breaks through: {:#?}\n{}", watch.all(), d.log()));
    let all = watch.all();
    assert_eq!(all.len(), 1, "only the critical one: {all:#?}");
    let (_, st) = d
        .api(reqwest::Method::GET, "/notifications/status", None)
        .await;
    assert!(st["suppressed_total"].as_u64().unwrap() >= 1, "{st}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_notification_server_the_daemon_keeps_running_and_says_why() {
    let session = DesktopSession::builder().activation(false).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut d = serve(&session, dir.path());
    let (status, st) = d
        .api(reqwest::Method::GET, "/notifications/status", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(st["backend"], "unavailable", "{st}");
    let error = st["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("org.freedesktop.Notifications") || error.contains("ServiceUnknown"),
        "{st}"
    );

    for i in 0..3 {
        let v = d
            .acme("crit", &format!("critical {i} with nobody to show it"))
            .await;
        assert_eq!(v["status"], "accepted");
    }
    let (_, events) = d.api(reqwest::Method::GET, "/events", None).await;
    assert_eq!(
        events["events"].as_array().unwrap().len(),
        3,
        "events are still stored"
    );
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "the daemon is still running"
    );
    let log = d.log();
    assert_eq!(
        log.matches("desktop notifications are unavailable").count(),
        1,
        "logged once, not per event: {log}"
    );
}
