//! "Raw webhook in → CloudEvent out" for every fixture in
//! `tests/fixtures/<provider>/`: the request is built as the provider sends
//! it (headers, signature), run through verify → normalize → score, and the
//! CloudEvent JSON is snapshotted without its payload.
//!
//! Values that change per delivery are replaced by where they came from:
//! `[minted]` for an id the daemon minted, `[X-GitHub-Delivery]` for one
//! taken from that header, `[received]` for a time that is the receive time.
//! A provider-supplied id or time (Stripe's `evt_…`, Kiket's `timestamp`)
//! shows as itself, so the snapshot also pins *which* one the adapter used.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use insta::internals::Content;
use rstest::rstest;
use serde_json::Value;

use kitedesk_core::{Headers, Inbound, NormalizeError, ProviderKind, providers};

use crate::support::{Request, ingest, request_for, stem};

fn snapshot(dir: &str, path: &Path) {
    let received = Utc::now();
    let minted = uuid::Uuid::now_v7().to_string();
    let req = request_for(dir, path, received);
    let name = format!("{dir}__{}", stem(path));
    let event = ingest(&req, received, &minted)
        .unwrap_or_else(|e| panic!("{name}: a real payload must normalize, got {e}"));
    let json = event
        .to_json()
        .expect("a normalized event is a valid CloudEvent");

    let body: Value = serde_json::from_slice(&req.body).expect("fixtures are JSON");
    let original = if stem(path).ends_with(".ce") {
        body["data"].clone()
    } else {
        body
    };
    assert_eq!(
        json["data"], original,
        "{name}: data must be the original payload, unmodified (Kite's contract)"
    );
    assert_eq!(
        json["kiteverified"],
        Value::Bool(!req.secrets.is_empty()),
        "{name}: signed exactly as the provider signs, so it must verify: {}",
        json["kiteverifyreason"]
    );
    let summary = &event.summary;
    assert!(
        !summary.is_empty() && !summary.contains('\n') && summary.chars().count() <= 160,
        "{name}: a summary is one notification line, got {summary:?}"
    );
    assert!(
        !summary.contains("  ") && summary.trim() == summary,
        "{name}: no doubled or dangling spaces from empty parts, got {summary:?}"
    );
    let stored = event.original_headers.get("authorization");
    assert_eq!(
        stored, None,
        "{name}: the hook token must never be stored with the event"
    );

    let ids = provenance(&req, &minted);
    let headers_volatile = req.volatile.clone();
    // cloudevents-sdk keeps extensions in a HashMap: sort keys so the
    // snapshot does not depend on hash order.
    let mut settings = insta::Settings::clone_current();
    settings.set_sort_maps(true);
    let _guard = settings.bind_to_scope();
    insta::assert_json_snapshot!(name, json, {
        ".data" => "[original payload]",
        ".id" => insta::dynamic_redaction(move |v, _| {
            let s = v.as_str().unwrap_or_default();
            ids.iter()
                .find(|(value, _)| value == s)
                .map_or_else(|| s.to_string(), |(_, label)| label.clone())
        }),
        ".time" => insta::dynamic_redaction(move |v, _| {
            let s = v.as_str().unwrap_or_default().to_string();
            match DateTime::parse_from_rfc3339(&s) {
                Ok(t) if t == received => "[received]".to_string(),
                _ => s,
            }
        }),
        ".kiteoriginalheaders" => insta::dynamic_redaction(move |v, _| {
            header_lines(v.as_str().unwrap_or_default(), &headers_volatile)
        }),
    });
}

/// Known per-delivery values and the label that says where they came from.
fn provenance(req: &Request, minted: &str) -> Vec<(String, String)> {
    let mut out = vec![(minted.to_string(), "[minted]".to_string())];
    out.extend(
        req.volatile
            .iter()
            .map(|(name, value)| (value.clone(), format!("[{name}]"))),
    );
    out
}

