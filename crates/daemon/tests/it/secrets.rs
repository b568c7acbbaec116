//! The secrets API over an in-memory keychain: create, verify, rotate with a
//! grace window, reveal, delete, health, and "no keychain" (the real Secret
//! Service is exercised by the CLI's end-to-end tests).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use kitedesk_daemon::Daemon;
use kitedesk_secrets::{Keychain as _, KeychainError, MemoryKeychain};
use serde_json::{Value, json};

use crate::harness::{self, GH_SECRET, HOST, Harness, MANIFEST, github_headers, github_push};

const NEW_SECRET: &str = "keychain-secret-for-github-0001";
const ROTATED: &str = "keychain-secret-for-github-0002";

async fn harness_with(
    dir: &std::path::Path,
    keychain: Arc<MemoryKeychain>,
    manifest: &str,
    env: &[(&str, &str)],
) -> (kitedesk_daemon::Api, axum::Router) {
    let mut c = harness::config(dir, manifest, env);
    c.keychain = Some(keychain);
    let addr: SocketAddr = HOST.parse().unwrap();
    Daemon::app(c, addr).await.unwrap()
}

async fn start(keychain: Arc<MemoryKeychain>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (api, app) = harness_with(dir.path(), keychain, MANIFEST, &harness::default_env()).await;
    Harness {
        _dir: dir,
        api,
        app,
    }
}

async fn call(h: &Harness, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", HOST)
        .header("authorization", format!("Bearer {}", h.api.token()))
        .header("content-type", "application/json");
    h.send(
        b.body(body.map_or_else(Body::empty, |v| Body::from(v.to_string())))
            .unwrap(),
    )
    .await
}

async fn hook(h: &Harness, secret: &str, delivery: &str) -> StatusCode {
    let body = github_push();
    h.post_hook("github", &github_headers(&body, delivery, secret), &body)
        .await
        .0
}

