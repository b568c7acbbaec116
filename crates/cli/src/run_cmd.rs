//! `kitedesk run --manifest kite.json`: the Kite CLI's `kite run`, from a
//! relay straight to the manifest's sinks.
//!
//! Per event, in the Kite CLI's order: subscriptions (OR of entries, AND
//! within one) → dedup (`scoring.dedup`: window, key, strategy) → filters
//! (`drop` wins over `keep_only`) → enrichment (first matching hook that
//! succeeds; `sh -c`, CloudEvent JSON on stdin, timeout) → scoring (rules,
//! built-in defaults, `default_importance`) → sinks (`routes` to named
//! `sinks`, else `sink`; an exec sink's `importance` is its minimum) → ack.
//!
//! Better than the Kite CLI: a missing dedup key field means "no dedup" for
//! that event instead of an endless redelivery loop; `keep_last` delivers
//! the latest copy's arrival as a fresh window; enrichment output reaches
//! the sink (merged into `data.kite_enrichment` for envelope sinks, and as
//! `X-Kite-Enrichment` for the HTTP proxy, whose body stays the original
//! bytes); the exec threshold applies with or without a `scoring` block;
//! every delivery has a timeout and a failing sink never blocks the stream:
//! it is retried in the background on the 1 s / 4 s / 16 s / 64 s + jitter
//! schedule, then given up with a log line.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{Local, Utc};
use clap::Args;
use kitedesk_core::event::derive_source_name;
use kitedesk_core::importance::{self, Facts};
use kitedesk_core::manifest::{DedupStrategy, MatchRule, SinkConfig};
use kitedesk_core::{Doc, Importance, KiteEvent, Manifest, providers};
use kitedesk_sinks::{Delivery, Schedule, Sink, next_delay};
use kitedesk_stream::{Link, LinkConfig, State, Token};
use tokio::io::AsyncWriteExt as _;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The kite.json manifest.
    #[arg(long)]
    manifest: PathBuf,
    /// Relay WebSocket URL (default: $KITE_WS_URL, else ws://localhost:7700/ws).
    #[arg(long, value_name = "URL")]
    relay: Option<String>,
    /// Team id (default: $KITE_TEAM_ID or $KITEDESK_RELAY_TEAM).
    #[arg(long, value_name = "ID")]
    team: Option<String>,
    /// Stable client id: the relay resumes from its cursor after a restart.
    #[arg(long)]
    client_id: Option<String>,
}

/// One configured destination.
enum Target {
    Stdout { json: bool },
    Forward(Arc<Sink>, Option<Importance>),
}

/// In-memory dedup state (`scoring.dedup`).
#[derive(Debug, Default)]
pub struct Dedup {
    seen: HashMap<String, Instant>,
}

/// The Kite CLI's dedup key (`name=value|…`); `None` when a field has no
/// string value (then the event is not deduplicated).
pub fn dedup_key(fields: &[String], e: &KiteEvent) -> Option<String> {
    let d = e.data.value();
    let str_at = |path: &[&str]| {
        let mut v = d;
        for p in path {
            v = v.get(p)?;
        }
        v.as_str().map(str::to_string)
    };
    let mut parts = Vec::with_capacity(fields.len());
    for f in fields {
        let v = match f.as_str() {
            "source" => Some(derive_source_name(&e.ty).to_string()),
            "type" | "event_type" => Some(e.ty.clone()),
            "event_id" | "id" => Some(e.id.clone()),
            "ref" | "git_ref" => [
                &["ref"][..],
                &["git_ref"],
                &["data", "ref"],
                &["data", "git_ref"],
                &["pull_request", "head", "ref"],
                &["data", "pull_request", "head", "ref"],
            ]
            .iter()
            .find_map(|p| str_at(p)),
            "actor" => [
                &["actor"][..],
                &["sender", "login"],
                &["user", "login"],
                &["author", "login"],
                &["data", "actor"],
                &["data", "sender", "login"],
                &["data", "user", "login"],
                &["data", "author", "login"],
            ]
            .iter()
            .find_map(|p| str_at(p)),
            other => str_at(&[other]).or_else(|| str_at(&["data", other])),
        }?;
        parts.push(format!("{f}={v}"));
    }
    Some(parts.join("|"))
}

