//! The SSE live feed over a real socket.

use futures_util::StreamExt as _;
use kitedesk_daemon::Daemon;

use crate::harness::*;

/// Read SSE frames until `want` frames of type `event` (or `ready`) arrived.
struct Sse {
    stream:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: String,
}

impl Sse {
    async fn open(url: &str, token: &str, last_event_id: Option<&str>) -> Sse {
        let mut req = reqwest::Client::new().get(url).bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Sse {
            stream: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next frame as (event, id, data), skipping keep-alive comments.
    async fn next(&mut self) -> (String, Option<String>, String) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let (mut ev, mut id, mut data) = (String::from("message"), None, String::new());
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        ev = v.trim().into()
                    }
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().into())
                    }
                    if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim())
                    }
                }
                if data.is_empty() && id.is_none() && ev == "message" {
                    continue;
                }
                return (ev, id, data);
            }
            let chunk =
                tokio::time::timeout(std::time::Duration::from_secs(10), self.stream.next())
                    .await
                    .expect("an SSE frame within 10 s")
                    .expect("stream open")
                    .unwrap();
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

async fn post(url: &str, n: usize) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{url}/hooks/myapp"))
        .body(format!(r#"{{"message":"live {n}"}}"#))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn live_feed_delivers_new_events_and_resumes_after_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(config(dir.path(), MANIFEST, &default_env()))
        .await
        .unwrap();
    let url = d.url();
    let token = d.api.token().to_string();

    let mut sse = Sse::open(&format!("{url}/api/stream"), &token, None).await;
    let (ev, _, _) = sse.next().await;
    assert_eq!(ev, "ready", "the feed says when it is live");
    let posted = post(&url, 1).await;
    let (ev, id, data) = sse.next().await;
    assert_eq!(ev, "event");
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data["summary"], "myapp: live 1");
    assert_eq!(id.as_deref(), Some(posted["id"].to_string().as_str()));
    drop(sse);

    // Two events arrive while disconnected; Last-Event-ID replays them in order.
    post(&url, 2).await;
    post(&url, 3).await;
    let mut sse = Sse::open(&format!("{url}/api/stream"), &token, id.as_deref()).await;
    let got: Vec<String> = [sse.next().await, sse.next().await]
        .into_iter()
        .map(|(_, _, d)| {
            serde_json::from_str::<serde_json::Value>(&d).unwrap()["summary"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(got, ["myapp: live 2", "myapp: live 3"]);
    assert_eq!(sse.next().await.0, "ready");

    // Filters apply to the live feed.
    let mut only_github = Sse::open(&format!("{url}/api/stream?source=github"), &token, None).await;
    assert_eq!(only_github.next().await.0, "ready");
    post(&url, 4).await;
    let body = github_push();
    let mut req = reqwest::Client::new()
        .post(format!("{url}/hooks/github"))
        .body(body.clone());
    for (k, v) in github_headers(&body, "gh-live", GH_SECRET) {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.unwrap().status(), 202);
    let (_, _, data) = only_github.next().await;
    assert!(
        data.contains("com.github.push"),
        "myapp's event was filtered out: {data}"
    );
    d.shutdown().await.unwrap();
}
