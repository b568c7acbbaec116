//! `GET/PUT /api/settings/retention`: persisted, applied at once (no
//! restart), and by the retention task thereafter.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::harness::{HOST, Harness, MANIFEST, default_env};

async fn put(h: &Harness, body: &str) -> (StatusCode, Value) {
    h.send(
        Request::put("/api/settings/retention")
            .header("host", HOST)
            .header("authorization", format!("Bearer {}", h.api.token()))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

async fn insert(h: &Harness, id: &str, age: chrono::Duration) {
    let ev = kitedesk_core::KiteEvent {
        id: id.into(),
        source: "https://myapp".into(),
        ty: "com.myapp.event".into(),
        time: chrono::Utc::now() - age,
        source_name: "myapp".into(),
        summary: format!("myapp {id}"),
        data: json!({}).into(),
        seq: None,
        original_headers: kitedesk_core::Headers::new(),
        verification: kitedesk_core::Verification::unverified("unsigned source"),
        importance: kitedesk_core::Importance::Normal,
        importance_reason: "test".into(),
    };
    h.api
        .store()
        .insert(kitedesk_store::NewEvent {
            event: ev,
            payload: "{}".into(),
            received: chrono::Utc::now() - age,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn retention_is_editable_persisted_and_applied_without_a_restart() {
    let manifest = MANIFEST.replace(
        r#""ingress": {"#,
        r#""queue": {"retention": "30d"}, "ingress": {"#,
    );
    let h = Harness::with(&manifest, &default_env()).await;
    let (status, v) = h.get("/api/settings/retention").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["max_age_days"], &v["max_events"], &v["origin"]),
        (&json!(30), &Value::Null, &json!("manifest")),
        "{v}"
    );

    // All within the manifest's 30 days: the daemon's own retention pass at
    // start runs whenever its task gets to it and must find nothing to do.
    for (i, days) in [20, 10, 3, 2, 1, 0].into_iter().enumerate() {
        insert(&h, &format!("e{i}"), chrono::Duration::days(days)).await;
    }
    assert_eq!(h.count().await, 6);

    // A week: the 20- and 10-day-old events go at once.
    let (status, v) = put(&h, r#"{"max_age_days": 7, "max_events": null}"#).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["origin"], &v["deleted"]),
        (&json!("settings"), &json!(2)),
        "{v}"
    );
    assert_eq!(h.count().await, 4);

    // At most 2 events: the oldest go.
    let (status, v) = put(&h, r#"{"max_age_days": 7, "max_events": 2}"#).await;
    assert_eq!((status, &v["deleted"]), (StatusCode::OK, &json!(2)), "{v}");
    let left = h.api.store().list(&Default::default()).await.unwrap();
    let mut ids: Vec<_> = left.events.iter().map(|e| e.event.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["e4", "e5"]);

    // The running task applies the stored setting too.
    insert(&h, "e6", chrono::Duration::days(0)).await;
    assert_eq!(h.api.apply_retention().await.unwrap(), 1);
    assert_eq!(h.count().await, 2);

    // Refused values name the field and change nothing.
    for (body, field) in [
        (r#"{"max_age_days": 0}"#, "max_age_days"),
        (r#"{"max_events": 0}"#, "max_events"),
        (r#"{"max_age_days": 100000}"#, "max_age_days"),
    ] {
        let (status, v) = put(&h, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["code"], "invalid_retention");
        assert!(v["message"].as_str().unwrap().starts_with(field), "{v}");
    }
    let (status, v) = put(&h, r#"{"max_age_days": "a week"}"#).await;
    assert_eq!(
        (status, &v["code"]),
        (StatusCode::BAD_REQUEST, &json!("invalid_body"))
    );
    let (_, v) = h.get("/api/settings/retention").await;
    assert_eq!(
        (&v["max_age_days"], &v["max_events"]),
        (&json!(7), &json!(2)),
        "{v}"
    );

    // Persisted in the history's settings table.
    let stored = h.api.store().setting("retention").await.unwrap().unwrap();
    assert_eq!(stored, json!({"max_age_days": 7, "max_events": 2}));

    // Reset: the manifest's again.
    let (status, v) = put(&h, r#"{"reset": true}"#).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["origin"], &v["max_age_days"]),
        (&json!("manifest"), &json!(30)),
        "{v}"
    );
}
