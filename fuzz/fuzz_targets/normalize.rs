//! Every provider adapter on arbitrary headers and bodies. Beyond "no
//! panic": whatever normalizes must become a CloudEvent that the official SDK
//! parses back to the same event, with a one-line summary.
#![no_main]

mod common;

use chrono::DateTime;
use kitedesk_core::providers::{self, Inbound};
use kitedesk_core::{Importance, KiteEvent, ProviderKind, Verification};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(req) = common::split(data) else {
        return;
    };
    let kind = ProviderKind::ALL[usize::from(req.selector) % ProviderKind::ALL.len()];
    let received = DateTime::from_timestamp(1_700_000_000, 0).expect("valid");
    let Ok(n) = providers::normalize(
        kind,
        &Inbound {
            source_name: "fuzz",
            headers: &req.headers,
            body: req.body,
            received,
            mint_id: kitedesk_core::MintId(&|| "0190c3e2-0000-7000-8000-000000000000".to_string()),
        },
    ) else {
        return;
    };
    assert!(
        !n.summary.chars().any(char::is_control),
        "summary must be one printable line: {:?}",
        n.summary
    );
    assert!(
        n.summary.chars().count() <= 200,
        "summary too long: {:?}",
        n.summary
    );
    let ev = KiteEvent {
        id: n.id,
        source: n.source,
        ty: n.ty,
        time: n.time,
        source_name: "fuzz".into(),
        summary: n.summary,
        data: n.data,
        seq: None,
        original_headers: req.headers.for_storage(),
        verification: Verification::unverified("fuzz"),
        importance: Importance::Normal,
        importance_reason: String::new(),
    };
    let json = ev
        .to_json()
        .unwrap_or_else(|e| panic!("a normalized event must be a valid CloudEvent: {e}"));
    let ce: cloudevents::Event =
        serde_json::from_value(json).expect("the SDK parses the JSON we emit");
    let back = KiteEvent::from_cloudevent(&ce).expect("and we read it back");
    // Repeated headers come back folded into one (a JSON object holds a
    // name once); everything else must be unchanged.
    let want = KiteEvent {
        original_headers: ev.original_headers.folded(),
        ..ev
    };
    assert_eq!(back, want, "CloudEvent round trip changed the event");
});
