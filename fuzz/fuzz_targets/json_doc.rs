//! Webhook bodies as the provider adapters read them (`kitedesk_core::Doc`,
//! a borrowed view parsed with serde_json). Beyond "no panic": a body is
//! accepted exactly when `serde_json::Value` accepts it, with the same
//! error, and reads back as the same tree: every member lookup, repeated
//! keys included (the last one wins, as in a `Value`).
#![no_main]

use kitedesk_core::{Doc, Payload};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let doc = Doc::parse(text);
    let value = serde_json::from_str::<Value>(text);
    let (doc, value) = match (doc, value) {
        (Ok(d), Ok(v)) => (d, v),
        (Err(d), Err(v)) => {
            assert_eq!(d.to_string(), v.to_string(), "both refuse, for one reason");
            return;
        }
        (d, v) => panic!("Doc {:?} but Value {:?}", d.map(|_| ()), v.map(|_| ())),
    };
    assert_eq!(doc.to_value(), value, "the same tree");
    same_lookups(&doc, &value);
    assert_eq!(Doc::from(&value).to_value(), value, "a view of a Value");
    let payload = Payload::from_text(text.to_string());
    assert_eq!(payload.value(), &value, "a payload parses its text");
    assert_eq!(payload.doc(), doc);
});

/// Every key of every object finds, through `Doc::get`, what `Value::get`
/// finds; every array index too.
fn same_lookups(doc: &Doc<'_>, value: &Value) {
    match (doc, value) {
        (Doc::Object(members), Value::Object(map)) => {
            for (k, _) in members {
                let (Some(d), Some(v)) = (doc.get(k), map.get(k.as_ref())) else {
                    panic!("key {k:?} found in one and not the other");
                };
                same_lookups(d, v);
            }
            assert_eq!(doc.get("\u{0}absent"), None);
        }
        (Doc::Array(items), Value::Array(values)) => {
            assert_eq!(items.len(), values.len());
            for (i, (d, v)) in items.iter().zip(values).enumerate() {
                assert_eq!(doc.pointer(&format!("/{i}")), Some(d));
                same_lookups(d, v);
            }
        }
        _ => assert_eq!(doc.to_value(), *value),
    }
}
