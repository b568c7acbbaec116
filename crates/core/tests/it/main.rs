//! kitedesk-core's integration tests, one binary with a module per concept.
//!
//! * `providers`: every fixture in `tests/fixtures/`, raw webhook in →
//!   CloudEvent out (insta snapshots), plus adapter edge cases.
//! * `signatures`: each scheme against known-answer vectors (rstest), and
//!   property tests that header parsing and verification never panic.
//! * `importance`: `kite.json` scoring rules and built-ins on real payloads.
//! * `manifest`: `kite.json` parsing never panics and always names a path.
//! * `envelope`: `KiteEvent` ⇄ CloudEvent JSON round trips (proptest).
//! * `support`: fixtures, provider headers and the ingest pipeline.

mod envelope;
mod importance;
mod manifest;
mod providers;
mod signatures;
mod support;
