//! The notifier component with the in-memory backend: settings API,
//! pause/resume, status, dedup, grouping, the watermark across a restart,
//! catch-up from the history, and a missing notification server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use kitedesk_daemon::notifier::NotifyBackend;
use kitedesk_daemon::{Api, Daemon};
use kitedesk_notify::{MemoryNotifier, Notice};
use serde_json::{Value, json};

use crate::harness::{GH_SECRET, HOST, Harness, config, default_env, github_headers, github_push};

/// github pushes score high; a generic `myapp` event whose sender is
/// `crit` scores critical, any other `myapp` event normal.
const MANIFEST: &str = r#"{
  "sources": [
    {"name": "github", "type": "github", "verify": {"secretEnv": "GH_NEW"}},
    {"name": "myapp", "type": "generic", "verify": {"allowUnsigned": true}}
  ],
  "scoring": {"rules": [
    {"match": {"source": "github"}, "importance": "high", "reason": "test: pushes matter"},
    {"match": {"source": "myapp", "actor": "crit"}, "importance": "critical", "reason": "test: critical"}
  ]}
}"#;

async fn start(dir: &std::path::Path, memory: &MemoryNotifier) -> Harness2 {
    let mut cfg = config(dir, MANIFEST, &default_env());
    cfg.notify = NotifyBackend::On(Arc::new(memory.clone()));
    let addr: SocketAddr = HOST.parse().unwrap();
    let (api, app) = Daemon::app(cfg, addr).await.unwrap();
    Harness2 { api, app }
}

struct Harness2 {
    api: Api,
    app: axum::Router,
}

impl Harness2 {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let h = Harness {
            _dir: tempfile::tempdir().unwrap(),
            api: self.api.clone(),
            app: self.app.clone(),
        };
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", HOST)
            .header("authorization", format!("Bearer {}", self.api.token()))
            .header("content-type", "application/json")
            .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
            .unwrap();
        h.send(req).await
    }

    async fn push(&self, delivery: &str) -> (StatusCode, Value) {
        let body = github_push();
        let headers = github_headers(&body, delivery, GH_SECRET);
        let h = Harness {
            _dir: tempfile::tempdir().unwrap(),
            api: self.api.clone(),
            app: self.app.clone(),
        };
        h.post_hook("github", &headers, &body).await
    }

    async fn myapp(&self, sender: &str, message: &str) -> i64 {
        let body = json!({"message": message, "sender": {"login": sender}}).to_string();
        let h = Harness {
            _dir: tempfile::tempdir().unwrap(),
            api: self.api.clone(),
            app: self.app.clone(),
        };
        let (status, v) = h
            .post_hook(
                "myapp",
                &[("content-type", "application/json".into())],
                body.as_bytes(),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        v["id"].as_i64().unwrap()
    }
}

