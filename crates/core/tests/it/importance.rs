//! Importance on real payloads: `kite.json` scoring rules (first match
//! wins, `paths` need a touched file), then the built-in defaults, then
//! `default_importance`.

use kitedesk_core::importance::{self, Facts, Score};
use kitedesk_core::{Doc, Importance, Manifest, providers};
use rstest::rstest;
use serde_json::Value;

use crate::support::{provider_of, read_fixture};

const RULES: &str = r#"{
  "scoring": {
    "default_importance": "low",
    "rules": [
      {"match": {"type": "com.github.push", "ref": "refs/heads/*"}, "paths": ["**/*.md"],
       "importance": "low", "reason": "docs-only push"},
      {"match": {"type": "com.github.push", "ref": "refs/heads/master"}, "importance": "high"},
      {"match": {"type": "com.github.ping"}, "importance": "normal", "reason": "we like pings"},
      {"match": {"source": "stripe", "type": "com.stripe.customer.subscription.*"}, "importance": "high",
       "reason": "revenue change"},
      {"match": {"actor": "*\\[bot\\]"}, "importance": "low", "reason": "bot"}
    ]
  }
}"#;

fn score_fixture(manifest: &str, dir: &str, file: &str) -> Score {
    let m = Manifest::from_json(manifest.as_bytes()).expect("test manifest is valid");
    let data: Value =
        serde_json::from_slice(&read_fixture(&format!("{dir}/{file}"))).expect("fixtures are JSON");
    let ty = match dir {
        "github" => format!("com.github.{}", file.split('.').next().expect("event name")),
        "stripe" => format!("com.stripe.{}", data["type"].as_str().expect("stripe type")),
        "kiket" => format!("com.kiket.{}", data["event"].as_str().expect("kiket event")),
        other => panic!("no type rule for {other}"),
    };
    let data = Doc::from(&data);
    let files = providers::github_changed_files(&data);
    importance::score(
        &m.scoring,
        &Facts {
            source_name: provider_of(dir).1,
            ty: &ty,
            data: &data,
            changed_files: &files,
        },
    )
}

#[rstest]
// The push touched only README.md: the docs rule comes first and wins.
#[case::paths_rule_first(
    "github",
    "push.branch-created.json",
    Importance::Low,
    "docs-only push"
)]
// A tag push has no refs/heads ref: neither push rule matches, and pushes
// have no built-in, so default_importance applies.
#[case::tag_push_falls_to_default(
    "github",
    "push.tag-created.json",
    Importance::Low,
    "default importance"
)]
// A rule overrides the built-in "low" for pings.
#[case::rule_beats_builtin("github", "ping.repository.json", Importance::Normal, "we like pings")]
// No rule matches: built-ins still apply under a manifest.
#[case::builtin_check_failure(
    "github",
    "check_run.completed-failure.json",
    Importance::High,
    "built-in: check run failed"
)]
#[case::builtin_payment_failure(
    "stripe",
    "invoice.payment_failed.json",
    Importance::Critical,
    "built-in: payment failure"
)]
#[case::glob_on_stripe_type(
    "stripe",
    "customer.subscription.updated.past-due.json",
    Importance::High,
    "revenue change"
)]
#[case::builtin_sla_breach(
    "kiket",
    "workflow.sla_status.json",
    Importance::Critical,
    "built-in: SLA breach"
)]
#[case::nothing_matches(
    "stripe",
    "payment_intent.succeeded.json",
    Importance::Low,
    "default importance"
)]
fn manifest_rules_on_real_payloads(
    #[case] dir: &str,
    #[case] file: &str,
    #[case] importance: Importance,
    #[case] reason: &str,
) {
    let s = score_fixture(RULES, dir, file);
    assert_eq!(
        (s.importance, s.reason.as_str()),
        (importance, reason),
        "{dir}/{file}: rules in order, then built-ins, then default_importance"
    );
}

#[test]
fn unnamed_rules_say_which_rule_and_path_matched() {
    let manifest = r#"{"scoring": {"rules": [
        {"match": {"source": "stripe"}, "paths": ["src/**"], "importance": "critical"},
        {"match": {"ref": "refs/heads/master"}, "paths": ["*.md"], "importance": "high"}
    ]}}"#;
    let s = score_fixture(manifest, "github", "push.branch-created.json");
    assert_eq!(
        (s.importance, s.reason.as_str()),
        (Importance::High, "scoring rule 2 matched path README.md"),
        "rule 1 is for another source; rule 2's glob matches the pushed file"
    );
}

#[test]
fn a_paths_rule_without_changed_files_is_skipped() {
    let manifest = r#"{"scoring": {"rules": [
        {"match": {"type": "com.github.pull_request"}, "paths": ["**"], "importance": "critical"}
    ]}}"#;
    let s = score_fixture(manifest, "github", "pull_request.opened.json");
    assert_eq!(
        s.importance,
        Importance::Normal,
        "a pull_request event carries no changed files, so even `**` cannot match (Kite CLI semantics)"
    );
}

#[test]
fn dbt_run_completed_with_failure_status_is_high() {
    let data: Value = serde_json::json!({"event": "analytics.dbt.run.completed",
        "payload": {"status": "failure", "duration_seconds": 12}});
    let b = importance::builtin("com.kiket.analytics.dbt.run.completed", &Doc::from(&data));
    assert_eq!(
        b,
        Some((Importance::High, "dbt run failed")),
        "the catalog says run.completed reports failures too"
    );
    let ok: Value = serde_json::json!({"payload": {"status": "success"}});
    assert_eq!(
        importance::builtin("com.kiket.analytics.dbt.run.completed", &Doc::from(&ok)),
        None,
        "a successful run takes the default"
    );
}
