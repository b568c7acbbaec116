//! `GET /smee/{team}?token=…`: the smee.io-compatible SSE channel, read with
//! a streaming reqwest client.

use futures_util::StreamExt as _;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{GH_SECRET, WAIT, github_push, start};

/// A minimal SSE reader: `(event name, data)` per event, comments skipped.
struct Sse {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: String,
}

impl Sse {
    async fn open(url: &str) -> Sse {
        let resp = reqwest::get(url).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Sse {
            body: resp.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    async fn next(&mut self) -> (String, String) {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    let (mut event, mut data) = ("message".to_string(), Vec::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            event = v.trim_start().to_string();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
                        }
                    }
                    if data.is_empty() {
                        continue; // a keep-alive comment
                    }
                    return (event, data.join("\n"));
                }
                let chunk = self.body.next().await.expect("stream ended").unwrap();
                self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("no SSE event in time")
    }
}

#[tokio::test]
async fn new_webhooks_arrive_as_smee_messages() {
    let env = start().await;
    // Logged before the channel opened: not replayed (smee is live only).
    let (s, _) = env.post_demo("demo", &json!({"message": "before"})).await;
    assert_eq!(s, StatusCode::ACCEPTED);

    let url = format!(
        "{}/smee/{}?token={}",
        env.relay.base_url(),
        env.team,
        env.api
    );
    let mut sse = Sse::open(&url).await;
    assert_eq!(sse.next().await.0, "ready");

    let (s, r) = env
        .post_github("smee-delivery-1", GH_SECRET, Some(&env.hook))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let (event, data) = sse.next().await;
    assert_eq!(event, "message");
    let msg: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(msg["x-github-event"], "push");
    assert_eq!(msg["x-github-delivery"], "smee-delivery-1");
    assert_eq!(msg["content-type"], "application/json");
    assert!(
        msg["x-hub-signature-256"]
            .as_str()
            .unwrap()
            .starts_with("sha256=")
    );
    let sent: serde_json::Value = serde_json::from_slice(&github_push()).unwrap();
    assert_eq!(msg["body"], sent);
    assert_eq!(msg["query"], json!({}));
    let now = chrono::Utc::now().timestamp_millis();
    let ts = msg["timestamp"].as_i64().unwrap();
    assert!((now - 60_000..=now).contains(&ts), "{ts} vs {now}");

    // The hook token sent as a bearer header is never stored nor streamed.
    let url = env.relay.hook_url(&env.team, "demo");
    let bearer = format!("Bearer {}", env.hook);
    let (s, r) = env
        .post(
            &url,
            &[
                ("content-type", "application/json"),
                ("authorization", &bearer),
                ("x-trace", "t1"),
            ],
            br#"{"n": 2}"#.to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let msg: serde_json::Value = serde_json::from_str(&sse.next().await.1).unwrap();
    assert_eq!(msg["body"], json!({"n": 2}));
    assert_eq!(msg["x-trace"], "t1");
    assert!(msg.get("authorization").is_none(), "{msg}");
    assert!(msg.get("host").is_none(), "{msg}");
    assert!(!data.contains(&env.hook) && !msg.to_string().contains(&env.hook));
}

#[tokio::test]
async fn wrong_or_missing_tokens_get_401_and_no_stream() {
    let env = start().await;
    let base = format!("{}/smee/{}", env.relay.base_url(), env.team);
    let other = kitedesk_relay::admin::create_team(env.dir.path(), "other")
        .await
        .unwrap()
        .id;
    for url in [
        base.clone(),
        format!("{base}?token="),
        format!("{base}?token=kd_not_a_token"),
        // A hook token is not an API token.
        format!("{base}?token={}", env.hook),
        // A valid API token of another team.
        format!("{}/smee/{other}?token={}", env.relay.base_url(), env.api),
    ] {
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{url}");
        assert_ne!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "invalid_token", "{url}");
        assert!(body["message"].is_string());
    }
}

/// The real `smee-client` (node, installed under bench/tools/smee by
/// `make test` and `bench/setup.sh`) forwards a relay webhook to a local
/// target. A plain `cargo test` without that install skips it with a note;
/// under `make test` (`KITEDESK_REQUIRE_SMEE=1`) a missing install fails.
#[tokio::test]
async fn real_smee_client_forwards_to_a_local_target() {
    use tokio::io::AsyncBufReadExt as _;

    let js = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../bench/tools/smee/node_modules/smee-client/bin/smee.js");
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !js.exists() || !node_ok {
        assert!(
            std::env::var_os("KITEDESK_REQUIRE_SMEE").is_none(),
            "node or smee-client missing at {} (make test installs it)",
            js.display()
        );
        eprintln!("skipped: node or smee-client missing (run bash bench/setup.sh)");
        return;
    }
    let env = start().await;

    // The target: records each POST's headers and body.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let target = axum::Router::new().route(
        "/target",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, target).await });

    let url = format!(
        "{}/smee/{}?token={}",
        env.relay.base_url(),
        env.team,
        env.api
    );
    let mut child = tokio::process::Command::new("node")
        .arg(&js)
        .arg("--url")
        .arg(&url)
        .arg("--target")
        .arg(format!("http://{target_addr}/target"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // smee-client prints "Forwarding …" once its EventSource is open.
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("Forwarding") {
                return;
            }
        }
        panic!("smee-client exited before connecting");
    })
    .await
    .expect("smee-client did not connect in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let (s, r) = env
        .post_github("smee-node-1", GH_SECRET, Some(&env.hook))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    let (headers, body) = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("nothing forwarded in time")
        .unwrap();
    assert_eq!(headers["x-github-event"], "push");
    assert_eq!(headers["x-github-delivery"], "smee-node-1");
    let sent: serde_json::Value = serde_json::from_slice(&github_push()).unwrap();
    let got: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(got, sent);
    child.kill().await.unwrap();
}
