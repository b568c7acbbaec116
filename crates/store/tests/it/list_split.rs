//! `Store::list` with several sources and/or a minimum importance walks one
//! keyset per (source, importance level) and merges them: the pages must be
//! exactly what one filtered walk gives, for every filter combination the
//! web UI sends, page after page, in both directions.

use chrono::{DateTime, Duration, Utc};
use kitedesk_core::{Headers, Importance, KiteEvent, Verification};
use kitedesk_store::{EventQuery, NewEvent, Store};
use serde_json::json;

const SOURCES: [&str; 4] = ["github", "stripe", "kiket", "paperclip"];
const TYPES: [&str; 4] = [
    "com.github.push",
    "com.github.pull_request.opened",
    "com.stripe.invoice.paid",
    "com.kiket.issue.created",
];

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

/// Event `n`'s attributes, spread unevenly so some combinations are rare
/// (critical is every 23rd event; paperclip every 9th).
fn attrs(n: i64) -> (&'static str, &'static str, Importance, bool) {
    let source = if n % 9 == 0 {
        SOURCES[3]
    } else {
        SOURCES[(n % 3) as usize]
    };
    let importance = if n % 23 == 0 {
        Importance::Critical
    } else {
        Importance::from_rank(1 + (n * 7) % 3).unwrap()
    };
    (
        source,
        TYPES[((n / 2) % 4) as usize],
        importance,
        n % 5 != 0,
    )
}

fn ev(n: i64) -> NewEvent {
    let (source, ty, importance, verified) = attrs(n);
    let data = json!({"n": n});
    NewEvent {
        payload: data.to_string(),
        received: t0() + Duration::seconds(n),
        event: KiteEvent {
            id: format!("evt-{n}"),
            source: format!("https://{source}.example/repo"),
            ty: ty.to_string(),
            time: t0(),
            source_name: source.to_string(),
            summary: format!("event {n}"),
            data: data.into(),
            seq: None,
            original_headers: Headers::default(),
            verification: if verified {
                Verification::verified("ok")
            } else {
                Verification::unverified("unsigned source")
            },
            importance,
            importance_reason: "test".into(),
        },
    }
}

const N: i64 = 600;

/// The reference: the event numbers matching `q`, newest first, by a plain
/// filter over every event.
fn expected(q: &EventQuery) -> Vec<i64> {
    let glob = q
        .type_glob
        .as_deref()
        .map(|g| kitedesk_core::glob::Glob::new(g).unwrap());
    (1..=N)
        .rev()
        .filter(|&n| {
            let (source, ty, importance, verified) = attrs(n);
            let at = t0() + Duration::seconds(n);
            (q.sources.is_empty() || q.sources.iter().any(|s| s == source))
                && glob.as_ref().is_none_or(|g| g.is_match(ty))
                && q.min_importance.is_none_or(|m| importance >= m)
                && q.verified.is_none_or(|v| v == verified)
                && q.since.is_none_or(|s| at >= s)
                && q.until.is_none_or(|u| at < u)
        })
        .collect()
}

fn number(id: &str) -> i64 {
    id.trim_start_matches("evt-").parse().unwrap()
}

/// Every page of `q` (limit 7) newest first, through the cursors.
async fn all_pages(s: &Store, q: &EventQuery) -> Vec<i64> {
    let mut q = q.clone();
    q.limit = Some(7);
    let mut out = Vec::new();
    loop {
        let page = s.list(&q).await.unwrap();
        assert!(page.events.len() <= 7);
        assert!(page.events.iter().all(|e| e.id == number(&e.event.id)));
        out.extend(page.events.iter().map(|e| number(&e.event.id)));
        match page.next_cursor {
            Some(c) => q.before = Some(c),
            None => return out,
        }
    }
}

async fn seeded() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("history.db")).await.unwrap();
    let batch: Vec<NewEvent> = (1..=N).map(ev).collect();
    s.insert_batch(&batch).await.unwrap();
    (dir, s)
}

