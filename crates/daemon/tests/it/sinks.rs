//! `POST /api/sinks` and `DELETE /api/sinks/{name}` against a real daemon
//! (socket on 127.0.0.1:0, SQLite file, memory keychain shared across
//! restarts) forwarding to a real HTTP server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use kitedesk_core::Headers;
use kitedesk_core::verify::{self, Scheme, Secret};
use kitedesk_daemon::{Daemon, DaemonConfig, RunningDaemon};
use serde_json::{Value, json};

use crate::harness::config;

const SINK_SECRET: &str = "sink-resign-secret-never-echoed-91c2";

const MANIFEST: &str = r#"{
  "sources": [{"name": "myapp", "type": "generic", "verify": {"allowUnsigned": true}}],
  "sinks": {"archive": {"type": "proxy", "target": "http://127.0.0.1:9/hook"}},
  "outbox": {"retry": ["20ms"], "jitter": 0}
}"#;

type Hits = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A real HTTP server that records what it gets and answers 200.
async fn target() -> (String, Hits) {
    async fn receive(State(hits): State<Hits>, headers: HeaderMap, body: Bytes) -> &'static str {
        hits.lock().unwrap().push((headers, body));
        "got it"
    }
    let hits: Hits = Arc::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(hits.clone());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, hits)
}

fn daemon_config(
    dir: &std::path::Path,
    keychain: &Arc<kitedesk_secrets::MemoryKeychain>,
) -> DaemonConfig {
    let mut c = config(dir, MANIFEST, &[]);
    c.keychain = Some(keychain.clone());
    c
}

