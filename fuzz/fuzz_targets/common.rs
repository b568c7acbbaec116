//! The input format the request-shaped targets share, so a seed is readable
//! and libFuzzer mutates headers and body directly:
//!
//! ```text
//! <selector byte><Name: value>\n<Name: value>\n\n<body bytes>
//! ```
//!
//! The selector picks the provider or scheme. Header lines are split at the
//! first `:`; without a blank line the whole rest is the body.

use kitedesk_core::Headers;

pub struct Request<'a> {
    pub selector: u8,
    pub headers: Headers,
    pub body: &'a [u8],
}

pub fn split(data: &[u8]) -> Option<Request<'_>> {
    let (&selector, rest) = data.split_first()?;
    let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (&[][..], rest),
    };
    let headers = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_string(), value.trim().to_string()))
        })
        .collect();
    Some(Request {
        selector,
        headers,
        body,
    })
}
