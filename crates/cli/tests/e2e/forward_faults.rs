//! A forward target that is down, then slow, then up, with the daemon
//! killed and restarted in between: every delivery ends delivered or
//! dead-lettered, none is lost, and nothing is sent again after a 2xx.
//!
//! The target is a real HTTP server in this process on a port reserved
//! from the start: *down* is the port bound but not listening (connections
//! refused); *slow* answers only after the sink's timeout (and then 503);
//! *up* answers 200 at once, or 400 to the events marked `poison` (a
//! permanent failure: dead-lettered at once). It logs every request in
//! arrival order with the `x-kite-event-id` it carried and its answer.
//!
//! The daemon (`kitedesk serve` with a manifest routing every event to the
//! target) takes webhooks on its local ingress in each phase; it is
//! SIGKILLed while slow attempts are in flight, and stopped with SIGTERM
//! while deliveries to the recovered target are flowing. At the end the
//! outbox (read from the history file) is compared with the target's log.
//!
//! The SIGKILL lands while the target answers nothing in time, on purpose:
//! a kill in the instant between a 2xx and its record would send that
//! delivery again at the next start, as the outbox documents (at least
//! once; targets dedup on `x-kite-event-id`). A graceful stop must never.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kitedesk_store::{DeliveryQuery, DeliveryStatus, Store};

use super::{Served, serve_with};

/// The sink's request timeout; a slow answer comes well after it.
const SINK_TIMEOUT: &str = "300ms";
const SLOW_ANSWER: Duration = Duration::from_millis(1200);
/// Phase lengths (a timed fault schedule, not a wait for readiness).
const DOWN_FOR: Duration = Duration::from_secs(2);
const SLOW_FOR: Duration = Duration::from_secs(5);
/// The retry schedule: 8 attempts over about 4.5 s, so the first
/// webhooks run out of attempts before the target is up and the ones
/// posted when it turns slow are still being retried when it is.
const RETRY: [&str; 7] = ["100ms", "200ms", "400ms", "800ms", "1s", "1s", "1s"];
/// Webhooks posted in each phase; every 7th is poison.
const PER_PHASE: u32 = 40;
const DEADLINE: Duration = Duration::from_secs(120);

const SLOW: u8 = 0;
const UP: u8 = 1;

#[derive(Debug, Clone)]
struct Hit {
    event_id: String,
    body: String,
    answer: u16,
}

struct Target {
    url: String,
    mode: Arc<AtomicU8>,
    /// Arrival order; each answer is filled in when it is decided.
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Bound, not listening, until the target comes up.
    socket: Option<tokio::net::TcpSocket>,
}

impl Target {
    fn down() -> Target {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let url = format!("http://{}/hook", socket.local_addr().unwrap());
        Target {
            url,
            mode: Arc::new(AtomicU8::new(SLOW)),
            hits: Arc::default(),
            socket: Some(socket),
        }
    }

