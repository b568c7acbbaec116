//! Secret metadata rows: insert, rotate, grace window, last used, delete.

use chrono::{DateTime, Duration, Utc};
use kitedesk_store::{SecretRecord, Store};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn rec(name: &str) -> SecretRecord {
    SecretRecord {
        name: name.into(),
        kind: "webhook".into(),
        source: Some("github".into()),
        created: t0(),
        rotated: None,
        last_used: None,
        fingerprint: "aaaaaaaa".into(),
        previous_fingerprint: None,
        previous_valid_until: None,
    }
}

async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("history.db")).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn insert_is_unique_by_name() {
    let (_dir, store) = open().await;
    assert!(store.insert_secret(&rec("webhook/github")).await.unwrap());
    let mut other = rec("webhook/github");
    other.fingerprint = "bbbbbbbb".into();
    assert!(
        !store.insert_secret(&other).await.unwrap(),
        "a second insert under the same name is refused"
    );
    let got = store.secret("webhook/github").await.unwrap().unwrap();
    assert_eq!(got, rec("webhook/github"), "the first row is untouched");
    assert_eq!(store.secret("webhook/none").await.unwrap(), None);
}

#[tokio::test]
async fn the_table_refuses_unknown_kinds() {
    let (_dir, store) = open().await;
    let mut r = rec("x");
    r.kind = "password".into();
    assert!(store.insert_secret(&r).await.is_err());
}

#[tokio::test]
async fn rotation_keeps_the_previous_fingerprint_for_the_grace_window() {
    let (_dir, store) = open().await;
    store.insert_secret(&rec("webhook/github")).await.unwrap();
    let at = t0() + Duration::days(3);
    let until = at + Duration::hours(24);
    assert!(
        store
            .rotate_secret("webhook/github", "bbbbbbbb", at, Some(until))
            .await
            .unwrap()
    );
    let got = store.secret("webhook/github").await.unwrap().unwrap();
    assert_eq!(got.fingerprint, "bbbbbbbb");
    assert_eq!(got.previous_fingerprint.as_deref(), Some("aaaaaaaa"));
    assert_eq!(got.previous_valid_until, Some(until));
    assert_eq!(got.value_since(), at);
    assert!(got.previous_valid_at(until - Duration::seconds(1)));
    assert!(!got.previous_valid_at(until), "the window is half-open");

    // A rotation without a grace window drops the previous value at once.
    store
        .rotate_secret("webhook/github", "cccccccc", at, None)
        .await
        .unwrap();
    let got = store.secret("webhook/github").await.unwrap().unwrap();
    assert_eq!(
        (got.previous_fingerprint, got.previous_valid_until),
        (None, None)
    );
    assert!(
        !store
            .rotate_secret("webhook/none", "x", at, None)
            .await
            .unwrap(),
        "rotating an unknown name changes nothing"
    );
}

#[tokio::test]
async fn last_used_only_moves_forward_and_delete_removes() {
    let (_dir, store) = open().await;
    store.insert_secret(&rec("a")).await.unwrap();
    store
        .secret_used("a", t0() + Duration::hours(2))
        .await
        .unwrap();
    store
        .secret_used("a", t0() + Duration::hours(1))
        .await
        .unwrap();
    let got = store.secret("a").await.unwrap().unwrap();
    assert_eq!(got.last_used, Some(t0() + Duration::hours(2)));
    store.insert_secret(&rec("b")).await.unwrap();
    let names: Vec<_> = store
        .secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(store.delete_secret("a").await.unwrap());
    assert!(!store.delete_secret("a").await.unwrap());
    store.insert_secret(&rec("c")).await.unwrap();
    store
        .rotate_secret("c", "dddddddd", t0(), Some(t0() + Duration::hours(1)))
        .await
        .unwrap();
    store.clear_previous_secret("c").await.unwrap();
    let got = store.secret("c").await.unwrap().unwrap();
    assert_eq!(got.previous_valid_until, None);
    assert_eq!(got.fingerprint, "dddddddd");
}
