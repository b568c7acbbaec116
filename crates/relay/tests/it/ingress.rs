//! `POST /hooks/{team}/{source}[/{token}]`.

use kite_protocol::ServerMessage;
use kitedesk_relay::{Relay, TokenKind, admin};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{GH_SECRET, config, start, start_with};

#[tokio::test]
async fn accepted_events_get_consecutive_seqs_and_retries_are_not_appended_twice() {
    let env = start().await;
    let (s1, a) = env.post_demo("demo", &json!({"message": "one"})).await;
    let (s2, b) = env.post_demo("demo", &json!({"message": "two"})).await;
    assert_eq!(
        (s1, s2),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED),
        "{a} {b}"
    );
    assert_eq!((a["seq"].as_u64(), b["seq"].as_u64()), (Some(1), Some(2)));
    assert_eq!(a["status"], "accepted");

    // A provider retry reuses the delivery id: same (source, id), same seq.
    let (s, first) = env
        .post_github("delivery-1", GH_SECRET, Some(&env.hook))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["verified"], true, "signed with the configured secret");
    let (s, retry) = env
        .post_github("delivery-1", GH_SECRET, Some(&env.hook))
        .await;
    assert_eq!(s, StatusCode::OK, "{retry}");
    assert_eq!(retry["status"], "duplicate_ignored");
    assert_eq!(
        retry["seq"], first["seq"],
        "a retry answers with the original seq"
    );
    assert_eq!(
        env.relay.last_seq(&env.team).await.unwrap(),
        3,
        "the retry was not appended"
    );
}

