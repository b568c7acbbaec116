//! Standard Webhooks `webhook-signature` parsing, then verification with it
//! and an arbitrary `webhook-timestamp` taken from the same input.
#![no_main]

use chrono::DateTime;
use kitedesk_core::verify::{self, parse_standard_signatures};
use kitedesk_core::{Headers, Scheme, Secret};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (timestamp, signature) = text.split_once('|').unwrap_or(("1700000000", text));
    if let Ok(sigs) = parse_standard_signatures(signature) {
        assert!(!sigs.is_empty(), "Ok promises at least one v1 signature");
    }
    let headers: Headers = [
        ("webhook-id", "msg_fuzz"),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signature),
    ]
    .into_iter()
    .collect();
    let now = DateTime::from_timestamp(1_700_000_000, 0).expect("valid");
    let _ = verify::verify(
        Scheme::StandardWebhooks,
        &headers,
        b"{}",
        &[Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")],
        now,
        verify::DEFAULT_TOLERANCE_SECS,
    );
});
