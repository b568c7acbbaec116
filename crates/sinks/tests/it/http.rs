//! The HTTP proxy sink against a real local server.

use std::time::Duration;

use chrono::Utc;
use kitedesk_core::verify::{self, Scheme, Secret, VerifyError};
use kitedesk_sinks::{Failure, HttpSink, HttpSinkConfig, Outcome, Resign};

use crate::support::{PAYLOAD, PROVIDER_SECRET, event, github_delivery, server};

fn sink(config: HttpSinkConfig) -> HttpSink {
    HttpSink::new(config).unwrap()
}

#[tokio::test]
async fn forwards_the_original_bytes_and_provider_headers() {
    let mut srv = server().await;
    let d = github_delivery();
    let attempt = sink(HttpSinkConfig::new(srv.url("/ok"))).deliver(&d).await;

    assert_eq!(attempt.outcome, Outcome::Delivered, "{attempt:?}");
    assert_eq!(attempt.status, Some(200));
    assert_eq!(attempt.body.as_ref().unwrap().as_text(), Some("ok"));

    let got = srv.next().await;
    assert_eq!(
        got.body.as_ref(),
        PAYLOAD.as_bytes(),
        "the payload is forwarded byte for byte, not re-serialized"
    );
    // The provider's own signature still verifies: what the local app
    // checks is what the provider signed.
    verify::verify(
        Scheme::Github,
        &got.core_headers(),
        &got.body,
        &[Secret::new(PROVIDER_SECRET)],
        Utc::now(),
        300,
    )
    .unwrap();
    assert_eq!(got.header("x-github-event"), Some("ping"));
    assert_eq!(
        got.header("x-github-delivery"),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    );
    assert_eq!(got.header("user-agent"), Some("GitHub-Hookshot/abc123"));
    assert_eq!(got.header("content-type"), Some("application/json"));

    assert_eq!(got.header("x-kite-source"), Some("github"));
    assert_eq!(got.header("x-kite-event-id"), Some(d.event.id.as_str()));
    assert_eq!(got.header("x-kite-event-type"), Some("com.github.ping"));
    assert_eq!(
        got.header("x-kite-team-id"),
        Some("team_abc"),
        "the team comes from the source's /hooks/{{team}}/{{source}} path"
    );
    assert_eq!(got.header("ce-id"), Some(d.event.id.as_str()));
    assert_eq!(got.header("ce-specversion"), Some("1.0"));

    // Transport headers of the original request describe another request.
    assert_ne!(got.header("host"), Some("hooks.example.com"));
    assert_eq!(
        got.header("content-length"),
        Some(PAYLOAD.len().to_string().as_str()),
        "content-length is the forwarded body's, not the original 9999"
    );
    assert_eq!(got.header("transfer-encoding"), None);
    assert_eq!(got.header("accept-encoding"), None);
}

#[tokio::test]
async fn without_a_team_no_team_header_is_sent() {
    let mut srv = server().await;
    let d = kitedesk_sinks::Delivery::new(
        event("e1", "com.acme.event", "https://acme.example/api"),
        "{}",
    );
    assert_eq!(d.team_id, None);
    let attempt = sink(HttpSinkConfig::new(srv.url("/ok"))).deliver(&d).await;
    assert!(attempt.is_delivered(), "{attempt:?}");
    let got = srv.next().await;
    assert_eq!(got.header("x-kite-team-id"), None);
    assert_eq!(got.header("x-kite-source"), Some("acme"));
    assert_eq!(
        got.header("content-type"),
        Some("application/json"),
        "a payload without a content-type is sent as JSON"
    );

    let d = d.with_team_id("team_xyz");
    sink(HttpSinkConfig::new(srv.url("/ok"))).deliver(&d).await;
    assert_eq!(srv.next().await.header("x-kite-team-id"), Some("team_xyz"));
}

#[tokio::test]
async fn envelope_mode_posts_the_structured_cloudevent() {
    let mut srv = server().await;
    let d = github_delivery();
    let mut config = HttpSinkConfig::new(srv.url("/ok"));
    config.envelope = true;
    let attempt = sink(config).deliver(&d).await;
    assert!(attempt.is_delivered(), "{attempt:?}");

    let got = srv.next().await;
    assert_eq!(
        got.header("content-type"),
        Some("application/cloudevents+json")
    );
    assert_eq!(
        got.header("ce-id"),
        None,
        "structured mode carries attributes in the body only"
    );
    let ce: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["id"], d.event.id.as_str());
    assert_eq!(ce["type"], "com.github.ping");
    assert_eq!(&ce["data"], d.event.data.value());
    assert_eq!(got.header("x-kite-event-id"), Some(d.event.id.as_str()));
}

