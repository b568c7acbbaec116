//! `/api/relays`: links added at runtime, against a real relay on
//! 127.0.0.1:0 and a real daemon (socket, SQLite file, memory keychain shared
//! across a restart).

use std::sync::Arc;
use std::time::Duration;

use kitedesk_daemon::links::{RelayLink, RelayToken};
use kitedesk_daemon::{Daemon, DaemonConfig, RunningDaemon};
use kitedesk_relay::{Relay, RelayConfig, RunningRelay, TokenKind, admin};
use kitedesk_testkit::eventually_within;
use serde_json::{Value, json};

use crate::harness::{MANIFEST, config, default_env};

const RELAY_TOKEN: &str = "kite-api-token-never-echoed-7f3a";

struct TestRelay {
    _dir: tempfile::TempDir,
    relay: RunningRelay,
    team: String,
    hook_token: String,
    api_token: String,
}

async fn relay() -> TestRelay {
    let dir = tempfile::tempdir().unwrap();
    let team = admin::create_team(dir.path(), "t").await.unwrap().id;
    let hook_token = admin::create_token(dir.path(), &team, TokenKind::Hook, &[])
        .await
        .unwrap();
    let api_token = admin::create_token(dir.path(), &team, TokenKind::Api, &[])
        .await
        .unwrap();
    let mut c = RelayConfig::new(dir.path());
    c.listen = "127.0.0.1:0".parse().unwrap();
    let relay = Relay::start(c).await.unwrap();
    TestRelay {
        _dir: dir,
        relay,
        team,
        hook_token,
        api_token,
    }
}

async fn post_hook(http: &reqwest::Client, r: &TestRelay, id: &str) {
    let body = json!({
        "specversion": "1.0", "id": id, "source": "https://it.test/app",
        "type": "com.app.tick", "kitesummary": "tick", "data": {"id": id}
    });
    let resp = http
        .post(r.relay.hook_url(&r.team, "app"))
        .bearer_auth(&r.hook_token)
        .header("content-type", "application/cloudevents+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "relay answered {}",
        resp.status()
    );
}

fn daemon_config(
    dir: &std::path::Path,
    keychain: &Arc<kitedesk_secrets::MemoryKeychain>,
) -> DaemonConfig {
    let mut c = config(dir, MANIFEST, &default_env());
    c.keychain = Some(keychain.clone());
    c
}

