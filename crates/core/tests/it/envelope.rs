//! `KiteEvent` ⇄ CloudEvent JSON: whatever we emit, the official SDK parses
//! and `from_cloudevent` reads back unchanged.

use chrono::{DateTime, Utc};
use kitedesk_core::event::ext;
use kitedesk_core::{Headers, Importance, KiteEvent, Verification};
use proptest::prelude::*;
use serde_json::{Value, json};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Finite only: JSON has no NaN or infinity.
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    // RFC 3339 covers years 0000–9999; ingress times are after 1970.
    (0i64..253_402_300_799, 0u32..1_000_000_000).prop_map(|(secs, nanos)| {
        DateTime::from_timestamp(secs, nanos).expect("range chosen to be valid")
    })
}

fn headers() -> impl Strategy<Value = Headers> {
    // Header names are tokens; a small alphabet makes repeats (in any case)
    // common, since the extension is a JSON object that must fold them.
    prop::collection::vec(("[A-Ca-c-]{1,3}", any::<String>()), 0..8)
        .prop_map(|pairs| pairs.into_iter().collect())
}

prop_compose! {
    fn kite_event()(
        id in any::<String>(),
        // CloudEvents requires a non-empty source; the SDK enforces it.
        source in any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
        ty in any::<String>(),
        time in time(),
        source_name in any::<String>(),
        summary in any::<String>(),
        data in json_value(),
        seq in any::<Option<u64>>(),
        original_headers in headers(),
        verified in any::<bool>(),
        verify_reason in any::<String>(),
        importance in prop::sample::select(Importance::ALL.to_vec()),
        importance_reason in any::<String>(),
    ) -> KiteEvent {
        KiteEvent {
            id, source, ty, time, source_name, summary, data: data.into(), seq, original_headers,
            verification: Verification { verified, reason: verify_reason },
            importance, importance_reason,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn cloudevent_json_round_trips(ev in kite_event()) {
        let json = ev.to_json().expect("every KiteEvent builds a CloudEvent");
        let text = serde_json::to_string(&json).expect("JSON serializes");
        let parsed: cloudevents::Event =
            serde_json::from_str(&text).expect("the SDK parses what we emit");
        let back = KiteEvent::from_cloudevent(&parsed).expect("and we read it back");
        // Repeated headers come back folded into one, values joined in order.
        let want = KiteEvent { original_headers: ev.original_headers.folded(), ..ev };
        prop_assert_eq!(back, want);
    }
}

#[test]
fn seq_beyond_i64_survives_as_a_numeric_string() {
    let ev = KiteEvent {
        id: "e1".into(),
        source: "https://github.com/acme/api".into(),
        ty: "com.github.push".into(),
        time: DateTime::from_timestamp(1_700_000_000, 0).expect("valid"),
        source_name: "github".into(),
        summary: "s".into(),
        data: json!({}).into(),
        seq: Some(u64::MAX),
        original_headers: Headers::new(),
        verification: Verification::verified("ok"),
        importance: Importance::Normal,
        importance_reason: String::new(),
    };
    let json = ev.to_json().expect("builds");
    assert_eq!(
        json[ext::SEQ],
        Value::String(u64::MAX.to_string()),
        "CloudEvents integers are 32-bit by spec and the SDK's are i64; a larger \
         seq must not wrap negative (kite-protocol readers accept numeric strings)"
    );
    assert_eq!(json_of(json).seq, Some(u64::MAX));
}

/// Events from a Kite relay or an SDK carry none of our extensions, or the
/// docs' hyphenated spellings; reading them must still work.
#[test]
fn foreign_events_get_neutral_defaults() {
    let ev = json_of(json!({
        "specversion": "1.0",
        "id": "01HXYZ",
        "source": "https://getkite.sh/hooks/team_abc/github",
        "type": "com.github.push",
        "time": "2024-01-15T12:00:00Z",
        "datacontenttype": "application/json",
        "kitesummary": "alice pushed 2 commits to main in owner/repo",
        "kiteseq": "17",
        "kite-verified": "true",
        "kiteoriginalheaders": "{\"X-GitHub-Event\":\"push\"}",
        "data": {"ref": "refs/heads/main"}
    }));
    assert_eq!(
        ev.source_name, "github",
        "derived from the type, as the Kite CLI does"
    );
    assert_eq!(
        ev.seq,
        Some(17),
        "kite-protocol readers accept a numeric string"
    );
    assert!(
        ev.verification.verified,
        "the docs' `kite-verified` is honoured"
    );
    assert_eq!(ev.importance, Importance::Normal);
    assert_eq!(ev.original_headers.get("x-github-event"), Some("push"));

    let bare = json_of(json!({
        "specversion": "1.0", "id": "x", "source": "s", "type": "kite.subscription.payment_failed"
    }));
    assert_eq!(
        bare.source_name, "unknown",
        "no `com.` prefix → unknown, as the Kite CLI does"
    );
    assert_eq!(
        bare.summary, "kite.subscription.payment_failed",
        "no summary → the type"
    );
    assert!(!bare.verification.verified);
    assert_eq!(bare.data, Value::Null);
}

fn json_of(v: Value) -> KiteEvent {
    let ce: cloudevents::Event = serde_json::from_value(v).expect("a valid CloudEvent");
    KiteEvent::from_cloudevent(&ce).expect("readable")
}
