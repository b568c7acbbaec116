//! Query strings of `GET /api/deliveries` (untrusted: any caller holding the
//! API token), split into pairs the way axum's `Query<Vec<(String, String)>>`
//! does (`serde_urlencoded`), then through the handler's own parsing
//! (`kitedesk_daemon::outbox::parse_delivery_query`).
//!
//! Beyond "no panic": an accepted query has its limit in range and a
//! trimmed, non-empty sink, holds the last value given for each parameter
//! (`cursor` and `before` are one), and reads the same when its parameters
//! are written out as a query string again; every refusal is a 400
//! `invalid_query` naming the first parameter that was refused.
#![no_main]

use kitedesk_daemon::ApiError;
use kitedesk_daemon::outbox::parse_delivery_query;
use kitedesk_store::{DeliveryQuery, MAX_LIMIT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(params) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) else {
        return;
    };
    match parse_delivery_query(&params) {
        Ok(q) => {
            if let Some(n) = q.limit {
                assert!((1..=MAX_LIMIT).contains(&n), "limit {n} accepted");
            }
            if let Some(s) = &q.sink {
                assert!(!s.is_empty() && s.trim() == s, "sink {s:?}");
            }
            check_last_value_wins(&params, &q);
            check_round_trip(&q);
        }
        Err(e) => check_refusal(&params, &e),
    }
});

/// The last value of each parameter (trimmed) is the one the query holds.
fn check_last_value_wins(params: &[(String, String)], q: &DeliveryQuery) {
    let last = |names: &[&str]| {
        params
            .iter()
            .rev()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.trim())
    };
    assert_eq!(
        q.status.map(|s| s.as_str()),
        last(&["status"]),
        "{params:?}"
    );
    assert_eq!(
        q.sink.as_deref(),
        last(&["sink"]).filter(|s| !s.is_empty()),
        "{params:?}"
    );
    assert_eq!(
        q.event_id,
        last(&["event_id"]).map(|v| v.parse().expect("accepted")),
        "{params:?}"
    );
    assert_eq!(
        q.before,
        last(&["cursor", "before"]).map(|v| v.parse().expect("accepted")),
        "{params:?}"
    );
    assert_eq!(
        q.limit,
        last(&["limit"]).map(|v| v.parse().expect("accepted")),
        "{params:?}"
    );
}

/// Written out as a query string (what a client paging with `next_cursor`
/// sends), an accepted query reads back unchanged.
fn check_round_trip(q: &DeliveryQuery) {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(s) = q.status {
        pairs.push(("status", s.as_str().to_string()));
    }
    if let Some(s) = &q.sink {
        pairs.push(("sink", s.clone()));
    }
    if let Some(id) = q.event_id {
        pairs.push(("event_id", id.to_string()));
    }
    if let Some(c) = q.before {
        pairs.push(("cursor", c.to_string()));
    }
    if let Some(n) = q.limit {
        pairs.push(("limit", n.to_string()));
    }
    let qs = serde_urlencoded::to_string(&pairs).expect("pairs of strings encode");
    let again: Vec<(String, String)> =
        serde_urlencoded::from_str(&qs).expect("an encoded query decodes");
    match parse_delivery_query(&again) {
        Ok(q2) => assert_eq!(&q2, q, "{qs:?}"),
        Err(e) => panic!("{qs:?} (from {q:?}) refused: {e:?}"),
    }
}

/// A 400 `invalid_query` naming the first parameter refused: the ones
/// before it are accepted, and it alone makes the same refusal.
fn check_refusal(params: &[(String, String)], e: &ApiError) {
    assert_eq!((e.status, e.code), (400, "invalid_query"), "{e:?}");
    let i = params
        .iter()
        .position(|p| parse_delivery_query(std::slice::from_ref(p)).is_err())
        .unwrap_or_else(|| {
            panic!("refused {params:?} though each parameter alone is accepted: {e:?}")
        });
    let (k, _) = &params[i];
    assert!(
        e.message.starts_with(&format!("parameter {k}: ")),
        "{e:?} should name {k:?}"
    );
    let alone = parse_delivery_query(&params[i..=i]).expect_err("refused");
    assert_eq!(
        (alone.status, alone.code, &alone.message),
        (e.status, e.code, &e.message),
        "{params:?}"
    );
    assert!(parse_delivery_query(&params[..i]).is_ok(), "{params:?}");
}