async fn call(
    http: &reqwest::Client,
    d: &RunningDaemon,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http
        .request(method, format!("{}{path}", d.url()))
        .bearer_auth(d.api.token());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains(RELAY_TOKEN),
        "the token is never echoed: {text}"
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn relays(http: &reqwest::Client, d: &RunningDaemon) -> Vec<Value> {
    let (status, v) = call(http, d, reqwest::Method::GET, "/api/relays", None).await;
    assert_eq!(status, 200, "{v}");
    v["relays"].as_array().unwrap().clone()
}

async fn has_event(d: &RunningDaemon, id: &str) -> bool {
    let page = d
        .api
        .store()
        .list(&kitedesk_store::EventQuery {
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    page.events.iter().any(|e| e.event.id == id)
}

#[tokio::test]
async fn a_relay_link_added_through_the_api_connects_survives_a_restart_and_is_removed() {
    let r = relay().await;
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let keychain = Arc::new(kitedesk_secrets::MemoryKeychain::new());
    let d = Daemon::start(daemon_config(dir.path(), &keychain))
        .await
        .unwrap();
    assert!(relays(&http, &d).await.is_empty());

    let (status, v) = call(
        &http,
        &d,
        reqwest::Method::POST,
        "/api/relays",
        Some(
            json!({"name": "work", "url": r.relay.ws_url(), "team_id": r.team,
                    "scopes": ["source:app"], "token": r.api_token}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["origin"], "api");
    assert_eq!(v["token_from"], "keychain:relay/work");
    assert!(!v.to_string().contains(&r.api_token), "{v}");
    assert_eq!(
        keychain_value(&keychain, "relay/work").as_deref(),
        Some(r.api_token.as_str()),
        "the token went to the keychain"
    );

    eventually_within(
        Duration::from_secs(20),
        "the added link to connect",
        || async {
            let l = relays(&http, &d).await;
            (l.len() == 1 && l[0]["state"] == "connected").then_some(())
        },
    )
    .await;
    post_hook(&http, &r, "it-relay-1").await;
    eventually_within(
        Duration::from_secs(20),
        "the relayed event in the history",
        || async { has_event(&d, "it-relay-1").await.then_some(()) },
    )
    .await;

    // Same name again: 409.
    let (status, v) = call(
        &http,
        &d,
        reqwest::Method::POST,
        "/api/relays",
        Some(json!({"name": "work", "url": r.relay.ws_url(), "team_id": r.team})),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("relay_exists")),
        "{v}"
    );

    d.shutdown().await.unwrap();
    let db = std::fs::read(dir.path().join("history.db")).unwrap();
    assert!(
        !db.windows(r.api_token.len())
            .any(|w| w == r.api_token.as_bytes()),
        "the token is not in the SQLite file"
    );

    // Restart: the link is restored (token from the keychain) and relays again.
    let d = Daemon::start(daemon_config(dir.path(), &keychain))
        .await
        .unwrap();
    eventually_within(
        Duration::from_secs(20),
        "the restored link to connect",
        || async {
            let l = relays(&http, &d).await;
            (l.len() == 1
                && l[0]["name"] == "work"
                && l[0]["origin"] == "api"
                && l[0]["state"] == "connected")
                .then_some(())
        },
    )
    .await;
    post_hook(&http, &r, "it-relay-2").await;
    eventually_within(
        Duration::from_secs(20),
        "an event after the restart",
        || async { has_event(&d, "it-relay-2").await.then_some(()) },
    )
    .await;

    // Delete: gone from the list, the connections, the keychain; events
    // posted afterwards no longer arrive.
    let (status, _) = call(&http, &d, reqwest::Method::DELETE, "/api/relays/work", None).await;
    assert_eq!(status, 204);
    assert!(relays(&http, &d).await.is_empty());
    let health = d.api.connections();
    assert!(health.iter().all(|c| c.name != "work"), "{health:?}");
    assert_eq!(keychain_value(&keychain, "relay/work"), None);
    let (status, v) = call(&http, &d, reqwest::Method::DELETE, "/api/relays/work", None).await;
    assert_eq!((status, v["code"].as_str()), (404, Some("relay_not_found")));
    d.shutdown().await.unwrap();

    // And it stays gone after a restart.
    let d = Daemon::start(daemon_config(dir.path(), &keychain))
        .await
        .unwrap();
    assert!(relays(&http, &d).await.is_empty());
    assert!(d.api.connections().iter().all(|c| c.name != "work"));
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_link_without_a_token_waits_for_its_secret() {
    let r = relay().await;
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let keychain = Arc::new(kitedesk_secrets::MemoryKeychain::new());
    let d = Daemon::start(daemon_config(dir.path(), &keychain))
        .await
        .unwrap();
    let (status, v) = call(
        &http,
        &d,
        reqwest::Method::POST,
        "/api/relays",
        Some(json!({"name": "later", "url": r.relay.ws_url(), "team_id": r.team})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["state"], "offline", "{v}");
    assert!(v["error"].as_str().unwrap().contains("relay/later"), "{v}");
    let (status, v) = call(
        &http,
        &d,
        reqwest::Method::POST,
        "/api/secrets",
        Some(json!({"name": "relay/later", "value": r.api_token})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    eventually_within(
        Duration::from_secs(20),
        "the link to start once its secret is set",
        || async {
            let l = relays(&http, &d).await;
            (l[0]["state"] == "connected").then_some(())
        },
    )
    .await;
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_relays_are_refused_naming_the_field_and_configured_ones_are_read_only() {
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let keychain = Arc::new(kitedesk_secrets::MemoryKeychain::new());
    let mut c = daemon_config(dir.path(), &keychain);
    c.relays.push(RelayLink {
        name: "cfg".into(),
        url: "ws://127.0.0.1:9/ws".into(),
        team_id: "t1".into(),
        token: RelayToken::Keychain("relay/cfg".into()),
        scopes: Vec::new(),
        ping_interval: None,
        backoff_initial: None,
    });
    let d = Daemon::start(c).await.unwrap();
    let ok =
        json!({"name": "x", "url": "ws://127.0.0.1:9/ws", "team_id": "t", "token": RELAY_TOKEN});
    let cases = [
        ("name", json!({"name": "Bad Name"})),
        ("name", json!({"name": "local"})),
        ("url", json!({"url": "ftp://relay.example"})),
        ("url", json!({"url": "ws://user:pw@relay.example/ws"})),
        ("url", json!({"url": "not a url"})),
        ("team_id", json!({"team_id": " "})),
        ("scopes", json!({"scopes": ["source:app", "colour:red"]})),
        ("scopes", json!({"scopes": ["github"]})),
    ];
    for (field, patch) in cases {
        let mut body = ok.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, v) = call(
            &http,
            &d,
            reqwest::Method::POST,
            "/api/relays",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["code"], "invalid_relay", "{v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{field}:")),
            "{body}: {v}"
        );
    }
    // A body that does not parse is refused without echoing it.
    let (status, v) = call(
        &http,
        &d,
        reqwest::Method::POST,
        "/api/relays",
        Some(json!({"name": "x", "token": [RELAY_TOKEN]})),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("invalid_body")),
        "{v}"
    );
    assert_eq!(
        keychain_value(&keychain, "relay/x"),
        None,
        "nothing stored for a refused link"
    );

    let l = relays(&http, &d).await;
    assert_eq!(l.len(), 1);
    assert_eq!(
        (l[0]["name"].as_str(), l[0]["origin"].as_str()),
        (Some("cfg"), Some("config"))
    );
    assert_eq!(l[0]["removable"], false);
    let (status, v) = call(&http, &d, reqwest::Method::DELETE, "/api/relays/cfg", None).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("relay_configured")),
        "{v}"
    );
    let (status, v) = call(
        &http,
        &d,
        reqwest::Method::POST,
        "/api/relays",
        Some(json!({"name": "cfg", "url": "ws://127.0.0.1:9/ws", "team_id": "t"})),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("relay_configured")),
        "{v}"
    );
    d.shutdown().await.unwrap();
}

fn keychain_value(k: &kitedesk_secrets::MemoryKeychain, name: &str) -> Option<String> {
    use kitedesk_secrets::Keychain as _;
    k.get(name).unwrap().map(|s| s.expose().to_string())
}

/// The `event: connection` frames of the live feed, as JSON.
struct ConnectionFeed {
    stream:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl ConnectionFeed {
    async fn open(d: &RunningDaemon) -> ConnectionFeed {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/stream", d.url()))
            .bearer_auth(d.api.token())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        ConnectionFeed {
            stream: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next `connection` frame's data.
    async fn next(&mut self) -> Value {
        use futures_util::StreamExt as _;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                if frame.lines().any(|l| l.trim() == "event: connection") {
                    let data: String = frame
                        .lines()
                        .filter_map(|l| l.strip_prefix("data:"))
                        .map(str::trim)
                        .collect();
                    return serde_json::from_str(&data).unwrap();
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("a live-feed frame within 10 s")
                .expect("the live feed is open")
                .unwrap();
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test]
async fn a_removed_link_is_announced_on_the_live_feed_and_leaves_health_and_the_store() {
    let r = relay().await;
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let keychain = Arc::new(kitedesk_secrets::MemoryKeychain::new());
    let d = Daemon::start(daemon_config(dir.path(), &keychain))
        .await
        .unwrap();
    let (status, v) = call(
        &http,
        &d,
        reqwest::Method::POST,
        "/api/relays",
        Some(json!({"name": "gone", "url": r.relay.ws_url(), "team_id": r.team, "token": r.api_token})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    eventually_within(Duration::from_secs(20), "the link to connect", || async {
        let l = relays(&http, &d).await;
        (l.len() == 1 && l[0]["state"] == "connected").then_some(())
    })
    .await;
    assert!(
        d.api.store().link_cursor("gone").await.unwrap().is_some(),
        "a running link has its cursor row"
    );

    let mut feed = ConnectionFeed::open(&d).await;
    let (status, _) = call(&http, &d, reqwest::Method::DELETE, "/api/relays/gone", None).await;
    assert_eq!(status, 204);
    // Whatever the link said while stopping, the last word is `removed`.
    let last = loop {
        let c = feed.next().await;
        if c["name"] == "gone" && c["state"] == "removed" {
            break c;
        }
        assert_eq!(c["name"], "gone", "only the removed link changed: {c}");
    };
    assert_eq!(last["kind"], "relay");
    assert!(last["since"].is_string(), "{last}");

    let (status, health) = call(&http, &d, reqwest::Method::GET, "/api/health", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = health["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["local"], "{health}");
    assert!(
        d.api.store().link_cursor("gone").await.unwrap().is_none(),
        "its cursor row is gone"
    );
    d.shutdown().await.unwrap();
}
