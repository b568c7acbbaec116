//! Kite globs (`crates/core/src/glob.rs`): manifest filters and scoring
//! rules, notification mutes and the API's `type=` filter all compile
//! untrusted patterns with it. Input: a pattern, a newline, a text.
//!
//! Beyond "no panic": a compiled glob survives its serde round trip and
//! matches the same; a pattern without metacharacters matches exactly
//! itself; any text with its metacharacters backslash-escaped is a valid
//! glob that matches that text.
#![no_main]

use kitedesk_core::glob::Glob;
use libfuzzer_sys::fuzz_target;

const META: &[char] = &['*', '?', '[', ']', '{', '}', '\\'];

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, text) = s.split_once('\n').unwrap_or((s, ""));
    if let Ok(g) = Glob::new(pattern) {
        let m = g.is_match(text);
        let json = serde_json::to_string(&g).expect("a glob serializes");
        let back: Glob = serde_json::from_str(&json).expect("and deserializes back");
        assert_eq!(back.as_str(), pattern);
        assert_eq!(back.is_match(text), m, "round trip changed the match");
        if !pattern.contains(META) {
            assert_eq!(m, pattern == text, "literal {pattern:?} vs {text:?}");
        }
    }
    let escaped: String = text
        .chars()
        .flat_map(|c| META.contains(&c).then_some('\\').into_iter().chain([c]))
        .collect();
    let literal = Glob::new(&escaped)
        .unwrap_or_else(|e| panic!("an escaped text is a valid glob: {escaped:?}: {e}"));
    assert!(literal.is_match(text), "{escaped:?} must match {text:?}");
});
