//! The settings table: JSON values by key, surviving a reopen.

use kitedesk_store::Store;
use serde_json::json;

#[tokio::test]
async fn settings_are_stored_replaced_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.setting("notifications").await.unwrap(), None);
    assert_eq!(store.max_event_id().await.unwrap(), 0, "empty history");
    store
        .put_setting("notifications", &json!({"threshold": "high"}))
        .await
        .unwrap();
    store
        .put_setting(
            "notifications",
            &json!({"threshold": "critical", "muted": ["a"]}),
        )
        .await
        .unwrap();
    store
        .put_setting("notify.watermark", &json!(42))
        .await
        .unwrap();
    assert_eq!(
        store.setting("notifications").await.unwrap(),
        Some(json!({"threshold": "critical", "muted": ["a"]})),
        "a second put replaces the value"
    );
    store.close().await;

    let reopened = Store::open(&path).await.unwrap();
    assert_eq!(
        reopened.setting("notify.watermark").await.unwrap(),
        Some(json!(42))
    );
    let ro = Store::open_read_only(&path).await.unwrap();
    assert!(
        ro.put_setting("x", &json!(1)).await.is_err(),
        "a read-only store cannot write settings"
    );
    assert_eq!(
        ro.setting("notify.watermark").await.unwrap(),
        Some(json!(42))
    );
}