impl Dedup {
    /// True when the event is a repeat within the window.
    pub fn is_repeat(
        &mut self,
        key: &str,
        window: Duration,
        strategy: DedupStrategy,
        now: Instant,
    ) -> bool {
        self.seen.retain(|_, t| now.duration_since(*t) <= window);
        match self.seen.get_mut(key) {
            Some(t) => {
                if strategy == DedupStrategy::KeepLast {
                    *t = now;
                }
                true
            }
            None => {
                self.seen.insert(key.to_string(), now);
                false
            }
        }
    }
}

fn facts<'a>(e: &'a KiteEvent, data: &'a Doc<'a>, changed: &'a [String]) -> Facts<'a> {
    Facts {
        source_name: derive_source_name(&e.ty),
        ty: &e.ty,
        data,
        changed_files: changed,
    }
}

/// Subscriptions: OR across entries, AND within one, substring matches on
/// source (URI or type) and type, as in the Kite CLI.
pub fn subscribed(m: &Manifest, e: &KiteEvent) -> bool {
    m.subscriptions.is_empty()
        || m.subscriptions.iter().any(|s| {
            s.source
                .as_ref()
                .is_none_or(|src| e.source.contains(src.as_str()) || e.ty.contains(src.as_str()))
                && s.ty.as_ref().is_none_or(|t| e.ty.contains(t.as_str()))
        })
}

/// `drop` wins; then a non-empty `keep_only` must match.
pub fn filtered_out(m: &Manifest, e: &KiteEvent) -> bool {
    let data = e.data.doc();
    let f = facts(e, &data, &[]);
    let any = |rules: &[MatchRule]| rules.iter().any(|r| r.matches(&f));
    any(&m.filters.drop) || (!m.filters.keep_only.is_empty() && !any(&m.filters.keep_only))
}

