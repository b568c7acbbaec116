//! `Stripe-Signature` parsing, then verification with that header.
#![no_main]

use chrono::DateTime;
use kitedesk_core::verify::{self, parse_stripe_header};
use kitedesk_core::{Headers, Scheme, Secret};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = parse_stripe_header(value) {
        assert!(!parsed.v1.is_empty(), "Ok promises at least one v1");
    }
    let headers: Headers = [("Stripe-Signature", value)].into_iter().collect();
    let now = DateTime::from_timestamp(1_700_000_000, 0).expect("valid");
    let _ = verify::verify(
        Scheme::Stripe,
        &headers,
        b"{}",
        &[Secret::new("whsec_fuzz")],
        now,
        verify::DEFAULT_TOLERANCE_SECS,
    );
});
