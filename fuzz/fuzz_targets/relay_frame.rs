//! Frames from a relay (untrusted text on the WebSocket), through the path
//! a relay link takes: a kite-protocol `ServerMessage`; for an `event`, its
//! CloudEvent, our `KiteEvent`, scoring and the payload text the daemon
//! stores. Nothing may panic, and a stored event must be re-emittable.
#![no_main]

use kitedesk_core::KiteEvent;
use kitedesk_core::importance::{self, Facts};
use kitedesk_core::manifest::Scoring;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(kite_protocol::ServerMessage::Event { seq, event }) =
        serde_json::from_str::<kite_protocol::ServerMessage>(text)
    else {
        return;
    };
    let Ok(ce) = serde_json::from_value::<cloudevents::Event>(event) else {
        return;
    };
    let Ok(mut ev) = KiteEvent::from_cloudevent(&ce) else {
        return;
    };
    ev.seq = Some(seq);
    let doc = ev.data.doc();
    let score = importance::score(
        &Scoring::default(),
        &Facts {
            source_name: &ev.source_name,
            ty: &ev.ty,
            data: &doc,
            changed_files: &[],
        },
    );
    drop(doc);
    ev.importance = score.importance;
    let _payload = match ev.data.value() {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    if !ev.source.is_empty() {
        ev.to_json().expect("a relayed event can be emitted again");
    }
});
