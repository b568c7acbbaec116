use chrono::{DateTime, Duration, Utc};
use kitedesk_core::{Headers, Importance, KiteEvent, Verification};
use kitedesk_store::{EventQuery, Inserted, NewEvent, Store};
use serde_json::json;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn ev(
    n: i64,
    source_name: &str,
    ty: &str,
    importance: Importance,
    verified: bool,
    summary: &str,
) -> NewEvent {
    let data = json!({"n": n, "note": summary});
    NewEvent {
        payload: data.to_string(),
        received: t0() + Duration::seconds(n),
        event: KiteEvent {
            id: format!("evt-{n}"),
            source: format!("https://{source_name}.example/repo"),
            ty: ty.to_string(),
            time: t0(),
            source_name: source_name.to_string(),
            summary: summary.to_string(),
            data: data.into(),
            seq: None,
            original_headers: [("X-Test", "1"), ("Content-Type", "application/json")]
                .into_iter()
                .collect::<Headers>(),
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

/// A verified GitHub push of normal importance.
fn push(n: i64, summary: &str) -> NewEvent {
    ev(
        n,
        "github",
        "com.github.push",
        Importance::Normal,
        true,
        summary,
    )
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("history.db")).await.unwrap();
    (dir, s)
}

/// 30 events: github/stripe alternating, importance cycling, every third unverified.
async fn seeded() -> (tempfile::TempDir, Store) {
    let (d, s) = store().await;
    let batch: Vec<NewEvent> = (1..=30)
        .map(|n| {
            let (src, ty) = if n % 2 == 0 {
                ("github", "com.github.push")
            } else {
                ("stripe", "com.stripe.payment_intent.payment_failed")
            };
            let imp = Importance::from_rank(1 + n % 4).unwrap();
            let summary = if n == 7 {
                "Payment of 20.00 USD failed: card_declined".to_string()
            } else {
                format!("event number {n}")
            };
            ev(n, src, ty, imp, n % 3 != 0, &summary)
        })
        .collect();
    s.insert_batch(&batch).await.unwrap();
    (d, s)
}

#[tokio::test]
async fn redelivery_never_makes_a_second_row() {
    let (_d, s) = store().await;
    let first = s
        .insert(ev(
            1,
            "github",
            "com.github.push",
            Importance::Normal,
            true,
            "a",
        ))
        .await
        .unwrap();
    let again = s
        .insert(ev(
            1,
            "github",
            "com.github.push",
            Importance::Normal,
            true,
            "a",
        ))
        .await
        .unwrap();
    assert!(matches!(first, Inserted::New(_)));
    assert_eq!(
        again,
        Inserted::Duplicate(first.id()),
        "same (source, id) must map to the first row"
    );
    // Same id from another source is a different event.
    let mut other = ev(
        1,
        "github",
        "com.github.push",
        Importance::Normal,
        true,
        "a",
    );
    other.event.source = "https://github.com/other/repo".into();
    assert!(matches!(s.insert(other).await.unwrap(), Inserted::New(_)));
    assert_eq!(s.count().await.unwrap(), 2);
}

#[tokio::test]
async fn duplicates_within_one_batch_are_detected() {
    let (_d, s) = store().await;
    let a = ev(
        5,
        "github",
        "com.github.push",
        Importance::Normal,
        true,
        "a",
    );
    let r = s.insert_batch(&[a.clone(), a]).await.unwrap();
    assert!(matches!(r[0], Inserted::New(_)));
    assert_eq!(r[1], Inserted::Duplicate(r[0].id()));
}

#[tokio::test]
async fn get_returns_payload_headers_and_envelope() {
    let (_d, s) = store().await;
    let id = s
        .insert(ev(
            3,
            "github",
            "com.github.push",
            Importance::High,
            true,
            "hello",
        ))
        .await
        .unwrap()
        .id();
    let (got, payload) = s.get(id).await.unwrap().unwrap();
    assert_eq!(
        payload, r#"{"n":3,"note":"hello"}"#,
        "payload text is kept as received"
    );
    assert_eq!(got.event.data.value()["n"], 3);
    assert_eq!(got.event.original_headers.get("x-test"), Some("1"));
    assert_eq!(got.event.importance, Importance::High);
    assert_eq!(got.received, t0() + Duration::seconds(3));
    assert!(s.get(id + 100).await.unwrap().is_none());
}

#[tokio::test]
async fn relayed_plain_text_and_absent_data_read_back() {
    // The relay link stores a CloudEvent's string data as the text itself,
    // and absent data as nothing: both read back (as a JSON string, as null).
    let (_d, s) = store().await;
    for (n, stored, want) in [
        (1, "plain text, not JSON", json!("plain text, not JSON")),
        (2, "", serde_json::Value::Null),
    ] {
        let mut e = push(n, "relayed");
        e.payload = stored.to_string();
        let id = s.insert(e).await.unwrap().id();
        let (got, payload) = s.get(id).await.unwrap().unwrap();
        assert_eq!(payload, stored);
        assert_eq!(got.event.data.value(), &want, "{stored:?}");
    }
}

#[tokio::test]
async fn keyset_pages_are_stable_while_new_events_arrive() {
    let (_d, s) = seeded().await;
    let q = EventQuery {
        limit: Some(7),
        ..Default::default()
    };
    let p1 = s.list(&q).await.unwrap();
    assert_eq!(p1.events.len(), 7);
    assert_eq!(p1.events[0].event.id, "evt-30", "newest first");
    // Events arriving between pages must not shift the next page.
    s.insert(ev(
        100,
        "github",
        "com.github.push",
        Importance::Normal,
        true,
        "late",
    ))
    .await
    .unwrap();
    let mut seen: Vec<String> = p1.events.iter().map(|e| e.event.id.clone()).collect();
    let mut cursor = p1.next_cursor;
    while let Some(c) = cursor {
        let p = s
            .list(&EventQuery {
                before: Some(c),
                ..q.clone()
            })
            .await
            .unwrap();
        seen.extend(p.events.iter().map(|e| e.event.id.clone()));
        cursor = p.next_cursor;
    }
    let want: Vec<String> = (1..=30).rev().map(|n| format!("evt-{n}")).collect();
    assert_eq!(
        seen, want,
        "every seeded event exactly once, in order, no late arrival"
    );
}

#[tokio::test]
async fn each_filter_narrows_correctly() {
    let (_d, s) = seeded().await;
    let ids =
        |p: kitedesk_store::Page| p.events.into_iter().map(|e| e.event.id).collect::<Vec<_>>();
    let all = |q: EventQuery| EventQuery {
        limit: Some(500),
        ..q
    };

    let gh = s
        .list(&all(EventQuery {
            sources: vec!["github".into()],
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(gh.events.len(), 15);
    assert!(gh.events.iter().all(|e| e.event.source_name == "github"));

    let ty = s
        .list(&all(EventQuery {
            type_glob: Some("com.stripe.*".into()),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(ty.events.len(), 15);
    assert!(
        ty.events
            .iter()
            .all(|e| e.event.ty.starts_with("com.stripe."))
    );
    let brace = s
        .list(&all(EventQuery {
            type_glob: Some("com.{github,nope}.*".into()),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(brace.events.len(), 15);

    let crit = s
        .list(&all(EventQuery {
            min_importance: Some(Importance::Critical),
            ..Default::default()
        }))
        .await
        .unwrap();
    // n % 4 == 3 → rank 4
    assert_eq!(
        ids(crit),
        (1..=30)
            .rev()
            .filter(|n| n % 4 == 3)
            .map(|n| format!("evt-{n}"))
            .collect::<Vec<_>>()
    );

    let range = s
        .list(&all(EventQuery {
            since: Some(t0() + Duration::seconds(10)),
            until: Some(t0() + Duration::seconds(13)),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(
        ids(range),
        vec!["evt-12", "evt-11", "evt-10"],
        "since inclusive, until exclusive"
    );

    let unverified = s
        .list(&all(EventQuery {
            verified: Some(false),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(unverified.events.len(), 10);
    assert!(
        unverified
            .events
            .iter()
            .all(|e| !e.event.verification.verified)
    );

    let combined = s
        .list(&all(EventQuery {
            sources: vec!["github".into()],
            verified: Some(false),
            min_importance: Some(Importance::High),
            ..Default::default()
        }))
        .await
        .unwrap();
    // even, divisible by 3, rank(1 + n%4) >= 3 → n%4 >= 2 → n ∈ {6, 18, 30}
    assert_eq!(ids(combined), vec!["evt-30", "evt-18", "evt-6"]);
}

#[tokio::test]
async fn full_text_search_matches_summary_and_payload_words() {
    let (_d, s) = seeded().await;
    let q = |text: &str| EventQuery {
        q: Some(text.into()),
        limit: Some(100),
        ..Default::default()
    };
    let hit = s.list(&q("card_declined")).await.unwrap();
    assert_eq!(hit.events.len(), 1);
    assert_eq!(hit.events[0].event.id, "evt-7");
    // The payload's values are searched, not its keys ("note" is one).
    assert_eq!(s.list(&q("note")).await.unwrap().events.len(), 0);
    assert_eq!(
        s.list(&q("declin*")).await.unwrap().events.len(),
        1,
        "prefix search"
    );
    assert_eq!(s.list(&q("nonexistentword")).await.unwrap().events.len(), 0);
    // FTS operators in user input are inert, not syntax errors.
    assert_eq!(s.list(&q("card OR NEAR(")).await.unwrap().events.len(), 0);
    // Search combines with filters and pages.
    let page = s
        .list(&EventQuery {
            q: Some("number".into()),
            sources: vec!["github".into()],
            limit: Some(4),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.events.len(), 4);
    assert!(page.events.iter().all(|e| e.event.source_name == "github"));
    let next = s
        .list(&EventQuery {
            q: Some("number".into()),
            sources: vec!["github".into()],
            limit: Some(100),
            before: page.next_cursor,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.events.len() + next.events.len(), 15);
}

#[tokio::test]
async fn retention_by_age_and_count_keeps_the_newest_and_the_index() {
    let (_d, s) = seeded().await;
    let gone = s
        .retain(Some(t0() + Duration::seconds(11)), None)
        .await
        .unwrap();
    assert_eq!(
        gone, 10,
        "events received at t0+1..t0+10 are older than the cutoff"
    );
    let gone = s.retain(None, Some(5)).await.unwrap();
    assert_eq!(gone, 15);
    let left = s
        .list(&EventQuery {
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        left.events
            .iter()
            .map(|e| e.event.id.as_str())
            .collect::<Vec<_>>(),
        ["evt-30", "evt-29", "evt-28", "evt-27", "evt-26"]
    );
    // The FTS index forgot deleted rows: evt-7 was the only card_declined.
    let q = EventQuery {
        q: Some("card_declined".into()),
        ..Default::default()
    };
    assert!(s.list(&q).await.unwrap().events.is_empty());
}

#[tokio::test]
async fn volume_counts_per_source_per_bucket() {
    let (_d, s) = seeded().await;
    let v = s
        .volume(t0(), t0() + Duration::seconds(20), 10_000)
        .await
        .unwrap();
    let base = t0().timestamp_millis();
    let get = |src: &str, start: i64| {
        v.iter()
            .find(|b| b.source == src && b.start_ms == start)
            .map(|b| b.count)
    };
    // Buckets [t0, t0+10s) holds n=1..9 and [t0+10s, t0+20s) holds n=10..19.
    assert_eq!(get("stripe", base), Some(5));
    assert_eq!(get("github", base), Some(4));
    assert_eq!(get("github", base + 10_000), Some(5));
    assert_eq!(get("stripe", base + 10_000), Some(5));
}

#[tokio::test]
async fn a_foreign_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    std::fs::write(
        &path,
        b"this is not a database, it is a text file of 64 bytes or so....",
    )
    .unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path).await.unwrap_err().to_string();
    assert!(err.contains("history.db"), "error names the file: {err}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing overwritten");
}

/// Another program's SQLite database at the data path: refused before
/// anything is written (no WAL switch, no migration tables).
#[tokio::test]
async fn another_programs_sqlite_database_is_refused_and_left_untouched() {
    use sqlx::{ConnectOptions as _, Connection as _};
    let dir = tempfile::tempdir().unwrap();
    for (name, app_id) in [("plain.db", 0), ("tagged.db", 0x4650_4C44)] {
        let path = dir.path().join(name);
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA application_id = {app_id}"
        )))
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = Store::open(&path).await.unwrap_err().to_string();
        assert!(
            err.contains(name) && err.contains("not a Kite Desk history"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "{name} not modified");
        assert!(
            !dir.path().join(format!("{name}-wal")).exists(),
            "no WAL switch"
        );
    }
}

/// A history created before the application id existed (our tables, id 0)
/// still opens; its next migration run tags it.
#[tokio::test]
async fn an_untagged_history_of_ours_still_opens() {
    use sqlx::{ConnectOptions as _, Connection as _};
    let (d, s) = seeded().await;
    s.close().await;
    let path = d.path().join("history.db");
    let mut c = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .unwrap();
    sqlx::query("PRAGMA application_id = 0")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let s = Store::open(&path).await.unwrap();
    assert_eq!(s.count().await.unwrap(), 30);
}

#[tokio::test]
async fn read_only_handle_reads_but_cannot_write() {
    let (d, s) = seeded().await;
    let ro = Store::open_read_only(&d.path().join("history.db"))
        .await
        .unwrap();
    assert_eq!(ro.count().await.unwrap(), 30);
    assert!(
        ro.insert(ev(99, "github", "x", Importance::Low, true, "x"))
            .await
            .is_err()
    );
    drop(s);
}

#[tokio::test]
async fn deferred_indexing_catches_up_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let s = Store::open(&path).await.unwrap();
    let q = EventQuery {
        q: Some("deferredword".into()),
        ..Default::default()
    };
    s.insert_batch_deferred(&[ev(
        1,
        "github",
        "com.github.push",
        Importance::Normal,
        true,
        "deferredword one",
    )])
    .await
    .unwrap();
    assert!(
        s.list(&q).await.unwrap().events.is_empty(),
        "not searchable until indexed"
    );
    // Retention deleting an unindexed row must not corrupt the index.
    s.insert_batch_deferred(&[ev(
        2,
        "github",
        "com.github.push",
        Importance::Normal,
        true,
        "deferredword two",
    )])
    .await
    .unwrap();
    s.close().await;
    // A restart (or crash) before indexing: opening catches up.
    let s = Store::open(&path).await.unwrap();
    let found = s.list(&q).await.unwrap();
    assert_eq!(found.events.len(), 2, "both rows indexed on open");
    // The next immediate insert indexes with its own transaction.
    s.insert(ev(
        3,
        "github",
        "com.github.push",
        Importance::Normal,
        true,
        "deferredword three",
    ))
    .await
    .unwrap();
    assert_eq!(s.list(&q).await.unwrap().events.len(), 3);
    assert_eq!(s.index_pending().await.unwrap(), 0, "nothing left to index");
    s.retain(None, Some(1)).await.unwrap();
    assert_eq!(
        s.list(&q).await.unwrap().events.len(),
        1,
        "deleted rows leave the index"
    );
    s.integrity_check().await.unwrap();
}

#[tokio::test]
async fn deleting_rows_that_were_never_indexed_keeps_the_index_consistent() {
    let (_d, s) = store().await;
    s.insert(ev(
        1,
        "github",
        "com.github.push",
        Importance::Normal,
        true,
        "alpha",
    ))
    .await
    .unwrap();
    s.insert_batch_deferred(&[ev(
        2,
        "github",
        "com.github.push",
        Importance::Normal,
        true,
        "beta",
    )])
    .await
    .unwrap();
    // Row 2 is not indexed; retention removes everything older than t0+3s.
    assert_eq!(
        s.retain(Some(t0() + Duration::seconds(3)), None)
            .await
            .unwrap(),
        2
    );
    s.integrity_check().await.unwrap();
    s.insert(ev(
        4,
        "github",
        "com.github.push",
        Importance::Normal,
        true,
        "gamma",
    ))
    .await
    .unwrap();
    let q = EventQuery {
        q: Some("gamma".into()),
        ..Default::default()
    };
    assert_eq!(s.list(&q).await.unwrap().events.len(), 1);
    s.integrity_check().await.unwrap();
}

#[tokio::test]
async fn search_with_filters_is_driven_by_the_full_text_index() {
    // With a plain JOIN, SQLite preferred the source index and ran MATCH once
    // per row: minutes on a 1M-event history. The plan must scan the FTS
    // index and look events up by primary key.
    let (_d, s) = seeded().await;
    let q = EventQuery {
        q: Some("number".into()),
        sources: vec!["github".into()],
        min_importance: Some(Importance::High),
        ..Default::default()
    };
    let plan = s.query_plan(&q).await.unwrap();
    assert!(
        plan[0].starts_with("SCAN f VIRTUAL TABLE"),
        "FTS first: {plan:?}"
    );
    assert!(
        plan.iter().any(|p| p.contains("USING INTEGER PRIMARY KEY")),
        "{plan:?}"
    );
    assert!(
        !plan.iter().any(|p| p.contains("TEMP B-TREE")),
        "no sort of all matches: {plan:?}"
    );
}

#[tokio::test]
async fn bounded_indexing_steps_index_oldest_first_and_resume() {
    let (_d, s) = store().await;
    let batch: Vec<NewEvent> = (1..=5)
        .map(|n| {
            ev(
                n,
                "github",
                "com.github.push",
                Importance::Normal,
                true,
                "stepword",
            )
        })
        .collect();
    s.insert_batch_deferred(&batch).await.unwrap();
    let q = EventQuery {
        q: Some("stepword".into()),
        ..Default::default()
    };
    assert_eq!(s.index_pending_up_to(Some(2)).await.unwrap(), 2);
    let found: Vec<String> = s
        .list(&q)
        .await
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.event.id)
        .collect();
    assert_eq!(
        found,
        ["evt-2", "evt-1"],
        "the oldest two are indexed first"
    );
    assert_eq!(s.index_pending_up_to(Some(2)).await.unwrap(), 2);
    assert_eq!(s.index_pending().await.unwrap(), 1, "the rest in one go");
    assert_eq!(s.list(&q).await.unwrap().events.len(), 5);
    s.integrity_check().await.unwrap();
}

/// Open the history file with a second, raw connection (what a user's
/// `sqlite3` would see).
async fn raw(path: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn payloads_are_stored_compressed_and_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let s = Store::open(&path).await.unwrap();
    let mut e = ev(
        1,
        "github",
        "com.github.push",
        Importance::Normal,
        true,
        "big",
    );
    // A realistic, repetitive JSON payload (URLs and keys repeat).
    let commits: Vec<_> = (0..20)
        .map(|i| json!({"id": format!("c{i}"), "url": format!("https://github.com/acme/api/commit/c{i}"), "message": "fix: the thing"}))
        .collect();
    e.payload = json!({"ref": "refs/heads/main", "commits": commits}).to_string();
    let raw_len = e.payload.len() as i64;
    let id = s.insert(e.clone()).await.unwrap().id();
    let mut c = raw(&path).await;
    let (ty, stored_len): (String, i64) =
        sqlx::query_as("SELECT typeof(payload), length(payload) FROM events WHERE id = ?")
            .bind(id)
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(ty, "blob", "new payloads are zstd frames");
    assert!(
        stored_len * 3 < raw_len,
        "stored {stored_len} bytes for {raw_len}"
    );
    // The header list is short: kept as plain JSON, not compressed.
    let headers: Vec<u8> = sqlx::query_scalar("SELECT headers FROM events WHERE id = ?")
        .bind(id)
        .fetch_one(&mut c)
        .await
        .unwrap();
    let headers: serde_json::Value = serde_json::from_slice(&headers).expect("plain JSON");
    assert_eq!(
        headers,
        serde_json::to_value(&e.event.original_headers).unwrap()
    );
    let (_, payload) = s.get(id).await.unwrap().unwrap();
    assert_eq!(payload, e.payload, "the original bytes come back");
    let q = EventQuery {
        q: Some("refs".into()),
        ..Default::default()
    };
    assert_eq!(
        s.list(&q).await.unwrap().events.len(),
        1,
        "payload searchable"
    );
}

#[tokio::test]
async fn payloads_stored_as_text_before_compression_still_read_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let s = Store::open(&path).await.unwrap();
    let e = ev(
        1,
        "github",
        "com.github.push",
        Importance::Normal,
        true,
        "old row",
    );
    let id = s
        .insert_batch_deferred(std::slice::from_ref(&e))
        .await
        .unwrap()[0]
        .id();
    // What a row written before the compression migration looks like.
    let mut c = raw(&path).await;
    sqlx::query("UPDATE events SET payload = ? WHERE id = ?")
        .bind(r#"{"legacy":"plaintextword"}"#)
        .bind(id)
        .execute(&mut c)
        .await
        .unwrap();
    let (_, payload) = s.get(id).await.unwrap().unwrap();
    assert_eq!(payload, r#"{"legacy":"plaintextword"}"#);
    // Indexing reads it back from the history (no text in memory).
    assert_eq!(s.index_pending().await.unwrap(), 1);
    let q = EventQuery {
        q: Some("plaintextword".into()),
        ..Default::default()
    };
    assert_eq!(s.list(&q).await.unwrap().events.len(), 1);
    s.integrity_check().await.unwrap();
}

#[tokio::test]
async fn index_rows_uses_the_text_in_memory_only_when_it_is_what_waits() {
    use kitedesk_store::index_rows_of;
    let (_d, s) = store().await;
    let mk = |n| push(n, "memword");
    let batch: Vec<NewEvent> = (1..=5).map(mk).collect();
    let done = s.insert_batch_deferred(&batch).await.unwrap();
    // The text offered differs from what is stored, so a search shows
    // which one the index got: "inmemory" only from memory.
    let mut rows = index_rows_of(&batch, &done);
    for r in &mut rows {
        r.payload = format!("{{\"from\":\"inmemory\",\"n\":{}}}", r.id);
    }
    let found = async |word: &str| {
        let q = EventQuery {
            q: Some(word.into()),
            ..Default::default()
        };
        s.list(&q).await.unwrap().events.len()
    };
    // The oldest three of the five waiting: indexed from memory.
    assert_eq!(s.index_rows(&rows[..3]).await.unwrap(), 3);
    assert_eq!(found("inmemory").await, 3);
    // Offering rows already indexed does nothing.
    assert_eq!(s.index_rows(&rows[..3]).await.unwrap(), 0);
    // Row 5 without row 4: a hole, so both are read back from the history.
    assert_eq!(s.index_rows(&rows[4..]).await.unwrap(), 2);
    assert_eq!(found("inmemory").await, 3, "not from memory");
    assert_eq!(found("memword").await, 5);
    s.integrity_check().await.unwrap();
}

#[tokio::test]
async fn a_history_inserter_commits_on_the_callers_thread_beside_the_store() {
    use kitedesk_store::StoredBlobs;
    let (d, s) = store().await;
    let mk = |n| push(n, "direct");
    // The second of event 1 is a redelivery in the same batch.
    let batch: Vec<NewEvent> = vec![mk(1), mk(2), mk(1)];
    let stored = batch
        .iter()
        .map(StoredBlobs::encode)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let mut ins = s.history_inserter().unwrap();
    let (ins, out) = tokio::task::spawn_blocking(move || {
        let out = ins.insert(&batch, stored);
        (ins, out)
    })
    .await
    .unwrap();
    let out = out.unwrap();
    let Inserted::New(first) = out[0] else {
        panic!("{out:?}")
    };
    assert!(matches!(out[1], Inserted::New(_)), "{out:?}");
    assert_eq!(out[2], Inserted::Duplicate(first));
    // Committed: the store's own connections see it, and its writer goes
    // on beside the inserter's connection.
    assert_eq!(
        s.list(&EventQuery::default()).await.unwrap().events.len(),
        2
    );
    s.insert(mk(3)).await.unwrap();
    // A stored form per event, or nothing is written.
    let mut ins = ins;
    let refused = tokio::task::spawn_blocking(move || ins.insert(&[mk(4)], Vec::new()))
        .await
        .unwrap();
    assert!(refused.is_err());
    assert_eq!(
        s.list(&EventQuery::default()).await.unwrap().events.len(),
        3
    );
    // Only a writable store hands one out.
    let ro = Store::open_read_only(&d.path().join("history.db"))
        .await
        .unwrap();
    assert!(ro.history_inserter().is_err());
}

#[tokio::test]
async fn checkpoint_copies_the_wal_back_into_the_database_beside_the_writer() {
    let (dir, s) = store().await;
    let batch: Vec<NewEvent> = (0..300)
        .map(|n| {
            ev(
                n,
                "github",
                "com.github.push",
                Importance::Low,
                true,
                "pushed",
            )
        })
        .collect();
    s.insert_batch(&batch).await.unwrap();
    let wal = dir.path().join("history.db-wal");
    let before = std::fs::metadata(&wal).unwrap().len();
    assert!(before > 0, "the inserts went to the WAL");
    let (frames, copied) = s.checkpoint().await.unwrap();
    assert!(frames > 0, "the WAL held the batch");
    assert_eq!(
        copied, frames,
        "no reader held it back, so all of it is copied"
    );
    // The next write starts the WAL over instead of growing it.
    s.insert_batch(&[ev(
        9999,
        "github",
        "com.github.push",
        Importance::Low,
        true,
        "one more",
    )])
    .await
    .unwrap();
    let (after, _) = s.checkpoint().await.unwrap();
    assert!(
        after < frames,
        "WAL restarted: {after} frames after {frames}"
    );
    assert_eq!(s.count().await.unwrap(), 301);
    let read_only = Store::open_read_only(&dir.path().join("history.db"))
        .await
        .unwrap();
    assert!(
        read_only.checkpoint().await.is_err(),
        "a read-only history never writes"
    );
}

#[tokio::test]
async fn insert_encoded_refuses_mismatched_stored_forms_and_writes_nothing() {
    let (_dir, s) = store().await;
    let batch = vec![
        ev(1, "github", "com.github.push", Importance::Low, true, "a"),
        ev(2, "github", "com.github.push", Importance::Low, true, "b"),
    ];
    let stored = vec![kitedesk_store::StoredBlobs::encode(&batch[0]).unwrap()];
    assert!(s.insert_encoded(&batch, stored, None).await.is_err());
    assert_eq!(s.count().await.unwrap(), 0);
    let stored: Vec<_> = batch
        .iter()
        .map(|e| kitedesk_store::StoredBlobs::encode(e).unwrap())
        .collect();
    let done = s
        .insert_encoded(&batch, stored, Some(Vec::new()))
        .await
        .unwrap();
    assert!(matches!(done[..], [Inserted::New(_), Inserted::New(_)]));
    let (got, payload) = s.get(done[1].id()).await.unwrap().unwrap();
    assert_eq!(payload, batch[1].payload);
    assert_eq!(got.event.original_headers, batch[1].event.original_headers);
    let q = EventQuery {
        q: Some("b".into()),
        ..Default::default()
    };
    assert_eq!(
        s.list(&q).await.unwrap().events.len(),
        1,
        "indexed with the batch"
    );
}

/// The list filters types with SQLite `GLOB` (over `sql_globs`), the live
/// feed with `kitedesk_core::glob::Glob`: both must pick the same events.
#[tokio::test]
async fn type_globs_in_the_list_match_what_the_live_feed_matches() {
    let (_dir, s) = store().await;
    let types = [
        "com.github.push",
        "com.github.pull_request",
        "com.stripe.charge.failed",
        "com.stripe.invoice.paid",
        "com.kiket.issue.created",
        "com.!odd.event",
        "com.]odd.event",
    ];
    let batch: Vec<NewEvent> = types
        .iter()
        .enumerate()
        .map(|(n, ty)| ev(n as i64, "demo", ty, Importance::Low, true, "t"))
        .collect();
    s.insert_batch(&batch).await.unwrap();
    for pattern in [
        "com.[!s]*",
        "com.[^s]*",
        "com.[!]]*",
        "com.[]!]*",
        "com.[!gs]*.*",
        "com.{github,stripe}.[!p]*",
        "com.?ithub.*",
        "com.stripe.*.failed",
        "com.\\!odd.*",
    ] {
        let glob = kitedesk_core::glob::Glob::new(pattern).unwrap();
        let mut want: Vec<&str> = types.iter().copied().filter(|t| glob.is_match(t)).collect();
        let q = EventQuery {
            type_glob: Some(pattern.into()),
            ..Default::default()
        };
        let page = s.list(&q).await.unwrap();
        let mut got: Vec<&str> = page.events.iter().map(|e| e.event.ty.as_str()).collect();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "type glob {pattern:?}");
    }
}

#[tokio::test]
async fn the_search_index_merges_wide_and_finds_events_across_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let s = Store::open(&path).await.unwrap();
    // One event per transaction: each indexed alone writes a segment of its
    // own, so a search reads across dozens of them and merges happen.
    for n in 1..=40 {
        s.insert(ev(
            n,
            "github",
            "com.github.push",
            Importance::Normal,
            true,
            "segmentword",
        ))
        .await
        .unwrap();
    }
    let found = s
        .list(&EventQuery {
            q: Some("segmentword".into()),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.events.len(), 40);
    s.integrity_check().await.unwrap();
    let mut c = raw(&kitedesk_store::search_path(&path)).await;
    let automerge: i64 =
        sqlx::query_scalar("SELECT v FROM events_fts_config WHERE k = 'automerge'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(
        automerge, 16,
        "the search index merges 16 segments at a time"
    );
}

#[tokio::test]
async fn retention_by_age_walks_the_received_index() {
    // Ordered by id, the age retention's chunk query scanned the whole
    // table in id order for old rows: on an 8M-event history with none old
    // enough it read 15 GB and the daemon, which applies retention at
    // start, timed out waiting for its writer. It must find old rows
    // through `events_received` and never sort or scan the table.
    let (_d, s) = seeded().await;
    let plan = s.retain_plan().await.unwrap();
    assert!(
        plan.iter()
            .any(|p| p.contains("USING COVERING INDEX events_received (received_ms<?)")),
        "{plan:?}"
    );
    assert!(
        !plan.iter().any(|p| p.starts_with("SCAN events")),
        "no table scan: {plan:?}"
    );
    assert!(
        !plan.iter().any(|p| p.contains("TEMP B-TREE")),
        "no sort: {plan:?}"
    );
    // And it still deletes exactly the rows older than the cutoff, oldest
    // first, in chunks.
    let gone = s
        .retain(Some(t0() + Duration::seconds(6)), None)
        .await
        .unwrap();
    assert_eq!(gone, 5, "events received at t0+1..t0+5");
    let left = s
        .list(&EventQuery {
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        left.events
            .iter()
            .all(|e| e.received >= t0() + Duration::seconds(6)),
        "only newer events are left"
    );
}

/// Rowids in the search index file (a contentless index still lists them).
async fn indexed_ids(history: &std::path::Path) -> Vec<i64> {
    let mut c = raw(&kitedesk_store::search_path(history)).await;
    sqlx::query_scalar("SELECT rowid FROM events_fts ORDER BY rowid")
        .fetch_all(&mut c)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_search_index_is_a_file_of_its_own_and_retention_empties_it_too() {
    let (d, s) = seeded().await;
    let path = d.path().join("history.db");
    let search = kitedesk_store::search_path(&path);
    assert_eq!(search, d.path().join("history.search.db"));
    assert!(search.exists());
    // The history holds no index of its own any more.
    let mut c = raw(&path).await;
    let fts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE name LIKE 'events_fts%' OR name = 'fts_state'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(fts, 0, "no search tables left in the history");
    assert_eq!(indexed_ids(&path).await, (1..=30).collect::<Vec<i64>>());
    // By count: the oldest 20 go from both files.
    assert_eq!(s.retain(None, Some(10)).await.unwrap(), 20);
    assert_eq!(indexed_ids(&path).await, (21..=30).collect::<Vec<i64>>());
    // By age: the events received up to t0+25s.
    assert_eq!(
        s.retain(Some(t0() + Duration::seconds(26)), None)
            .await
            .unwrap(),
        5
    );
    assert_eq!(indexed_ids(&path).await, (26..=30).collect::<Vec<i64>>());
    s.integrity_check().await.unwrap();
}

#[tokio::test]
async fn a_deleted_search_index_is_rebuilt_from_the_history() {
    let (d, s) = seeded().await;
    s.close().await;
    let path = d.path().join("history.db");
    let search = kitedesk_store::search_path(&path);
    for suffix in ["", "-wal", "-shm"] {
        let f = format!("{}{suffix}", search.display());
        let _ = std::fs::remove_file(f);
    }
    let s = Store::open(&path).await.unwrap();
    assert_eq!(s.unindexed().await.unwrap(), 0, "caught up on open");
    let q = EventQuery {
        q: Some("card_declined".into()),
        ..Default::default()
    };
    let found = s.list(&q).await.unwrap();
    assert_eq!(found.events.len(), 1);
    assert_eq!(found.events[0].event.id, "evt-7");
    s.integrity_check().await.unwrap();
}

#[tokio::test]
async fn search_finds_payload_values_unescaped_and_not_keys() {
    let (_d, s) = store().await;
    let mut e = push(1, "a push");
    // As GitHub sends it: non-ASCII escaped, a newline in a message.
    e.payload = r#"{"pusher":{"name":"Zo\u00eb"},"head_commit":{"message":"Fix\nwidgets","distinct":true},"size":1234}"#.into();
    s.insert(e).await.unwrap();
    let found = |text: &str| {
        let q = EventQuery {
            q: Some(text.into()),
            ..Default::default()
        };
        let s = &s;
        async move { s.list(&q).await.unwrap().events.len() }
    };
    assert_eq!(found("zoë").await, 1, "an escaped value, unescaped");
    assert_eq!(found("zoe").await, 1, "diacritics folded");
    assert_eq!(found("widgets").await, 1, "after an escaped newline");
    assert_eq!(found("1234").await, 1, "numbers are values");
    assert_eq!(found("u00eb").await, 0, "not the escape's letters");
    for key in ["pusher", "head_commit", "distinct", "true"] {
        assert_eq!(found(key).await, 0, "{key} is a key or literal");
    }
}

#[tokio::test]
async fn a_search_index_of_an_older_format_is_rebuilt_on_open() {
    let (d, s) = seeded().await;
    s.close().await;
    let path = d.path().join("history.db");
    // An index as the whole-payload format left it: user_version 0, and a
    // row the history does not have.
    let mut c = raw(&kitedesk_store::search_path(&path)).await;
    assert_eq!(
        sqlx::query_scalar::<_, i64>("PRAGMA user_version")
            .fetch_one(&mut c)
            .await
            .unwrap(),
        1
    );
    sqlx::raw_sql(
        "PRAGMA user_version = 0;
         INSERT INTO events_fts (rowid, summary, payload) VALUES (999, 'stale', 'stale');",
    )
    .execute(&mut c)
    .await
    .unwrap();
    drop(c);
    let s = Store::open(&path).await.unwrap();
    assert_eq!(indexed_ids(&path).await, (1..=30).collect::<Vec<i64>>());
    assert_eq!(s.unindexed().await.unwrap(), 0);
    let mut c = raw(&kitedesk_store::search_path(&path)).await;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(version, 1);
    let q = EventQuery {
        q: Some("card_declined".into()),
        ..Default::default()
    };
    assert_eq!(s.list(&q).await.unwrap().events.len(), 1);
    s.integrity_check().await.unwrap();
}

#[tokio::test]
async fn a_foreign_file_at_the_search_index_path_is_refused_and_left_alone() {
    use sqlx::{ConnectOptions as _, Connection as _};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let search = kitedesk_store::search_path(&path);
    let mut c = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&search)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::query("CREATE TABLE notes (t TEXT)")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let before = std::fs::read(&search).unwrap();
    let err = Store::open(&path).await.unwrap_err().to_string();
    assert!(
        err.contains("history.search.db") && err.contains("not a Kite Desk search index"),
        "{err}"
    );
    assert_eq!(std::fs::read(&search).unwrap(), before, "not modified");
}

#[tokio::test]
async fn the_cli_reads_and_searches_read_only_beside_the_writer() {
    let (d, s) = seeded().await;
    let ro = Store::open_read_only(&d.path().join("history.db"))
        .await
        .unwrap();
    let q = EventQuery {
        q: Some("card_declined".into()),
        ..Default::default()
    };
    assert_eq!(ro.list(&q).await.unwrap().events.len(), 1);
    drop(s);
}

#[tokio::test]
async fn an_indexing_backlog_is_read_back_in_bounded_steps() {
    use kitedesk_store::{CATCH_UP_STEP, index_rows_of};
    let (_d, s) = store().await;
    let n = CATCH_UP_STEP as i64 + 7;
    let batch: Vec<NewEvent> = (1..=n)
        .map(|i| {
            ev(
                i,
                "github",
                "com.github.push",
                Importance::Normal,
                true,
                "backlogword",
            )
        })
        .collect();
    let done = s.insert_batch_deferred(&batch).await.unwrap();
    assert_eq!(s.unindexed().await.unwrap(), n);
    // Offering only the newest row: the oldest waiting are read back
    // first, one bounded step at a time.
    let rows = index_rows_of(&batch, &done);
    let last = &rows[rows.len() - 1..];
    assert_eq!(s.index_rows(last).await.unwrap(), CATCH_UP_STEP);
    assert_eq!(s.unindexed().await.unwrap(), 7);
    assert_eq!(s.index_rows(last).await.unwrap(), 7);
    assert_eq!(s.unindexed().await.unwrap(), 0);
    s.integrity_check().await.unwrap();
}

#[tokio::test]
async fn indexing_never_takes_the_history_write_lock() {
    // The search index's connection reads the history (attached) but must
    // not lock it for writing: `BEGIN IMMEDIATE` there took the write lock
    // of every attached file, and each indexing step stalled the inserts.
    use kitedesk_store::index_rows_of;
    let (d, s) = store().await;
    let batch: Vec<NewEvent> = (1..=3)
        .map(|n| {
            ev(
                n,
                "github",
                "com.github.push",
                Importance::Normal,
                true,
                "lockword",
            )
        })
        .collect();
    let done = s.insert_batch_deferred(&batch).await.unwrap();
    // Another writer holds the history's write lock meanwhile.
    let mut other = raw(&d.path().join("history.db")).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let indexed = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        s.index_rows(&index_rows_of(&batch, &done)),
    )
    .await
    .expect("indexing waited for the history's write lock")
    .unwrap();
    assert_eq!(indexed, 3);
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
}