async fn call(
    d: &RunningDaemon,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", d.url()))
        .bearer_auth(d.api.token());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains(SINK_SECRET),
        "the secret is never echoed: {text}"
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn sinks(d: &RunningDaemon) -> Vec<Value> {
    let (status, v) = call(d, reqwest::Method::GET, "/api/sinks", None).await;
    assert_eq!(status, 200, "{v}");
    v["sinks"].as_array().unwrap().clone()
}

async fn ingest(d: &RunningDaemon, n: usize) -> i64 {
    let headers: Headers = [("content-type", "application/json")].into_iter().collect();
    d.api
        .ingest("myapp", &headers, format!(r#"{{"n":{n}}}"#).as_bytes())
        .await
        .unwrap()
        .id
}

async fn forward(d: &RunningDaemon, id: i64, sink: &str) -> (u16, Value) {
    call(
        d,
        reqwest::Method::POST,
        "/api/forward",
        Some(json!({"event_ids": [id], "target": {"sink": sink}})),
    )
    .await
}

/// The re-signed request verifies with the sink's secret.
fn assert_signed(hit: &(HeaderMap, Bytes)) {
    let got: Headers = hit
        .0
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    verify::verify(
        Scheme::Github,
        &got,
        &hit.1,
        &[Secret::new(SINK_SECRET)],
        chrono::Utc::now(),
        300,
    )
    .expect("re-signed with the sink's keychain secret");
}

fn file_has(dir: &std::path::Path, needle: &str) -> bool {
    ["history.db", "history.db-wal"].iter().any(|f| {
        std::fs::read(dir.join(f))
            .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .unwrap_or(false)
    })
}

#[tokio::test]
async fn a_sink_added_through_the_api_forwards_at_once_survives_a_restart_and_is_removed() {
    let (url, hits) = target().await;
    let dir = tempfile::tempdir().unwrap();
    let keychain = Arc::new(kitedesk_secrets::MemoryKeychain::new());
    let d = Daemon::start(daemon_config(dir.path(), &keychain))
        .await
        .unwrap();
    let listed = sinks(&d).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["name"], "archive");
    assert_eq!(listed[0]["origin"], "manifest");

    let (status, v) = call(
        &d,
        reqwest::Method::POST,
        "/api/sinks",
        Some(json!({"name": "ci", "url": url, "timeout_ms": 3000,
                    "resign": {"scheme": "github", "secret": SINK_SECRET}})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["origin"], "api");
    assert_eq!(v["kind"], "http");
    assert_eq!(v["target"], url.as_str());
    assert_eq!(v["resign_scheme"], "github");
    assert_eq!(v["secret_name"], "sink/ci");
    assert_eq!(v["timeout_ms"], 3000);
    {
        use kitedesk_secrets::Keychain as _;
        let stored = keychain.get("sink/ci").unwrap().unwrap();
        assert_eq!(
            stored.expose(),
            SINK_SECRET,
            "the secret went to the keychain"
        );
    }
    let names: Vec<Value> = sinks(&d)
        .await
        .iter()
        .map(|s| json!([s["name"], s["origin"]]))
        .collect();
    assert_eq!(
        names,
        [json!(["archive", "manifest"]), json!(["ci", "api"])]
    );

    // Usable at once.
    let id = ingest(&d, 1).await;
    let (status, v) = forward(&d, id, "ci").await;
    assert_eq!(status, 200, "{v}");
    let delivery = &v["deliveries"][0];
    assert_eq!(delivery["status"], "delivered", "{v}");
    assert_eq!(delivery["sink"], "ci");
    assert_eq!(delivery["last"]["response_body"], "got it");
    assert_eq!(hits.lock().unwrap().len(), 1);
    assert_signed(&hits.lock().unwrap()[0]);

    // Duplicate name: 409.
    let (status, v) = call(
        &d,
        reqwest::Method::POST,
        "/api/sinks",
        Some(json!({"name": "ci", "url": "http://127.0.0.1:1/x"})),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("sink_exists")),
        "{v}"
    );
    d.shutdown().await.unwrap();
    assert!(
        !file_has(dir.path(), SINK_SECRET),
        "the secret is not in the SQLite file"
    );

    // Restart: the sink is back, still re-signing with the keychain secret.
    let d = Daemon::start(daemon_config(dir.path(), &keychain))
        .await
        .unwrap();
    let back = sinks(&d).await;
    let ci = back
        .iter()
        .find(|s| s["name"] == "ci")
        .expect("ci survives a restart");
    assert_eq!(ci["origin"], "api");
    assert!(ci.get("error").is_none(), "{ci}");
    let id = ingest(&d, 2).await;
    let (status, v) = forward(&d, id, "ci").await;
    assert_eq!(
        (status, &v["deliveries"][0]["status"]),
        (200, &json!("delivered")),
        "{v}"
    );
    assert_eq!(hits.lock().unwrap().len(), 2);
    assert_signed(&hits.lock().unwrap()[1]);

    // Delete: gone from the list, no longer a forward target, its own
    // secret removed; and still gone after a restart.
    let (status, _) = call(&d, reqwest::Method::DELETE, "/api/sinks/ci", None).await;
    assert_eq!(status, 204);
    assert!(sinks(&d).await.iter().all(|s| s["name"] != "ci"));
    let (status, v) = forward(&d, id, "ci").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (404, Some("unknown_sink")),
        "{v}"
    );
    {
        use kitedesk_secrets::Keychain as _;
        assert!(
            keychain.get("sink/ci").unwrap().is_none(),
            "its secret went with it"
        );
    }
    let (status, v) = call(&d, reqwest::Method::DELETE, "/api/sinks/ci", None).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (404, Some("sink_not_found")),
        "{v}"
    );
    d.shutdown().await.unwrap();
    let d = Daemon::start(daemon_config(dir.path(), &keychain))
        .await
        .unwrap();
    let after: Vec<Value> = sinks(&d).await.iter().map(|s| s["name"].clone()).collect();
    assert_eq!(after, [json!("archive")]);
    assert_eq!(hits.lock().unwrap().len(), 2, "nothing more was sent");
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_sinks_are_refused_naming_the_field_and_manifest_sinks_are_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let keychain = Arc::new(kitedesk_secrets::MemoryKeychain::new());
    let d = Daemon::start(daemon_config(dir.path(), &keychain))
        .await
        .unwrap();
    for (body, field) in [
        (json!({"url": "http://127.0.0.1:1/x"}), "name:"),
        (
            json!({"name": "Has Spaces", "url": "http://127.0.0.1:1/x"}),
            "name:",
        ),
        (json!({"name": "a"}), "url:"),
        (json!({"name": "a", "url": "file:///etc/passwd"}), "url:"),
        (
            json!({"name": "a", "url": "http://127.0.0.1:1/x", "timeout_ms": -5}),
            "timeout_ms:",
        ),
        (
            json!({"name": "a", "url": "http://127.0.0.1:1/x", "kind": "exec"}),
            "kind:",
        ),
        (
            json!({"name": "a", "command": "touch /tmp/pwned"}),
            "command:",
        ),
        (
            json!({"name": "a", "url": "http://127.0.0.1:1/x", "resign": {"scheme": "sha1", "secret": SINK_SECRET}}),
            "resign.scheme:",
        ),
        // A reference to a secret the keychain does not have.
        (
            json!({"name": "a", "url": "http://127.0.0.1:1/x", "resign": {"scheme": "stripe", "secret_name": "nothing/here"}}),
            "resign.secret_name:",
        ),
    ] {
        let (status, v) = call(&d, reqwest::Method::POST, "/api/sinks", Some(body.clone())).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (400, Some("invalid_sink")),
            "{body}: {v}"
        );
        let message = v["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{body}: {message}");
    }
    let (status, v) = call(&d, reqwest::Method::POST, "/api/sinks", None).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (400, Some("invalid_body")),
        "{v}"
    );
    assert!(
        sinks(&d).await.iter().all(|s| s["name"] != "a"),
        "nothing was added"
    );

    // The manifest's sink: cannot be shadowed nor deleted.
    let (status, v) = call(
        &d,
        reqwest::Method::POST,
        "/api/sinks",
        Some(json!({"name": "archive", "url": "http://127.0.0.1:1/x"})),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("sink_configured")),
        "{v}"
    );
    let (status, v) = call(&d, reqwest::Method::DELETE, "/api/sinks/archive", None).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("sink_configured")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("kite.json"), "{v}");
    assert_eq!(sinks(&d).await.len(), 1);

    // A sink whose secret disappears is listed with the reason and refuses
    // to forward (nothing goes out unsigned).
    let (status, v) = call(
        &d,
        reqwest::Method::POST,
        "/api/sinks",
        Some(json!({"name": "signed", "url": "http://127.0.0.1:1/x",
                    "resign": {"scheme": "github", "secret": SINK_SECRET}})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let (status, _) = call(
        &d,
        reqwest::Method::DELETE,
        "/api/secrets/sink/signed",
        None,
    )
    .await;
    assert_eq!(status, 204);
    let id = ingest(&d, 1).await;
    let (status, v) = forward(&d, id, "signed").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("sink_unavailable")),
        "{v}"
    );
    let signed = sinks(&d)
        .await
        .into_iter()
        .find(|s| s["name"] == "signed")
        .unwrap();
    assert!(
        signed["error"].as_str().unwrap().contains("sink/signed"),
        "{signed}"
    );
    tokio::time::timeout(Duration::from_secs(10), d.shutdown())
        .await
        .unwrap()
        .unwrap();
}
