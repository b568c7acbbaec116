//! Per-team rate and quota: 429 with `Retry-After` at the ingress, and
//! `quota_snapshot` / `billing_block` / 4005 on the WebSocket.

use std::time::Duration;

use kite_protocol::{ERR_QUOTA_BLOCKED, ServerMessage};
use kitedesk_relay::limits::{Quota, RateLimit};
use kitedesk_relay::{TokenKind, admin};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Env, start_with};

/// POST a generic event for `team` with `token`; (status, Retry-After, body).
async fn post(
    env: &Env,
    team: &str,
    token: &str,
    n: u32,
) -> (StatusCode, Option<u64>, serde_json::Value) {
    let url = format!("{}/{token}", env.relay.hook_url(team, "demo"));
    let resp = env
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(json!({"message": format!("m{n}")}).to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, after, resp.json().await.unwrap())
}

#[tokio::test]
async fn a_team_over_its_rate_gets_429_with_retry_after() {
    // A window far longer than the test, so the limit cannot reset mid-way.
    let env = start_with(|c| {
        c.team_rate_limit = Some(RateLimit {
            requests: 3,
            window: Duration::from_secs(3600),
        });
    })
    .await;
    for n in 0..3 {
        let (s, _, body) = post(&env, &env.team, &env.hook, n).await;
        assert_eq!(s, StatusCode::ACCEPTED, "within the rate: {body}");
    }
    let (s, after, body) = post(&env, &env.team, &env.hook, 3).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "rate_limited", "{body}");
    let after = after.expect("a Retry-After header");
    assert!(
        (3500..=3600).contains(&after),
        "Retry-After is the rest of the window: {after}"
    );
    assert_eq!(body["retry_after_secs"], after, "the body says the same");
    assert_eq!(
        env.relay.last_seq(&env.team).await.unwrap(),
        3,
        "nothing appended for the refused request"
    );

    // Another team has its own budget.
    let other = admin::create_team(env.dir.path(), "other")
        .await
        .unwrap()
        .id;
    let hook = admin::create_token(env.dir.path(), &other, TokenKind::Hook, &[])
        .await
        .unwrap();
    let (s, _, body) = post(&env, &other, &hook, 0).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    // A bad token is refused before the limit and uses none of it.
    let (s, _, _) = post(&env, &other, "kdh_not-a-token", 1).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_team_over_its_quota_gets_429_and_its_clients_4005() {
    let env = start_with(|c| {
        c.team_quota = Some(Quota {
            events: 2,
            period: Duration::from_secs(86_400),
        });
    })
    .await;

    // Under quota: a snapshot after connected, and nothing else.
    let (mut before, first) = env.connect(&["*"], None).await;
    assert!(
        matches!(first, ServerMessage::Connected { .. }),
        "{first:?}"
    );
    let ServerMessage::QuotaSnapshot {
        events_used,
        events_limit,
        ..
    } = before.next().await
    else {
        panic!("a quota_snapshot follows connected");
    };
    assert_eq!((events_used, events_limit), (0, 2));

    // A provider retry appends nothing and costs nothing of the quota.
    let url = format!("{}/{}", env.relay.hook_url(&env.team, "demo"), env.hook);
    let ce = json!({"specversion": "1.0", "id": "q-1", "source": "https://e2e.test/demo",
                    "type": "com.demo.event", "data": {}});
    for want in [StatusCode::ACCEPTED, StatusCode::OK] {
        let (s, _) = env
            .post(
                &url,
                &[("content-type", "application/cloudevents+json")],
                ce.to_string().into_bytes(),
            )
            .await;
        assert_eq!(s, want, "first accepted, then duplicate_ignored");
    }
    let (s, _, body) = post(&env, &env.team, &env.hook, 0).await;
    assert_eq!(s, StatusCode::ACCEPTED, "the second new event: {body}");
    let (s, after, body) = post(&env, &env.team, &env.hook, 2).await;
    assert_eq!(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        "the third new event: {body}"
    );
    assert_eq!(body["code"], "quota_exceeded", "{body}");
    assert!(
        after.is_some_and(|a| (86_000..=86_400).contains(&a)),
        "Retry-After is the rest of the period: {after:?}"
    );
    assert_eq!(env.relay.last_seq(&env.team).await.unwrap(), 2);

    // The events already logged still reach the connected client.
    let events = before.events(2).await;
    assert_eq!(events.len(), 2);

    // A client connecting now is told: snapshot, billing_block, 4005.
    let (mut c, first) = env.connect(&["*"], None).await;
    assert!(
        matches!(first, ServerMessage::Connected { .. }),
        "{first:?}"
    );
    let ServerMessage::QuotaSnapshot {
        events_used,
        events_limit,
        ..
    } = c.next().await
    else {
        panic!("a quota_snapshot follows connected");
    };
    assert_eq!((events_used, events_limit), (2, 2));
    let block = c.next().await;
    let ServerMessage::BillingBlock {
        reason, retryable, ..
    } = &block
    else {
        panic!("expected billing_block, got {block:?}");
    };
    assert_eq!((reason.as_str(), *retryable), ("quota_exceeded", true));
    let err = c.next().await;
    assert!(
        matches!(err, ServerMessage::Error { code, .. } if code == ERR_QUOTA_BLOCKED),
        "error 4005 (ERR_QUOTA_BLOCKED): {err:?}"
    );
}
