//! kitedesk-core's integration tests, one binary with a module per concept.
//!
//! * `providers`: every fixture, raw webhook in → CloudEvent out (insta).
//! * `signatures`: each scheme against known-answer vectors (rstest).
//! * `importance`: built-in defaults and manifest rules on real payloads.
//! * `manifest`: `kite.json` parsing; never panics on arbitrary input.
//! * `envelope`: `KiteEvent` ⇄ CloudEvent round trips (proptest).

mod envelope;
mod importance;
mod manifest;
mod providers;
mod signatures;
mod support;