/// Run the first matching enrichment hook that succeeds; its JSON output.
async fn enrich(m: &Manifest, e: &KiteEvent, ce_json: &str) -> Option<serde_json::Value> {
    let data = e.data.doc();
    let f = facts(e, &data, &[]);
    for hook in m.enrichment.iter().filter(|h| h.rule.matches(&f)) {
        let limit = hook.timeout.unwrap_or(Duration::from_secs(30));
        let run = async {
            let mut child = tokio::process::Command::new("sh")
                .args(["-c", &hook.run])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .ok()?;
            if let Some(mut stdin) = child.stdin.take() {
                // A hook that does not read its input is fine.
                let _ = stdin.write_all(ce_json.as_bytes()).await;
            }
            let out = child.wait_with_output().await.ok()?;
            if !out.status.success() {
                eprintln!(
                    "enrichment {:?} failed ({}): {}",
                    hook.run,
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return None;
            }
            serde_json::from_slice::<serde_json::Value>(
                String::from_utf8_lossy(&out.stdout).trim().as_bytes(),
            )
            .ok()
        };
        match tokio::time::timeout(limit, run).await {
            Ok(Some(v)) => return Some(v),
            Ok(None) => {}
            Err(_) => eprintln!("enrichment {:?} timed out after {limit:?}", hook.run),
        }
    }
    None
}

fn build_target(config: &SinkConfig) -> anyhow::Result<Target> {
    Ok(match config {
        SinkConfig::Stdout { json } => Target::Stdout { json: *json },
        SinkConfig::Exec { importance, .. } => {
            Target::Forward(Arc::new(Sink::from_manifest(config)?), *importance)
        }
        other => Target::Forward(Arc::new(Sink::from_manifest(other)?), None),
    })
}

/// Deliver in the background on the retry schedule; never blocks the stream.
fn dispatch(sink: Arc<Sink>, delivery: Delivery) {
    tokio::spawn(async move {
        let schedule = Schedule::default();
        let mut attempts = 0u32;
        loop {
            let attempt = sink.deliver(&delivery).await;
            attempts += 1;
            let Some(failure) = attempt.failure() else {
                return;
            };
            match next_delay(attempts, &schedule, rand_sample()) {
                Some(d) => {
                    eprintln!(
                        "{} -> {}: {failure}; retry in {d:.1?}",
                        delivery.event.id,
                        sink.target()
                    );
                    tokio::time::sleep(d).await;
                }
                None => {
                    eprintln!(
                        "{} -> {}: {failure}; giving up after {attempts} attempts",
                        delivery.event.id,
                        sink.target()
                    );
                    return;
                }
            }
        }
    });
}

fn rand_sample() -> f64 {
    rand::random::<f64>()
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.manifest)
        .with_context(|| format!("cannot read {}", args.manifest.display()))?;
    let m = Manifest::from_json(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.manifest.display()))?;
    let name = m.name.clone().unwrap_or_else(|| "(unnamed)".into());
    let default = m.sink.as_ref().map(build_target).transpose()?;
    let named: HashMap<String, Target> = m
        .sinks
        .iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                build_target(v).with_context(|| format!("sinks.{k}"))?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    if default.is_none() && m.routes.is_empty() {
        anyhow::bail!(
            "{}: give a `sink` or `sinks` + `routes`",
            args.manifest.display()
        );
    }
    eprintln!("Loaded manifest: {name}");

    let url = args
        .relay
        .clone()
        .or_else(|| std::env::var("KITE_WS_URL").ok())
        .unwrap_or_else(|| "ws://localhost:7700/ws".into());
    let url = kitedesk_core::manifest::relay_ws_url(&url)
        .with_context(|| format!("{url:?} is not a relay URL"))?;
    let team = args
        .team
        .clone()
        .or_else(|| std::env::var("KITE_TEAM_ID").ok())
        .or_else(|| std::env::var("KITEDESK_RELAY_TEAM").ok())
        .context("no team: pass --team or set KITE_TEAM_ID")?;
    let token = std::env::var("KITEDESK_RELAY_TOKEN")
        .or_else(|_| std::env::var("KITE_API_KEY"))
        .context("no API token: set KITEDESK_RELAY_TOKEN (or KITE_API_KEY)")?;
    let mut cfg = LinkConfig::new(url, team.trim(), Token::new(token.trim()));
    let mut scopes = Vec::new();
    for s in &m.subscriptions {
        scopes.extend(s.source.iter().map(|x| format!("source:{x}")));
        scopes.extend(s.ty.iter().map(|x| format!("type:{x}")));
    }
    if !scopes.is_empty() {
        cfg.scopes = scopes;
    }
    cfg.client_id = args.client_id.clone();
    eprintln!("Connecting to {}...", cfg.display_url());
    let (link, mut events) = Link::spawn(cfg, None);
    let committer = link.committer();
    let mut status = link.watch();
    let mut dedup = Dedup::default();
    let stop = crate::serve::shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            changed = status.changed() => {
                if changed.is_err() { break; }
                let s = status.borrow_and_update().clone();
                match s.state {
                    State::Connected => eprintln!("Connected"),
                    State::CursorExpired => if let Some(g) = s.gap {
                        eprintln!("Warning: the relay no longer had events {} to {} (cursor expired)", g.from, g.to);
                    },
                    State::Reconnecting | State::Offline => eprintln!("Disconnected: {}", s.error.unwrap_or_default()),
                }
            }
            incoming = events.recv() => {
                let Some(incoming) = incoming else { break };
                let seq = incoming.seq;
                let parsed = serde_json::from_str::<cloudevents::Event>(incoming.event.get())
                    .map_err(anyhow::Error::from)
                    .and_then(|ce| KiteEvent::from_cloudevent(&ce).map_err(anyhow::Error::from));
                match parsed {
                    Err(e) => eprintln!("#{seq}: skipped, not a CloudEvent: {e}"),
                    Ok(e) => handle(&m, &default, &named, &mut dedup, e, seq).await?,
                }
                committer.commit(seq);
            }
        }
    }
    link.shutdown().await;
    Ok(())
}

