//! Forwarding through the real daemon: webhooks in through the ingress,
//! routed by the manifest to a real HTTP server on 127.0.0.1:0 (or a real
//! command), through the SQLite outbox, and read back through the API.
//! Schedules are short (milliseconds) so retries and dead letters happen
//! within a test; nothing sleeps to wait, everything polls a condition with
//! a deadline.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use kitedesk_core::verify::{self, Scheme, Secret};
use kitedesk_core::{Headers, Manifest};
use kitedesk_daemon::{Daemon, DaemonConfig};
use serde_json::{Value, json};

use crate::harness::*;

// ---------------------------------------------------------------------------
// A target server that records what it receives and answers as scripted.

#[derive(Debug, Clone)]
struct Hit {
    event_id: String,
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct TargetState {
    hits: Mutex<Vec<Hit>>,
    /// Statuses for the next requests, in order; then `default`.
    script: Mutex<VecDeque<u16>>,
    default: AtomicU16,
    /// Never answer (a hung local server).
    hang: AtomicBool,
    /// Alternate 503 and 200 across all requests (a flaky server).
    flaky: AtomicBool,
}

struct Target {
    addr: SocketAddr,
    state: Arc<TargetState>,
    _server: tokio::task::JoinHandle<()>,
}

async fn receive(
    State(s): State<Arc<TargetState>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    if s.hang.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let status = {
        let mut hits = s.hits.lock().unwrap();
        let scripted = s.script.lock().unwrap().pop_front();
        let status = match scripted {
            Some(code) => code,
            None if s.flaky.load(Ordering::SeqCst) => {
                if hits.len() % 2 == 0 {
                    503
                } else {
                    200
                }
            }
            None => s.default.load(Ordering::SeqCst),
        };
        hits.push(Hit {
            event_id: headers
                .get("x-kite-event-id")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default(),
            status,
            headers: headers.clone(),
            body,
        });
        status
    };
    (
        StatusCode::from_u16(status).unwrap(),
        format!("target says {status}"),
    )
}

impl Target {
    async fn start() -> Target {
        Self::start_on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await
    }

