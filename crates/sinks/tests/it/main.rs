//! kitedesk-sinks' integration tests, one binary with a module per sink,
//! all against real things: an HTTP server on 127.0.0.1:0, real commands
//! under `sh`, real files, a real Unix-socket listener.
//!
//! * `http`: bytes and headers as received, status handling (200, 500,
//!   302), timeouts, re-signing checked with `kitedesk_core::verify`.
//! * `exec`: stdin and `KITE_*` variables, exit codes, retry after a failing
//!   first run, timeouts that kill the process group, shell metacharacters.
//! * `file`, `socket`: NDJSON lines, concurrency, missing listeners.
//! * `retry`: the schedule and dead-lettering.
//! * `manifest`: sinks built from `kite.json` `sink` blocks.
//! * `support`: events, deliveries and the test HTTP server.

#![expect(
    clippy::unwrap_used,
    reason = "tests fail loudly on the first unexpected error"
)]

mod exec;
mod file;
mod http;
mod manifest;
mod retry;
mod socket;
mod support;
