//! Every scheme on arbitrary headers and body against fixed secrets (one
//! current, one rotated out). Verification must never panic, and must never
//! accept a request whose signature header is missing.
#![no_main]

mod common;

use chrono::DateTime;
use kitedesk_core::verify;
use kitedesk_core::{Scheme, Secret};
use libfuzzer_sys::fuzz_target;

const SCHEMES: [Scheme; 4] = [
    Scheme::Github,
    Scheme::Stripe,
    Scheme::Kiket,
    Scheme::StandardWebhooks,
];

fuzz_target!(|data: &[u8]| {
    let Some(req) = common::split(data) else {
        return;
    };
    let scheme = SCHEMES[usize::from(req.selector) % SCHEMES.len()];
    let secrets = [
        Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        Secret::new("whsec_cHJldmlvdXMtc3RhbmRhcmQtd2ViaG9va3Mta2V5ISE="),
    ];
    let now = DateTime::from_timestamp(1_614_265_330, 0).expect("valid");
    if let Ok(v) = verify::verify(scheme, &req.headers, req.body, &secrets, now, 300) {
        assert!(v.secret_index < secrets.len());
        assert!(
            req.headers.get(scheme.signature_header()).is_some(),
            "accepted without a signature header"
        );
    }
});
