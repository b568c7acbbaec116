//! Relay ↔ client end to end: the real relay (in this process, restartable),
//! a TCP proxy in between (to cut the connection), and the real `kitedesk
//! serve --relay …` as a child process (to SIGKILL and restart). Webhooks go
//! into the relay; the daemon's history must end up with each exactly once.

#![expect(clippy::unwrap_used, reason = "tests")]

mod catchup_kills;
mod relay_churn;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use kitedesk_relay::{Relay, RelayConfig, RunningRelay, TokenKind, admin};
use kitedesk_testkit::eventually_within;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The longest any condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(180);

/// Poll `f` until it yields `Some`, or fail after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_within(DEADLINE, what, f).await
}

/// A TCP proxy whose target can change and whose connections can be cut.
struct Proxy {
    addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let target = Arc::new(Mutex::new(target));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (t, c) = (target.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = l.accept().await else {
                    return;
                };
                let to = *t.lock().unwrap();
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                c.lock().unwrap().push(task);
            }
        });
        Proxy {
            addr,
            target,
            conns,
            accept,
        }
    }

    fn retarget(&self, to: SocketAddr) {
        *self.target.lock().unwrap() = to;
    }

    /// Drop every proxied connection at once (both sockets close).
    fn cut(&self) -> usize {
        let conns = std::mem::take(&mut *self.conns.lock().unwrap());
        let n = conns.iter().filter(|c| !c.is_finished()).count();
        for c in conns {
            c.abort();
        }
        n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

struct Daemon {
    child: Child,
    url: String,
    token: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// SIGKILL: no graceful anything.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// `kitedesk serve --relay ws://PROXY/ws --team T`, reading its URL and API
/// token from stdout (printed after the socket is bound).
fn serve(data_dir: &Path, relay_ws: &str, team: &str, relay_token: &str, extra: &[&str]) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kitedesk"))
        .env("KITEDESK_DATA_DIR", data_dir)
        .env("KITEDESK_RELAY_TOKEN", relay_token)
        .env("KITEDESK_LOG", "warn")
        .env_remove("KITEDESK_URL")
        .env_remove("KITEDESK_API_TOKEN")
        .env_remove("KITEDESK_MANIFEST")
        .env_remove("KITEDESK_RELAY_URL")
        .env_remove("KITEDESK_RELAY_TEAM")
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--relay",
            relay_ws,
            "--team",
            team,
        ])
        .args(["--relay-reconnect-min", "50ms"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut token) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("UI:") {
            let (u, t) = rest.trim().split_once("/?token=").unwrap();
            url = Some(u.to_string());
            token = Some(t.to_string());
        }
        if line.trim().starts_with("Relay:") {
            assert!(line.contains(team), "{line}");
        }
        if line.trim().starts_with("Try:") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Daemon {
        child,
        url: url.expect("serve prints its URL"),
        token: token.unwrap(),
    }
}