async fn handle(
    m: &Manifest,
    default: &Option<Target>,
    named: &HashMap<String, Target>,
    dedup: &mut Dedup,
    mut e: KiteEvent,
    seq: u64,
) -> anyhow::Result<()> {
    if !subscribed(m, &e) {
        return Ok(());
    }
    if let Some(d) = &m.scoring.dedup
        && let Some(key) = dedup_key(&d.key, &e)
        && dedup.is_repeat(&key, d.window, d.strategy, Instant::now())
    {
        return Ok(());
    }
    if filtered_out(m, &e) {
        return Ok(());
    }
    let ce_json = serde_json::to_string(&e.to_json()?)?;
    let enrichment = enrich(m, &e, &ce_json).await;
    let mut changed: Vec<String> = enrichment
        .as_ref()
        .and_then(|v| v.get("changed_files"))
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let data = e.data.doc();
    if changed.is_empty() && e.ty == "com.github.push" {
        changed = providers::github_changed_files(&data);
    }
    let score = importance::score(&m.scoring, &facts(&e, &data, &changed));
    drop(data);
    e.importance = score.importance;
    e.importance_reason = score.reason;
    let payload = match e.data.value() {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    if let (Some(extra), serde_json::Value::Object(obj)) = (&enrichment, e.data.value()) {
        let mut obj = obj.clone();
        obj.insert("kite_enrichment".into(), extra.clone());
        e.data = serde_json::Value::Object(obj).into();
    }
    let mut delivery = Delivery::new(e.clone(), payload);
    if let Some(extra) = &enrichment {
        delivery
            .headers
            .insert("X-Kite-Enrichment", extra.to_string());
    }
    let data = e.data.doc();
    let f = facts(&e, &data, &changed);
    let routed: Vec<&Target> = m
        .routes
        .iter()
        .filter(|r| r.rule.matches(&f))
        .flat_map(|r| r.sinks.iter().filter_map(|n| named.get(n)))
        .collect();
    let targets: Vec<&Target> = if routed.is_empty() {
        default.iter().collect()
    } else {
        routed
    };
    for t in targets {
        match t {
            Target::Stdout { json } => {
                let mut out = std::io::stdout().lock();
                if *json {
                    writeln!(out, "{}", serde_json::to_string(&e.to_json()?)?)?;
                } else {
                    writeln!(
                        out,
                        "{}",
                        crate::stream_cmd::pretty_line(
                            &e,
                            &serde_json::json!({"kitesummary": e.summary}),
                            seq,
                            Utc::now().with_timezone(&Local)
                        )
                    )?;
                }
                out.flush()?;
            }
            Target::Forward(sink, min) => {
                if min.is_none_or(|min| e.importance >= min) {
                    dispatch(sink.clone(), delivery.clone());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ty: &str, data: serde_json::Value) -> KiteEvent {
        let ce: cloudevents::Event = serde_json::from_value(serde_json::json!({
            "specversion": "1.0", "id": "evt-1", "source": "https://github.com/acme/api", "type": ty, "data": data
        }))
        .unwrap();
        KiteEvent::from_cloudevent(&ce).unwrap()
    }

    #[test]
    fn dedup_key_matches_the_kite_cli_and_tolerates_missing_fields() {
        let e = ev(
            "com.github.push",
            serde_json::json!({"ref": "refs/heads/main", "sender": {"login": "octocat"}}),
        );
        let key = dedup_key(
            &["source", "type", "event_id", "ref", "actor"].map(String::from),
            &e,
        );
        assert_eq!(
            key.as_deref(),
            Some(
                "source=github|type=com.github.push|event_id=evt-1|ref=refs/heads/main|actor=octocat"
            )
        );
        let issue = ev("com.github.issues", serde_json::json!({}));
        assert_eq!(dedup_key(&["ref".into()], &issue), None);
    }

    #[test]
    fn dedup_strategies() {
        let w = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut d = Dedup::default();
        assert!(!d.is_repeat("k", w, DedupStrategy::KeepFirst, t0));
        assert!(d.is_repeat(
            "k",
            w,
            DedupStrategy::KeepFirst,
            t0 + Duration::from_secs(5)
        ));
        assert!(!d.is_repeat(
            "k",
            w,
            DedupStrategy::KeepFirst,
            t0 + Duration::from_secs(11)
        ));
        let mut d = Dedup::default();
        assert!(!d.is_repeat("k", w, DedupStrategy::KeepLast, t0));
        assert!(d.is_repeat("k", w, DedupStrategy::KeepLast, t0 + Duration::from_secs(8)));
        assert!(
            d.is_repeat(
                "k",
                w,
                DedupStrategy::KeepLast,
                t0 + Duration::from_secs(16)
            ),
            "keep_last slides the window"
        );
    }

    #[test]
    fn subscriptions_and_filters() {
        let m = Manifest::from_json(
            br#"{"subscriptions": [{"source": "github", "type": "push"}, {"type": "stripe"}],
                 "filters": {"drop": [{"actor": "*\\[bot\\]"}], "keep_only": [{"type": "com.github.*"}]}}"#,
        )
        .unwrap();
        let push = ev(
            "com.github.push",
            serde_json::json!({"sender": {"login": "alice"}}),
        );
        let bot = ev(
            "com.github.push",
            serde_json::json!({"sender": {"login": "dependabot[bot]"}}),
        );
        let issue = ev("com.github.issues", serde_json::json!({}));
        assert!(subscribed(&m, &push) && !subscribed(&m, &issue));
        assert!(!filtered_out(&m, &push));
        assert!(filtered_out(&m, &bot), "drop wins");
        let stripe = ev("com.stripe.charge.failed", serde_json::json!({}));
        assert!(
            subscribed(&m, &stripe) && filtered_out(&m, &stripe),
            "keep_only"
        );
    }
}
