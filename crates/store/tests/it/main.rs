//! Store tests against a real SQLite file in a temp dir.

mod history;
