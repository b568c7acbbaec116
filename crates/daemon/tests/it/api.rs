use axum::body::Body;
use axum::http::{Request, StatusCode};

use crate::harness::*;

async fn seed(h: &Harness) {
    for (i, msg) in ["deploy started", "deploy finished", "card declined"]
        .iter()
        .enumerate()
    {
        let body = format!(r#"{{"message":"{msg}","n":{i}}}"#);
        let (s, _) = h.post_hook("myapp", &[], body.as_bytes()).await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    let body = github_push();
    let (s, _) = h
        .post_hook("github", &github_headers(&body, "gh-1", GH_SECRET), &body)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn list_filters_search_and_pages() {
    let h = Harness::new().await;
    seed(&h).await;
    let (s, all) = h.get("/api/events").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(all["events"].as_array().unwrap().len(), 4);
    assert_eq!(all["events"][0]["source_name"], "github", "newest first");
    assert!(all.get("next_cursor").is_none(), "one page only");

    let (_, mine) = h.get("/api/events?source=myapp&q=deploy").await;
    let summaries: Vec<&str> = mine["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert_eq!(
        summaries,
        ["myapp: deploy finished", "myapp: deploy started"]
    );

    let (_, verified) = h.get("/api/events?verified=true").await;
    assert_eq!(verified["events"].as_array().unwrap().len(), 1);
    let (_, typed) = h.get("/api/events?type=com.github.*").await;
    assert_eq!(typed["events"][0]["type"], "com.github.push");

    let (_, p1) = h.get("/api/events?limit=3").await;
    assert_eq!(p1["events"].as_array().unwrap().len(), 3);
    let cursor = p1["next_cursor"].as_str().expect("a second page exists");
    let (_, p2) = h.get(&format!("/api/events?limit=3&cursor={cursor}")).await;
    assert_eq!(p2["events"].as_array().unwrap().len(), 1);
    assert_eq!(p2["events"][0]["summary"], "myapp: deploy started");
}

#[tokio::test]
async fn bad_query_parameters_are_named() {
    let h = Harness::new().await;
    for (path, needle) in [
        ("/api/events?colour=red", "colour"),
        ("/api/events?min_importance=urgent", "min_importance"),
        ("/api/events?since=yesterday", "since"),
        ("/api/events?limit=0", "limit"),
        ("/api/events?type=com.[x", "type"),
        ("/api/events?verified=maybe", "verified"),
        ("/api/events?q=%28%29", "search"),
    ] {
        let (s, r) = h.get(path).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {r}");
        assert_eq!(r["code"], "invalid_query");
        assert!(
            r["message"].as_str().unwrap().contains(needle),
            "{path}: {r}"
        );
    }
    let (s, r) = h.get("/api/events/99999").await;
    assert_eq!(
        (s, r["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("event_not_found"))
    );
}

#[tokio::test]
async fn volume_and_health() {
    let h = Harness::new().await;
    seed(&h).await;
    let (s, v) = h.get("/api/stats/volume").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let total: i64 = v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 4, "{v}");
    let (s, health) = h.get("/api/health").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(health["events"], 4);
    let gh = health["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "github")
        .unwrap();
    assert_eq!(gh["verification"], "signed");
    assert_eq!(gh["hook_url"], format!("http://{HOST}/hooks/github"));
}

/// Found while writing the `api_query` fuzz target: a bucket whose width in
/// milliseconds overflows an i64 panicked (`bucket_secs * 1000`) with
/// overflow checks on, and gave 1 ms buckets without them.
#[tokio::test]
async fn volume_refuses_a_bucket_too_wide_for_milliseconds() {
    let h = Harness::new().await;
    seed(&h).await;
    for bucket in [i64::MAX, i64::MAX / 1000 + 1] {
        let (s, v) = h.get(&format!("/api/stats/volume?bucket={bucket}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "bucket={bucket}: {v}");
        assert_eq!(v["code"], "invalid_query", "{v}");
    }
    let widest = i64::MAX / 1000;
    let (s, v) = h.get(&format!("/api/stats/volume?bucket={widest}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let w = kitedesk_daemon::volume_window(None, None, Some(widest), chrono::Utc::now()).unwrap();
    assert_eq!(w.bucket_secs, widest);
}

/// Found with the one above: without `from`, the range starts 24 hours
/// before `to`, which for a `to` within a day of the earliest time chrono
/// represents overflowed (`DateTime - TimeDelta` panics).
#[tokio::test]
async fn volume_default_range_near_the_earliest_time() {
    let h = Harness::new().await;
    let min = chrono::DateTime::<chrono::Utc>::MIN_UTC;
    let to = min.timestamp_millis() + 60_000;
    let (s, v) = h.get(&format!("/api/stats/volume?to={to}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["buckets"], serde_json::json!([]), "{v}");
    let w = kitedesk_daemon::volume_window(
        None,
        chrono::DateTime::from_timestamp_millis(to),
        None,
        chrono::Utc::now(),
    )
    .unwrap();
    assert_eq!(w.from, min, "the range starts at the earliest time");
    let (s, v) = h
        .get(&format!("/api/stats/volume?to={}", min.timestamp_millis()))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "an empty range: {v}");
}

#[tokio::test]
async fn api_requires_token_loopback_host_and_same_origin() {
    let h = Harness::new().await;
    let token = h.api.token().to_string();
    let req = |host: &str, auth: Option<String>, origin: Option<&str>, cookie: Option<String>| {
        let mut b = Request::get("/api/events").header("host", host);
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        b.body(Body::empty()).unwrap()
    };
    let bearer = Some(format!("Bearer {token}"));
    let cases = [
        (
            "no token",
            req(HOST, None, None, None),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "wrong token",
            req(HOST, Some("Bearer kd_wrong".into()), None, None),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "DNS rebinding",
            req("evil.example:7710", bearer.clone(), None, None),
            StatusCode::FORBIDDEN,
            "bad_host",
        ),
        (
            "cross-origin",
            req(HOST, bearer.clone(), Some("http://evil.example"), None),
            StatusCode::FORBIDDEN,
            "bad_origin",
        ),
    ];
    for (what, r, status, code) in cases {
        let (s, body) = h.send(r).await;
        assert_eq!(
            (s, body["code"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
        assert!(
            !body.to_string().contains(&token),
            "{what}: the token is never echoed"
        );
    }
    let (s, _) = h
        .send(req(HOST, bearer, Some(&format!("http://{HOST}")), None))
        .await;
    assert_eq!(s, StatusCode::OK, "same-origin request with the token");
    let (s, _) = h
        .send(req(
            "localhost:7710",
            None,
            None,
            Some(format!("theme=dark; kitedesk_token={token}")),
        ))
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "the session cookie works like the bearer token"
    );
    // The ingress is not behind the token (senders sign instead) and /health is public.
    let (s, _) = h
        .send(
            Request::get("/health")
                .header("host", "tunnel.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn the_api_token_is_stored_private_and_stable() {
    let dir = tempfile::tempdir().unwrap();
    let a = kitedesk_daemon::config::api_token(dir.path()).unwrap();
    let b = kitedesk_daemon::config::api_token(dir.path()).unwrap();
    assert_eq!(a, b, "generated once, then reused");
    assert!(a.len() >= 32);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join("api-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
