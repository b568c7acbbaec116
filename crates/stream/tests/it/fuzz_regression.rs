//! Frames the `relay_event` fuzz target found where the link's fast reading
//! (`event_frame`) and `ServerMessage` disagreed.

use kite_protocol::ServerMessage;
use kitedesk_stream::event_frame;

/// What the fast path takes, `ServerMessage` reads as the same event frame;
/// returns whether the fast path took it.
fn agrees_with_the_protocol_type(frame: &str) -> bool {
    let reference = serde_json::from_str::<ServerMessage>(frame);
    let Some(incoming) = event_frame(frame) else {
        return false;
    };
    match reference {
        Ok(ServerMessage::Event { seq, event }) => {
            assert_eq!(seq, incoming.seq, "{frame}");
            let fast: serde_json::Value = serde_json::from_str(incoming.event.get()).unwrap();
            assert_eq!(fast, event, "{frame}");
        }
        other => panic!("the fast path took {frame}, which ServerMessage reads as {other:?}"),
    }
    true
}

#[test]
fn fuzz_regression_lone_surrogate_escape_goes_to_the_slow_path() {
    let frame = include_str!("../fuzz-relay_event-lone-surrogate.json");
    assert!(
        serde_json::from_str::<ServerMessage>(frame).is_err(),
        "the saved input is one the protocol type refuses"
    );
    assert!(!agrees_with_the_protocol_type(frame));
}

#[test]
fn surrogate_escapes_are_taken_only_when_paired() {
    let frame = |event: &str| format!(r#"{{"type":"event","seq":7,"event":{event}}}"#);
    // Paired (U+1F600), a non-surrogate escape, and an escaped backslash
    // before `ud800` (plain text, no escape): the fast path takes them.
    for event in [
        r#"{"id":"\ud83d\ude00"}"#,
        r#"{"id":"\u00e9\u0041"}"#,
        r#"{"id":"\\ud800"}"#,
        r#"{"\ud83d\ude00":"\\\ud83d\ude00"}"#,
    ] {
        assert!(agrees_with_the_protocol_type(&frame(event)), "{event}");
    }
    // A lone high or low surrogate, in a value or a key, in the event or in a
    // frame field the fast path ignores: refused by `ServerMessage`, so not taken.
    for text in [
        frame(r#"{"id":"\ud800"}"#),
        frame(r#"{"id":"\udc00"}"#),
        frame(r#"{"id":"\ud800\u0041"}"#),
        frame(r#"{"id":"\ud800\ud800"}"#),
        frame(r#"{"id":"\ud800\n"}"#),
        frame(r#"{"\udbff":1}"#),
        r#"{"type":"event","seq":7,"event":{},"extra":"\udae2"}"#.to_owned(),
    ] {
        assert!(
            serde_json::from_str::<ServerMessage>(&text).is_err(),
            "{text}"
        );
        assert!(!agrees_with_the_protocol_type(&text), "{text}");
    }
}
