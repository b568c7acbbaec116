//! Sinks built from `kite.json` `sink` blocks.

use kitedesk_core::manifest::SinkConfig;
use kitedesk_sinks::{Delivery, Sink, SinkError, SinkKind};

use crate::support::{event, server};

fn config(json: serde_json::Value) -> SinkConfig {
    serde_json::from_value(json).unwrap()
}

#[test]
fn each_forwarding_sink_type_is_built() {
    let cases = [
        (
            serde_json::json!({"type": "proxy", "target": "http://localhost:3000/webhooks"}),
            SinkKind::Http,
            "http://localhost:3000/webhooks",
        ),
        (
            serde_json::json!({"type": "exec", "command": "jq .id", "importance": "high"}),
            SinkKind::Exec,
            "jq .id",
        ),
        (
            serde_json::json!({"type": "file", "path": "/tmp/kite/events.ndjson"}),
            SinkKind::File,
            "/tmp/kite/events.ndjson",
        ),
        (
            serde_json::json!({"type": "socket", "path": "/tmp/kite.sock"}),
            SinkKind::Socket,
            "/tmp/kite.sock",
        ),
    ];
    for (json, kind, target) in cases {
        let sink = Sink::from_manifest(&config(json)).unwrap();
        assert_eq!((sink.kind(), sink.target().as_str()), (kind, target));
    }
}

#[test]
fn stdout_and_bad_targets_are_refused_when_built() {
    assert!(matches!(
        Sink::from_manifest(&config(serde_json::json!({"type": "stdout"}))),
        Err(SinkError::Unsupported { kind: "stdout" })
    ));
    let err = Sink::from_manifest(&config(
        serde_json::json!({"type": "proxy", "target": "localhost:3000"}),
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("localhost:3000"),
        "the error names the target: {err}"
    );
}

#[tokio::test]
async fn a_manifest_proxy_sink_delivers() {
    let mut srv = server().await;
    let sink = Sink::from_manifest(&SinkConfig::Proxy {
        target: srv.url("/ok"),
        envelope: false,
        resign: None,
        timeout: None,
    })
    .unwrap();
    let d = Delivery::new(
        event("e1", "com.acme.event", "https://acme.example"),
        "{\"a\":1}",
    );
    let attempt = sink.deliver(&d).await;
    assert!(attempt.is_delivered(), "{attempt:?}");
    assert_eq!(srv.next().await.body.as_ref(), b"{\"a\":1}");
}
