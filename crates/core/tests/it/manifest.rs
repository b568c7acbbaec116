//! `kite.json` from untrusted text: never a panic, always a path and a
//! reason.

use kitedesk_core::Manifest;
use kitedesk_core::manifest::{DedupStrategy, SinkConfig, parse_duration};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Values of the shapes a manifest holds, so generated documents get past
/// the first type check and reach the validation and nested parsers.
fn manifest_value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "[a-z0-9_*./{}\\[\\]!?-]{0,12}".prop_map(Value::String),
        "[0-9_]{0,8}[smhdx ]?".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    let keys = prop::sample::select(vec![
        "name",
        "sources",
        "type",
        "verify",
        "secretEnv",
        "scheme",
        "toleranceSecs",
        "allowUnsigned",
        "subscriptions",
        "source",
        "filters",
        "drop",
        "keep_only",
        "enrichment",
        "match",
        "run",
        "timeout",
        "scoring",
        "rules",
        "paths",
        "importance",
        "reason",
        "dedup",
        "window",
        "key",
        "strategy",
        "default_importance",
        "queue",
        "retention",
        "max_size",
        "sink",
        "json",
        "target",
        "path",
        "command",
        "batch",
        "ingress",
        "maxBodyBytes",
        "actor",
        "ref",
    ]);
    scalar.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Manifest::from_json(&bytes);
    }

    #[test]
    fn arbitrary_text_with_comments_never_panics(text in "(\\PC|[\"/\\\\\n{}])*") {
        let _ = Manifest::from_json(text.as_bytes());
    }

    #[test]
    fn manifest_shaped_json_never_panics_and_errors_have_a_path(v in manifest_value()) {
        let text = serde_json::to_string(&v).expect("serializes");
        if let Err(e) = Manifest::from_json(text.as_bytes()) {
            prop_assert!(!e.path.is_empty(), "an error always names where: {}", e);
        }
    }

    #[test]
    fn durations_parse_or_refuse(s in "\\PC{0,24}") {
        let _ = parse_duration(&s);
    }
}

#[test]
fn durations_accept_kite_units_and_refuse_overflow() {
    let secs = |s: &str| parse_duration(s).map(|d| d.as_secs());
    assert_eq!(secs("30s"), Some(30));
    assert_eq!(secs("5m"), Some(300));
    assert_eq!(secs(" 7d "), Some(604_800));
    assert_eq!(secs("7 days"), None, "only <N><unit>, as the Kite CLI");
    assert_eq!(secs("m"), None, "a unit needs a number");
    assert_eq!(
        secs("18446744073709551615d"),
        None,
        "overflow is refused, not wrapped"
    );
}

#[test]
fn secret_env_takes_one_name_or_a_rotation_list() {
    let m = Manifest::from_json(
        br#"{"sources": [
            {"name": "gh", "type": "github", "verify": {"secretEnv": "GH_SECRET"}},
            {"name": "st", "type": "stripe", "verify": {"secretEnv": ["ST_NEW", "ST_OLD"], "toleranceSecs": 600}}
        ]}"#,
    )
    .expect("valid");
    assert_eq!(m.sources[0].verify.secret_env, ["GH_SECRET"]);
    assert_eq!(
        m.sources[1].verify.secret_env,
        ["ST_NEW", "ST_OLD"],
        "newest first"
    );
    assert_eq!(m.sources[1].verify.tolerance(), 600);
    assert_eq!(
        m.sources[0].verify.tolerance(),
        300,
        "the providers' 5-minute default"
    );
}

#[test]
fn kite_sinks_and_dedup_parse() {
    let m = Manifest::from_json(
        json!({
            "name": "x",
            "sink": {"type": "socket", "path": "/tmp/kite.sock"},
            "scoring": {"dedup": {"window": "10m", "key": ["source", "ref"], "strategy": "keep_first"}}
        })
        .to_string()
        .as_bytes(),
    )
    .expect("valid");
    assert_eq!(
        m.sink,
        Some(SinkConfig::Socket {
            path: "/tmp/kite.sock".into()
        })
    );
    let dedup = m.scoring.dedup.expect("dedup block");
    assert_eq!(dedup.strategy, DedupStrategy::KeepFirst);
    assert_eq!(dedup.window.as_secs(), 600);
}

#[test]
fn paperclip_sink_from_kite_0_2_1_is_refused_with_a_path() {
    let e = Manifest::from_json(
        br#"{"sink": {"type": "paperclip", "api_url": "https://x", "company_id": "c"}}"#,
    )
    .expect_err("Kite 0.2.2 removed the paperclip sink; so do we");
    assert!(
        e.path.starts_with("sink") && e.problem.contains("paperclip"),
        "{e}"
    );
}

#[test]
fn comment_stripping_respects_escaped_quotes() {
    let m = Manifest::from_json(b"{\n \"name\": \"a \\\" // not a comment\" // a comment\n}")
        .expect("the // inside the string survives");
    assert_eq!(m.name.as_deref(), Some("a \" // not a comment"));
}

#[test]
fn not_utf8_is_an_error_on_the_file() {
    let e = Manifest::from_json(b"{\"name\": \"\xff\"}").expect_err("invalid UTF-8");
    assert_eq!(e.path, "(file)");
}

/// Found by `cargo fuzz run manifest`: a syntax error under a top-level key
/// named "" produced an error with an empty path.
#[test]
fn fuzz_regression_error_under_empty_key_names_the_root() {
    let e = Manifest::from_json(br#"{"":"*\:"}"#).expect_err("invalid escape");
    assert_eq!(e.path, "(root)", "an error always names where: {e}");
}
