//! An event's payload: the JSON text, kept as received, and two ways to read
//! it.
//!
//! * [`Doc`] is a read-only view of JSON text that borrows its strings from
//!   the text and keeps objects as lists of members: no string copies, no
//!   hashing. Provider adapters and scoring read a few fields of every
//!   webhook through it.
//! * [`Payload`] holds the text and parses it into a [`serde_json::Value`]
//!   only when something asks for the tree ([`Payload::value`]), such as an
//!   API answer or a forward with a CloudEvent envelope. Most events are
//!   stored and announced without ever being parsed into one.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// A parsed JSON document that borrows its strings (those without escapes)
/// from the text it was parsed from.
///
/// Reads follow [`serde_json::Value`]: [`Doc::get`] on an object with a
/// key given twice returns the last one, as `Value` keeps the last.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Doc<'a>>),
    /// Members in document order, repeated keys included.
    Object(Vec<(Cow<'a, str>, Doc<'a>)>),
}

/// `null`, for lookups that fall back to it.
pub static NULL: Doc<'static> = Doc::Null;

impl<'a> Doc<'a> {
    /// Parse JSON text (the same grammar, limits and errors as
    /// `serde_json::from_str`).
    pub fn parse(text: &'a str) -> Result<Doc<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The member `key` of an object (the last one if repeated).
    pub fn get(&self, key: &str) -> Option<&Doc<'a>> {
        match self {
            Doc::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The element at `index` of an array.
    pub fn index(&self, index: usize) -> Option<&Doc<'a>> {
        match self {
            Doc::Array(items) => items.get(index),
            _ => None,
        }
    }

    /// A JSON Pointer (RFC 6901) lookup, as [`Value::pointer`].
    pub fn pointer(&self, pointer: &str) -> Option<&Doc<'a>> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .try_fold(self, |cur, token| match cur {
                Doc::Object(_) => cur.get(&token),
                Doc::Array(_) => parse_index(&token).and_then(|i| cur.index(i)),
                _ => None,
            })
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Doc::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Doc::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Doc::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Doc::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Doc::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Doc<'a>]> {
        match self {
            Doc::Array(items) => Some(items),
            _ => None,
        }
    }

    /// An object's members, in document order.
    pub fn as_object(&self) -> Option<&[(Cow<'a, str>, Doc<'a>)]> {
        match self {
            Doc::Object(members) => Some(members),
            _ => None,
        }
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Doc::Object(_))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Doc::Null)
    }

    /// The same document as a [`Value`] (a repeated key keeps its first
    /// position and its last value, as `serde_json` parses it).
    pub fn to_value(&self) -> Value {
        match self {
            Doc::Null => Value::Null,
            Doc::Bool(b) => Value::Bool(*b),
            Doc::Number(n) => Value::Number(n.clone()),
            Doc::String(s) => Value::String(s.to_string()),
            Doc::Array(items) => Value::Array(items.iter().map(Doc::to_value).collect()),
            Doc::Object(members) => {
                let mut map = serde_json::Map::with_capacity(members.len());
                for (k, v) in members {
                    map.insert(k.to_string(), v.to_value());
                }
                Value::Object(map)
            }
        }
    }
}

/// A view of a [`Value`], borrowing its strings.
impl<'a> From<&'a Value> for Doc<'a> {
    fn from(v: &'a Value) -> Doc<'a> {
        match v {
            Value::Null => Doc::Null,
            Value::Bool(b) => Doc::Bool(*b),
            Value::Number(n) => Doc::Number(n.clone()),
            Value::String(s) => Doc::String(Cow::Borrowed(s)),
            Value::Array(items) => Doc::Array(items.iter().map(Doc::from).collect()),
            Value::Object(map) => Doc::Object(
                map.iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Doc::from(v)))
                    .collect(),
            ),
        }
    }
}

/// An array index token as JSON Pointer allows it (no sign, no leading zero).
fn parse_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() > 1) {
        return None;
    }
    token.parse().ok()
}

/// A string that borrows from the input when it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Doc<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Doc<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Doc::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Doc::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Doc::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Doc::Number(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                // serde_json only produces finite floats; `Value` maps any
                // other to null the same way.
                Ok(Number::from_f64(v).map_or(Doc::Null, Doc::Number))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Doc::String(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Doc::String(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Doc::String(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Doc::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(Str(key)) = map.next_key()? {
                    members.push((key, map.next_value()?));
                }
                Ok(Doc::Object(members))
            }
        }
        d.deserialize_any(V)
    }
}

/// An event's payload: JSON text, parsed into a [`Value`] the first time
/// [`Payload::value`] is called. Cheap to clone (shared).
#[derive(Clone)]
pub struct Payload(Arc<Inner>);

struct Inner {
    text: String,
    value: OnceLock<Value>,
}

impl Payload {
    /// A payload from its text: an ingress body the caller has parsed
    /// already, or a payload read back from the history.
    ///
    /// The history keeps a relayed event whose data was a plain string as
    /// that string, and one without data as nothing, so [`Payload::value`]
    /// reads text that is not JSON as a JSON string and empty text as null.
    pub fn from_text(text: String) -> Payload {
        Payload(Arc::new(Inner {
            text,
            value: OnceLock::new(),
        }))
    }