/// Poll until `n` notices were shown (the notifier runs on its own task).
fn wait_shown(m: &MemoryNotifier, n: usize) -> Vec<Notice> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = m.shown();
        if shown.len() >= n {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} notices, got {shown:#?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

async fn wait_shown_async(m: &MemoryNotifier, n: usize) -> Vec<Notice> {
    let m = m.clone();
    tokio::task::spawn_blocking(move || wait_shown(&m, n))
        .await
        .unwrap()
}

#[tokio::test]
async fn settings_get_put_validate_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let m = MemoryNotifier::new(None);
    let d = start(dir.path(), &m).await;
    let (s, v) = d.call("GET", "/api/settings/notifications", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["threshold"], "high");
    assert_eq!(v["group"], json!({"window_secs": 10, "max_individual": 3}));

    let mut new = v.clone();
    new["threshold"] = "critical".into();
    new["muted_sources"] = json!(["acme/api"]);
    new["muted_types"] = json!(["com.github.check_run.*"]);
    new["quiet_hours"] = json!({"enabled": true, "start": "21:30", "end": "06:00", "critical_breaks_through": false});
    let (s, put) = d
        .call("PUT", "/api/settings/notifications", Some(new.clone()))
        .await;
    assert_eq!(s, StatusCode::OK, "{put}");
    assert_eq!(put, new);

    for (edit, field) in [
        (json!({"threshold": "loud"}), "threshold"),
        (
            json!({"quiet_hours": {"enabled": true, "start": "9:00", "end": "06:00", "critical_breaks_through": true}}),
            "quiet_hours.start",
        ),
        (json!({"muted_types": ["com.[oops"]}), "muted_types[0]"),
        (json!({"rate_limit_per_minute": 0}), "rate_limit_per_minute"),
    ] {
        let mut bad = new.clone();
        for (k, v) in edit.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let (s, e) = d
            .call("PUT", "/api/settings/notifications", Some(bad))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert_eq!(e["code"], "invalid_settings");
        assert!(
            e["message"].as_str().unwrap().starts_with(field),
            "the message names {field}: {e}"
        );
    }
    let (_, after) = d.call("GET", "/api/settings/notifications", None).await;
    assert_eq!(after, new, "a refused PUT changes nothing");

    // A new daemon on the same data dir reads them back.
    drop(d);
    let again = start(dir.path(), &MemoryNotifier::new(None)).await;
    let (_, v) = again.call("GET", "/api/settings/notifications", None).await;
    assert_eq!(v, new, "settings are persisted in the history database");
}

