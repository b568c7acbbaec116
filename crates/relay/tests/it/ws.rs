//! The Kite WebSocket protocol at `/ws`.

use std::time::Duration;

use kite_protocol::{ClientMessage, ServerMessage};
use kitedesk_relay::{Relay, TokenKind, admin};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Client, GH_SECRET, config, start, start_with};

fn error_code(m: &ServerMessage) -> Option<u32> {
    match m {
        ServerMessage::Error { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn connect_then_events_in_seq_order() {
    let env = start().await;
    env.post_demo("demo", &json!({"message": "before"})).await;
    let (mut c, first) = env.connect(&["*"], None).await;
    let ServerMessage::Connected {
        last_seq,
        client_id,
    } = first
    else {
        panic!("expected connected, got {first:?}");
    };
    assert_eq!(
        last_seq, 1,
        "a new client starts live, after the team's last seq"
    );
    assert!(!client_id.is_empty(), "the relay assigns a client id");
    for i in 0..20 {
        env.post_demo("demo", &json!({"message": format!("m{i}")}))
            .await;
    }
    let events = c.events(20).await;
    let seqs: Vec<u64> = events.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (2..=21).collect::<Vec<_>>(),
        "every event once, in seq order"
    );
    for (seq, ev) in &events {
        assert_eq!(
            ev["kiteseq"].as_u64(),
            Some(*seq),
            "kiteseq matches the frame seq"
        );
        assert_eq!(ev["specversion"], "1.0");
    }
    assert_eq!(events[0].1["data"]["message"], "m0");
}

#[tokio::test]
async fn acked_cursor_survives_reconnects_and_relay_restarts() {
    let env = start().await;
    let (mut c, _) = env.connect(&["*"], Some("desk-1")).await;
    for i in 0..5 {
        env.post_demo("demo", &json!({"message": i})).await;
    }
    let got = c.events(5).await;
    assert_eq!(got.last().unwrap().0, 5);
    c.ack(3).await;
    c.ws.close(None).await.unwrap();
    c.closed().await;

    env.post_demo("demo", &json!({"message": 5})).await;
    let (mut c, first) = env.connect(&["*"], Some("desk-1")).await;
    assert!(
        matches!(first, ServerMessage::Connected { last_seq: 3, ref client_id } if client_id == "desk-1"),
        "resumes from the acked seq: {first:?}"
    );
    let again: Vec<u64> = c.events(3).await.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        again,
        vec![4, 5, 6],
        "unacked events are delivered again, then the new one"
    );
    c.ack(6).await;
    c.ws.close(None).await.unwrap();
    c.closed().await;

    // Restart the relay on the same data dir: seqs and cursors persist.
    let dir = env.dir;
    env.relay.shutdown().await;
    let relay = Relay::start(config(dir.path(), |_| {})).await.unwrap();
    let env = crate::support::Env { relay, dir, ..env };
    let (s, r) = env
        .post_demo("demo", &json!({"message": "after restart"}))
        .await;
    assert_eq!(
        (s.as_u16(), r["seq"].as_u64()),
        (202, Some(7)),
        "seq continues after a restart"
    );
    let (mut c, first) = env.connect(&["*"], Some("desk-1")).await;
    assert!(
        matches!(first, ServerMessage::Connected { last_seq: 6, .. }),
        "{first:?}"
    );
    assert_eq!(c.events(1).await[0].0, 7);
}

#[tokio::test]
async fn cursor_expired_when_retention_removed_unacked_events() {
    let env = start_with(|c| c.retention.max_events_per_team = Some(3)).await;
    let (mut c, first) = env.connect(&["*"], Some("laptop")).await;
    assert!(matches!(
        first,
        ServerMessage::Connected { last_seq: 0, .. }
    ));
    c.ws.close(None).await.unwrap();
    c.closed().await;
    for i in 0..6 {
        env.post_demo("demo", &json!({"message": i})).await;
    }
    assert_eq!(
        env.relay.apply_retention().await.unwrap(),
        3,
        "events 1-3 removed"
    );
    let (mut c, first) = env.connect(&["*"], Some("laptop")).await;
    assert!(
        matches!(first, ServerMessage::Connected { last_seq: 0, .. }),
        "{first:?}"
    );
    match c.next().await {
        ServerMessage::CursorExpired {
            oldest_available_seq,
            message,
        } => {
            assert_eq!(oldest_available_seq, 4);
            assert!(message.contains('1'), "names the missed range: {message}");
        }
        other => panic!("expected cursor_expired, got {other:?}"),
    }
    let seqs: Vec<u64> = c.events(3).await.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        vec![4, 5, 6],
        "delivery goes on from the oldest available event"
    );
}

