//! CloudEvents from a Kite relay or an SDK (untrusted JSON): reading them
//! must not panic, and what we read must survive our own write → read.
#![no_main]

use kitedesk_core::KiteEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(ce) = serde_json::from_slice::<cloudevents::Event>(data) else {
        return;
    };
    let Ok(ev) = KiteEvent::from_cloudevent(&ce) else {
        return;
    };
    // An event with an empty source cannot be re-emitted (the SDK refuses);
    // everything else must round-trip.
    let Ok(json) = ev.to_json() else {
        assert!(
            ev.source.is_empty(),
            "to_json refused a non-empty-source event"
        );
        return;
    };
    let again: cloudevents::Event =
        serde_json::from_value(json).expect("the SDK parses the JSON we emit");
    let back = KiteEvent::from_cloudevent(&again).expect("and we read it back");
    // Header names differing only in case fold into one on the way out.
    let want = KiteEvent {
        original_headers: ev.original_headers.folded(),
        ..ev
    };
    assert_eq!(back, want);
});
