//! `POST /api/sinks` bodies from arbitrary bytes, through the handler's own
//! checks (`check_new_sink`): never a panic; an accepted sink has a
//! non-empty name; a refusal is a 400 `invalid_body`, or `invalid_sink`
//! whose message starts with the field it names.
#![no_main]

use kitedesk_daemon::check_new_sink;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match check_new_sink(data) {
        Ok(name) => assert!(!name.trim().is_empty(), "accepted an empty name"),
        Err(e) => {
            assert_eq!(e.status, 400, "{}: {}", e.code, e.message);
            match e.code {
                "invalid_body" => {}
                "invalid_sink" => {
                    assert!(e.message.contains(": "), "names the field: {}", e.message)
                }
                other => panic!("unexpected code {other}: {}", e.message),
            }
        }
    }
});