#[tokio::test]
async fn scopes_filter_by_source_and_type_glob() {
    let env = start().await;
    let (mut gh, _) = env.connect(&["source:github"], None).await;
    let (mut custom, _) = env.connect(&["type:com.myapp.*"], None).await;
    let (mut both, _) = env
        .connect(&["source:github", "type:com.myapp.*"], None)
        .await;
    env.post_demo("demo", &json!({"message": "demo"})).await; // 1
    env.post_github("d-1", GH_SECRET, Some(&env.hook)).await; // 2
    env.post_demo("myapp", &json!({"message": "mine"})).await; // 3
    env.post_github("d-2", GH_SECRET, Some(&env.hook)).await; // 4
    let seqs = |v: Vec<(u64, serde_json::Value)>| v.iter().map(|(s, _)| *s).collect::<Vec<_>>();
    assert_eq!(seqs(gh.events(2).await), vec![2, 4]);
    assert_eq!(seqs(custom.events(1).await), vec![3]);
    assert_eq!(seqs(both.events(3).await), vec![2, 3, 4], "scopes are OR'd");
    // An API token's own scopes bound what it can see.
    let narrow = admin::create_token(
        env.dir.path(),
        &env.team,
        TokenKind::Api,
        &["source:myapp".into()],
    )
    .await
    .unwrap();
    let mut c = Client::open(&env.relay.ws_url()).await;
    c.send(&ClientMessage::Connect {
        version: 1,
        token: narrow,
        team_id: env.team.clone(),
        scopes: vec!["*".into()],
        client_id: Some("narrow".into()),
    })
    .await;
    assert!(matches!(c.next().await, ServerMessage::Connected { .. }));
    env.post_github("d-3", GH_SECRET, Some(&env.hook)).await; // 5
    env.post_demo("myapp", &json!({"message": "again"})).await; // 6
    assert_eq!(seqs(c.events(1).await), vec![6]);
    // Bad scopes are refused at connect.
    let (mut bad, first) = env.connect(&["colour:blue"], None).await;
    assert_eq!(error_code(&first), Some(4002), "{first:?}");
    assert_eq!(bad.closed().await, Some(4002));
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_without_blocking_others() {
    let env = start_with(|c| {
        c.client_buffer = 4;
        c.slow_consumer_timeout = Duration::from_millis(300);
    })
    .await;
    let (mut slow, _) = env.connect(&["*"], Some("slow")).await;
    let (mut fast, _) = env.connect(&["*"], Some("fast")).await;
    // ~24 MB of events: more than the kernel's socket buffers hold for a
    // client that does not read. The fast client reads as they come.
    let n = 120;
    let fast = tokio::spawn(async move { fast.events(n).await });
    let big = "x".repeat(200_000);
    for i in 0..n {
        let (s, r) = env
            .post_demo("demo", &json!({"message": i, "pad": big}))
            .await;
        assert_eq!(s.as_u16(), 202, "{r}");
    }
    let got = fast.await.unwrap();
    assert_eq!(
        got.last().unwrap().0,
        n as u64,
        "the fast client got everything"
    );
    // The slow client has not read a byte. The relay's timeout is what is
    // under test, so let it pass (ingest can be quick enough to end well
    // within it) before reading: reading would unblock the relay.
    tokio::time::sleep(Duration::from_millis(900)).await;
    // Now drain the slow one: a prefix of the events, then 4004.
    let mut events = 0;
    let mut code = None;
    loop {
        match slow.raw().await {
            Some(Message::Text(t)) => {
                match serde_json::from_str::<ServerMessage>(t.as_str()).unwrap() {
                    ServerMessage::Event { .. } => events += 1,
                    ServerMessage::Error { code: c, .. } => code = Some(c),
                    other => panic!("unexpected {other:?}"),
                }
            }
            Some(Message::Close(f)) => {
                code = code.or(f.map(|f| u32::from(u16::from(f.code))));
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    assert!(
        events < n,
        "the slow client was cut off before the end ({events} events)"
    );
    assert_eq!(code, Some(4004), "cut off with the slow-consumer code");
}

#[tokio::test]
async fn bad_tokens_get_4001() {
    let env = start().await;
    for (token, team) in [
        ("kite_wrong".to_string(), env.team.clone()),
        (env.hook.clone(), env.team.clone()),
        (env.api.clone(), "team_other".to_string()),
    ] {
        let mut c = Client::open(&env.relay.ws_url()).await;
        c.send(&ClientMessage::Connect {
            version: 1,
            token,
            team_id: team,
            scopes: vec!["*".into()],
            client_id: None,
        })
        .await;
        let m = c.next().await;
        assert!(
            matches!(&m, ServerMessage::Error { code: 4001, message } if message == "Invalid API key"),
            "{m:?}"
        );
        assert_eq!(c.closed().await, Some(4001));
    }
}

#[tokio::test]
async fn bad_frames_are_answered_with_4002() {
    let env = start_with(|c| c.max_frame_bytes = 1024).await;
    // Before connect: anything but connect is refused and closed.
    let mut c = Client::open(&env.relay.ws_url()).await;
    c.send(&ClientMessage::Ack { seq: 1 }).await;
    assert_eq!(error_code(&c.next().await), Some(4002));
    assert_eq!(c.closed().await, Some(4002));

    let (mut c, _) = env.connect(&["*"], None).await;
    c.send_text("this is not json".into()).await;
    assert_eq!(error_code(&c.next().await), Some(4002), "not JSON");
    c.send_text(json!({"type": "ack", "seq": 1, "pad": "y".repeat(4096)}).to_string())
        .await;
    assert_eq!(
        error_code(&c.next().await),
        Some(4002),
        "frame over max_frame_bytes"
    );
    c.send_text(r#"{"type":"subscribe"}"#.into()).await;
    assert_eq!(error_code(&c.next().await), Some(4002), "unknown type");
    c.ack(99).await;
    match c.next().await {
        ServerMessage::Error {
            code: 4002,
            message,
        } => assert!(message.contains("99"), "{message}"),
        other => panic!("ack for a never-sent seq: {other:?}"),
    }
    // The connection is still usable afterwards.
    env.post_demo("demo", &json!({"message": "still here"}))
        .await;
    assert_eq!(c.events(1).await[0].0, 1);
    c.ack(1).await;
}

#[tokio::test]
async fn the_relay_pings_and_closes_sessions_on_shutdown() {
    let env = start_with(|c| c.ping_interval = Duration::from_millis(100)).await;
    let (mut c, _) = env.connect(&["*"], None).await;
    loop {
        match c.raw().await {
            Some(Message::Ping(_)) => break,
            Some(Message::Text(t)) => panic!("unexpected frame {t}"),
            Some(_) => {}
            None => panic!("closed before a ping"),
        }
    }
    let shutdown = tokio::spawn(env.relay.shutdown());
    assert_eq!(c.closed().await, Some(1001), "going away");
    tokio::time::timeout(crate::support::WAIT, shutdown)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn kite_cli_rpc_events_recent_and_unknown_methods() {
    let env = start().await;
    for i in 0..3 {
        env.post_demo("demo", &json!({"message": i})).await;
    }
    let (mut c, _) = env.connect(&["*"], None).await;
    c.send(&ClientMessage::Request {
        id: "r1".into(),
        method: "events.recent".into(),
        params: json!({"limit": 2}),
    })
    .await;
    match c.next().await {
        ServerMessage::Response {
            id,
            ok: true,
            payload,
        } => {
            assert_eq!(id, "r1");
            let seqs: Vec<u64> = payload["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap())
                .collect();
            assert_eq!(seqs, vec![3, 2], "newest first, limited");
            assert!(payload["events"][0]["event"]["kitesummary"].is_string());
        }
        other => panic!("expected a response, got {other:?}"),
    }
    c.send(&ClientMessage::Request {
        id: "r2".into(),
        method: "keys.create".into(),
        params: json!({}),
    })
    .await;
    match c.next().await {
        ServerMessage::Response {
            id,
            ok: false,
            payload,
        } => {
            assert_eq!(id, "r2");
            assert!(
                payload["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("keys.create"))
            );
        }
        other => panic!("expected a failed response, got {other:?}"),
    }
}
