//! The outbox against a real SQLite file: routing watermark, claim and
//! settle guards, restart recovery, retries and paging.

use chrono::{DateTime, Duration, Utc};
use kitedesk_core::{Headers, Importance, KiteEvent, Verification};
use kitedesk_store::{
    AttemptRecord, DeliveryQuery, DeliveryStatus, NewDelivery, NewEvent, Origin, RetryOutcome,
    Settle, Store,
};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn new_event(n: i64) -> NewEvent {
    let data = serde_json::json!({"n": n});
    NewEvent {
        payload: data.to_string(),
        received: now(),
        event: KiteEvent {
            id: format!("evt-{n}"),
            source: "https://app.example".into(),
            ty: "com.app.thing".into(),
            time: now(),
            source_name: "app".into(),
            summary: format!("thing {n}"),
            data: data.into(),
            seq: None,
            original_headers: Headers::new(),
            verification: Verification::unverified("unsigned"),
            importance: Importance::Normal,
            importance_reason: "test".into(),
        },
    }
}

fn routed(event_id: i64, sink: &str) -> NewDelivery {
    NewDelivery {
        event_id,
        ce_id: format!("evt-{event_id}"),
        sink: sink.into(),
        kind: "http".into(),
        target: "http://127.0.0.1:9/hook".into(),
        origin: Origin::Route,
        spec: None,
    }
}

fn attempt(ok: bool, code: Option<u16>) -> AttemptRecord {
    AttemptRecord {
        n: 0,
        started: now(),
        status_code: code,
        latency_ms: 12,
        ok,
        error_code: (!ok).then(|| "http_status".to_string()),
        error: (!ok).then(|| "target answered HTTP 503".to_string()),
        response_body: "body".into(),
        stderr: None,
    }
}

async fn store_with_events(dir: &std::path::Path, n: i64) -> Store {
    let store = Store::open(&dir.join("history.db")).await.unwrap();
    let batch: Vec<NewEvent> = (1..=n).map(new_event).collect();
    store.insert_batch(&batch).await.unwrap();
    store
}

#[tokio::test]
async fn the_watermark_starts_at_the_end_of_an_existing_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_events(dir.path(), 3).await;
    // The outbox migration ran on an empty history here, so it starts at 0;
    // routing then advances it with the rows it adds, atomically.
    assert_eq!(store.routed_upto().await.unwrap(), 0);
    let evs = store.events_after(0, 10).await.unwrap();
    assert_eq!(evs.len(), 3);
    assert_eq!(evs[0].event.data.value()["n"], 1, "oldest first, with data");
    let added = store
        .enqueue_routed(&[routed(1, "a"), routed(2, "a")], 3, now())
        .await
        .unwrap();
    assert_eq!(added, 2);
    assert_eq!(store.routed_upto().await.unwrap(), 3);
    // Routing the same events again (a crash between send and watermark
    // cannot happen, but a replayed batch must still be harmless).
    let again = store
        .enqueue_routed(&[routed(1, "a")], 2, now())
        .await
        .unwrap();
    assert_eq!(again, 0, "an event reaches a sink once");
    assert_eq!(store.routed_upto().await.unwrap(), 3, "never moves back");

    store.insert(new_event(4)).await.unwrap();
    assert_eq!(store.advance_routed_to_end().await.unwrap(), 1);
    assert_eq!(
        store.routed_upto().await.unwrap(),
        4,
        "skipped to the newest event"
    );
    assert_eq!(
        store.advance_routed_to_end().await.unwrap(),
        0,
        "no write when already at the end"
    );
}

