//! Protocol edges of the link against a scripted WebSocket server on
//! 127.0.0.1:0: what the client sends, when it acks, what it does with
//! `cursor_expired`, an auth error, a slow-consumer cut and a dead socket.
//! (The end-to-end tests against the real relay are in crates/cli/tests.)

#![expect(clippy::unwrap_used, reason = "tests")]

mod fuzz_regression;

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use kite_protocol::{ClientMessage, ServerMessage};
use kitedesk_stream::{Backoff, Gap, Link, LinkConfig, State, Status, Token};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Upper bound for anything to happen; tests wait on conditions, never sleep.
const DEADLINE: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<TcpStream>;

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", l.local_addr().unwrap());
    (l, url)
}

async fn accept(l: &TcpListener) -> Ws {
    let (tcp, _) = tokio::time::timeout(DEADLINE, l.accept())
        .await
        .expect("client connects")
        .unwrap();
    tokio_tungstenite::accept_async(tcp).await.unwrap()
}

/// The next client frame that is a protocol message (skips pings).
async fn recv(ws: &mut Ws) -> ClientMessage {
    loop {
        let msg = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a client frame")
            .expect("socket open")
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).expect("a kite-protocol ClientMessage");
        }
    }
}

async fn send(ws: &mut Ws, m: &ServerMessage) {
    ws.send(Message::text(serde_json::to_string(m).unwrap()))
        .await
        .unwrap();
}

fn event(seq: u64) -> ServerMessage {
    ServerMessage::Event {
        seq,
        event: serde_json::json!({
            "specversion": "1.0", "id": format!("e{seq}"), "source": "https://relay/hooks/t1/demo",
            "type": "com.demo.event", "kiteseq": seq, "data": {"n": seq}
        }),
    }
}

fn config(url: &str) -> LinkConfig {
    let mut c = LinkConfig::new(url, "team-1", Token::new("kite_test_token"));
    c.client_id = Some("client-abc".into());
    c.scopes = vec!["source:demo".into()];
    c.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        jitter: 0.5,
    };
    c
}

async fn wait_status(
    rx: &mut tokio::sync::watch::Receiver<Status>,
    f: impl FnMut(&Status) -> bool,
) -> Status {
    tokio::time::timeout(DEADLINE, rx.wait_for(f))
        .await
        .expect("status reached in time")
        .unwrap()
        .clone()
}

#[tokio::test]
async fn connect_frame_and_ack_only_after_commit() {
    let (l, url) = listener().await;
    let (link, mut events) = Link::spawn(config(&url), None);
    let mut ws = accept(&l).await;
    match recv(&mut ws).await {
        ClientMessage::Connect {
            version,
            token,
            team_id,
            scopes,
            client_id,
        } => {
            assert_eq!(version, 1);
            assert_eq!(token, "kite_test_token");
            assert_eq!(team_id, "team-1");
            assert_eq!(scopes, vec!["source:demo".to_string()]);
            assert_eq!(client_id.as_deref(), Some("client-abc"));
        }
        other => panic!("first frame must be connect, got {other:?}"),
    }
    send(
        &mut ws,
        &ServerMessage::Connected {
            last_seq: 0,
            client_id: "client-abc".into(),
        },
    )
    .await;
    for seq in 1..=3 {
        send(&mut ws, &event(seq)).await;
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        let ev = tokio::time::timeout(DEADLINE, events.recv())
            .await
            .unwrap()
            .unwrap();
        let event: serde_json::Value = serde_json::from_str(ev.event.get()).unwrap();
        got.push((ev.seq, event["id"].as_str().unwrap().to_string()));
    }
    assert_eq!(
        got,
        vec![(1, "e1".into()), (2, "e2".into()), (3, "e3".into())]
    );
    let mut watch = link.watch();
    assert_eq!(
        wait_status(&mut watch, |s| s.state == State::Connected)
            .await
            .state,
        State::Connected
    );
    // Every event has been handed over, none committed: the first ack the
    // relay sees must be the first commit, not anything earlier.
    let committer = link.committer();
    committer.commit(1);
    assert!(matches!(recv(&mut ws).await, ClientMessage::Ack { seq: 1 }));
    committer.commit(3);
    assert!(matches!(recv(&mut ws).await, ClientMessage::Ack { seq: 3 }));
    assert_eq!(link.status().last_seq, Some(3));
    link.shutdown().await;
}

#[tokio::test]
async fn cursor_expired_is_surfaced_with_the_gap() {
    let (l, url) = listener().await;
    let (link, mut events) = Link::spawn(config(&url), Some(10));
    let mut ws = accept(&l).await;
    let _connect = recv(&mut ws).await;
    send(
        &mut ws,
        &ServerMessage::CursorExpired {
            oldest_available_seq: 50,
            message: "cursor 10 is older than the retention window".into(),
        },
    )
    .await;
    send(
        &mut ws,
        &ServerMessage::Connected {
            last_seq: 60,
            client_id: "client-abc".into(),
        },
    )
    .await;
    send(&mut ws, &event(50)).await;
    let mut watch = link.watch();
    let s = wait_status(&mut watch, |s| s.state == State::CursorExpired).await;
    assert_eq!(s.gap, Some(Gap { from: 11, to: 49 }));
    assert!(s.error.unwrap().contains("retention window"));
    // Events after the gap still flow and are acked after commit.
    let ev = tokio::time::timeout(DEADLINE, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.seq, 50);
    link.committer().commit(50);
    assert!(matches!(
        recv(&mut ws).await,
        ClientMessage::Ack { seq: 50 }
    ));
    link.shutdown().await;
}

