//! `kite.json` from arbitrary bytes: never a panic, and a manifest that
//! parses keeps the promises `validate` makes.
#![no_main]

use kitedesk_core::Manifest;
use kitedesk_core::manifest::{MAX_BODY_LIMIT, valid_slug};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Manifest::from_json(data) {
        Ok(m) => {
            assert!((1..=MAX_BODY_LIMIT).contains(&m.ingress.max_body_bytes));
            for s in &m.sources {
                assert!(
                    valid_slug(&s.name),
                    "invalid source name accepted: {:?}",
                    s.name
                );
                assert!(!s.verify.secret_env.is_empty() || s.verify.allow_unsigned);
                assert!(s.verify.tolerance() > 0);
            }
        }
        Err(e) => assert!(!e.path.is_empty(), "errors name a path: {e}"),
    }
});