#[tokio::test]
async fn claim_settle_and_nothing_after_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_events(dir.path(), 2).await;
    store
        .enqueue_routed(&[routed(1, "a"), routed(2, "b")], 2, now())
        .await
        .unwrap();
    assert_eq!(store.due_sinks(now()).await.unwrap(), ["a", "b"]);
    let claimed = store.claim_due("a", now(), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].status, DeliveryStatus::Delivering);
    assert!(
        store.claim_due("a", now(), 10).await.unwrap().is_empty(),
        "a claimed delivery is not claimed twice"
    );
    let id = claimed[0].id;
    let later = now() + Duration::seconds(4);
    let d = store
        .settle(id, &attempt(false, Some(503)), Settle::Retry(later), now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 1));
    assert_eq!(d.last.as_ref().unwrap().status_code, Some(503));
    assert!(
        store.claim_due("a", now(), 10).await.unwrap().is_empty(),
        "not due before next_attempt"
    );
    let claimed = store.claim_due("a", later, 10).await.unwrap();
    let d = store
        .settle(
            claimed[0].id,
            &attempt(true, Some(200)),
            Settle::Delivered,
            later,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 2));
    assert!(
        store
            .settle(id, &attempt(true, Some(200)), Settle::Delivered, later)
            .await
            .unwrap()
            .is_none(),
        "a settled delivery cannot be settled again"
    );
    assert_eq!(
        store.retry_delivery(id, later).await.unwrap(),
        RetryOutcome::AlreadyDelivered,
        "a delivered delivery is never sent again"
    );
    let log = store.delivery_attempts(id).await.unwrap();
    assert_eq!(log.iter().map(|a| a.n).collect::<Vec<_>>(), [1, 2]);
}

#[tokio::test]
async fn interrupted_deliveries_are_pending_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_events(dir.path(), 1).await;
    store
        .enqueue_routed(&[routed(1, "a")], 1, now())
        .await
        .unwrap();
    let claimed = store.claim_due("a", now(), 1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    store.close().await;

    let store = Store::open(&dir.path().join("history.db")).await.unwrap();
    let d = store.delivery(claimed[0].id).await.unwrap().unwrap();
    assert_eq!(d.status, DeliveryStatus::Delivering, "as the crash left it");
    assert_eq!(store.reset_interrupted(now()).await.unwrap(), 1);
    let d = store.delivery(claimed[0].id).await.unwrap().unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.next_attempt, Some(now()), "due at once");
}

#[tokio::test]
async fn dead_letters_retry_with_a_fresh_schedule_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_events(dir.path(), 5).await;
    let rows: Vec<NewDelivery> = (1..=5).map(|n| routed(n, "a")).collect();
    store.enqueue_routed(&rows, 5, now()).await.unwrap();
    for d in store.claim_due("a", now(), 3).await.unwrap() {
        store
            .settle(d.id, &attempt(false, Some(400)), Settle::Dead, now())
            .await
            .unwrap();
    }
    assert_eq!(
        store.count_deliveries(DeliveryStatus::Dead).await.unwrap(),
        3
    );
    let (dead, next) = store
        .list_deliveries(&DeliveryQuery {
            status: Some(DeliveryStatus::Dead),
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(dead.len(), 2);
    assert!(dead[0].id > dead[1].id, "newest first");
    let (rest, none) = store
        .list_deliveries(&DeliveryQuery {
            status: Some(DeliveryStatus::Dead),
            before: next,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((rest.len(), none), (1, None));

    let one = dead[0].id;
    match store.retry_delivery(one, now()).await.unwrap() {
        RetryOutcome::Retried(d) => {
            assert_eq!(d.status, DeliveryStatus::Pending);
            assert_eq!(d.round_attempts(), 0, "the schedule starts again");
            assert_eq!(d.attempts, 1, "the history of attempts is kept");
        }
        other => panic!("want Retried, got {other:?}"),
    }
    assert_eq!(
        store.retry_all(DeliveryStatus::Dead, now()).await.unwrap(),
        2
    );
    assert_eq!(
        store.count_deliveries(DeliveryStatus::Dead).await.unwrap(),
        0
    );
    assert_eq!(
        store.retry_delivery(9999, now()).await.unwrap(),
        RetryOutcome::NotFound
    );
}

#[tokio::test]
async fn retention_removes_deliveries_with_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_events(dir.path(), 2).await;
    store
        .enqueue_routed(&[routed(1, "a"), routed(2, "a")], 2, now())
        .await
        .unwrap();
    store.retain(None, Some(1)).await.unwrap();
    let (left, _) = store
        .list_deliveries(&DeliveryQuery::default())
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|d| d.event_id).collect::<Vec<_>>(),
        [2],
        "the deleted event's delivery went with it"
    );
}
