//! Events, deliveries and a real HTTP server that records what it receives.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::{DateTime, Utc};
use kitedesk_core::verify::{self, Scheme, Secret};
use kitedesk_core::{Headers, Importance, KiteEvent, Verification};
use kitedesk_sinks::Delivery;
use tokio::sync::mpsc;

/// The GitHub App secret the "provider" signed with.
pub const PROVIDER_SECRET: &str = "provider-secret";

/// A payload whose exact bytes (spacing, key order, `1.0`) a re-serializing
/// forwarder would change.
pub const PAYLOAD: &str =
    "{\"zen\":  \"Keep it logically awesome.\",\n  \"hook_id\": 1, \"ratio\": 1.0, \"b\":[ ]}";

pub fn event(id: &str, ty: &str, source: &str) -> KiteEvent {
    KiteEvent {
        id: id.into(),
        source: source.into(),
        ty: ty.into(),
        time: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        source_name: kitedesk_core::event::derive_source_name(ty).into(),
        summary: format!("summary of {id}"),
        data: serde_json::json!({"n": 1}).into(),
        seq: None,
        original_headers: Headers::new(),
        verification: Verification::unverified("unsigned source"),
        importance: Importance::High,
        importance_reason: "test".into(),
    }
}

/// A GitHub ping as it arrived at a relay for team `team_abc`, signed by the
/// provider, with transport headers that must not be forwarded.
pub fn github_delivery() -> Delivery {
    let now = Utc::now();
    let mut headers: Headers = [
        ("Host", "hooks.example.com"),
        ("Content-Length", "9999"),
        ("Connection", "keep-alive"),
        ("Transfer-Encoding", "chunked"),
        ("Accept-Encoding", "gzip"),
        ("Content-Type", "application/json"),
        ("User-Agent", "GitHub-Hookshot/abc123"),
        ("X-GitHub-Event", "ping"),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    ]
    .into_iter()
    .collect();
    let provider = Secret::new(PROVIDER_SECRET);
    for (name, value) in verify::sign(Scheme::Github, &provider, PAYLOAD.as_bytes(), now, "m") {
        headers.insert(name, value);
    }
    // GitHub's legacy SHA-1 signature rides along too.
    headers.insert(
        "X-Hub-Signature",
        "sha1=0000000000000000000000000000000000000000",
    );
    let mut ev = event(
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "com.github.ping",
        "https://getkite.sh/hooks/team_abc/github",
    );
    ev.data = kitedesk_core::Payload::from_text(PAYLOAD.to_string());
    ev.original_headers = headers;
    Delivery::new(ev, PAYLOAD)
}

/// A request as the server saw it.
#[derive(Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The received headers as the core's type, for `verify`.
    pub fn core_headers(&self) -> Headers {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap().to_string()))
            .collect()
    }
}

/// A local HTTP server on 127.0.0.1:0. Every request is sent to `received`
/// before the handler answers, so once an attempt has its response the
/// request is already in the channel.
pub struct TestServer {
    pub base: String,
    pub received: mpsc::Receiver<Received>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The next request the server got.
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.received.recv())
            .await
            .expect("the server received no request within 10 s")
            .unwrap()
    }
}

type Tx = mpsc::Sender<Received>;

async fn record(tx: &Tx, uri: Uri, headers: HeaderMap, body: Bytes) {
    tx.send(Received {
        path: uri.path().to_string(),
        headers,
        body,
    })
    .await
    .unwrap();
}

pub async fn server() -> TestServer {
    let (tx, rx) = mpsc::channel(64);
    let app = Router::new()
        .route(
            "/ok",
            post(
                |State(tx): State<Tx>, uri: Uri, h: HeaderMap, b: Bytes| async move {
                    record(&tx, uri, h, b).await;
                    "ok"
                },
            ),
        )
        .route(
            "/fail",
            post(
                |State(tx): State<Tx>, uri: Uri, h: HeaderMap, b: Bytes| async move {
                    record(&tx, uri, h, b).await;
                    (StatusCode::INTERNAL_SERVER_ERROR, "database is down")
                },
            ),
        )
        .route(
            "/redirect",
            post(
                |State(tx): State<Tx>, uri: Uri, h: HeaderMap, b: Bytes| async move {
                    record(&tx, uri, h, b).await;
                    (StatusCode::FOUND, [(header::LOCATION, "/ok")], "moved").into_response()
                },
            ),
        )
        .route(
            "/slow",
            post(
                |State(tx): State<Tx>, uri: Uri, h: HeaderMap, b: Bytes| async move {
                    record(&tx, uri, h, b).await;
                    // The server under test is slow; the client's timeout must
                    // end the attempt long before this.
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "too late"
                },
            ),
        )
        .route(
            "/big",
            post(
                |State(tx): State<Tx>, uri: Uri, h: HeaderMap, b: Bytes| async move {
                    record(&tx, uri, h, b).await;
                    // 3-byte characters: a 4 KiB cut falls inside one.
                    "€".repeat(10_000)
                },
            ),
        )
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestServer {
        base: format!("http://{addr}"),
        received: rx,
    }
}