#[tokio::test]
async fn resigning_replaces_the_provider_signature_for_every_scheme() {
    let mut srv = server().await;
    let local = Secret::new("whsec_bG9jYWwtZGV2LXNlY3JldA==");
    for scheme in [
        Scheme::Github,
        Scheme::Stripe,
        Scheme::Kiket,
        Scheme::StandardWebhooks,
    ] {
        let mut d = github_delivery();
        d.headers.insert("webhook-id", "msg_original");
        let mut config = HttpSinkConfig::new(srv.url("/ok"));
        config.resign = Some(Resign {
            scheme,
            secret: local.clone(),
        });
        let attempt = sink(config).deliver(&d).await;
        assert!(attempt.is_delivered(), "{scheme:?}: {attempt:?}");

        let got = srv.next().await;
        assert_eq!(got.body.as_ref(), PAYLOAD.as_bytes());
        let headers = got.core_headers();
        verify::verify(
            scheme,
            &headers,
            &got.body,
            std::slice::from_ref(&local),
            Utc::now(),
            300,
        )
        .unwrap_or_else(|e| panic!("{scheme:?}: the local app's check must pass: {e}"));
        assert_eq!(
            got.headers
                .get_all(scheme.signature_header())
                .iter()
                .count(),
            1,
            "{scheme:?}: exactly one signature, ours"
        );
        if scheme != Scheme::Github {
            assert_eq!(
                got.header("x-hub-signature-256"),
                None,
                "{scheme:?}: the provider's signature is removed"
            );
        } else {
            assert_eq!(
                verify::verify(
                    scheme,
                    &headers,
                    &got.body,
                    &[Secret::new(PROVIDER_SECRET)],
                    Utc::now(),
                    300
                ),
                Err(VerifyError::NoMatchingSignature),
                "the provider's signature was replaced, not kept"
            );
        }
        assert_eq!(
            got.header("x-hub-signature"),
            None,
            "{scheme:?}: the legacy SHA-1 signature would fail too, so it goes"
        );
        if scheme == Scheme::StandardWebhooks {
            assert_eq!(
                got.header("webhook-id"),
                Some("msg_original"),
                "the message id (the receiver's idempotency key) is kept"
            );
        }
    }
}

#[tokio::test]
async fn a_server_error_is_a_failure_with_status_and_body() {
    let mut srv = server().await;
    let attempt = sink(HttpSinkConfig::new(srv.url("/fail")))
        .deliver(&github_delivery())
        .await;
    assert_eq!(attempt.failure(), Some(&Failure::Status(500)));
    assert_eq!(attempt.status, Some(500));
    assert_eq!(
        attempt.body.as_ref().unwrap().as_text(),
        Some("database is down"),
        "the target's explanation is kept for the UI"
    );
    srv.next().await;
}

#[tokio::test]
async fn a_redirect_is_reported_and_not_followed() {
    let mut srv = server().await;
    let attempt = sink(HttpSinkConfig::new(srv.url("/redirect")))
        .deliver(&github_delivery())
        .await;
    assert_eq!(
        attempt.failure(),
        Some(&Failure::Redirect {
            status: 302,
            location: Some("/ok".into())
        })
    );
    assert_eq!(attempt.status, Some(302));
    assert!(
        attempt
            .failure()
            .unwrap()
            .to_string()
            .contains("redirect not followed"),
        "the result says why a 3xx failed"
    );
    assert_eq!(srv.next().await.path, "/redirect");
    assert!(
        srv.received.try_recv().is_err(),
        "/ok was never requested: a followed redirect would be recorded before the response"
    );
}

#[tokio::test]
async fn a_slow_target_times_out() {
    let mut srv = server().await;
    let mut config = HttpSinkConfig::new(srv.url("/slow"));
    config.timeout = Duration::from_millis(300);
    let attempt = sink(config).deliver(&github_delivery()).await;
    assert_eq!(
        attempt.failure(),
        Some(&Failure::Timeout(Duration::from_millis(300)))
    );
    assert!(
        attempt.latency < Duration::from_secs(10),
        "the attempt ended at its timeout, not when the server answered (30 s): {:?}",
        attempt.latency
    );
    assert_eq!(srv.next().await.path, "/slow", "the request did arrive");
}

#[tokio::test]
async fn an_unreachable_target_is_a_connect_failure() {
    // A port that was just free: nothing listens on it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let attempt = sink(HttpSinkConfig::new(format!("http://{addr}/hook")))
        .deliver(&github_delivery())
        .await;
    match attempt.failure() {
        Some(Failure::Connect(why)) => assert!(
            why.to_lowercase().contains("refused"),
            "the cause is named, not just 'error sending request': {why}"
        ),
        other => panic!("expected a connect failure, got {other:?}"),
    }
    assert_eq!(attempt.status, None);
}

#[tokio::test]
async fn a_large_response_body_is_capped_on_a_char_boundary() {
    let mut srv = server().await;
    let attempt = sink(HttpSinkConfig::new(srv.url("/big")))
        .deliver(&github_delivery())
        .await;
    assert!(attempt.is_delivered(), "{attempt:?}");
    let body = attempt.body.unwrap();
    assert!(body.is_truncated());
    let text = body
        .as_text()
        .expect("a cut inside a 3-byte character is moved back to the boundary");
    assert_eq!(text.len(), 4095, "1365 whole '€' fit in 4 KiB");
    assert!(text.chars().all(|c| c == '€'));
    srv.next().await;
}

#[tokio::test]
async fn event_fields_cannot_inject_headers() {
    let mut srv = server().await;
    let d = kitedesk_sinks::Delivery::new(
        event(
            "evt_1\r\nX-Injected: yes",
            "com.acme.event",
            "https://acme.example",
        ),
        "{}",
    );
    let attempt = sink(HttpSinkConfig::new(srv.url("/ok"))).deliver(&d).await;
    assert!(
        attempt.is_delivered(),
        "an unsendable value drops that header, not the delivery: {attempt:?}"
    );
    let got = srv.next().await;
    assert_eq!(got.header("x-injected"), None);
    assert_eq!(
        got.header("x-kite-event-id"),
        None,
        "a value with CR/LF is left out, never sent mangled"
    );
    assert_eq!(got.header("x-kite-event-type"), Some("com.acme.event"));
}
