//! The notification policy against table-driven cases and properties, and
//! the in-memory backend.

#![expect(clippy::unwrap_used, reason = "tests")]

mod engine;
mod properties;

use chrono::{DateTime, Utc};
use kitedesk_core::Importance;
use kitedesk_notify::{Engine, EventFacts, NotificationSettings};

pub fn t0() -> DateTime<Utc> {
    "2026-11-24T12:00:00Z".parse().unwrap()
}

pub fn at_ms(ms: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::milliseconds(ms)
}

pub fn event(id: i64, source: &str, importance: Importance) -> EventFacts {
    EventFacts {
        id,
        source_name: "github".into(),
        source: format!("https://github.com/{source}"),
        ce_id: format!("delivery-{id}"),
        ty: "com.github.workflow_run.completed".into(),
        summary: format!("CI failed #{id} on {source}"),
        importance,
    }
}

pub fn engine_with(edit: impl FnOnce(&mut NotificationSettings)) -> Engine {
    let mut s = NotificationSettings::default();
    edit(&mut s);
    Engine::new(s.compile().unwrap())
}