    /// Start listening, in `mode`.
    fn listen(&mut self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
        let listener = self.socket.take().unwrap().listen(1024).unwrap();
        let (mode, hits) = (self.mode.clone(), self.hits.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: String| async move {
                    let event_id = headers
                        .get("x-kite-event-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let slow = mode.load(Ordering::SeqCst) == SLOW;
                    let answer = if slow {
                        503
                    } else if body.contains("poison") {
                        400
                    } else {
                        200
                    };
                    hits.lock().unwrap().push(Hit {
                        event_id,
                        body,
                        answer,
                    });
                    if slow {
                        tokio::time::sleep(SLOW_ANSWER).await;
                    }
                    axum::http::StatusCode::from_u16(answer).unwrap()
                },
            ),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

fn manifest(dir: &std::path::Path, target: &str) -> std::path::PathBuf {
    let path = dir.join("kite.json");
    std::fs::write(
        &path,
        serde_json::json!({
            "name": "forward-faults",
            "sources": [{"name": "demo", "type": "generic", "verify": {"allowUnsigned": true}}],
            "sink": {"type": "proxy", "target": target, "timeout": SINK_TIMEOUT},
            "outbox": {"retry": RETRY, "jitter": 0.2, "concurrency": 32, "perSinkConcurrency": 16}
        })
        .to_string(),
    )
    .unwrap();
    path
}

/// Post webhooks `range` to the daemon's ingress; returns their
/// CloudEvent ids and whether each is poison.
async fn post(
    http: &reqwest::Client,
    d: &Served,
    range: std::ops::Range<u32>,
) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for n in range {
        let poison = n % 7 == 3;
        let body = if poison {
            format!(r#"{{"n":{n},"kind":"poison"}}"#)
        } else {
            format!(r#"{{"n":{n}}}"#)
        };
        let r = http
            .post(format!("{}/hooks/demo", d.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "webhook {n} accepted");
        let v: serde_json::Value = r.json().await.unwrap();
        out.push((v["event_id"].as_str().unwrap().to_string(), poison));
    }
    out
}

async fn count(store: &Store, status: DeliveryStatus) -> i64 {
    store.count_deliveries(status).await.unwrap()
}

async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + DEADLINE;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn sigterm(d: Served) {
    let pid = d.child.id().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM {pid}");
    let mut d = d;
    let status = d.child.wait().unwrap();
    assert!(status.success(), "a graceful stop exits 0: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forward_target_down_slow_up_with_restarts_delivers_or_dead_letters_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut target = Target::down();
    let manifest = manifest(dir.path(), &target.url);
    let args = ["--manifest", manifest.to_str().unwrap()];
    let http = reqwest::Client::new();
    let history = dir.path().join("history.db");

    // Down: connections refused.
    let d = serve_with(dir.path(), &args);
    let mut posted = post(&http, &d, 0..PER_PHASE).await;
    let store = Store::open_read_only(&history).await.unwrap();
    tokio::time::sleep(DOWN_FOR).await;

    // Slow: every attempt times out. Kill the daemon mid-attempt.
    target.listen(SLOW);
    posted.extend(post(&http, &d, PER_PHASE..2 * PER_PHASE).await);
    wait_for("slow attempts in flight", || async {
        count(&store, DeliveryStatus::Delivering).await > 0
            && target.hits().iter().filter(|h| h.answer == 503).count() >= 4
    })
    .await;
    let mut d = d;
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    drop(d);
    let d = serve_with(dir.path(), &args);
    tokio::time::sleep(SLOW_FOR).await;

    // Up: deliveries flow. Stop the daemon gracefully while they do.
    target.mode.store(UP, Ordering::SeqCst);
    posted.extend(post(&http, &d, 2 * PER_PHASE..3 * PER_PHASE).await);
    wait_for("deliveries to the recovered target", || async {
        target.hits().iter().filter(|h| h.answer == 200).count() >= 10
    })
    .await;
    sigterm(d);
    let d = serve_with(dir.path(), &args);
    posted.extend(post(&http, &d, 3 * PER_PHASE..4 * PER_PHASE).await);

    let total = posted.len() as i64;
    wait_for("every delivery delivered or dead", || async {
        count(&store, DeliveryStatus::Delivered).await + count(&store, DeliveryStatus::Dead).await
            == total
    })
    .await;

    // The outbox, one delivery per event.
    let mut deliveries = Vec::new();
    let mut q = DeliveryQuery {
        limit: Some(kitedesk_store::MAX_LIMIT),
        ..Default::default()
    };
    loop {
        let (page, next) = store.list_deliveries(&q).await.unwrap();
        deliveries.extend(page);
        match next {
            Some(before) => q.before = Some(before),
            None => break,
        }
    }
    let by_ce: HashMap<&str, &kitedesk_store::DeliveryRecord> =
        deliveries.iter().map(|d| (d.ce_id.as_str(), d)).collect();
    assert_eq!(deliveries.len(), posted.len(), "one delivery per event");
    assert_eq!(by_ce.len(), posted.len(), "one delivery per event id");

    let hits = target.hits();
    let mut per_event: HashMap<&str, Vec<&Hit>> = HashMap::new();
    for h in &hits {
        per_event.entry(h.event_id.as_str()).or_default().push(h);
    }
    let (mut delivered, mut dead, mut exhausted) = (0, 0, 0);
    for (ce_id, poison) in &posted {
        let d = by_ce
            .get(ce_id.as_str())
            .unwrap_or_else(|| panic!("event {ce_id} has no delivery: lost"));
        let got = per_event.get(ce_id.as_str()).cloned().unwrap_or_default();
        let ok = got.iter().filter(|h| h.answer == 200).count();
        match d.status {
            DeliveryStatus::Delivered => {
                delivered += 1;
                assert!(!poison, "a poison event is never delivered: {ce_id}");
                assert_eq!(
                    ok, 1,
                    "{ce_id}: delivered, so the target answered 2xx once: {got:?}"
                );
                assert_eq!(
                    got.last().map(|h| h.answer),
                    Some(200),
                    "{ce_id}: nothing sent after the 2xx: {got:?}"
                );
                assert_eq!(d.last.as_ref().and_then(|a| a.status_code), Some(200));
            }
            DeliveryStatus::Dead => {
                dead += 1;
                assert_eq!(ok, 0, "{ce_id}: dead, so never answered 2xx: {got:?}");
                let last = d.last.as_ref().expect("a dead delivery has an attempt");
                if *poison && got.last().is_some_and(|h| h.answer == 400) {
                    assert_eq!(
                        got.iter().filter(|h| h.answer == 400).count(),
                        1,
                        "{ce_id}: a 4xx is permanent, not retried: {got:?}"
                    );
                    assert_eq!(last.status_code, Some(400), "{ce_id}: {last:?}");
                } else {
                    // Otherwise only the whole schedule makes a dead letter
                    // (an attempt cut off by the SIGKILL is not counted).
                    exhausted += 1;
                    assert_eq!(
                        d.attempts as usize,
                        RETRY.len() + 1,
                        "{ce_id}: dead after every attempt: {d:?}"
                    );
                    assert!(
                        matches!(last.error_code.as_deref(), Some("connect" | "timeout")),
                        "{ce_id}: {last:?}"
                    );
                }
            }
            other => panic!("{ce_id}: ended {other:?}"),
        }
        // The body is the original payload, whatever the answer.
        assert!(got.iter().all(|h| h.body.starts_with("{\"n\":")), "{got:?}");
    }
    // Every event posted once the target was up and not poison is delivered.
    for (ce_id, poison) in &posted[2 * PER_PHASE as usize..] {
        assert!(
            *poison || by_ce[ce_id.as_str()].status == DeliveryStatus::Delivered,
            "{ce_id} posted while the target was up: {:?}",
            by_ce[ce_id.as_str()]
        );
    }
    // The faults really happened: refusals, timeouts, a 4xx.
    let mut codes: HashMap<String, usize> = HashMap::new();
    for d in &deliveries {
        for a in store.delivery_attempts(d.id).await.unwrap() {
            *codes
                .entry(a.error_code.unwrap_or_else(|| "ok".into()))
                .or_default() += 1;
        }
    }
    eprintln!(
        "{delivered} delivered, {dead} dead ({exhausted} after every attempt), {} requests at the target; attempts by outcome: {codes:?}",
        hits.len()
    );
    for code in ["connect", "timeout", "http_status", "ok"] {
        assert!(
            codes.contains_key(code),
            "some attempt ended {code}: {codes:?}"
        );
    }
    assert!(
        exhausted > 0 && dead > exhausted && delivered > 0,
        "some ran out of attempts while the target was down or slow ({exhausted}), \
         some were refused for good ({}), some delivered ({delivered})",
        dead - exhausted
    );
    store.close().await;
    drop(d);
}