#[tokio::test]
async fn signature_alone_authenticates_a_source_with_a_secret() {
    let env = start().await;
    let (s, ok) = env.post_github("sig-only", GH_SECRET, None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{ok}");
    assert_eq!(ok["verified"], true);
    // A bad signature fails even with a valid hook token.
    let (s, bad) = env
        .post_github("bad-sig", "not-the-secret", Some(&env.hook))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{bad}");
    assert_eq!(bad["code"], "signature_mismatch");
    assert_eq!(
        env.relay.last_seq(&env.team).await.unwrap(),
        1,
        "nothing appended for the bad signature"
    );
}

#[tokio::test]
async fn wrong_or_missing_hook_tokens_are_401_with_nothing_appended() {
    let env = start().await;
    let base = env.relay.hook_url(&env.team, "demo");
    let body = json!({"message": "x"}).to_string().into_bytes();
    let ct = ("content-type", "application/json");
    let other_team = admin::create_team(env.dir.path(), "other")
        .await
        .unwrap()
        .id;
    let other_hook = admin::create_token(env.dir.path(), &other_team, TokenKind::Hook, &[])
        .await
        .unwrap();
    let bearer_api = format!("Bearer {}", env.api);
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (base.clone(), vec![ct], "missing_token"),
        (format!("{base}/khk_wrong"), vec![ct], "invalid_token"),
        (format!("{base}/{}", env.api), vec![ct], "invalid_token"),
        (format!("{base}/{other_hook}"), vec![ct], "invalid_token"),
        (
            base.clone(),
            vec![ct, ("authorization", bearer_api.as_str())],
            "invalid_token",
        ),
    ];
    for (url, headers, code) in cases {
        let (s, e) = env.post(&url, &headers, body.clone()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{url}: {e}");
        assert_eq!(e["code"], code, "{url}: {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    }
    assert_eq!(
        env.relay.last_seq(&env.team).await.unwrap(),
        0,
        "no refused request was appended"
    );

    // The bearer form works, and a revoked token stops working.
    let bearer = format!("Bearer {}", env.hook);
    let (s, e) = env
        .post(&base, &[ct, ("authorization", &bearer)], body.clone())
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{e}");
    let tokens = admin::list_tokens(env.dir.path(), Some(&env.team))
        .await
        .unwrap();
    let hook = tokens.iter().find(|t| t.kind == TokenKind::Hook).unwrap();
    admin::revoke_token(env.dir.path(), &hook.id).await.unwrap();
    let (s, e) = env
        .post(&base, &[ct, ("authorization", &bearer)], body)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "revoked: {e}");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let env = start_with(|c| c.max_body_bytes = 1024).await;
    let url = format!("{}/{}", env.relay.hook_url(&env.team, "demo"), env.hook);
    let big = json!({"message": "x".repeat(2000)})
        .to_string()
        .into_bytes();
    let (s, e) = env
        .post(&url, &[("content-type", "application/json")], big)
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert_eq!(e["code"], "payload_too_large");
    assert_eq!(e["max_bytes"], 1024);
    // A chunked body (no Content-Length) is cut off by the streaming limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..4).map(|_| Ok(vec![b' '; 600])).collect();
    let resp = env
        .http
        .post(&url)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _) = env.post_demo("demo", &json!({"message": "small"})).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(env.relay.last_seq(&env.team).await.unwrap(), 1);

    // 25 MB is the most a relay may be configured for.
    let dir = tempfile::tempdir().unwrap();
    let too_much = config(dir.path(), |c| c.max_body_bytes = 25 * 1024 * 1024 + 1);
    assert!(
        Relay::start(too_much).await.is_err(),
        "over 25 MB must be refused"
    );
}

#[tokio::test]
async fn structured_cloudevents_keep_their_type_id_and_summary() {
    let env = start().await;
    let (mut c, first) = env.connect(&["*"], None).await;
    assert!(
        matches!(first, ServerMessage::Connected { last_seq: 0, .. }),
        "{first:?}"
    );
    let url = format!("{}/{}", env.relay.hook_url(&env.team, "myapp"), env.hook);
    let ce = json!({
        "specversion": "1.0",
        "id": "evt-42",
        "source": "https://myapp.example/orders",
        "type": "com.myapp.order.created",
        "datacontenttype": "application/json",
        "kitesummary": "order 42 created",
        "data": {"order": 42}
    });
    let ct = [("content-type", "application/cloudevents+json")];
    let (s, r) = env.post(&url, &ct, ce.to_string().into_bytes()).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    assert_eq!(r["id"], "evt-42");
    // Posting it again is a retry of the same event.
    let (s, r) = env.post(&url, &ct, ce.to_string().into_bytes()).await;
    assert_eq!(
        (s, r["status"].as_str()),
        (StatusCode::OK, Some("duplicate_ignored"))
    );
    env.post_demo("myapp", &json!({"message": "plain"})).await;

    let ev = c.events(2).await;
    assert_eq!(ev[0].0, 1);
    let e = &ev[0].1;
    assert_eq!(
        (e["id"].as_str(), e["type"].as_str()),
        (Some("evt-42"), Some("com.myapp.order.created"))
    );
    assert_eq!(e["source"], "https://myapp.example/orders");
    assert_eq!(
        e["kitesummary"], "order 42 created",
        "a client kitesummary is kept"
    );
    assert_eq!(e["data"], json!({"order": 42}));
    assert_eq!(ev[1].0, 2, "the retry took no seq");
    assert_eq!(
        ev[1].1["type"], "com.myapp.event",
        "plain JSON to a custom source"
    );
}

#[tokio::test]
async fn concurrent_retries_of_one_delivery_share_one_seq() {
    let env = std::sync::Arc::new(start().await);
    // Sent at once, so they can land in the same write batch.
    let posts: Vec<_> = (0..20)
        .map(|_| {
            let env = env.clone();
            tokio::spawn(async move {
                env.post_github("same-delivery", GH_SECRET, Some(&env.hook))
                    .await
            })
        })
        .collect();
    let mut seqs = Vec::new();
    let mut accepted = 0;
    for p in posts {
        let (s, r) = p.await.unwrap();
        assert!(s.is_success(), "{r}");
        accepted += usize::from(r["status"] == "accepted");
        seqs.push(r["seq"].as_u64().unwrap());
    }
    assert_eq!(accepted, 1, "exactly one copy is accepted");
    assert!(
        seqs.iter().all(|&s| s == 1),
        "every answer names the one seq: {seqs:?}"
    );
    assert_eq!(env.relay.last_seq(&env.team).await.unwrap(), 1);
}

#[tokio::test]
async fn events_are_logged_inline_on_8k_pages_and_read_back_with_their_seq_once() {
    use kitedesk_relay::log::EventLog as _;
    let env = start().await;
    let (s, a) = env
        .post_github("inline-1", GH_SECRET, Some(&env.hook))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{a}");
    let seq = a["seq"].as_u64().unwrap();
    let entries = env.relay.log().read_from(&env.team, seq, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    let json = &entries[0].event_json;
    // The row holds the event without its seq; readers get it spliced in,
    // once, as the last member.
    assert_eq!(json.matches("\"kiteseq\"").count(), 1, "{json}");
    assert!(json.ends_with(&format!("\"kiteseq\":{seq}}}")), "{json}");
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["id"], "inline-1");

    // A new log has 8 KB pages: a compressed push (~1.2 KB with its keys)
    // stays in its B-tree page instead of taking an overflow page.
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(env.dir.path().join("relay.db"))
        .read_only(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    let page: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(page, 8192);
    let stored: i64 = sqlx::query_scalar("SELECT length(event) FROM events WHERE seq = ?")
        .bind(seq as i64)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(stored < 2000, "a compressed push is {stored} bytes");
}
