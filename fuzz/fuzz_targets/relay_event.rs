//! A relay's `event` frames and their CloudEvents (untrusted JSON), as the
//! daemon's relay link reads them on its fast path: reading must not panic,
//! and whatever the fast path takes must read exactly as the slow path (the
//! `kite-protocol` frame type, the CloudEvents SDK) reads it.
#![no_main]

use kitedesk_core::KiteEvent;
use kitedesk_daemon::links::plain_cloudevent;
use kitedesk_stream::event_frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The frame: the fast reading agrees with `ServerMessage`.
    if let Some(incoming) = event_frame(text) {
        match serde_json::from_str::<kite_protocol::ServerMessage>(text) {
            Ok(kite_protocol::ServerMessage::Event { seq, event }) => {
                assert_eq!(seq, incoming.seq);
                let fast: serde_json::Value =
                    serde_json::from_str(incoming.event.get()).expect("raw JSON parses");
                assert_eq!(fast, event);
            }
            // Read whole, the frame nests one level deeper than its event.
            Err(e) if e.to_string().contains("recursion limit") => {}
            other => panic!("fast path took a frame the protocol type reads as {other:?}"),
        }
    }
    // The CloudEvent: the fast reading agrees with the SDK's.
    if let Some((fast, raw_data)) = plain_cloudevent(text) {
        let ce: cloudevents::Event = match serde_json::from_str(text) {
            Ok(ce) => ce,
            // Read whole, the event nests one level deeper than its `data`.
            Err(e) if e.to_string().contains("recursion limit") => return,
            Err(e) => panic!("the SDK refused what the fast path took: {e}"),
        };
        let slow = KiteEvent::from_cloudevent(&ce).expect("and converts it");
        if let Some(raw) = raw_data {
            let data: serde_json::Value = serde_json::from_str(raw).expect("raw data parses");
            assert_eq!(&data, fast.data.value());
        }
        assert_eq!(fast, slow);
    }
});