async fn health(http: &reqwest::Client, d: &Daemon) -> Option<serde_json::Value> {
    let r = http
        .get(format!("{}/api/health", d.url))
        .bearer_auth(&d.token)
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

fn relay_conn(h: &serde_json::Value) -> serde_json::Value {
    h["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "relay")
        .cloned()
        .expect("a relay connection is listed")
}

struct Setup {
    relay_dir: tempfile::TempDir,
    team: String,
    hook_token: String,
    api_token: String,
}

async fn setup() -> Setup {
    let relay_dir = tempfile::tempdir().unwrap();
    let team = admin::create_team(relay_dir.path(), "e2e")
        .await
        .unwrap()
        .id;
    let hook_token = admin::create_token(relay_dir.path(), &team, TokenKind::Hook, &[])
        .await
        .unwrap();
    let api_token = admin::create_token(relay_dir.path(), &team, TokenKind::Api, &[])
        .await
        .unwrap();
    Setup {
        relay_dir,
        team,
        hook_token,
        api_token,
    }
}

fn relay_config(dir: &Path) -> RelayConfig {
    let mut c = RelayConfig::new(dir);
    c.listen = "127.0.0.1:0".parse().unwrap();
    c
}

/// Webhook `i`: a structured CloudEvent with id `e2e-<i>` (5 digits).
fn hook_body(i: u32) -> String {
    serde_json::json!({
        "specversion": "1.0", "id": format!("e2e-{i:05}"), "source": "https://e2e.test/app",
        "type": "com.app.tick", "kitesummary": format!("tick {i}"), "data": {"i": i}
    })
    .to_string()
}

/// Post webhooks `range` as structured CloudEvents with ids `e2e-<i>`,
/// 16 at a time; each must be accepted.
async fn post(
    http: &reqwest::Client,
    relay: &RunningRelay,
    s: &Setup,
    range: std::ops::Range<u32>,
) {
    let url = relay.hook_url(&s.team, "app");
    futures_util::stream::iter(range)
        .map(|i| {
            http.post(&url)
                .bearer_auth(&s.hook_token)
                .header("content-type", "application/cloudevents+json")
                .body(hook_body(i))
                .send()
        })
        .buffer_unordered(16)
        .for_each(|r| async move {
            let r = r.unwrap();
            assert!(r.status().is_success(), "relay answered {}", r.status());
        })
        .await;
}

async fn events_count(http: &reqwest::Client, d: &Daemon) -> Option<i64> {
    health(http, d).await.and_then(|h| h["events"].as_i64())
}

fn history_path(dir: &Path) -> PathBuf {
    dir.join("history.db")
}

/// Every event in the daemon's history file (opened read-only): the
/// CloudEvent ids in storage order, and the relay seqs sorted.
async fn history_ids_and_seqs(data_dir: &Path) -> (Vec<String>, Vec<u64>) {
    let store = kitedesk_store::Store::open_read_only(&history_path(data_dir))
        .await
        .unwrap();
    let mut page = kitedesk_store::EventQuery {
        limit: Some(kitedesk_store::MAX_LIMIT),
        oldest_first: true,
        ..Default::default()
    };
    let mut ids = Vec::new();
    let mut seqs = Vec::new();
    loop {
        let p = store.list(&page).await.unwrap();
        for e in &p.events {
            ids.push(e.event.id.clone());
            seqs.push(e.event.seq.expect("a relayed event has a seq"));
        }
        match p.events.last() {
            Some(e) if p.events.len() as u32 == kitedesk_store::MAX_LIMIT => {
                page.after = Some(e.id)
            }
            _ => break,
        }
    }
    store.close().await;
    seqs.sort_unstable();
    (ids, seqs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_webhooks_survive_kill_relay_restart_and_cut_exactly_once() {
    const TOTAL: u32 = 10_000;
    let s = setup().await;
    let http = reqwest::Client::new();
    let mut relay = Relay::start(relay_config(s.relay_dir.path()))
        .await
        .unwrap();
    let proxy = Proxy::start(relay.addr).await;
    let ws = format!("ws://{}/ws", proxy.addr);
    let data = tempfile::tempdir().unwrap();
    let mut daemon = serve(data.path(), &ws, &s.team, &s.api_token, &[]);
    // A new client id starts live: wait until the link is up before posting.
    eventually("the link to connect", || async {
        let h = health(&http, &daemon).await?;
        (relay_conn(&h)["state"] == "connected").then_some(())
    })
    .await;

    // 1. The client process is SIGKILLed while it is catching up.
    post(&http, &relay, &s, 0..2500).await;
    eventually("some events stored", || async {
        (events_count(&http, &daemon).await? >= 800).then_some(())
    })
    .await;
    daemon.kill();
    daemon = serve(data.path(), &ws, &s.team, &s.api_token, &[]);

    // 2. The relay restarts (same data dir, new port) mid-stream.
    post(&http, &relay, &s, 2500..5000).await;
    eventually("more events stored", || async {
        (events_count(&http, &daemon).await? >= 3000).then_some(())
    })
    .await;
    relay.shutdown().await;
    relay = Relay::start(relay_config(s.relay_dir.path()))
        .await
        .unwrap();
    proxy.retarget(relay.addr);

    // 3. The connection is cut under the client's feet.
    post(&http, &relay, &s, 5000..7500).await;
    eventually("events after the relay restart", || async {
        (events_count(&http, &daemon).await? >= 5500).then_some(())
    })
    .await;
    proxy.cut();

    post(&http, &relay, &s, 7500..TOTAL).await;
    let last = relay.last_seq(&s.team).await.unwrap();
    assert_eq!(
        last,
        u64::from(TOTAL),
        "the relay appended each webhook once"
    );
    eventually("every event stored and acked", || async {
        let h = health(&http, &daemon).await?;
        let c = relay_conn(&h);
        (h["events"] == i64::from(TOTAL) && c["last_seq"] == last && c["state"] == "connected")
            .then_some(())
    })
    .await;

    // Exactly once, each: read the history file itself.
    let (ids, seqs) = history_ids_and_seqs(data.path()).await;
    let want: Vec<String> = (0..TOTAL).map(|i| format!("e2e-{i:05}")).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted.len(), want.len(), "one row per webhook");
    assert_eq!(sorted, want, "every webhook, once");
    assert_eq!(seqs, (1..=u64::from(TOTAL)).collect::<Vec<_>>());
    drop(daemon);
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_token_is_reported_in_health() {
    let s = setup().await;
    let http = reqwest::Client::new();
    let relay = Relay::start(relay_config(s.relay_dir.path()))
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let daemon = serve(
        data.path(),
        &relay.ws_url(),
        &s.team,
        "kite_not_a_real_token",
        &[],
    );
    let c = eventually("the link to be refused", || async {
        let c = relay_conn(&health(&http, &daemon).await?);
        (c["state"] == "offline").then_some(c)
    })
    .await;
    let err = c["error"].as_str().unwrap();
    assert!(err.contains("4001"), "{err}");
    assert!(!err.contains("kite_not_a_real_token"));
    drop(daemon);
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cursor_expired_shows_the_gap_in_health_and_the_live_feed() {
    let s = setup().await;
    let http = reqwest::Client::new();
    let mut cfg = relay_config(s.relay_dir.path());
    cfg.retention.max_events_per_team = Some(10);
    cfg.retention_interval = Duration::from_secs(3600);
    let relay = Relay::start(cfg).await.unwrap();
    let proxy = Proxy::start(relay.addr).await;
    let ws = format!("ws://{}/ws", proxy.addr);
    let data = tempfile::tempdir().unwrap();
    let daemon = serve(data.path(), &ws, &s.team, &s.api_token, &[]);
    eventually("connected", || async {
        (relay_conn(&health(&http, &daemon).await?)["state"] == "connected").then_some(())
    })
    .await;
    post(&http, &relay, &s, 0..5).await;
    eventually("5 stored and acked", || async {
        let h = health(&http, &daemon).await?;
        (relay_conn(&h)["last_seq"] == 5).then_some(())
    })
    .await;
    daemon.kill();
    // While the client is away, 50 more arrive and retention keeps 10.
    post(&http, &relay, &s, 5..55).await;
    assert!(relay.apply_retention().await.unwrap() > 0);
    let daemon = serve(data.path(), &ws, &s.team, &s.api_token, &[]);
    let c = eventually("cursor_expired in health", || async {
        let c = relay_conn(&health(&http, &daemon).await?);
        (c["state"] == "cursor_expired").then_some(c)
    })
    .await;
    assert_eq!(c["gap"], serde_json::json!({"from": 6, "to": 45}));
    assert!(c["error"].as_str().unwrap().contains("retention"), "{c}");
    eventually("the 10 retained events", || async {
        (events_count(&http, &daemon).await? == 15).then_some(())
    })
    .await;

    // The live feed announces state changes: cut the link and watch.
    let resp = http
        .get(format!("{}/api/stream", daemon.url))
        .bearer_auth(&daemon.token)
        .send()
        .await
        .unwrap();
    let mut sse = resp.bytes_stream();
    let mut buf = String::new();
    let mut frames = Vec::new();
    let mut next_frame = async || loop {
        if let Some(end) = buf.find("\n\n") {
            return buf.drain(..end + 2).collect::<String>();
        }
        let chunk = tokio::time::timeout(DEADLINE, sse.next())
            .await
            .expect("SSE frame in time")
            .unwrap()
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
    };
    loop {
        let f = next_frame().await;
        if f.contains("event: ready") {
            break;
        }
    }
    assert_eq!(proxy.cut(), 1, "one live link connection to cut");
    let states: Vec<String> = loop {
        let f = next_frame().await;
        if let Some(data) = f.strip_prefix("event: connection\ndata: ") {
            let c: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
            assert_eq!(
                (c["name"].as_str(), c["kind"].as_str()),
                (Some("relay"), Some("relay"))
            );
            frames.push(c["state"].as_str().unwrap().to_string());
            if frames.last().is_some_and(|s| s == "cursor_expired") && frames.len() >= 2 {
                break frames.clone();
            }
        }
    };
    assert_eq!(
        states.first().map(String::as_str),
        Some("reconnecting"),
        "{states:?}"
    );
    drop(daemon);
    relay.shutdown().await;
}

/// A running `kitedesk stream`, its stdout lines on a channel.
struct Streamer {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Streamer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Streamer {
    fn start(ws: &str, team: &str, token: &str, args: &[&str]) -> Streamer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kitedesk"))
            .env("KITEDESK_RELAY_TOKEN", token)
            .env("KITEDESK_LOG", "warn")
            .args(["stream", "--relay", ws, "--team", team])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for the handshake (stderr `Connected (last_seq: …)`).
        let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
        for line in err.by_ref() {
            if line.unwrap().starts_with("Connected") {
                break;
            }
        }
        std::thread::spawn(move || for _ in err {});
        let (tx, rx) = std::sync::mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for l in out.lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Streamer { child, lines: rx }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(DEADLINE)
            .expect("a line from kitedesk stream")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kitedesk_stream_prints_the_kite_cli_formats() {
    let s = setup().await;
    let http = reqwest::Client::new();
    let relay = Relay::start(relay_config(s.relay_dir.path()))
        .await
        .unwrap();
    let ws = relay.ws_url();
    let out_dir = tempfile::tempdir().unwrap();
    let out_file = out_dir.path().join("exec.ndjson");
    let pretty = Streamer::start(&ws, &s.team, &s.api_token, &[]);
    let compact = Streamer::start(&ws, &s.team, &s.api_token, &["--compact"]);
    let json_high = Streamer::start(
        &ws,
        &s.team,
        &s.api_token,
        &["--json", "--importance", "high"],
    );
    let typed = Streamer::start(
        &ws,
        &s.team,
        &s.api_token,
        &["--event-type", "com.stripe.*"],
    );
    let exec_cmd = format!(
        "cat >> '{}'; echo >> '{}'",
        out_file.display(),
        out_file.display()
    );
    let exec = Streamer::start(
        &ws,
        &s.team,
        &s.api_token,
        &["--exec", &exec_cmd, "--source", "app"],
    );

    post(&http, &relay, &s, 0..1).await;
    let stripe = serde_json::json!({
        "specversion": "1.0", "id": "evt_fail_1", "source": "https://api.stripe.com",
        "type": "com.stripe.payment_intent.payment_failed", "data": {"id": "evt_fail_1"}
    });
    let r = http
        .post(relay.hook_url(&s.team, "stripe"))
        .bearer_auth(&s.hook_token)
        .header("content-type", "application/cloudevents+json")
        .body(stripe.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    let line = pretty.line();
    let (time, rest) = line.split_once(' ').unwrap();
    assert!(
        time.len() == 10
            && time.starts_with('[')
            && time.ends_with(']')
            && time.as_bytes()[3] == b':',
        "{line}"
    );
    assert_eq!(rest, "#1 com.app.tick  tick 0");
    let second = pretty.line();
    assert!(
        second[11..].starts_with("#2 com.stripe.payment_intent.payment_failed  "),
        "{second:?}"
    );

    assert_eq!(compact.line(), "tick 0");
    // The relay's summary for it, or the type when it has none.
    assert!(compact.line().contains("payment"));

    // Only the critical one (built-in: payment failure) passes --importance high.
    let j: serde_json::Value = serde_json::from_str(&json_high.line()).unwrap();
    assert_eq!(
        (j["id"].as_str(), j["specversion"].as_str()),
        (Some("evt_fail_1"), Some("1.0"))
    );

    assert!(
        typed
            .line()
            .contains("com.stripe.payment_intent.payment_failed")
    );

    // --exec got the app event's CloudEvent on stdin (and not the stripe one).
    let written = eventually("the exec output", || async {
        let text = std::fs::read_to_string(&out_file).ok()?;
        (!text.trim().is_empty()).then_some(text)
    })
    .await;
    let ce: serde_json::Value = serde_json::from_str(written.lines().next().unwrap()).unwrap();
    assert_eq!(ce["id"], "e2e-00000");
    assert_eq!(ce["data"], serde_json::json!({"i": 0}));
    drop((pretty, compact, json_high, typed, exec));
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kitedesk_run_filters_enriches_scores_and_routes_to_sinks() {
    let s = setup().await;
    let http = reqwest::Client::new();
    let relay = Relay::start(relay_config(s.relay_dir.path()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.ndjson");
    let alerts = dir.path().join("alerts.ndjson");
    let manifest = dir.path().join("kite.json");
    let enrich = dir.path().join("enrich.sh");
    std::fs::write(
        &enrich,
        "#!/bin/sh\ncat >/dev/null\necho '{\"owner\": \"team-a\"}'\n",
    )
    .unwrap();
    std::fs::write(
        &manifest,
        serde_json::json!({
            "name": "e2e-run",
            "filters": {"drop": [{"type": "com.app.noise"}]},
            "enrichment": [{"match": {"source": "app"}, "run": format!("sh {}", enrich.display()), "timeout": "5s"}],
            "scoring": {"rules": [{"match": {"type": "com.app.alarm"}, "importance": "critical", "reason": "alarm"}]},
            "sink": {"type": "file", "path": all.display().to_string()},
            "sinks": {"alerts": {"type": "exec", "command": format!("cat >> '{}'; echo >> '{}'", alerts.display(), alerts.display()), "importance": "high"}},
            "routes": [{"match": {"type": "com.app.alarm"}, "sinks": ["alerts"]}]
        })
        .to_string(),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kitedesk"))
        .env("KITEDESK_RELAY_TOKEN", &s.api_token)
        .env("KITEDESK_LOG", "warn")
        .args(["run", "--manifest"])
        .arg(&manifest)
        .args(["--relay", &relay.ws_url(), "--team", &s.team])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in err.by_ref() {
        if line.unwrap().starts_with("Connected") {
            break;
        }
    }
    std::thread::spawn(move || for _ in err {});
    let url = relay.hook_url(&s.team, "app");
    for (id, ty) in [
        ("r1", "com.app.tick"),
        ("r2", "com.app.noise"),
        ("r3", "com.app.alarm"),
    ] {
        let body = serde_json::json!({"specversion": "1.0", "id": id, "source": "https://e2e.test/app", "type": ty, "data": {"id": id}});
        let r = http
            .post(&url)
            .bearer_auth(&s.hook_token)
            .header("content-type", "application/cloudevents+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let alert = eventually("the alarm at the routed exec sink", || async {
        let t = std::fs::read_to_string(&alerts).ok()?;
        (!t.trim().is_empty()).then_some(t)
    })
    .await;
    let ce: serde_json::Value = serde_json::from_str(alert.lines().next().unwrap()).unwrap();
    assert_eq!(ce["id"], "r3");
    assert_eq!(ce["kiteimportance"], "critical");
    assert_eq!(
        ce["data"]["kite_enrichment"]["owner"], "team-a",
        "enrichment reaches the sink"
    );
    let lines = eventually("the tick at the default file sink", || async {
        let t = std::fs::read_to_string(&all).ok()?;
        (!t.trim().is_empty()).then_some(t)
    })
    .await;
    let ids: Vec<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        ids,
        vec!["r1".to_string()],
        "noise dropped, alarm routed elsewhere"
    );
    let _ = child.kill();
    let _ = child.wait();
    relay.shutdown().await;
}