    async fn start_on(listener: tokio::net::TcpListener) -> Target {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(TargetState::default());
        state.default.store(200, Ordering::SeqCst);
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Target {
            addr,
            state,
            _server: server,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn script(&self, statuses: &[u16]) {
        self.state.script.lock().unwrap().extend(statuses);
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }
}

/// A port where nothing listens (connection refused) that a target can
/// take later.
async fn free_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

// ---------------------------------------------------------------------------
// Helpers

fn manifest(sinks: Value, extra: Value) -> String {
    let mut m = json!({
        "sources": [
            {"name": "github", "type": "github", "verify": {"secretEnv": "GH_NEW"}},
            {"name": "myapp", "type": "generic", "verify": {"allowUnsigned": true}}
        ],
        "sinks": sinks,
        "outbox": {"retry": ["20ms", "20ms", "20ms"], "jitter": 0}
    });
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    m.to_string()
}

async fn post_json(h: &Harness, path: &str, body: Value) -> (StatusCode, Value) {
    h.send(
        Request::post(path)
            .header("host", HOST)
            .header("authorization", format!("Bearer {}", h.api.token()))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

/// Post a generic webhook; returns (local id, CloudEvent id).
async fn hook(h: &Harness, n: usize) -> (i64, String) {
    let (s, r) = h
        .post_hook(
            "myapp",
            &[("content-type", "application/json".into())],
            format!(r#"{{"n":{n}}}"#).as_bytes(),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    (
        r["id"].as_i64().unwrap(),
        r["event_id"].as_str().unwrap().to_string(),
    )
}

/// Poll `check` until it gives a value, or fail after `secs`.
async fn until<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The deliveries of an event once none is pending or in flight.
async fn settled(h: &Harness, event: i64) -> Vec<Value> {
    until(20, "deliveries to settle", || async {
        let (s, r) = h.get(&format!("/api/events/{event}/deliveries")).await;
        assert_eq!(s, StatusCode::OK, "{r}");
        let ds = r["deliveries"].as_array().unwrap().clone();
        let done = !ds.is_empty()
            && ds
                .iter()
                .all(|d| d["status"] == "delivered" || d["status"] == "dead");
        done.then_some(ds)
    })
    .await
}

async fn detail(h: &Harness, id: i64) -> Value {
    let (s, d) = h.get(&format!("/api/deliveries/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    d
}

// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_routed_event_is_delivered_with_kite_headers_and_original_bytes() {
    let target = Target::start().await;
    let h = Harness::with(
        &manifest(
            json!({"app": {"type": "proxy", "target": target.url()}}),
            json!({}),
        ),
        &default_env(),
    )
    .await;
    let (s, sinks) = h.get("/api/sinks").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        sinks,
        json!({"sinks": [{"name": "app", "kind": "http", "target": target.url(), "origin": "manifest"}]})
    );

    let body = github_push();
    let (s, r) = h
        .post_hook(
            "github",
            &github_headers(&body, "gh-route-1", GH_SECRET),
            &body,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let id = r["id"].as_i64().unwrap();
    let ds = settled(&h, id).await;
    assert_eq!(ds.len(), 1, "one sink, one delivery: {ds:?}");
    let d = &ds[0];
    assert_eq!(d["status"], "delivered");
    assert_eq!(
        (d["sink"].as_str(), d["attempts"].as_u64()),
        (Some("app"), Some(1))
    );
    assert_eq!(d["ce_id"], "gh-route-1");
    assert_eq!(d["last"]["status_code"], 200);
    assert_eq!(d["last"]["response_body"], "target says 200");
    assert!(
        d.get("next_attempt_at").is_none(),
        "nothing more is scheduled"
    );

    let hits = target.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].body.as_ref(),
        body.as_slice(),
        "the payload bytes as received"
    );
    assert_eq!(hits[0].event_id, "gh-route-1");
    assert_eq!(hits[0].headers["x-kite-source"], "github");
    assert_eq!(hits[0].headers["x-kite-event-type"], "com.github.push");
    assert_eq!(
        hits[0].headers["x-github-event"], "push",
        "provider headers ride along"
    );
    // The provider's own signature still verifies: the bytes are unchanged.
    let got: Headers = hits[0]
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    verify::verify(
        Scheme::Github,
        &got,
        &hits[0].body,
        &[Secret::new(GH_SECRET)],
        chrono::Utc::now(),
        300,
    )
    .expect("the forwarded request carries a valid provider signature");

    let full = detail(&h, d["id"].as_i64().unwrap()).await;
    assert_eq!(full["attempt_log"].as_array().unwrap().len(), 1);
    assert_eq!(full["attempt_log"][0]["n"], 1);
    assert_eq!(full["attempt_log"][0]["ok"], true);
}

#[tokio::test]
async fn server_errors_are_retried_then_delivered_and_never_sent_again() {
    let target = Target::start().await;
    target.script(&[503, 500]);
    let h = Harness::with(
        &manifest(
            json!({"app": {"type": "proxy", "target": target.url()}}),
            json!({}),
        ),
        &default_env(),
    )
    .await;
    let (id, ce) = hook(&h, 1).await;
    let d = settled(&h, id).await.remove(0);
    assert_eq!(d["status"], "delivered", "{d}");
    let full = detail(&h, d["id"].as_i64().unwrap()).await;
    let codes: Vec<u64> = full["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [503, 500, 200], "two retries, then delivered");
    assert_eq!(full["attempt_log"][0]["error_code"], "http_status");

    // A later event goes through the same worker: by the time it is
    // delivered, the first would have been sent again if it ever could be.
    let (id2, _) = hook(&h, 2).await;
    settled(&h, id2).await;
    let for_first = target
        .hits()
        .iter()
        .filter(|hit| hit.event_id == ce)
        .count();
    assert_eq!(for_first, 3, "nothing is sent after a 2xx");
    let (s, r) = post_json(&h, &format!("/api/deliveries/{}/retry", d["id"]), json!({})).await;
    assert_eq!(
        (s, r["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_delivered"))
    );
}

#[tokio::test]
async fn client_errors_are_dead_letters_and_retry_sends_them_again() {
    let target = Target::start().await;
    target.state.default.store(422, Ordering::SeqCst);
    let h = Harness::with(
        &manifest(
            json!({"app": {"type": "proxy", "target": target.url()}}),
            json!({}),
        ),
        &default_env(),
    )
    .await;
    let (id, _) = hook(&h, 1).await;
    let d = settled(&h, id).await.remove(0);
    assert_eq!(d["status"], "dead", "a 4xx is permanent: {d}");
    assert_eq!(d["attempts"], 1, "no retries for a 422");
    assert_eq!(d["last"]["status_code"], 422);

    let (s, dead) = h.get("/api/deliveries?status=dead").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(dead["deliveries"].as_array().unwrap().len(), 1);

    // The developer fixes the local app, then retries the dead letters.
    target.state.default.store(200, Ordering::SeqCst);
    let (s, r) = post_json(&h, "/api/deliveries/retry", json!({"status": "dead"})).await;
    assert_eq!((s, &r), (StatusCode::OK, &json!({"retried": 1})));
    let d = settled(&h, id).await.remove(0);
    assert_eq!(
        (d["status"].as_str(), d["attempts"].as_u64()),
        (Some("delivered"), Some(2))
    );
    assert_eq!(target.hits().len(), 2);
}

#[tokio::test]
async fn rate_limits_are_retried_and_a_used_up_schedule_is_a_dead_letter() {
    let target = Target::start().await;
    target.state.default.store(429, Ordering::SeqCst);
    let h = Harness::with(
        &manifest(
            json!({"app": {"type": "proxy", "target": target.url()}}),
            json!({}),
        ),
        &default_env(),
    )
    .await;
    let (id, _) = hook(&h, 1).await;
    let d = settled(&h, id).await.remove(0);
    assert_eq!(d["status"], "dead");
    assert_eq!(d["attempts"], 4, "the first attempt and three retries");
    assert_eq!(target.hits().len(), 4);

    // Retrying one dead letter starts the schedule again.
    target.state.default.store(200, Ordering::SeqCst);
    let (s, r) = post_json(&h, &format!("/api/deliveries/{}/retry", d["id"]), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["status"], "pending");
    let d = settled(&h, id).await.remove(0);
    assert_eq!(
        (d["status"].as_str(), d["attempts"].as_u64()),
        (Some("delivered"), Some(5))
    );
}

#[tokio::test]
async fn a_hung_target_times_out_without_blocking_other_sinks() {
    let hung = Target::start().await;
    hung.state.hang.store(true, Ordering::SeqCst);
    let healthy = Target::start().await;
    let h = Harness::with(
        &manifest(
            json!({
                "slow": {"type": "proxy", "target": hung.url(), "timeout": "150ms"},
                "fast": {"type": "proxy", "target": healthy.url()}
            }),
            json!({"outbox": {"retry": ["10ms"], "jitter": 0, "perSinkConcurrency": 1}}),
        ),
        &default_env(),
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(hook(&h, n).await.0);
    }
    // The healthy sink gets everything while the hung one holds its slot.
    until(10, "the healthy sink to get all three", || async {
        (healthy.hits().len() == 3).then_some(())
    })
    .await;
    for id in ids {
        let ds = settled(&h, id).await;
        let slow = ds.iter().find(|d| d["sink"] == "slow").unwrap();
        assert_eq!(slow["status"], "dead", "{slow}");
        assert_eq!(slow["attempts"], 2);
        assert_eq!(slow["last"]["error_code"], "timeout");
        assert!(
            slow["last"]["latency_ms"].as_u64().unwrap() >= 150,
            "{slow}"
        );
        let fast = ds.iter().find(|d| d["sink"] == "fast").unwrap();
        assert_eq!(fast["status"], "delivered");
    }
}

#[tokio::test]
async fn routes_send_matching_events_to_their_sinks() {
    let all = Target::start().await;
    let github_only = Target::start().await;
    let h = Harness::with(
        &manifest(
            json!({
                "all": {"type": "proxy", "target": all.url()},
                "gh": {"type": "proxy", "target": github_only.url()}
            }),
            json!({"routes": [{"match": {"source": "github", "type": "com.github.*"}, "sinks": ["gh"]}]}),
        ),
        &default_env(),
    )
    .await;
    let (app_id, _) = hook(&h, 1).await;
    let body = github_push();
    let (_, r) = h
        .post_hook(
            "github",
            &github_headers(&body, "gh-routes", GH_SECRET),
            &body,
        )
        .await;
    let gh_id = r["id"].as_i64().unwrap();
    let sinks_of = |ds: Vec<Value>| {
        let mut v: Vec<String> = ds
            .iter()
            .map(|d| d["sink"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(sinks_of(settled(&h, app_id).await), ["all"]);
    assert_eq!(sinks_of(settled(&h, gh_id).await), ["all", "gh"]);
    assert_eq!(github_only.hits().len(), 1);
}

#[tokio::test]
async fn forward_re_signs_for_the_local_secret_and_reports_the_answer() {
    let target = Target::start().await;
    let h = Harness::with(&manifest(json!({}), json!({})), &default_env()).await;
    let body = github_push();
    let (_, r) = h
        .post_hook("github", &github_headers(&body, "gh-fwd", GH_SECRET), &body)
        .await;
    let id = r["id"].as_i64().unwrap();
    hook(&h, 1).await;

    let (s, r) = post_json(
        &h,
        "/api/forward",
        json!({"filter": {"source": "github"}, "target": {"url": target.url()}, "dry_run": true}),
    )
    .await;
    assert_eq!(
        (s, &r),
        (StatusCode::OK, &json!({"count": 1})),
        "dry run counts only"
    );
    assert!(target.hits().is_empty(), "a dry run sends nothing");

    let (s, r) = post_json(
        &h,
        "/api/forward",
        json!({"event_ids": [id], "target": {"url": target.url(), "resign": {"scheme": "github", "secret": "my-dev-secret"}}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["count"], 1);
    let d = &r["deliveries"][0];
    assert_eq!(d["status"], "delivered", "{d}");
    assert_eq!(d["sink"], "forward");
    assert_eq!(d["last"]["status_code"], 200);
    assert_eq!(d["last"]["response_body"], "target says 200");
    assert!(d["last"]["latency_ms"].is_u64());

    let hit = target.hits().remove(0);
    let got: Headers = hit
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    let now = chrono::Utc::now();
    verify::verify(
        Scheme::Github,
        &got,
        &hit.body,
        &[Secret::new("my-dev-secret")],
        now,
        300,
    )
    .expect("re-signed with the local secret");
    assert!(
        verify::verify(
            Scheme::Github,
            &got,
            &hit.body,
            &[Secret::new(GH_SECRET)],
            now,
            300
        )
        .is_err(),
        "the provider's signature was replaced"
    );
    let text = serde_json::to_string(&detail(&h, d["id"].as_i64().unwrap()).await).unwrap();
    assert!(
        !text.contains("my-dev-secret"),
        "the secret is never echoed: {text}"
    );
}

#[tokio::test]
async fn forward_failures_continue_in_the_outbox() {
    let target = Target::start().await;
    target.script(&[502]);
    let h = Harness::with(
        &manifest(
            json!({"app": {"type": "proxy", "target": "http://127.0.0.1:9/never"}}),
            json!({"routes": [{"match": {"source": "nothing"}, "sinks": ["app"]}]}),
        ),
        &default_env(),
    )
    .await;
    let (id, _) = hook(&h, 1).await;
    let (s, r) = post_json(
        &h,
        "/api/forward",
        json!({"event_ids": [id], "target": {"url": target.url()}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let d = &r["deliveries"][0];
    assert_eq!(d["status"], "pending", "a 502 is retried: {d}");
    assert_eq!(d["last"]["status_code"], 502);
    assert!(d["next_attempt_at"].is_string());
    let ds = settled(&h, id).await;
    assert_eq!(
        ds.len(),
        1,
        "the route matched nothing, only the forward exists"
    );
    assert_eq!(
        (ds[0]["status"].as_str(), ds[0]["attempts"].as_u64()),
        (Some("delivered"), Some(2))
    );
}

#[tokio::test]
async fn exec_sink_fails_then_succeeds_and_keeps_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("tried");
    let out = dir.path().join("event.json");
    let script = dir.path().join("handle.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ ! -e '{m}' ]; then touch '{m}'; echo 'database is down' >&2; exit 3; fi\ncat > '{o}'\necho \"handled $KITE_EVENT_ID\"\n",
            m = marker.display(),
            o = out.display()
        ),
    )
    .unwrap();
    let h = Harness::with(
        &manifest(json!({"run": {"type": "exec", "command": format!("sh {}", script.display()), "timeout": "10s"}}), json!({})),
        &default_env(),
    )
    .await;
    let (id, ce) = hook(&h, 7).await;
    let d = settled(&h, id).await.remove(0);
    assert_eq!(d["status"], "delivered", "{d}");
    let full = detail(&h, d["id"].as_i64().unwrap()).await;
    let log = full["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["error_code"], "exit");
    assert_eq!(
        log[0]["stderr"].as_str().unwrap().trim(),
        "database is down"
    );
    assert_eq!(
        log[1]["response_body"].as_str().unwrap().trim(),
        format!("handled {ce}")
    );
    let got: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(
        (got["id"].as_str(), got["data"]["n"].as_u64()),
        (Some(ce.as_str()), Some(7))
    );
}

#[tokio::test]
async fn api_errors_have_codes() {
    let h = Harness::with(
        &manifest(
            json!({"app": {"type": "file", "path": "/dev/null"}}),
            json!({}),
        ),
        &default_env(),
    )
    .await;
    let (id, _) = hook(&h, 1).await;
    h.api.route_now().await.unwrap();
    let url = "http://127.0.0.1:9/x";
    for (body, status, code) in [
        (
            json!({"event_ids": [id], "filter": {}, "target": {"url": url}}),
            400,
            "invalid_request",
        ),
        (json!({"target": {"url": url}}), 400, "invalid_request"),
        (
            json!({"event_ids": [id], "target": {"sink": "nope"}}),
            404,
            "unknown_sink",
        ),
        (
            json!({"event_ids": [id], "target": {"url": "ftp://x"}}),
            400,
            "invalid_target",
        ),
        (
            json!({"event_ids": [99999], "target": {"url": url}}),
            404,
            "event_not_found",
        ),
        (
            json!({"event_ids": [id], "filter": {"colour": "red"}, "target": {"url": url}}),
            400,
            "invalid_request",
        ),
        (
            json!({"filter": {"colour": "red"}, "target": {"url": url}}),
            400,
            "invalid_query",
        ),
        (
            json!({"event_ids": "one", "target": {"url": url}}),
            400,
            "invalid_body",
        ),
    ] {
        let (s, r) = post_json(&h, "/api/forward", body.clone()).await;
        assert_eq!(
            (s.as_u16(), r["code"].as_str()),
            (status, Some(code)),
            "{body}: {r}"
        );
    }
    for (path, status, code) in [
        ("/api/deliveries?status=lost", 400, "invalid_query"),
        ("/api/deliveries?colour=red", 400, "invalid_query"),
        ("/api/deliveries/99999", 404, "delivery_not_found"),
        ("/api/events/99999/deliveries", 404, "event_not_found"),
    ] {
        let (s, r) = h.get(path).await;
        assert_eq!(
            (s.as_u16(), r["code"].as_str()),
            (status, Some(code)),
            "{path}: {r}"
        );
    }
    let (s, r) = post_json(&h, "/api/deliveries/retry", json!({"status": "delivered"})).await;
    assert_eq!(
        (s.as_u16(), r["code"].as_str()),
        (400, Some("invalid_request"))
    );
    // Forward to a named sink works, and paging works.
    let (s, r) = post_json(
        &h,
        "/api/forward",
        json!({"event_ids": [id, id], "target": {"sink": "app"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["deliveries"][1]["status"], "delivered");
    settled(&h, id).await;
    let (_, p1) = h.get("/api/deliveries?limit=2").await;
    assert_eq!(p1["deliveries"].as_array().unwrap().len(), 2);
    let cursor = p1["next_cursor"]
        .as_str()
        .expect("three deliveries, two per page");
    let (_, p2) = h
        .get(&format!("/api/deliveries?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(p2["deliveries"].as_array().unwrap().len(), 1);
    assert!(p2.get("next_cursor").is_none());
}

// ---------------------------------------------------------------------------
// Restarts and outages with the real server and a real socket.

fn daemon_config(dir: &std::path::Path, manifest: &str) -> DaemonConfig {
    let mut c = DaemonConfig::new(
        dir.to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
        Manifest::from_json(manifest.as_bytes()).unwrap(),
    );
    c.env_override = Some(HashMap::new());
    c
}

async fn ingest(api: &kitedesk_daemon::Api, n: usize) -> String {
    let headers: Headers = [("content-type", "application/json")].into_iter().collect();
    api.ingest("myapp", &headers, format!(r#"{{"n":{n}}}"#).as_bytes())
        .await
        .unwrap()
        .event_id
}

async fn all_deliveries(api: &kitedesk_daemon::Api) -> Vec<kitedesk_daemon::outbox::Delivery> {
    api.list_deliveries(&[("limit".into(), "500".into())])
        .await
        .unwrap()
        .deliveries
}

#[tokio::test]
async fn pending_deliveries_resume_after_a_daemon_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().await;
    let m = manifest(
        json!({"app": {"type": "proxy", "target": format!("http://{port}/hook")}}),
        // Long enough to still be pending at the restart, short enough to
        // retry soon after it.
        json!({"outbox": {"retry": ["300ms", "300ms", "300ms", "300ms", "300ms", "300ms", "300ms", "300ms", "300ms", "300ms"], "jitter": 0}}),
    );
    let d1 = Daemon::start(daemon_config(dir.path(), &m)).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(ingest(&d1.api, n).await);
    }
    until(10, "a failed first attempt for every delivery", || async {
        let ds = all_deliveries(&d1.api).await;
        (ds.len() == 5 && ds.iter().all(|d| d.attempts >= 1 && d.status == "pending")).then_some(())
    })
    .await;
    d1.shutdown().await.unwrap();

    let target = Target::start_on(tokio::net::TcpListener::bind(port).await.unwrap()).await;
    let d2 = Daemon::start(daemon_config(dir.path(), &m)).await.unwrap();
    let ds = until(
        15,
        "every delivery to be delivered after the restart",
        || async {
            let ds = all_deliveries(&d2.api).await;
            ds.iter().all(|d| d.status == "delivered").then_some(ds)
        },
    )
    .await;
    assert_eq!(ds.len(), 5, "no delivery was lost or added by the restart");
    let mut got: Vec<String> = target.hits().into_iter().map(|h| h.event_id).collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids, "each event reached the target exactly once");
    d2.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_target_down_then_flaky_gets_every_event_once_after_its_2xx() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().await;
    let m = manifest(
        json!({"app": {"type": "proxy", "target": format!("http://{port}/hook")}}),
        json!({"outbox": {"retry": ["50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms", "50ms"], "jitter": 0.5}}),
    );
    let d = Daemon::start(daemon_config(dir.path(), &m)).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(ingest(&d.api, n).await);
    }
    until(
        10,
        "every delivery to fail at least once while the target is down",
        || async {
            let ds = all_deliveries(&d.api).await;
            (ds.len() == 40 && ds.iter().all(|d| d.attempts >= 1)).then_some(())
        },
    )
    .await;
    // Up again, but answering 503 to every other request.
    let target = Target::start_on(tokio::net::TcpListener::bind(port).await.unwrap()).await;
    target.state.flaky.store(true, Ordering::SeqCst);
    let ds = until(30, "every delivery to settle", || async {
        let ds = all_deliveries(&d.api).await;
        ds.iter()
            .all(|d| d.status == "delivered" || d.status == "dead")
            .then_some(ds)
    })
    .await;
    assert_eq!(ds.len(), 40, "none lost");
    assert!(
        ds.iter().all(|d| d.status == "delivered"),
        "the schedule outlasted the outage: {ds:?}"
    );
    let hits = target.hits();
    for id in &ids {
        let mine: Vec<u16> = hits
            .iter()
            .filter(|h| &h.event_id == id)
            .map(|h| h.status)
            .collect();
        assert_eq!(
            mine.iter().filter(|s| **s == 200).count(),
            1,
            "{id} got exactly one 2xx: {mine:?}"
        );
        assert_eq!(
            mine.last(),
            Some(&200),
            "{id}: nothing was sent after its 2xx: {mine:?}"
        );
    }
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_sink_added_later_gets_new_events_only_and_exec_thresholds_apply() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let d1 = Daemon::start(daemon_config(dir.path(), &manifest(json!({}), json!({}))))
        .await
        .unwrap();
    ingest(&d1.api, 1).await;
    ingest(&d1.api, 2).await;
    d1.shutdown().await.unwrap();

    let marker = dir.path().join("ran");
    let m = manifest(
        json!({
            "app": {"type": "proxy", "target": target.url()},
            // Generic events score normal: below this sink's threshold.
            "pager": {"type": "exec", "command": format!("touch {}", marker.display()), "importance": "high"}
        }),
        json!({}),
    );
    let d2 = Daemon::start(daemon_config(dir.path(), &m)).await.unwrap();
    let new = ingest(&d2.api, 3).await;
    d2.api.route_now().await.unwrap();
    let ds = until(10, "the new event to be delivered", || async {
        let ds = all_deliveries(&d2.api).await;
        ds.iter().all(|d| d.status == "delivered").then_some(ds)
    })
    .await;
    let summary: Vec<(&str, &str)> = ds
        .iter()
        .map(|d| (d.sink.as_str(), d.ce_id.as_str()))
        .collect();
    assert_eq!(
        summary,
        [("app", new.as_str())],
        "no replay of the past, nothing below the exec threshold"
    );
    assert!(!marker.exists(), "the exec sink never ran");
    d2.shutdown().await.unwrap();
}
