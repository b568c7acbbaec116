use axum::http::StatusCode;
use kitedesk_core::verify::{self, Scheme, Secret};
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn signed_push_is_stored_once_and_readable() {
    let h = Harness::new().await;
    let body = github_push();
    let headers = github_headers(&body, "d-1", GH_SECRET);
    let (status, r) = h.post_hook("github", &headers, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{r}");
    assert_eq!(r["status"], "accepted");
    assert_eq!(r["verified"], true);
    // GitHub redelivers with the same X-GitHub-Delivery: no second row.
    let (status, again) = h.post_hook("github", &headers, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["status"], "duplicate_ignored");
    assert_eq!(
        again["id"], r["id"],
        "the duplicate points at the stored event"
    );
    assert_eq!(h.count().await, 1);

    let (status, detail) = h.get(&format!("/api/events/{}", r["id"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["type"], "com.github.push");
    assert_eq!(detail["event_id"], "d-1");
    assert_eq!(
        detail["verify_reason"], "github signature valid",
        "one secret configured: no rotation note"
    );
    assert_eq!(
        detail["payload"].as_str().unwrap().as_bytes(),
        &body[..],
        "payload kept byte for byte"
    );
    assert_eq!(detail["cloudevent"]["specversion"], "1.0");
    assert_eq!(detail["cloudevent"]["id"], "d-1");
    assert!(detail["cloudevent"]["data"].is_object());
    // Lookup by CloudEvent id works too.
    let (status, by_ce) = h.get("/api/events/d-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_ce["id"], r["id"]);
}

#[tokio::test]
async fn rotated_secret_is_accepted_and_reported() {
    let mut env = default_env();
    env.push(("GH_OLD", "the-previous-secret"));
    let h = Harness::with(MANIFEST, &env).await;
    let body = github_push();
    let (status, r) = h
        .post_hook(
            "github",
            &github_headers(&body, "d-rot", "the-previous-secret"),
            &body,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{r}");
    let (_, d) = h.get(&format!("/api/events/{}", r["id"])).await;
    assert_eq!(d["verify_reason"], "github signature valid (secret 2 of 2)");
}

#[tokio::test]
async fn bad_input_gets_a_clear_code_and_stores_nothing() {
    let h = Harness::new().await;
    let body = github_push();
    let good = github_headers(&body, "d-2", GH_SECRET);
    let without = |name: &str| {
        good.iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case(name))
            .cloned()
            .collect::<Vec<_>>()
    };

    let stale_ts = chrono::Utc::now() - chrono::Duration::minutes(10);
    let stripe_body =
        br#"{"id":"evt_1","type":"payment_intent.succeeded","created":1,"data":{"object":{}}}"#;
    let stale = verify::sign(
        Scheme::Stripe,
        &Secret::new(STRIPE_SECRET),
        stripe_body,
        stale_ts,
        "",
    );

    // (what, source, headers, body, status, code)
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(&'a str, String)>,
        Vec<u8>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "tampered body",
            "github",
            good.clone(),
            [&body[..], b" "].concat(),
            StatusCode::UNAUTHORIZED,
            "signature_mismatch",
        ),
        (
            "wrong secret",
            "github",
            github_headers(&body, "d-3", "nope"),
            body.clone(),
            StatusCode::UNAUTHORIZED,
            "signature_mismatch",
        ),
        (
            "missing signature",
            "github",
            without("x-hub-signature-256"),
            body.clone(),
            StatusCode::UNAUTHORIZED,
            "signature_missing",
        ),
        (
            "missing event header",
            "github",
            without("x-github-event"),
            body.clone(),
            StatusCode::BAD_REQUEST,
            "missing_header",
        ),
        (
            "stale stripe timestamp",
            "stripe",
            stale.iter().map(|(k, v)| (*k, v.clone())).collect(),
            stripe_body.to_vec(),
            StatusCode::UNAUTHORIZED,
            "signature_stale",
        ),
        (
            "malformed JSON",
            "myapp",
            vec![],
            b"{\"a\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "invalid UTF-8",
            "myapp",
            vec![],
            b"{\"a\": \"\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_utf8",
        ),
        (
            "empty body",
            "myapp",
            vec![],
            b"".to_vec(),
            StatusCode::BAD_REQUEST,
            "empty_body",
        ),
        (
            "deeply nested JSON",
            "myapp",
            vec![],
            format!("{}{}", "[".repeat(1000), "]".repeat(1000)).into_bytes(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "oversize body",
            "myapp",
            vec![],
            vec![b' '; 70_000],
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "unknown source",
            "gitlab",
            vec![],
            b"{}".to_vec(),
            StatusCode::NOT_FOUND,
            "unknown_source",
        ),
        (
            "stripe without id",
            "stripe",
            verify::sign(
                Scheme::Stripe,
                &Secret::new(STRIPE_SECRET),
                b"{\"type\":\"x\"}",
                chrono::Utc::now(),
                "",
            )
            .into_iter()
            .collect(),
            b"{\"type\":\"x\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "missing_field",
        ),
    ];
    for (what, source, headers, body, want_status, want_code) in cases {
        let (status, r) = h.post_hook(source, &headers, &body).await;
        assert_eq!(status, want_status, "{what}: {r}");
        assert_eq!(r["code"], want_code, "{what}: {r}");
        assert!(
            r["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: a message explains the code"
        );
    }
    assert_eq!(
        h.count().await,
        0,
        "nothing from a rejected request is stored"
    );
    // The daemon keeps serving after all of that.
    let (status, _) = h.post_hook("github", &good, &body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(h.count().await, 1);
}

#[tokio::test]
async fn failure_messages_never_reveal_the_expected_signature() {
    let h = Harness::new().await;
    let body = github_push();
    let expected = github_headers(&body, "x", GH_SECRET)
        .into_iter()
        .find(|(k, _)| *k == "X-Hub-Signature-256")
        .unwrap()
        .1;
    let (_, r) = h
        .post_hook("github", &github_headers(&body, "x", "wrong"), &body)
        .await;
    let text = r.to_string();
    assert!(
        !text.contains(expected.trim_start_matches("sha256=")),
        "{text}"
    );
    assert!(!text.contains(GH_SECRET));
}

#[tokio::test]
async fn unsigned_source_is_accepted_but_marked_unverified() {
    let h = Harness::new().await;
    let (status, r) = h
        .post_hook(
            "myapp",
            &[("content-type", "application/json".into())],
            br#"{"message":"deploy done"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{r}");
    assert_eq!(r["verified"], false);
    let (_, d) = h.get(&format!("/api/events/{}", r["id"])).await;
    assert_eq!(d["type"], "com.myapp.event");
    assert_eq!(d["source"], "https://myapp");
    assert_eq!(d["summary"], "myapp: deploy done");
}

#[tokio::test]
async fn a_required_secret_that_is_not_set_is_a_503_not_an_open_door() {
    let h = Harness::with(MANIFEST, &[]).await;
    let body = github_push();
    let (status, r) = h
        .post_hook("github", &github_headers(&body, "d", GH_SECRET), &body)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{r}");
    assert_eq!(r["code"], "secret_missing");
    assert!(
        r["message"].as_str().unwrap().contains("GH_NEW"),
        "names the variable to set: {r}"
    );
    assert_eq!(h.count().await, 0);
}

#[tokio::test]
async fn kiket_retries_reuse_the_id_and_importance_travels_with_the_event() {
    let h = Harness::new().await;
    let body = serde_json::to_vec(&json!({
        "event": "workflow.sla_status", "id": "01JDQ8ZK7M", "timestamp": "2026-11-24T15:20:00Z",
        "organization_id": "org_1", "payload": {"status": "breach", "issue": {"key": "OPS-1", "title": "Checkout slow"}}
    }))
    .unwrap();
    let sig = verify::sign(
        Scheme::Kiket,
        &Secret::new("kiket-secret"),
        &body,
        chrono::Utc::now(),
        "",
    );
    let headers: Vec<(&str, String)> = sig
        .into_iter()
        .chain([("content-type", "application/json".to_string())])
        .collect();
    let (s1, r1) = h.post_hook("kiket", &headers, &body).await;
    let (s2, r2) = h.post_hook("kiket", &headers, &body).await;
    assert_eq!(
        (s1, s2),
        (StatusCode::ACCEPTED, StatusCode::OK),
        "{r1} {r2}"
    );
    assert_eq!(r1["importance"], "critical");
    let (_, d) = h.get(&format!("/api/events/{}", r1["id"])).await;
    assert_eq!(d["importance_reason"], "built-in: SLA breach");
    assert_eq!(d["cloudevent"]["kiteimportance"], "critical");
    assert_eq!(
        d["time"], "2026-11-24T15:20:00.000Z",
        "time is when Kiket says it happened"
    );
    assert_eq!(h.count().await, 1);
}

#[tokio::test]
async fn structured_cloudevents_keep_their_attributes() {
    let h = Harness::new().await;
    let ce = json!({"specversion": "1.0", "id": "sdk-1", "source": "https://app.example/orders", "type": "com.example.order.created",
                    "kitesummary": "Order 42 created", "datacontenttype": "application/json", "data": {"order": 42}});
    let (status, r) = h
        .post_hook(
            "myapp",
            &[("content-type", "application/cloudevents+json".into())],
            ce.to_string().as_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{r}");
    let (_, d) = h.get(&format!("/api/events/{}", r["id"])).await;
    assert_eq!(d["type"], "com.example.order.created");
    assert_eq!(d["summary"], "Order 42 created");
    assert_eq!(
        d["payload"], r#"{"order":42}"#,
        "the payload of a CloudEvent is its data"
    );
}

#[tokio::test]
async fn a_concurrent_burst_is_stored_at_once_and_searchable_soon_after() {
    let h = Harness::new().await;
    let h = &h;
    let posts = (0..40).map(|i| {
        let body = format!(r#"{{"message":"burstword {i}"}}"#);
        async move { h.post_hook("myapp", &[], body.as_bytes()).await }
    });
    let answers = futures_util::future::join_all(posts).await;
    assert!(
        answers.iter().all(|(s, _)| *s == StatusCode::ACCEPTED),
        "{answers:?}"
    );
    assert_eq!(
        h.count().await,
        40,
        "every event committed before its answer"
    );
    // Search indexing of a burst may be deferred to the writer's next idle
    // moment; wait for that condition (bounded), not for a fixed time.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, page) = h.get("/api/events?q=burstword&limit=100").await;
        let n = page["events"].as_array().map_or(0, Vec::len);
        if n == 40 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {n} of 40 searchable after 10 s"
        );
        tokio::task::yield_now().await;
    }
}

/// Events stored straight into a history (as an older Kite Desk left them),
/// with `word` in each summary.
async fn history_without_search_index(dir: &std::path::Path, n: i64, word: &str) {
    use kitedesk_core::{Headers, Importance, KiteEvent, Verification};
    use kitedesk_store::{NewEvent, Store};
    let history = dir.join("history.db");
    let s = Store::open(&history).await.unwrap();
    let t0 = chrono::Utc::now();
    for chunk in (1..=n).collect::<Vec<_>>().chunks(1000) {
        let batch: Vec<NewEvent> = chunk
            .iter()
            .map(|i| NewEvent {
                payload: format!(r#"{{"n":{i}}}"#),
                received: t0,
                event: KiteEvent {
                    id: format!("old-{i}"),
                    source: "https://myapp".into(),
                    ty: "com.myapp.event".into(),
                    time: t0,
                    source_name: "myapp".into(),
                    summary: format!("{word} {i}"),
                    data: json!({ "n": i }).into(),
                    seq: None,
                    original_headers: Headers::new(),
                    verification: Verification::unverified("unsigned"),
                    importance: Importance::Normal,
                    importance_reason: "default".into(),
                },
            })
            .collect();
        s.insert_batch_deferred(&batch).await.unwrap();
    }
    s.close().await;
    // No search index at all: what an upgrade from a history that kept its
    // index inside finds (or a user who deleted the file).
    let search = kitedesk_store::search_path(&history);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", search.display()));
    }
}

#[tokio::test]
async fn a_search_index_far_behind_catches_up_while_the_daemon_serves() {
    // More than opening the store indexes itself: the rest is the
    // indexer's, in the background, while webhooks keep being answered.
    let dir = tempfile::tempdir().unwrap();
    history_without_search_index(dir.path(), 26_000, "backlogword").await;
    let (api, app) = kitedesk_daemon::Daemon::app(
        config(dir.path(), MANIFEST, &default_env()),
        HOST.parse().unwrap(),
    )
    .await
    .unwrap();
    let h = Harness {
        _dir: dir,
        api,
        app,
    };
    let (status, r) = h
        .post_hook("myapp", &[], br#"{"message":"freshword"}"#)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{r}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let behind = h.api.store().unindexed().await.unwrap();
        if behind == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{behind} events still unindexed after 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for (q, expect) in [
        ("backlogword 1", "old-1"),
        ("backlogword 26000", "old-26000"),
        ("freshword", ""),
    ] {
        let (_, page) = h
            .get(&format!("/api/events?q={}", q.replace(' ', "%20")))
            .await;
        let events = page["events"].as_array().unwrap();
        assert!(!events.is_empty(), "{q}: {page}");
        if !expect.is_empty() {
            assert!(
                events.iter().any(|e| e["event_id"] == expect),
                "{q}: {page}"
            );
        }
    }
    h.api.store().integrity_check().await.unwrap();
}
