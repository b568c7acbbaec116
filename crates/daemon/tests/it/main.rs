//! Daemon tests: the router through `oneshot` with a real SQLite file, and
//! the live feed over a real socket on 127.0.0.1:0.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic with the failing value"
)]

mod api;
mod harness;
mod ingress;
mod notify;
mod outbox;
mod relays;
mod retention;
mod secrets;
mod sinks;
mod stream;
mod ui;
