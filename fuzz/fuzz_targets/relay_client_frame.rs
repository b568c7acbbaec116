//! WebSocket text frames from relay clients (untrusted): the relay's frame
//! parser must not panic, must honour its size limit, and whatever it
//! accepts must serialize back to a frame it accepts again unchanged.
#![no_main]

use kitedesk_relay::frames::{self, FrameError};
use libfuzzer_sys::fuzz_target;

/// Small enough that the fuzzer reaches it.
const LIMIT: usize = 512;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match frames::parse_client_frame(text, LIMIT) {
        Ok(msg) => {
            assert!(text.len() <= LIMIT, "accepted a frame over the limit");
            let again = serde_json::to_string(&msg).expect("client messages serialize");
            let back = frames::parse_client_frame(&again, usize::MAX).expect("own output parses");
            assert_eq!(serde_json::to_string(&back).expect("serializes"), again);
        }
        Err(FrameError::TooLarge { len, limit }) => assert!(len > limit && limit == LIMIT),
        Err(_) => {}
    }
});
