//! Payloads as the search index takes them (`kitedesk_core::search_text`):
//! any text a webhook sender chose. Beyond "no panic": text that does not
//! start like JSON is indexed unchanged, and for valid JSON every non-empty
//! string value comes out unescaped (the escapes of control characters
//! `\n \r \t \b \f` as spaces), while no object key that differs from every
//! value (and every part of one) does.
#![no_main]

use kitedesk_core::search_text::search_text;
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let out = search_text(text);
    if !matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'[')) {
        assert_eq!(out, text, "non-JSON text is indexed as it is");
        return;
    }
    let Ok(Strings { values, keys }) = serde_json::from_str::<Strings>(text) else {
        return;
    };
    for s in &values {
        assert!(out.contains(s.as_str()), "value {s:?} missing from {out:?}");
    }
    for k in keys {
        if !k.is_empty() && !values.iter().any(|v| v.contains(&k)) && !numeric(&k) {
            assert!(!out.contains(&k), "key {k:?} indexed in {out:?}");
        }
    }
});

/// Every string of a JSON document in order, keys apart from values. Read
/// with a visitor rather than into a `serde_json::Value`: a map keeps one
/// value per key, and the scanner sees every duplicate.
#[derive(Default)]
struct Strings {
    values: Vec<String>,
    keys: Vec<String>,
}

impl Strings {
    fn absorb(&mut self, other: Strings) {
        self.values.extend(other.values);
        self.keys.extend(other.keys);
    }
}

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StringsVisitor)
    }
}

struct StringsVisitor;

impl<'de> Visitor<'de> for StringsVisitor {
    type Value = Strings;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_str<E>(self, s: &str) -> Result<Strings, E> {
        let mut out = Strings::default();
        if !s.is_empty() {
            out.values.push(spaced(s));
        }
        Ok(out)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Strings, E> {
        Ok(Strings::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<Strings, E> {
        Ok(Strings::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<Strings, E> {
        Ok(Strings::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<Strings, E> {
        Ok(Strings::default())
    }

    fn visit_unit<E>(self) -> Result<Strings, E> {
        Ok(Strings::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strings, A::Error> {
        let mut out = Strings::default();
        while let Some(item) = seq.next_element::<Strings>()? {
            out.absorb(item);
        }
        Ok(out)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strings, A::Error> {
        let mut out = Strings::default();
        while let Some(k) = map.next_key::<String>()? {
            out.keys.push(spaced(&k));
            out.absorb(map.next_value::<Strings>()?);
        }
        Ok(out)
    }
}

fn spaced(s: &str) -> String {
    s.replace(['\n', '\r', '\t', '\u{8}', '\u{c}'], " ")
}

/// Whether `k` could be part of a number, which the output holds as well.
fn numeric(k: &str) -> bool {
    k.chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
}
