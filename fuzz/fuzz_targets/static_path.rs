//! Request paths for the embedded web UI (untrusted): mapping one must not
//! panic, and what comes out never climbs out of the UI root.
#![no_main]

use kitedesk_core::static_path::static_path;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let Some(rel) = static_path(path) else {
        return;
    };
    assert!(!rel.starts_with('/'), "absolute: {rel:?}");
    assert!(
        !rel.contains('\\') && !rel.contains('\0'),
        "separator: {rel:?}"
    );
    assert!(
        rel.split('/')
            .all(|s| !s.is_empty() && s != "." && s != ".."),
        "bad segment: {rel:?}"
    );
});
