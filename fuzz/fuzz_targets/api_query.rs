//! Query strings of `GET /api/events`, `/api/stream` and `/api/volume`
//! (untrusted: any caller holding the API token). They are split into pairs
//! the way axum's `Query<Vec<(String, String)>>` does (`serde_urlencoded`),
//! then go through the daemon's parameter parsing and, when accepted, the
//! store's preparation of the filters (`fts_query`, `sql_globs`) or the
//! volume query's defaults and checks (`volume_window`).
//!
//! Beyond "no panic": an accepted limit is in range, accepted sources are
//! trimmed and non-empty, a type glob the daemon accepted is one the store
//! can turn into SQL (or refuses only for too many `{…}` alternatives, a
//! 400), every refusal is a 400 `invalid_query` naming a parameter, and a
//! search always becomes a well-formed FTS5 query of quoted phrases unless
//! the text has nothing to search for; an accepted volume window is a
//! non-empty range with a positive bucket whose width in milliseconds fits
//! an `i64`, giving at most 10000 buckets.
#![no_main]

use chrono::DateTime;
use kitedesk_core::event::format_time;
use kitedesk_daemon::{ApiError, event_query_from_params, volume_params, volume_window};
use kitedesk_store::{MAX_LIMIT, QueryError, fts_query, sql_globs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) else {
        return;
    };
    match event_query_from_params(&params) {
        Ok(q) => {
            if let Some(n) = q.limit {
                assert!((1..=MAX_LIMIT).contains(&n), "limit {n} accepted");
            }
            for s in &q.sources {
                assert!(!s.is_empty() && s.trim() == s, "source {s:?}");
            }
            if let Some(g) = &q.type_glob {
                check_type_glob(g);
            }
            if let Some(text) = &q.q {
                check_search(text);
            }
        }
        Err(e) => check_refusal(&e),
    }
    match volume_params(&params) {
        Ok(v) => {
            // What `Api::volume` does before it asks the store.
            let now = DateTime::from_timestamp(1_764_000_000, 0).expect("valid");
            match volume_window(v.from, v.to, v.bucket_secs, now) {
                Ok(w) => {
                    assert!(w.from < w.to, "{w:?}");
                    assert!(w.bucket_secs > 0, "{w:?}");
                    let bucket_ms = w.bucket_secs.checked_mul(1000);
                    assert!(bucket_ms.is_some(), "bucket overflows in ms: {w:?}");
                    let span = (w.to - w.from).num_seconds().max(1);
                    assert!(span / w.bucket_secs <= 10_000, "{w:?}");
                    let _ = (format_time(w.from), format_time(w.to));
                }
                Err(e) => assert_eq!((e.status, e.code), (400, "invalid_query"), "{e:?}"),
            }
        }
        Err(e) => check_refusal(&e),
    }
});

fn check_refusal(e: &ApiError) {
    assert_eq!((e.status, e.code), (400, "invalid_query"), "{e:?}");
    assert!(e.message.starts_with("parameter "), "{e:?}");
}

fn check_type_glob(g: &str) {
    match sql_globs(g) {
        Ok(patterns) => {
            assert!(!patterns.is_empty() && patterns.len() <= 64, "{g:?}");
            if !g.contains(['{', '\\']) {
                assert_eq!(patterns, [g], "a plain glob passes through");
            }
        }
        Err(QueryError::BadGlob(_, problem)) => assert!(
            problem.contains("alternatives"),
            "the daemon accepted a type glob the store refuses: {g:?}: {problem}"
        ),
        Err(e) => panic!("unexpected error for type glob {g:?}: {e}"),
    }
}

/// `"word"` or `"word"*` phrases (inner quotes doubled), one space apart,
/// each holding a non-empty word with something the tokenizer indexes.
fn check_search(text: &str) {
    let fts = match fts_query(text) {
        Ok(fts) => fts,
        Err(QueryError::EmptySearch) => {
            assert!(
                !text.chars().any(char::is_alphanumeric),
                "{text:?} has words but became an empty search"
            );
            return;
        }
        Err(e) => panic!("unexpected search error for {text:?}: {e}"),
    };
    let mut chars = fts.chars().peekable();
    loop {
        assert_eq!(
            chars.next(),
            Some('"'),
            "phrase must open with a quote: {fts:?}"
        );
        let mut word = String::new();
        loop {
            match chars.next() {
                Some('"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    word.push('"');
                }
                Some('"') => break,
                Some(c) => word.push(c),
                None => panic!("unterminated phrase in {fts:?}"),
            }
        }
        assert!(
            word.chars().any(char::is_alphanumeric) && !word.contains(char::is_whitespace),
            "bad phrase {word:?} in {fts:?}"
        );
        if chars.peek() == Some(&'*') {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(' ') => {}
            Some(c) => panic!("{c:?} after a phrase in {fts:?}"),
        }
    }
}