    /// A payload from a tree (its text is the tree serialized).
    pub fn from_value(value: Value) -> Payload {
        Payload(Arc::new(Inner {
            text: value.to_string(),
            value: OnceLock::from(value),
        }))
    }

    /// `null`.
    pub fn null() -> Payload {
        Payload::from_value(Value::Null)
    }

    /// The text: JSON, except as [`Payload::from_text`] says.
    pub fn text(&self) -> &str {
        &self.0.text
    }

    /// The payload as a tree, parsed on first use.
    pub fn value(&self) -> &Value {
        self.0.value.get_or_init(|| {
            let text = &self.0.text;
            serde_json::from_str(text).unwrap_or_else(|_| {
                if text.trim().is_empty() {
                    Value::Null
                } else {
                    Value::String(text.clone())
                }
            })
        })
    }

    /// A borrowed view of the payload, for reading a few fields: the text
    /// parsed (whether or not [`Payload::value`] was called, so a repeated
    /// key is there twice either way).
    pub fn doc(&self) -> Doc<'_> {
        Doc::parse(&self.0.text).unwrap_or_else(|_| Doc::from(self.value()))
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Payload {
        Payload::from_value(value)
    }
}

impl Default for Payload {
    fn default() -> Payload {
        Payload::null()
    }
}

/// Equal when the trees are equal (the text may differ in spacing).
impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || self.text() == other.text()
            || self.value() == other.value()
    }
}

impl PartialEq<Value> for Payload {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

/// As the tree, so a payload prints the way a `Value` does.
impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn doc_reads_like_value() {
        let text = r#"{"a": {"b": [1, "x\u00e9", true, null, 2.5]}, "k": 1, "k": "last", "~/": 7}"#;
        let doc = Doc::parse(text).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(doc.to_value(), value);
        assert_eq!(doc.get("k").and_then(Doc::as_str), Some("last"));
        assert_eq!(doc.get("k").and_then(Doc::as_str), value["k"].as_str());
        assert_eq!(doc.pointer("/a/b/1").and_then(Doc::as_str), Some("xé"));
        assert_eq!(doc.pointer("/a/b/0").and_then(Doc::as_i64), Some(1));
        assert_eq!(doc.pointer("/a/b/4").and_then(Doc::as_f64), Some(2.5));
        assert_eq!(doc.pointer("/~0~1").and_then(Doc::as_i64), Some(7));
        assert_eq!(doc.pointer("/a/b/01"), None, "no leading zeros");
        assert_eq!(doc.pointer("/a/b/9"), None);
        assert_eq!(doc.pointer(""), Some(&doc));
        assert!(doc.pointer("/a/b/3").is_some_and(Doc::is_null));
        assert_eq!(Doc::from(&value).to_value(), value);
    }

    #[test]
    fn unescaped_strings_are_borrowed() {
        let doc = Doc::parse(r#"{"plain": "abc", "esc": "a\nb"}"#).unwrap();
        assert!(matches!(
            doc.get("plain"),
            Some(Doc::String(Cow::Borrowed("abc")))
        ));
        assert!(matches!(doc.get("esc"), Some(Doc::String(Cow::Owned(s))) if s == "a\nb"));
    }

    #[test]
    fn doc_refuses_what_value_refuses() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "nul", "1 2", "\"\\x\""] {
            let d = Doc::parse(bad).map(|_| ()).map_err(|e| e.to_string());
            let v = serde_json::from_str::<Value>(bad)
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert_eq!(d, v, "{bad:?}");
            assert!(d.is_err());
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(Doc::parse(&deep).is_err(), "the recursion limit holds");
    }

    #[test]
    fn payload_parses_once_and_compares_by_tree() {
        let p = Payload::from_text(r#"{"a": 1}"#.to_string());
        assert_eq!(p.text(), r#"{"a": 1}"#);
        assert_eq!(p.value(), &json!({"a": 1}));
        assert!(std::ptr::eq(p.value(), p.value()));
        assert_eq!(p, Payload::from(json!({"a": 1})));
        assert_ne!(p, Payload::from(json!({"a": 2})));
        assert_eq!(p.doc().get("a").and_then(Doc::as_i64), Some(1));
        let repeated = Payload::from_text(r#"{"k": 1, "k": 2}"#.to_string());
        let before = repeated.doc();
        assert_eq!(repeated.value(), &json!({"k": 2}));
        assert_eq!(
            repeated.doc(),
            before,
            "the same view before and after value()"
        );
        assert_eq!(before.as_object().map(<[_]>::len), Some(2));
        assert_eq!(format!("{p:?}"), format!("{:?}", json!({"a": 1})));
        assert_eq!(Payload::from(json!("hi")).text(), "\"hi\"");
        assert_eq!(Payload::null().value(), &Value::Null);
        // As the history keeps relayed plain-text data, and absent data.
        let text = Payload::from_text("not json".to_string());
        assert_eq!(text.value(), &json!("not json"));
        assert_eq!(text.doc(), Doc::String("not json".into()));
        assert_eq!(Payload::from_text(String::new()).value(), &Value::Null);
    }
}