fn combos() -> Vec<EventQuery> {
    let src = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut out = Vec::new();
    let source_sets = [
        vec![],
        src(&["github"]),
        src(&["paperclip"]),
        src(&["github", "stripe"]),
        src(&["stripe", "paperclip", "stripe"]),
        src(&["nope"]),
    ];
    let importances = [
        None,
        Some(Importance::Low),
        Some(Importance::Normal),
        Some(Importance::High),
        Some(Importance::Critical),
    ];
    for sources in &source_sets {
        for min_importance in importances {
            out.push(EventQuery {
                sources: sources.clone(),
                min_importance,
                ..Default::default()
            });
            out.push(EventQuery {
                sources: sources.clone(),
                min_importance,
                verified: Some(false),
                type_glob: Some("com.{github,stripe}.*".into()),
                since: Some(t0() + Duration::seconds(100)),
                until: Some(t0() + Duration::seconds(500)),
                ..Default::default()
            });
        }
    }
    out
}

#[tokio::test]
async fn split_walks_page_exactly_like_one_filtered_walk() {
    let (_d, s) = seeded().await;
    for q in combos() {
        let want = expected(&q);
        assert_eq!(all_pages(&s, &q).await, want, "{q:?}");
        // A first page of the default size is the head of the same list.
        let head: Vec<i64> = s
            .list(&q)
            .await
            .unwrap()
            .events
            .iter()
            .map(|e| number(&e.event.id))
            .collect();
        assert_eq!(head, want[..want.len().min(50)], "{q:?}");
    }
}

#[tokio::test]
async fn split_walks_catch_up_oldest_first_after_an_id() {
    // The live feed's catch-up: `after` an id, oldest first.
    let (_d, s) = seeded().await;
    for mut q in combos() {
        // Ids are given in insert order from 1: event n has id n.
        let after_n = 250;
        q.after = Some(after_n);
        q.oldest_first = true;
        q.limit = Some(20);
        let mut want: Vec<i64> = expected(&q).into_iter().filter(|&n| n > after_n).collect();
        want.reverse();
        want.truncate(20);
        let got: Vec<i64> = s
            .list(&q)
            .await
            .unwrap()
            .events
            .iter()
            .map(|e| number(&e.event.id))
            .collect();
        assert_eq!(got, want, "{q:?}");
    }
}

/// How many keyset walks of `index` (an `EXPLAIN QUERY PLAN` detail, such
/// as `events_importance (importance=?)`) a plan makes.
fn walks(plan: &[String], index: &str) -> usize {
    let detail = format!("INDEX {index}");
    plan.iter().filter(|p| p.contains(&detail)).count()
}

const BY_SOURCE_AND_LEVEL: &str = "events_source_importance (source_name=? AND importance=?)";

#[tokio::test]
async fn source_and_importance_walk_the_combined_index() {
    // github + critical used to walk every github event (events_source) and
    // skip the ones below critical.
    let (_d, s) = seeded().await;
    let q = EventQuery {
        sources: vec!["github".into()],
        min_importance: Some(Importance::Critical),
        ..Default::default()
    };
    let plan = s.query_plan(&q).await.unwrap();
    assert_eq!(walks(&plan, BY_SOURCE_AND_LEVEL), 1, "{plan:?}");
    assert!(!plan.iter().any(|p| p.starts_with("SCAN e")), "{plan:?}");
    // Two sources, importance ≥ high: four walks, no sort of every match.
    let q = EventQuery {
        sources: vec!["github".into(), "stripe".into()],
        min_importance: Some(Importance::High),
        ..Default::default()
    };
    let plan = s.query_plan(&q).await.unwrap();
    assert_eq!(walks(&plan, BY_SOURCE_AND_LEVEL), 4, "{plan:?}");
    // One source alone walks the combined index once per level (there is
    // no index of (source, id) to walk), never the whole table.
    let q = EventQuery {
        sources: vec!["paperclip".into()],
        ..Default::default()
    };
    let plan = s.query_plan(&q).await.unwrap();
    assert_eq!(walks(&plan, BY_SOURCE_AND_LEVEL), 4, "{plan:?}");
    assert!(!plan.iter().any(|p| p.starts_with("SCAN e")), "{plan:?}");
    // Importance alone walks events_importance once per level.
    let q = EventQuery {
        min_importance: Some(Importance::High),
        ..Default::default()
    };
    let plan = s.query_plan(&q).await.unwrap();
    assert_eq!(
        walks(&plan, "events_importance (importance=?)"),
        2,
        "{plan:?}"
    );
}