#[tokio::test]
async fn bad_token_is_reported_offline() {
    let (l, url) = listener().await;
    let (link, _events) = Link::spawn(config(&url), None);
    let mut ws = accept(&l).await;
    let _connect = recv(&mut ws).await;
    send(
        &mut ws,
        &ServerMessage::Error {
            code: kite_protocol::ERR_AUTH_FAILED,
            message: "Invalid API key".into(),
        },
    )
    .await;
    let mut watch = link.watch();
    let s = wait_status(&mut watch, |s| s.state == State::Offline).await;
    let err = s.error.unwrap();
    assert!(
        err.contains("Invalid API key") && err.contains("4001"),
        "{err}"
    );
    assert!(!err.contains("kite_test_token"), "the token never shows");
    link.shutdown().await;
}

#[tokio::test]
async fn dead_connection_is_detected_and_replaced() {
    let (l, url) = listener().await;
    let mut cfg = config(&url);
    cfg.ping_interval = Duration::from_millis(100);
    let (link, _events) = Link::spawn(cfg, None);
    let mut first = accept(&l).await;
    let _connect = recv(&mut first).await;
    send(
        &mut first,
        &ServerMessage::Connected {
            last_seq: 0,
            client_id: "client-abc".into(),
        },
    )
    .await;
    let mut watch = link.watch();
    wait_status(&mut watch, |s| s.state == State::Connected).await;
    // From here the server neither reads nor writes: pings go unanswered,
    // like a peer behind a dropped NAT mapping. The socket stays open.
    let s = wait_status(&mut watch, |s| s.state == State::Reconnecting).await;
    let err = s.error.unwrap();
    assert!(err.contains("nothing received for 200ms"), "{err}");
    // …and it connects again on its own.
    let mut second = accept(&l).await;
    assert!(matches!(
        recv(&mut second).await,
        ClientMessage::Connect { .. }
    ));
    drop(first);
    link.shutdown().await;
}

#[tokio::test]
async fn slow_consumer_cut_reconnects_and_redelivery_is_acked_again() {
    let (l, url) = listener().await;
    let (link, mut events) = Link::spawn(config(&url), None);
    let mut ws = accept(&l).await;
    let _ = recv(&mut ws).await;
    send(
        &mut ws,
        &ServerMessage::Connected {
            last_seq: 0,
            client_id: "client-abc".into(),
        },
    )
    .await;
    send(&mut ws, &event(1)).await;
    send(&mut ws, &event(2)).await;
    let e1 = events.recv().await.unwrap();
    let _e2 = events.recv().await.unwrap();
    link.committer().commit(e1.seq);
    assert!(matches!(recv(&mut ws).await, ClientMessage::Ack { seq: 1 }));
    send(
        &mut ws,
        &ServerMessage::Error {
            code: kite_protocol::ERR_SLOW_CONSUMER,
            message: "slow consumer".into(),
        },
    )
    .await;
    let mut watch = link.watch();
    let s = wait_status(&mut watch, |s| s.state == State::Reconnecting).await;
    assert!(s.error.unwrap().contains("4004"));
    // The relay resumes from the acked cursor: seq 2 again. The consumer
    // commits it (a duplicate for the history) and it is acked on the new
    // connection.
    let mut ws2 = accept(&l).await;
    let _ = recv(&mut ws2).await;
    send(
        &mut ws2,
        &ServerMessage::Connected {
            last_seq: 1,
            client_id: "client-abc".into(),
        },
    )
    .await;
    send(&mut ws2, &event(2)).await;
    let again = events.recv().await.unwrap();
    assert_eq!(again.seq, 2);
    link.committer().commit(2);
    assert!(matches!(
        recv(&mut ws2).await,
        ClientMessage::Ack { seq: 2 }
    ));
    link.shutdown().await;
}

#[tokio::test]
async fn unknown_and_garbage_frames_are_skipped() {
    let (l, url) = listener().await;
    let (link, mut events) = Link::spawn(config(&url), None);
    let mut ws = accept(&l).await;
    let _ = recv(&mut ws).await;
    ws.send(Message::text(r#"{"type":"hello_from_the_future"}"#))
        .await
        .unwrap();
    ws.send(Message::text("not json")).await.unwrap();
    send(
        &mut ws,
        &ServerMessage::Connected {
            last_seq: 0,
            client_id: "x".into(),
        },
    )
    .await;
    send(
        &mut ws,
        &ServerMessage::QuotaSnapshot {
            provider: "kite".into(),
            events_used: 1,
            events_limit: 100,
            current_period_end: "2026-12-01T00:00:00Z".into(),
        },
    )
    .await;
    ws.send(Message::text("{\"type\":\"event\"}"))
        .await
        .unwrap();
    send(&mut ws, &event(7)).await;
    let ev = tokio::time::timeout(DEADLINE, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.seq, 7);
    link.shutdown().await;
}
