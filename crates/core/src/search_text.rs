//! The words of a payload that full-text search indexes: a JSON payload's
//! values — its strings, unescaped, and its numbers — one per line, without
//! its keys, `true`/`false`/`null` or punctuation.
//!
//! Keys are the same in every event of a type ("id", "url", "node_id"…), so
//! indexing them made every search for such a word match every event, and
//! they were about half of what the index stored and merged: FTS5's insert
//! cost fell from 11.0 to 6.2 µs for a 1.2 KB push (bench/RESULTS.md).
//! Unescaping means `\u00e9t\u00e9` is found as "été" and `a\nb` as the two
//! words "a" and "b", not "u00e9t" or "nb".
//!
//! A scanner, not a parser: it never fails. Text that does not start like
//! JSON (a form-encoded or plain-text body) is indexed as it is; malformed
//! JSON yields what could be read of it.

use std::borrow::Cow;

/// The text to index for `payload` (see the module documentation).
pub fn search_text(payload: &str) -> Cow<'_, str> {
    match payload.trim_start().as_bytes().first() {
        Some(b'{' | b'[') => Cow::Owned(json_values(payload)),
        _ => Cow::Borrowed(payload),
    }
}

fn json_values(json: &str) -> String {
    let b = json.as_bytes();
    let mut out = String::with_capacity(json.len() / 2);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let (value, end) = string_at(json, i + 1);
                i = end;
                if !is_key(b, i) && !value.is_empty() {
                    out.push_str(&value);
                    out.push('\n');
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                out.push_str(&json[start..i]);
                out.push('\n');
            }
            // Punctuation, whitespace, and the letters of true/false/null
            // (skipped one by one: none of them is a word worth indexing).
            _ => i += 1,
        }
    }
    out
}

/// Whether the string that ended just before `i` is an object key: the
/// next character that is not whitespace is a colon.
fn is_key(b: &[u8], mut i: usize) -> bool {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    b.get(i) == Some(&b':')
}

/// The unescaped string starting at byte `start` (just after its opening
/// quote), and the index just past its closing quote (or the end of the
/// text, for a string never closed).
fn string_at(json: &str, start: usize) -> (Cow<'_, str>, usize) {
    let b = json.as_bytes();
    let mut i = start;
    // Most strings have no escapes: borrowed as they are.
    while i < b.len() && b[i] != b'"' && b[i] != b'\\' {
        i += 1;
    }
    if i >= b.len() || b[i] == b'"' {
        return (Cow::Borrowed(&json[start..i]), (i + 1).min(b.len()));
    }
    let mut s = String::from(&json[start..i]);
    while i < b.len() {
        match b[i] {
            b'"' => return (Cow::Owned(s), i + 1),
            b'\\' => {
                let Some(&esc) = b.get(i + 1) else {
                    break;
                };
                i += 2;
                match esc {
                    b'n' | b'r' | b't' | b'b' | b'f' => s.push(' '),
                    b'u' => {
                        let (c, used) = unicode_escape(b, i);
                        s.push(c);
                        i += used;
                    }
                    // \" \\ \/ and anything else: the character itself
                    // (which may be more than one byte).
                    _ => {
                        let from = i - 1;
                        while i < b.len() && !json.is_char_boundary(i) {
                            i += 1;
                        }
                        s.push_str(&json[from..i]);
                    }
                }
            }
            _ => {
                let from = i;
                while i < b.len() && b[i] != b'"' && b[i] != b'\\' {
                    i += 1;
                }
                s.push_str(&json[from..i]);
            }
        }
    }
    (Cow::Owned(s), b.len())
}

/// The character of a `\uXXXX` escape whose hex digits start at `i` (with
/// its low surrogate, for a pair), and how many bytes it used after the
/// `\u`. A broken escape reads as U+FFFD.
fn unicode_escape(b: &[u8], i: usize) -> (char, usize) {
    let Some(hi) = hex4(b, i) else {
        return (char::REPLACEMENT_CHARACTER, 0);
    };
    if (0xD800..0xDC00).contains(&hi) {
        if b.get(i + 4) == Some(&b'\\')
            && b.get(i + 5) == Some(&b'u')
            && let Some(lo) = hex4(b, i + 6).filter(|lo| (0xDC00..0xE000).contains(lo))
        {
            let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            return (char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER), 10);
        }
        return (char::REPLACEMENT_CHARACTER, 4);
    }
    (char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER), 4)
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let digits = b.get(i..i + 4)?;
    let s = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(payload: &str) -> Vec<String> {
        search_text(payload).lines().map(str::to_owned).collect()
    }

    #[test]
    fn values_without_keys_literals_or_punctuation() {
        let p = r#"{"ref": "refs/heads/main", "forced": false, "size": 2,
            "pusher": {"name": "alice", "email": null},
            "commits": [{"message": "Fix the build", "amount": -12.5e3}], "x": []}"#;
        assert_eq!(
            words(p),
            ["refs/heads/main", "2", "alice", "Fix the build", "-12.5e3"]
        );
    }

    #[test]
    fn escapes_are_unescaped() {
        assert_eq!(
            words(r#"{"a": "\u00e9t\u00e9", "b": "line\nnext\ttab", "c": "say \"hi\" \\ \/"}"#),
            ["été", "line next tab", r#"say "hi" \ /"#]
        );
        assert_eq!(words(r#"["\ud83d\ude80 launch"]"#), ["🚀 launch"]);
        assert_eq!(
            words(r#"["\ud83d alone", "\uzzzz"]"#),
            ["\u{fffd} alone", "\u{fffd}zzzz"]
        );
    }

    #[test]
    fn a_key_is_found_across_whitespace_and_a_value_may_look_like_one() {
        assert_eq!(words("{\"k\"\n\t : \"v\"}"), ["v"]);
        // A string value followed by a comma, a bracket or the end is a value.
        assert_eq!(words(r#"["a:", "b"]"#), ["a:", "b"]);
        assert_eq!(words(r#"{"k": "v"}"#), ["v"]);
    }

    #[test]
    fn non_json_is_indexed_as_it_is() {
        assert_eq!(search_text("a=1&b=two"), "a=1&b=two");
        assert_eq!(search_text("plain words"), "plain words");
        assert!(matches!(search_text("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn malformed_json_yields_what_can_be_read() {
        assert_eq!(words(r#"{"a": "unterminated"#), ["unterminated"]);
        assert_eq!(words(r#"{"a": "esc at end\"#), ["esc at end"]);
        assert_eq!(words(r#"{"a": "bad \q é"}"#), [r"bad q é"]);
        assert_eq!(words(r#"["\é"]"#), ["é"]);
        assert_eq!(words("[\"\\u12\"]"), ["\u{fffd}12"]);
        assert_eq!(words("{"), Vec::<String>::new());
    }

    #[test]
    fn every_string_value_of_a_real_payload_is_kept() {
        let raw = include_str!("../tests/fixtures/github/push.branch-created.json");
        let text = search_text(raw);
        let v: serde_json::Value = serde_json::from_str(raw).expect("fixture is JSON");
        let mut strings = Vec::new();
        collect(&v, &mut strings);
        assert!(strings.len() > 20);
        for s in strings {
            assert!(text.contains(s.as_str()), "{s:?} missing");
        }
        assert!(!text.contains("node_id"), "keys are not indexed");
        assert!(text.len() < raw.len() * 3 / 4);
    }

    fn collect(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) if !s.contains(['\n', '\t', '\r']) && !s.is_empty() => {
                out.push(s.clone())
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            serde_json::Value::Object(m) => m.values().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
}