/// The stored-headers extension (a JSON object in a string) as sorted
/// `Name: value` lines, per-delivery values masked.
fn header_lines(raw: &str, volatile: &[(String, String)]) -> Content {
    let map: serde_json::Map<String, Value> =
        serde_json::from_str(raw).expect("kiteoriginalheaders holds a JSON object");
    let mut lines: Vec<String> = map
        .iter()
        .map(|(k, v)| {
            let v = v.as_str().unwrap_or_default();
            if volatile
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case(k))
            {
                format!("{k}: [per delivery]")
            } else {
                format!("{k}: {v}")
            }
        })
        .collect();
    lines.sort();
    Content::Seq(lines.into_iter().map(Content::from).collect())
}

#[rstest]
fn github(#[files("tests/fixtures/github/*.json")] path: PathBuf) {
    snapshot("github", &path);
}

#[rstest]
fn stripe(#[files("tests/fixtures/stripe/*.json")] path: PathBuf) {
    snapshot("stripe", &path);
}

#[rstest]
fn paperclip(#[files("tests/fixtures/paperclip/*.json")] path: PathBuf) {
    snapshot("paperclip", &path);
}

#[rstest]
fn kiket(#[files("tests/fixtures/kiket/*.json")] path: PathBuf) {
    snapshot("kiket", &path);
}

#[rstest]
fn standard_webhooks(#[files("tests/fixtures/standard-webhooks/*.json")] path: PathBuf) {
    snapshot("standard-webhooks", &path);
}

#[rstest]
fn generic(#[files("tests/fixtures/generic/*.json")] path: PathBuf) {
    snapshot("generic", &path);
}