#[tokio::test]
async fn a_keychain_secret_replaces_the_environment_secret() {
    let kc = Arc::new(MemoryKeychain::new());
    let h = start(kc.clone()).await;
    assert_eq!(
        hook(&h, GH_SECRET, "d-env").await,
        StatusCode::ACCEPTED,
        "before any keychain secret, the environment secret verifies"
    );
    let (status, meta) = call(
        &h,
        "POST",
        "/api/secrets",
        Some(json!({"name": "webhook/github", "kind": "webhook", "value": NEW_SECRET})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{meta}");
    assert_eq!(meta["source"], "github", "source inferred from the name");
    assert_eq!(meta["kind"], "webhook");
    assert_eq!(
        meta["fingerprint"].as_str().unwrap(),
        kitedesk_secrets::fingerprint(&kitedesk_secrets::Secret::new(NEW_SECRET))
    );
    assert!(
        !meta.to_string().contains(NEW_SECRET),
        "no value in metadata"
    );
    assert_eq!(
        kc.get("webhook/github").unwrap().unwrap().expose(),
        NEW_SECRET,
        "the value is in the keychain"
    );
    assert_eq!(hook(&h, NEW_SECRET, "d-kc").await, StatusCode::ACCEPTED);
    assert_eq!(
        hook(&h, GH_SECRET, "d-env-2").await,
        StatusCode::UNAUTHORIZED,
        "with a keychain secret the environment secret no longer verifies"
    );
    let (status, err) = call(
        &h,
        "POST",
        "/api/secrets",
        Some(json!({"name": "webhook/github", "kind": "webhook", "value": "other"})),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("secret_exists"))
    );

    // last_used is recorded (asynchronously) after a verified webhook.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rec = h
            .api
            .store()
            .secret("webhook/github")
            .await
            .unwrap()
            .unwrap();
        if rec.last_used.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "last_used never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn rotation_keeps_the_previous_value_for_the_grace_window_only() {
    let kc = Arc::new(MemoryKeychain::new());
    let h = start(kc.clone()).await;
    let (status, _) = call(
        &h,
        "POST",
        "/api/secrets",
        Some(json!({"name": "webhook/github", "kind": "webhook", "value": NEW_SECRET})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // Percent-encoded name: the form a browser's encodeURIComponent gives.
    let (status, meta) = call(
        &h,
        "POST",
        "/api/secrets/webhook%2Fgithub/rotate",
        Some(json!({"value": ROTATED, "grace_secs": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{meta}");
    assert!(meta["previous_valid_until"].is_string(), "{meta}");
    assert!(meta["rotated_at"].is_string(), "{meta}");
    assert_eq!(
        kc.get("webhook/github#previous").unwrap().unwrap().expose(),
        NEW_SECRET
    );
    assert_eq!(hook(&h, ROTATED, "r-new").await, StatusCode::ACCEPTED);
    assert_eq!(
        hook(&h, NEW_SECRET, "r-old").await,
        StatusCode::ACCEPTED,
        "the previous value verifies inside the grace window"
    );
    // After the window, the old value fails (no sleep of the whole window:
    // poll until it flips, with a deadline).
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut n = 0;
    loop {
        n += 1;
        if hook(&h, NEW_SECRET, &format!("r-old-{n}")).await == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the previous value never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hook(&h, ROTATED, "r-new-2").await, StatusCode::ACCEPTED);
    // The sweep removes the expired previous value from the keychain.
    h.api.sweep_secrets(chrono::Utc::now()).await.unwrap();
    assert_eq!(kc.get("webhook/github#previous").unwrap(), None);
    let (_, list) = call(&h, "GET", "/api/secrets", None).await;
    assert!(
        list["secrets"][0].get("previous_valid_until").is_none(),
        "{list}"
    );

    // grace 0: the old value stops at once; the same value is refused.
    let (status, _) = call(
        &h,
        "POST",
        "/api/secrets/webhook/github/rotate",
        Some(json!({"value": NEW_SECRET, "grace_hours": 0})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hook(&h, ROTATED, "r-0").await, StatusCode::UNAUTHORIZED);
    let (status, err) = call(
        &h,
        "POST",
        "/api/secrets/webhook/github/rotate",
        Some(json!({"value": NEW_SECRET})),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("secret_unchanged"))
    );
}

#[tokio::test]
async fn reveal_delete_and_names() {
    let kc = Arc::new(MemoryKeychain::new());
    let h = start(kc.clone()).await;
    let (status, _) = call(
        &h,
        "POST",
        "/api/secrets",
        Some(json!({"name": "relay/acme", "value": "relay-token-xyz"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, v) = call(&h, "POST", "/api/secrets/relay/acme/reveal", None).await;
    assert_eq!(
        (status, v["value"].as_str()),
        (StatusCode::OK, Some("relay-token-xyz"))
    );
    let (_, list) = call(&h, "GET", "/api/secrets", None).await;
    assert_eq!(
        list["secrets"][0]["kind"], "relay_token",
        "kind inferred from relay/"
    );
    assert!(
        !list.to_string().contains("relay-token-xyz"),
        "list never holds values"
    );

    let (status, _) = call(&h, "DELETE", "/api/secrets/relay%2Facme", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(kc.names().is_empty(), "delete removes the keychain entry");
    let (status, err) = call(&h, "POST", "/api/secrets/relay/acme/reveal", None).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("secret_not_found"))
    );
    let (status, _) = call(&h, "DELETE", "/api/secrets/relay/acme", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for (body, code) in [
        (json!({"name": "Bad Name", "value": "x"}), "invalid_name"),
        (
            json!({"name": "webhook/github", "kind": "api_token", "value": "x"}),
            "invalid_name",
        ),
        (
            json!({"name": "webhook/x", "source": "y", "value": "x"}),
            "invalid_name",
        ),
        (json!({"name": "ok", "value": ""}), "invalid_value"),
        (
            json!({"name": "ok", "value": "two\nlines"}),
            "invalid_value",
        ),
    ] {
        let (status, err) = call(&h, "POST", "/api/secrets", Some(body.clone())).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}"
        );
    }
    // A malformed body is refused without quoting it (it may hold a secret).
    let (status, err) = call(
        &h,
        "POST",
        "/api/secrets",
        Some(json!({"name": "ok", "value": 98765432123_u64})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!err.to_string().contains("98765432123"), "{err}");
    // Deleting the webhook secret falls back to the environment secret.
    call(
        &h,
        "POST",
        "/api/secrets",
        Some(json!({"name": "webhook/github", "value": NEW_SECRET})),
    )
    .await;
    assert_eq!(hook(&h, GH_SECRET, "e-1").await, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&h, "DELETE", "/api/secrets/webhook/github", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(hook(&h, GH_SECRET, "e-2").await, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn health_lists_missing_and_old_secrets() {
    let manifest = r#"{"sources": [
        {"name": "github", "type": "github", "verify": {"secretEnv": "GH"}},
        {"name": "kiket", "type": "kiket", "verify": {"secretEnv": "KIKET"}},
        {"name": "demo", "type": "generic", "verify": {"allowUnsigned": true}}
    ]}"#;
    let dir = tempfile::tempdir().unwrap();
    let (api, app) = harness_with(
        dir.path(),
        Arc::new(MemoryKeychain::new()),
        manifest,
        &[
            ("KIKET", "kiket-env"),
            ("KITEDESK_SECRET_MAX_AGE_DAYS", "0"),
        ],
    )
    .await;
    let h = Harness {
        _dir: dir,
        api,
        app,
    };
    let (_, list) = call(&h, "GET", "/api/secrets", None).await;
    assert_eq!(list["health"]["missing"], json!(["github"]), "{list}");
    assert_eq!(list["health"]["backend"], "memory");
    call(
        &h,
        "POST",
        "/api/secrets",
        Some(json!({"name": "webhook/github", "value": NEW_SECRET})),
    )
    .await;
    let (_, health) = h.get("/api/health").await;
    assert_eq!(health["secrets"]["missing"], json!([]), "{health}");
    assert_eq!(
        health["secrets"]["old"],
        json!(["webhook/github"]),
        "with a max age of 0 days every secret is old"
    );
    assert_eq!(health["sources"][0]["verification"], "signed");
}

#[tokio::test]
async fn no_keychain_is_a_clear_503_and_never_a_fallback() {
    let kc = Arc::new(MemoryKeychain::new());
    kc.set_unavailable(Some(KeychainError::no_service("ServiceUnknown")));
    let h = start(kc.clone()).await;
    let (status, err) = call(&h, "GET", "/api/secrets", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(err["code"], "keychain_unavailable");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("no Secret Service on the session bus"),
        "{err}"
    );
    let (status, err) = call(
        &h,
        "POST",
        "/api/secrets",
        Some(json!({"name": "webhook/github", "value": NEW_SECRET})),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("keychain_unavailable")
        )
    );
    let (status, health) = h.get("/api/health").await;
    assert_eq!(status, StatusCode::OK, "the daemon keeps serving");
    assert_eq!(health["secrets"]["backend"], "unavailable");
    assert!(
        health["secrets"]["error"]
            .as_str()
            .unwrap()
            .contains("no Secret Service")
    );
    assert!(
        h.api.store().secrets().await.unwrap().is_empty(),
        "nothing recorded when the value could not be stored"
    );

    // A daemon that starts while the keychain holding a source's secret is
    // unreadable answers that source's webhooks 503, never falling back to
    // the environment secret.
    let kc = Arc::new(MemoryKeychain::new());
    let dir = tempfile::tempdir().unwrap();
    {
        let (api, app) =
            harness_with(dir.path(), kc.clone(), MANIFEST, &harness::default_env()).await;
        let h = Harness {
            _dir: tempfile::tempdir().unwrap(),
            api,
            app,
        };
        let (status, _) = call(
            &h,
            "POST",
            "/api/secrets",
            Some(json!({"name": "webhook/github", "value": NEW_SECRET})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        h.api.store().close().await;
    }
    kc.set_unavailable(Some(KeychainError::Locked {
        detail: "test".into(),
    }));
    let (api, app) = harness_with(dir.path(), kc.clone(), MANIFEST, &harness::default_env()).await;
    let h = Harness {
        _dir: dir,
        api,
        app,
    };
    let body = github_push();
    let (status, err) = h
        .post_hook("github", &github_headers(&body, "l-1", GH_SECRET), &body)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{err}");
    assert_eq!(err["code"], "keychain_unavailable");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("keychain is locked"),
        "{err}"
    );
    // Once the keychain answers again, the sweep picks the secret up.
    kc.set_unavailable(None);
    h.api.sweep_secrets(chrono::Utc::now()).await.unwrap();
    assert_eq!(hook(&h, NEW_SECRET, "l-2").await, StatusCode::ACCEPTED);
}
