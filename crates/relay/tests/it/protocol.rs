//! Every Kite protocol frame (de)serialized with the `kite-protocol` types,
//! and the relay's own frames read back with them.

use kite_protocol::{ClientMessage, ServerMessage};
use kitedesk_relay::frames;
use serde_json::json;

use crate::support::start;

fn client_frames() -> Vec<ClientMessage> {
    vec![
        ClientMessage::Connect {
            version: 1,
            token: "kite_deadbeef_cafebabecafebabe".into(),
            team_id: "clerk-user:user_abc".into(),
            scopes: vec!["source:github".into(), "type:push".into()],
            client_id: Some("my-agent".into()),
        },
        ClientMessage::Connect {
            version: 1,
            token: "t".into(),
            team_id: "t".into(),
            scopes: vec!["*".into()],
            client_id: None,
        },
        ClientMessage::Ack { seq: u64::MAX },
        ClientMessage::Request {
            id: "0190a0b0-0000-7000-8000-000000000000".into(),
            method: "events.recent".into(),
            params: json!({"limit": 10}),
        },
    ]
}

#[test]
fn every_client_frame_round_trips_through_the_relay_parser() {
    for msg in client_frames() {
        let text = serde_json::to_string(&msg).unwrap();
        let parsed = frames::parse_client_frame(&text, 1 << 16).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), text, "{text}");
    }
    // What the Kite CLI sends without a client id (the field omitted).
    let bare = r#"{"type":"connect","version":1,"token":"t","team_id":"t","scopes":["*"]}"#;
    assert!(matches!(
        frames::parse_client_frame(bare, 1 << 16).unwrap(),
        ClientMessage::Connect {
            client_id: None,
            ..
        }
    ));
}

#[test]
fn every_server_frame_round_trips_and_event_frames_are_byte_identical() {
    let event = json!({"specversion": "1.0", "id": "e1", "source": "https://github.com/acme/api",
        "type": "com.github.push", "kitesummary": "alice pushed", "data": {"ref": "main"}, "kiteseq": 7});
    let all = vec![
        ServerMessage::Connected {
            last_seq: 3,
            client_id: "c".into(),
        },
        ServerMessage::CursorExpired {
            oldest_available_seq: 4,
            message: "gone".into(),
        },
        ServerMessage::Event {
            seq: 7,
            event: event.clone(),
        },
        ServerMessage::Response {
            id: "r".into(),
            ok: false,
            payload: json!({"error": "no"}),
        },
        ServerMessage::Error {
            code: kite_protocol::ERR_SLOW_CONSUMER,
            message: "slow consumer".into(),
        },
        ServerMessage::QuotaSnapshot {
            provider: "relay".into(),
            events_used: 1,
            events_limit: 2,
            current_period_end: "2026-12-01T00:00:00Z".into(),
        },
        ServerMessage::BillingBlock {
            provider: "relay".into(),
            reason: "quota".into(),
            retryable: true,
            action: json!(null),
        },
    ];
    for msg in all {
        let text = frames::server_frame(&msg);
        let back: ServerMessage = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }
    // The relay writes event frames around stored JSON without re-parsing:
    // the bytes must be what serializing ServerMessage::Event gives.
    let ours = frames::event_frame(7, &event.to_string());
    let theirs = serde_json::to_string(&ServerMessage::Event { seq: 7, event }).unwrap();
    assert_eq!(ours, theirs);
}

#[tokio::test]
async fn live_event_frames_parse_as_cloudevents_with_kite_extensions() {
    let env = start().await;
    let (mut c, _) = env.connect(&["*"], None).await;
    let (s, _) = env
        .post_github("ext-1", crate::support::GH_SECRET, Some(&env.hook))
        .await;
    assert_eq!(s.as_u16(), 202);
    let (seq, value) = c.events(1).await.remove(0);
    let ce: cloudevents::Event = serde_json::from_value(value).unwrap();
    assert_eq!(kite_protocol::get_kiteseq(&ce), Some(seq));
    assert!(kite_protocol::get_kitesummary(&ce).is_some_and(|s| s.contains("alice")));
    let headers = kite_protocol::get_kiteoriginalheaders(&ce).unwrap();
    assert_eq!(
        headers.get("x-github-event").map(String::as_str),
        Some("push")
    );
    assert!(
        !headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("authorization")),
        "credentials are never forwarded"
    );
}
