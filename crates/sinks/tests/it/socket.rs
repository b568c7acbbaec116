//! The Unix-socket sink against a real listener.

use tokio::io::AsyncBufReadExt as _;
use tokio::net::UnixListener;
use tokio::sync::mpsc;

use kitedesk_sinks::{Delivery, Failure, SocketSink};

use crate::support::event;

fn delivery(id: &str) -> Delivery {
    Delivery::new(event(id, "com.acme.event", "https://acme.example"), "{}")
}

#[tokio::test]
async fn a_listener_receives_one_json_line_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kite.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let mut lines = tokio::io::BufReader::new(stream).lines();
            while let Some(line) = lines.next_line().await.unwrap() {
                tx.send(line).await.unwrap();
            }
        }
    });

    let sink = SocketSink::new(&path);
    for id in ["e1", "e2"] {
        let attempt = sink.deliver(&delivery(id)).await;
        assert!(attempt.is_delivered(), "{attempt:?}");
    }
    for id in ["e1", "e2"] {
        let line = rx.recv().await.unwrap();
        let ce: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(ce["id"], id);
        assert_eq!(ce["specversion"], "1.0");
    }
}

#[tokio::test]
async fn no_listener_is_a_connect_failure_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("missing.sock");
    match SocketSink::new(&missing)
        .deliver(&delivery("e1"))
        .await
        .failure()
    {
        Some(Failure::Connect(why)) => {
            assert!(why.contains("no socket at this path"), "{why}");
            assert!(why.contains("missing.sock"), "names the path: {why}");
        }
        other => panic!("expected a connect failure, got {other:?}"),
    }

    // A socket file left behind by a listener that has gone away.
    let stale = dir.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    match SocketSink::new(&stale)
        .deliver(&delivery("e1"))
        .await
        .failure()
    {
        Some(Failure::Connect(why)) => {
            assert!(why.contains("nothing is listening"), "{why}");
        }
        other => panic!("expected a connect failure, got {other:?}"),
    }
}