#[tokio::test]
async fn pause_resume_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let m = MemoryNotifier::new(None);
    let d = start(dir.path(), &m).await;
    let (_, st) = d.call("GET", "/api/notifications/status", None).await;
    assert_eq!(st["backend"], "available", "{st}");
    assert_eq!(st["kind"], "memory");
    assert!(st.get("paused_until").is_none());
    let mut watch = d.api.watch_notification_settings();
    assert!(watch.borrow_and_update().paused_until.is_none());

    let (s, st) = d
        .call(
            "POST",
            "/api/notifications/pause",
            Some(json!({"minutes": 5})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{st}");
    assert!(
        watch.has_changed().unwrap(),
        "a pause through HTTP reaches the settings watchers (the tray follows them)"
    );
    assert_eq!(
        watch
            .borrow_and_update()
            .paused_until
            .map(kitedesk_core::event::format_time)
            .as_deref(),
        st["paused_until"].as_str()
    );
    let until: chrono::DateTime<chrono::Utc> =
        st["paused_until"].as_str().unwrap().parse().unwrap();
    let ahead = until - chrono::Utc::now();
    assert!(
        ahead > chrono::Duration::minutes(4) && ahead <= chrono::Duration::minutes(5),
        "{ahead}"
    );
    let (_, settings) = d.call("GET", "/api/settings/notifications", None).await;
    assert!(
        settings["paused_until"].as_str().is_some(),
        "the pause is a setting: {settings}"
    );

    // Paused: a critical event does not notify.
    d.myapp("crit", "database down").await;
    let (s, st) = d.call("POST", "/api/notifications/resume", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(st.get("paused_until").is_none(), "{st}");
    assert!(
        watch.has_changed().unwrap(),
        "resume reaches the watchers too"
    );
    assert!(watch.borrow_and_update().paused_until.is_none());
    let marker = d.myapp("crit", "marker after resume").await;
    let shown = wait_shown_async(&m, 1).await;
    assert_eq!(
        shown.len(),
        1,
        "only the marker: the paused event stayed quiet: {shown:#?}"
    );
    assert_eq!(shown[0].event_id, marker);
    let (_, st) = d.call("GET", "/api/notifications/status", None).await;
    assert_eq!(st["sent_total"], 1, "{st}");
    assert!(st["suppressed_total"].as_u64().unwrap() >= 1, "{st}");
    assert_eq!(st["last"]["outcome"], "notified");

    for bad in [
        json!({"minutes": 0}),
        json!({"minutes": 5, "until_tomorrow": true}),
        json!({"hours": 1}),
    ] {
        let (s, e) = d
            .call("POST", "/api/notifications/pause", Some(bad.clone()))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad} → {e}");
        assert_eq!(e["code"], "invalid_pause");
    }
    let (s, st) = d
        .call(
            "POST",
            "/api/notifications/pause",
            Some(json!({"until_tomorrow": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let until: chrono::DateTime<chrono::Utc> =
        st["paused_until"].as_str().unwrap().parse().unwrap();
    assert!(until - chrono::Utc::now() <= chrono::Duration::days(2) && until > chrono::Utc::now());
}

#[tokio::test]
async fn notifies_once_per_event_with_a_deep_link_and_groups_bursts() {
    let dir = tempfile::tempdir().unwrap();
    let opened = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = opened.clone();
    let m = MemoryNotifier::new(Some(Arc::new(move |r| sink.lock().unwrap().push(r))));
    let d = start(dir.path(), &m).await;

    let (s, v) = d.push("delivery-1").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_i64().unwrap();
    let (_, again) = d.push("delivery-1").await;
    assert_eq!(again["status"], "duplicate_ignored");
    let marker = d.myapp("crit", "marker").await;
    let shown = wait_shown_async(&m, 2).await;
    assert_eq!(
        shown.len(),
        2,
        "one for the push, one for the marker, none for the redelivery: {shown:#?}"
    );
    assert_eq!(shown[0].event_id, id);
    assert_eq!(
        shown[0].open_url.as_deref(),
        Some(format!("http://{HOST}/events/{id}").as_str())
    );
    assert_eq!(shown[1].event_id, marker);
    assert!(m.click(0));
    assert_eq!(
        opened.lock().unwrap()[0].url,
        format!("http://{HOST}/events/{id}")
    );

    // A short window so the test does not wait 10 s for the flush.
    let (_, mut settings) = d.call("GET", "/api/settings/notifications", None).await;
    settings["group"] = json!({"window_secs": 1, "max_individual": 3});
    settings["rate_limit_per_minute"] = 100.into();
    let (s, _) = d
        .call("PUT", "/api/settings/notifications", Some(settings))
        .await;
    assert_eq!(s, StatusCode::OK);
    for i in 0..12 {
        d.push(&format!("burst-{i}")).await;
    }
    // Wait for the group notice (flushed a window after the burst).
    let deadline = Instant::now() + Duration::from_secs(10);
    let shown = loop {
        let shown = m.shown();
        if shown.iter().any(|n| n.count > 1) {
            break shown;
        }
        assert!(Instant::now() < deadline, "no group notice: {shown:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let burst: Vec<_> = shown.iter().filter(|n| n.event_id > marker).collect();
    let individual = burst.iter().filter(|n| n.count == 1).count();
    let groups: Vec<_> = burst.iter().filter(|n| n.count > 1).collect();
    assert_eq!(groups.len(), 1, "{burst:#?}");
    // The earlier push from the same repository may still be in the window,
    // so 2 or 3 of the burst are shown on their own.
    assert!((2..=3).contains(&individual), "{burst:#?}");
    assert_eq!(
        individual + groups[0].count as usize,
        12,
        "every event of the burst is accounted for once"
    );
    assert_eq!(
        groups[0].title,
        format!("{} new events from Codertocat/Hello-World", groups[0].count)
    );
}

#[tokio::test]
async fn watermark_survives_a_restart_and_catch_up_reads_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let m = MemoryNotifier::new(None);
    let d = start(dir.path(), &m).await;
    d.myapp("crit", "first").await;
    wait_shown_async(&m, 1).await;
    d.api.store().close().await;
    drop(d);

    // Stored while no notifier ran (written straight into the history).
    let store = kitedesk_store::Store::open(&dir.path().join("history.db"))
        .await
        .unwrap();
    let mut ev = kitedesk_core::KiteEvent {
        id: "offline-1".into(),
        source: "https://myapp".into(),
        ty: "com.myapp.event".into(),
        time: chrono::Utc::now(),
        source_name: "myapp".into(),
        summary: "myapp: stored while down".into(),
        data: json!({}).into(),
        seq: None,
        original_headers: kitedesk_core::Headers::new(),
        verification: kitedesk_core::Verification::unverified("unsigned source"),
        importance: kitedesk_core::Importance::Critical,
        importance_reason: "test".into(),
    };
    let offline = store
        .insert(kitedesk_store::NewEvent {
            event: ev.clone(),
            payload: "{}".into(),
            received: chrono::Utc::now(),
        })
        .await
        .unwrap()
        .id();
    // And an old one: history, not news.
    ev.id = "offline-old".into();
    store
        .insert(kitedesk_store::NewEvent {
            event: ev,
            payload: "{}".into(),
            received: chrono::Utc::now() - chrono::Duration::hours(2),
        })
        .await
        .unwrap();
    store.close().await;

    let m2 = MemoryNotifier::new(None);
    let d2 = start(dir.path(), &m2).await;
    let marker = d2.myapp("crit", "after restart").await;
    let shown = wait_shown_async(&m2, 2).await;
    let ids: Vec<i64> = shown.iter().map(|n| n.event_id).collect();
    assert_eq!(
        ids,
        vec![offline, marker],
        "the first event is not notified again; the recent offline one is caught up, the 2-hour-old one is not"
    );
}

#[tokio::test]
async fn status_names_the_last_event_suppressed_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let m = MemoryNotifier::new(None);
    let d = start(dir.path(), &m).await;
    // A normal event (no scoring rule for this sender), under the default
    // threshold (high).
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let id = d.myapp("nobody", "routine update").await;
    let st = kitedesk_testkit::eventually_within(
        Duration::from_secs(10),
        "the notifier's status to count the suppressed event",
        || async {
            let (_, st) = d.call("GET", "/api/notifications/status", None).await;
            (st["suppressed_total"] == 1).then_some(st)
        },
    )
    .await;
    let last = &st["last"];
    assert_eq!(last["event_id"], id, "{st}");
    assert_eq!(last["summary"], "myapp: routine update", "{st}");
    assert_eq!(last["outcome"], "suppressed", "{st}");
    assert_eq!(last["reason"], "below_threshold", "{st}");
    assert_eq!(
        last["detail"], "importance normal is below the threshold high",
        "{st}"
    );
    let at: chrono::DateTime<chrono::Utc> = last["at"].as_str().unwrap().parse().unwrap();
    assert!(at >= before && at <= chrono::Utc::now(), "{st}");
    assert!(m.shown().is_empty());
}

#[tokio::test]
async fn no_notification_server_is_a_status_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let m = MemoryNotifier::new(None);
    m.set_unavailable(Some("org.freedesktop.DBus.Error.ServiceUnknown: no server"));
    let d = start(dir.path(), &m).await;
    let (_, st) = d.call("GET", "/api/notifications/status", None).await;
    assert_eq!(st["backend"], "unavailable", "{st}");
    assert!(
        st["error"].as_str().unwrap().contains("ServiceUnknown"),
        "{st}"
    );
    d.myapp("crit", "nobody sees this").await;
    // The event is stored and decided about; nothing is shown, nothing breaks.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, st) = d.call("GET", "/api/notifications/status", None).await;
        if st["suppressed_total"] == 1 {
            assert_eq!(st["last"]["reason"], "backend_unavailable", "{st}");
            break;
        }
        assert!(Instant::now() < deadline, "{st}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(m.shown().is_empty());
    let (s, _) = d.call("GET", "/api/events", None).await;
    assert_eq!(s, StatusCode::OK, "the daemon keeps serving");
}

#[tokio::test]
async fn default_backend_is_off_and_says_so() {
    let h = Harness::with(MANIFEST, &default_env()).await;
    let (_, st) = h.get("/api/notifications/status").await;
    assert_eq!(st["backend"], "unavailable");
    assert_eq!(st["kind"], "off");
}
