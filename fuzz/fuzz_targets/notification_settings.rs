//! `PUT /api/settings/notifications` bodies from arbitrary bytes: never a
//! panic; an accepted object compiles, survives JSON unchanged, and every
//! refusal names a field.
#![no_main]

use kitedesk_notify::parse_settings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_settings(data) {
        Ok(s) => {
            let c = s.compile().expect("accepted settings compile");
            assert!(c.max_individual >= 1 && c.rate_limit_per_minute >= 1);
            let again = parse_settings(&serde_json::to_vec(&s).unwrap()).unwrap();
            assert_eq!(again, s, "round trip");
        }
        Err(e) => assert!(!e.field.is_empty(), "errors name a field: {e}"),
    }
});
