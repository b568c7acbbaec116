//! `PUT /api/settings/retention` bodies from arbitrary bytes, through the
//! handler's own `parse_retention_update`: never a panic; an accepted
//! policy is in range and survives JSON unchanged; a refusal is a 400
//! `invalid_body`, or `invalid_retention` naming the field.
#![no_main]

use kitedesk_daemon::{RetentionUpdate, parse_retention_update};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_retention_update(data) {
        Ok(RetentionUpdate::Reset) => {}
        Ok(RetentionUpdate::Set(r)) => {
            assert!(
                r.max_age_days.is_none_or(|d| (1..=36_500).contains(&d)),
                "{r:?}"
            );
            assert!(
                r.max_events
                    .is_none_or(|n| (1..=1_000_000_000).contains(&n)),
                "{r:?}"
            );
            let again = parse_retention_update(&serde_json::to_vec(&r).unwrap()).unwrap();
            assert_eq!(again, RetentionUpdate::Set(r), "round trip");
        }
        Err(e) => {
            assert_eq!(e.status, 400, "{}: {}", e.code, e.message);
            match e.code {
                "invalid_body" => {}
                "invalid_retention" => assert!(
                    e.message.starts_with("max_age_days:") || e.message.starts_with("max_events:"),
                    "names the field: {}",
                    e.message
                ),
                other => panic!("unexpected code {other}: {}", e.message),
            }
        }
    }
});
