//! `kitedesk-bench-plans DB`: for every filter combination the web UI's
//! Events page can send, the plan `kitedesk_store::Store::list` gets
//! (`Store::query_plan`, the store's own SQL) and the time of a first page
//! (200 rows, as the UI asks) and of a next page (500 rows after that
//! cursor). Opens the history read-only: run it on a history the daemon
//! has already migrated.

use std::path::PathBuf;
use std::time::Instant;

use chrono::{Duration, Utc};
use kitedesk_core::Importance;
use kitedesk_store::{EventQuery, Store};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: kitedesk-bench-plans DB")?,
    );
    let store = Store::open_read_only(&db).await?;
    // The newest event's time: the generated history ends in the past.
    let newest = store
        .list(&EventQuery {
            limit: Some(1),
            ..Default::default()
        })
        .await?
        .events
        .first()
        .map(|e| e.received)
        .unwrap_or_else(Utc::now);
    let src = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let q = EventQuery::default;
    let cases: Vec<(&str, EventQuery)> = vec![
        ("unfiltered", q()),
        (
            "source=github",
            EventQuery {
                sources: src(&["github"]),
                ..q()
            },
        ),
        (
            "source=paperclip",
            EventQuery {
                sources: src(&["paperclip"]),
                ..q()
            },
        ),
        (
            "source=github,stripe",
            EventQuery {
                sources: src(&["github", "stripe"]),
                ..q()
            },
        ),
        (
            "min_importance=normal",
            EventQuery {
                min_importance: Some(Importance::Normal),
                ..q()
            },
        ),
        (
            "min_importance=critical",
            EventQuery {
                min_importance: Some(Importance::Critical),
                ..q()
            },
        ),
        (
            "source=github&min_importance=normal",
            EventQuery {
                sources: src(&["github"]),
                min_importance: Some(Importance::Normal),
                ..q()
            },
        ),
        (
            "source=github&min_importance=critical",
            EventQuery {
                sources: src(&["github"]),
                min_importance: Some(Importance::Critical),
                ..q()
            },
        ),
        (
            "source=stripe&min_importance=critical",
            EventQuery {
                sources: src(&["stripe"]),
                min_importance: Some(Importance::Critical),
                ..q()
            },
        ),
        (
            "source=paperclip&min_importance=critical",
            EventQuery {
                sources: src(&["paperclip"]),
                min_importance: Some(Importance::Critical),
                ..q()
            },
        ),
        (
            "source=kiket&min_importance=high",
            EventQuery {
                sources: src(&["kiket"]),
                min_importance: Some(Importance::High),
                ..q()
            },
        ),
        (
            "type=com.stripe.invoice.*",
            EventQuery {
                type_glob: Some("com.stripe.invoice.*".into()),
                ..q()
            },
        ),
        (
            "type=com.github.pull_request*",
            EventQuery {
                type_glob: Some("com.github.pull_request*".into()),
                ..q()
            },
        ),
        (
            "source=github&type=com.github.push",
            EventQuery {
                sources: src(&["github"]),
                type_glob: Some("com.github.push".into()),
                ..q()
            },
        ),
        (
            "verified=true",
            EventQuery {
                verified: Some(true),
                ..q()
            },
        ),
        (
            "verified=false",
            EventQuery {
                verified: Some(false),
                ..q()
            },
        ),
        (
            "range=1h",
            EventQuery {
                since: Some(newest - Duration::hours(1)),
                ..q()
            },
        ),
        (
            "range=24h",
            EventQuery {
                since: Some(newest - Duration::hours(24)),
                ..q()
            },
        ),
        (
            "range=7d&min_importance=critical",
            EventQuery {
                since: Some(newest - Duration::days(7)),
                min_importance: Some(Importance::Critical),
                ..q()
            },
        ),
        (
            "since..until (one day, 10 days back)",
            EventQuery {
                since: Some(newest - Duration::days(11)),
                until: Some(newest - Duration::days(10)),
                ..q()
            },
        ),
        (
            "q=merged",
            EventQuery {
                q: Some("merged".into()),
                ..q()
            },
        ),
        (
            "q=failed&source=github",
            EventQuery {
                q: Some("failed".into()),
                sources: src(&["github"]),
                ..q()
            },
        ),
        (
            "q=invoice&min_importance=critical",
            EventQuery {
                q: Some("invoice".into()),
                min_importance: Some(Importance::Critical),
                ..q()
            },
        ),
    ];
    for (name, mut query) in cases {
        println!("== {name}");
        for line in store.query_plan(&query).await? {
            println!("   plan: {line}");
        }
        query.limit = Some(200);
        let t = Instant::now();
        let page = store.list(&query).await?;
        let first = t.elapsed();
        let t = Instant::now();
        let again = store.list(&query).await?;
        let warm = t.elapsed();
        assert_eq!(page.events.len(), again.events.len());
        let mut line = format!(
            "   first page: {} rows in {:.2} ms (again {:.2} ms)",
            page.events.len(),
            first.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3
        );
        if let Some(cursor) = page.next_cursor {
            query.limit = Some(500);
            query.before = Some(cursor);
            let t = Instant::now();
            let next = store.list(&query).await?;
            line.push_str(&format!(
                "; next page: {} rows in {:.2} ms",
                next.events.len(),
                t.elapsed().as_secs_f64() * 1e3
            ));
        }
        println!("{line}");
    }
    Ok(())
}
