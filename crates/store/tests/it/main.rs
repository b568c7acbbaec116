//! Store tests against a real SQLite file in a temp dir.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic with the failing value"
)]

mod history;
mod list_split;
mod outbox;
mod secrets;
mod settings;