fn inbound_result(
    kind: ProviderKind,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<kitedesk_core::Normalized, NormalizeError> {
    let headers: Headers = headers.iter().copied().collect();
    providers::normalize(
        kind,
        &Inbound {
            source_name: "src",
            headers: &headers,
            body,
            received: DateTime::from_timestamp(1_700_000_000, 0).expect("valid"),
            mint_id: kitedesk_core::MintId(&|| "minted-1".to_string()),
        },
    )
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const CE: (&str, &str) = ("Content-Type", "application/cloudevents+json");

#[rstest]
#[case::empty_body(ProviderKind::Generic, &[JSON], b" \n", NormalizeError::EmptyBody)]
#[case::invalid_utf8(ProviderKind::Generic, &[JSON], b"{\"a\":\"\xff\"}", NormalizeError::InvalidUtf8 { valid_up_to: 6 })]
#[case::github_without_event_header(ProviderKind::Github, &[JSON], b"{}", NormalizeError::MissingHeader("X-GitHub-Event"))]
#[case::github_blank_event_header(ProviderKind::Github, &[JSON, ("X-GitHub-Event", "  ")], b"{}", NormalizeError::MissingHeader("X-GitHub-Event"))]
#[case::stripe_without_type(ProviderKind::Stripe, &[JSON], br#"{"id":"evt_1"}"#, NormalizeError::MissingField { field: "type", expected: "string" })]
#[case::stripe_numeric_id(ProviderKind::Stripe, &[JSON], br#"{"id":1,"type":"x"}"#, NormalizeError::MissingField { field: "id", expected: "string" })]
#[case::kiket_without_event(ProviderKind::Kiket, &[JSON], br#"{"id":"e","payload":{}}"#, NormalizeError::MissingField { field: "event", expected: "string" })]
#[case::paperclip_without_event(ProviderKind::Paperclip, &[JSON], br#"{"data":{}}"#, NormalizeError::MissingField { field: "event (or the x-paperclip-event header)", expected: "string" })]
#[case::cloudevent_empty_source(ProviderKind::Generic, &[CE], br#"{"specversion":"1.0","id":"1","source":"","type":"t"}"#, NormalizeError::InvalidCloudEvent("source must be a non-empty string".into()))]
#[case::cloudevent_empty_id(ProviderKind::Github, &[CE], br#"{"specversion":"1.0","id":"","source":"s","type":"t"}"#, NormalizeError::InvalidCloudEvent("id must be a non-empty string".into()))]
fn bodies_that_cannot_become_events(
    #[case] kind: ProviderKind,
    #[case] headers: &[(&str, &str)],
    #[case] body: &[u8],
    #[case] want: NormalizeError,
) {
    assert_eq!(
        inbound_result(kind, headers, body),
        Err(want),
        "the ingress answers 4xx with this reason instead of storing a broken event"
    );
}

#[test]
fn invalid_json_says_where() {
    let err = inbound_result(
        ProviderKind::Generic,
        &[JSON],
        b"{\n  \"a\": 1,\n  \"b\": ]\n}",
    )
    .expect_err("not JSON");
    assert!(
        matches!(err, NormalizeError::InvalidJson { line: 3, .. }),
        "the error points at the line, got {err:?}"
    );
    assert_eq!(err.code(), "invalid_json");
}

#[test]
fn a_cloudevent_body_wins_over_the_provider_kind() {
    let n = inbound_result(
        ProviderKind::Github,
        &[CE],
        br#"{"specversion":"1.0","id":"ce-1","source":"https://sdk.example","type":"com.acme.x","data":{"k":1}}"#,
    )
    .expect("a structured CloudEvent from an SDK is accepted on any source");
    assert_eq!((n.id.as_str(), n.ty.as_str()), ("ce-1", "com.acme.x"));
    assert_eq!(
        n.data,
        serde_json::json!({"k": 1}),
        "data is the CloudEvent's data"
    );
    assert_eq!(
        n.summary, "com.acme.x",
        "no kitesummary and no text in data: the type, as the Kite CLI's compact mode shows"
    );
}

#[test]
fn paperclip_reads_the_event_from_the_body_without_the_header() {
    let n = inbound_result(
        ProviderKind::Paperclip,
        &[JSON],
        br#"{"event":"issue.assigned","companyId":"co_1","data":{"issue":{"identifier":"ACME-1","title":"Fix it"},"agent":{"name":"CodeBot"}}}"#,
    )
    .expect("the body's event field is enough");
    assert_eq!(n.ty, "com.paperclip.issue.assigned");
    assert_eq!(n.source, "https://paperclip.ing/company/co_1");
    assert_eq!(n.id, "minted-1", "no delivery id anywhere: the minted one");
    assert_eq!(n.summary, "ACME-1 \"Fix it\" assigned to CodeBot");
}

#[test]
fn unknown_paperclip_and_github_events_still_read_as_sentences() {
    let p = inbound_result(
        ProviderKind::Paperclip,
        &[JSON, ("X-Paperclip-Event", "agent.paused")],
        br#"{"data":{"agent":{"name":"CodeBot"}}}"#,
    )
    .expect("normalizes");
    assert_eq!(p.summary, "Paperclip agent.paused for CodeBot");
    let g = inbound_result(
        ProviderKind::Github,
        &[JSON, ("X-GitHub-Event", "deployment_status")],
        br#"{"action":"created","sender":{"login":"octocat"},"repository":{"full_name":"acme/api","html_url":"https://github.com/acme/api"}}"#,
    )
    .expect("normalizes");
    assert_eq!(g.summary, "octocat created deployment status in acme/api");
    assert_eq!(g.source, "https://github.com/acme/api");
}

#[test]
fn github_push_summaries_count_commits() {
    let push = |commits: usize, extra: &str| {
        let commits: Vec<String> = (0..commits)
            .map(|i| format!(r#"{{"id":"c{i}"}}"#))
            .collect();
        let body = format!(
            r#"{{"ref":"refs/heads/main","pusher":{{"name":"alice"}},"commits":[{}],"repository":{{"full_name":"acme/api"}}{extra}}}"#,
            commits.join(",")
        );
        inbound_result(
            ProviderKind::Github,
            &[JSON, ("X-GitHub-Event", "push")],
            body.as_bytes(),
        )
        .expect("normalizes")
        .summary
    };
    assert_eq!(
        push(2, ""),
        "alice pushed 2 commits to main in acme/api",
        "the Kite docs' example"
    );
    assert_eq!(push(1, ""), "alice pushed 1 commit to main in acme/api");
    assert_eq!(
        push(3, r#","forced":true"#),
        "alice force-pushed 3 commits to main in acme/api"
    );
    assert_eq!(
        push(0, r#","created":true"#),
        "alice pushed new branch main in acme/api"
    );
}

#[test]
fn payload_text_cannot_break_the_summary_line() {
    let n = inbound_result(
        ProviderKind::Github,
        &[JSON, ("X-GitHub-Event", "issues")],
        "{\"action\":\"opened\",\"sender\":{\"login\":\"mallory\\n\"},\"issue\":{\"number\":1,\
          \"title\":\"Fix\\u001b[2J\\u0007 it\\r\\nplease\"},\"repository\":{\"full_name\":\"acme/api\"}}"
            .as_bytes(),
    )
    .expect("normalizes");
    assert_eq!(
        n.summary, "mallory opened issue #1 \"Fix [2J it please\" in acme/api",
        "newlines and terminal escapes from a payload are folded into spaces"
    );
    let long = format!(r#"{{"message":"{}"}}"#, "word ".repeat(100));
    let g = inbound_result(ProviderKind::Generic, &[JSON], long.as_bytes()).expect("normalizes");
    assert!(
        g.summary.chars().count() <= providers::SUMMARY_MAX_CHARS && g.summary.ends_with('…'),
        "a summary is capped and says it was cut: {:?}",
        g.summary
    );
}

/// Found by `cargo fuzz run normalize`: a request that repeats a header
/// lost all but the last value in `kiteoriginalheaders`.
#[test]
fn fuzz_regression_repeated_headers_survive_the_cloudevent() {
    let headers: Headers = [
        ("Content-Type", "application/json"),
        ("Via", "1.1 kite-relay"),
        ("X-Custom", "a"),
        ("via", "1.1 tunnel"),
    ]
    .into_iter()
    .collect();
    let ev = kitedesk_core::KiteEvent {
        id: "1".into(),
        source: "https://demo".into(),
        ty: "com.demo.event".into(),
        time: DateTime::from_timestamp(1_700_000_000, 0).expect("valid"),
        source_name: "demo".into(),
        summary: "demo event".into(),
        data: serde_json::json!({}).into(),
        seq: None,
        original_headers: headers.for_storage(),
        verification: kitedesk_core::Verification::unverified("test"),
        importance: kitedesk_core::Importance::Normal,
        importance_reason: String::new(),
    };
    let json = ev.to_json().expect("valid");
    let ce: cloudevents::Event = serde_json::from_value(json).expect("parses");
    let back = kitedesk_core::KiteEvent::from_cloudevent(&ce).expect("reads");
    assert_eq!(
        back.original_headers.get("via"),
        Some("1.1 kite-relay, 1.1 tunnel"),
        "both hops are kept, joined as HTTP allows"
    );
    assert_eq!(back.original_headers.len(), 3);
}

#[test]
fn an_id_is_minted_only_for_a_request_that_names_none() {
    let minted = std::cell::Cell::new(0);
    let mint = || {
        minted.set(minted.get() + 1);
        format!("minted-{}", minted.get())
    };
    let headers: Headers = [
        ("X-GitHub-Event", "ping"),
        ("X-GitHub-Delivery", "d-42"),
        JSON,
    ]
    .into_iter()
    .collect();
    let normalize = |headers: &Headers| {
        providers::normalize(
            ProviderKind::Github,
            &Inbound {
                source_name: "github",
                headers,
                body: br#"{"zen":"Keep it logically awesome.","hook_id":1}"#,
                received: DateTime::from_timestamp(1_700_000_000, 0).expect("valid"),
                mint_id: kitedesk_core::MintId(&mint),
            },
        )
        .expect("a ping normalizes")
    };
    assert_eq!(normalize(&headers).id, "d-42");
    assert_eq!(
        minted.get(),
        0,
        "a delivery id of the sender's: nothing minted"
    );
    let without: Headers = [("X-GitHub-Event", "ping"), JSON].into_iter().collect();
    assert_eq!(normalize(&without).id, "minted-1");
    assert_eq!(minted.get(), 1);
}
