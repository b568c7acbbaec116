//! `kitedesk stream`: the Kite CLI's `kite stream`, straight from a relay
//! (no daemon, no history): one line per event on stdout.
//!
//! Output, as the Kite CLI prints it (flushed after every event):
//! * default: `[HH:MM:SS] #<seq> <type>  <summary>` (local time, two spaces);
//! * `--compact`: the summary, or the type when there is none;
//! * `--json`: the CloudEvent as one line of JSON (wins over `--compact`).
//!
//! Better than the Kite CLI: `--importance` scores events (built-in
//! defaults: payment failures and security events are critical…) and keeps
//! those at or above the level instead of dropping everything;
//! `--event-type` is a glob; `--source` matches the source name exactly;
//! `--exec` has a timeout and a failing command never stalls the stream;
//! `cursor_expired` is reported; reconnects use jitter. Progress and
//! connection lines go to stderr.

use std::io::Write as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Local, Utc};
use clap::Args;
use kitedesk_core::glob::Glob;
use kitedesk_core::importance::{self, Facts};
use kitedesk_core::manifest::relay_ws_url;
use kitedesk_core::{Importance, KiteEvent, Manifest, providers};
use kitedesk_sinks::{Delivery, ExecCommand, ExecSink, ExecSinkConfig};
use kitedesk_stream::{Incoming, Link, LinkConfig, State, Token};

/// Where a Kite CLI looks for a local relay.
const DEFAULT_WS_URL: &str = "ws://localhost:7700/ws";

#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Relay WebSocket URL (default: $KITE_WS_URL, else ws://localhost:7700/ws).
    #[arg(long, value_name = "URL")]
    relay: Option<String>,
    /// Team id (default: $KITE_TEAM_ID or $KITEDESK_RELAY_TEAM).
    #[arg(long, value_name = "ID")]
    team: Option<String>,
    /// Environment variable with the API token (default: KITEDESK_RELAY_TOKEN, then KITE_API_KEY).
    #[arg(long, value_name = "VAR")]
    token_env: Option<String>,
    /// Only events from this source (the name, e.g. github).
    #[arg(long)]
    source: Option<String>,
    /// Only events whose type matches this glob (e.g. 'com.github.pull_request*').
    #[arg(long, value_name = "GLOB")]
    event_type: Option<String>,
    /// Only events at or above this importance (low, normal, high, critical).
    #[arg(long, value_name = "LEVEL")]
    importance: Option<Importance>,
    /// Print each event as one line of CloudEvent JSON.
    #[arg(long)]
    json: bool,
    /// Print only the summary.
    #[arg(long)]
    compact: bool,
    /// Run this command per event (sh -c, CloudEvent JSON on stdin, KITE_* variables); no stdout lines.
    #[arg(long, value_name = "CMD")]
    exec: Option<String>,
    /// Timeout for --exec.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::relay_links::parse_duration)]
    exec_timeout: Duration,
    /// Stable client id: the relay resumes from its cursor after a restart.
    #[arg(long)]
    client_id: Option<String>,
    /// Scoring rules (kite.json `scoring`) for --importance. Default: built-in defaults.
    #[arg(long)]
    manifest: Option<std::path::PathBuf>,
}

/// Decides what is shown.
#[derive(Debug)]
pub struct Filter {
    source: Option<String>,
    event_type: Option<Glob>,
    /// A type without glob characters matches as a substring, as in Kite.
    event_substring: Option<String>,
    importance: Option<Importance>,
    manifest: Manifest,
}

impl Filter {
    fn new(args: &StreamArgs, manifest: Manifest) -> anyhow::Result<Self> {
        let (event_type, event_substring) = match &args.event_type {
            Some(t) if t.contains(['*', '?', '[', '{']) => {
                (Some(Glob::new(t).context("--event-type")?), None)
            }
            Some(t) => (None, Some(t.clone())),
            None => (None, None),
        };
        Ok(Self {
            source: args.source.clone(),
            event_type,
            event_substring,
            importance: args.importance,
            manifest,
        })
    }

    /// Server scopes for this filter. A glob type is filtered here only
    /// (a Kite relay's `type:` scope is a substring match).
    fn scopes(&self) -> Vec<String> {
        let mut s = Vec::new();
        if let Some(src) = &self.source {
            s.push(format!("source:{src}"));
        }
        if let Some(t) = &self.event_substring {
            s.push(format!("type:{t}"));
        }
        if s.is_empty() {
            s.push("*".into());
        }
        s
    }

    /// Score the event and say whether it is shown.
    pub fn keep(&self, e: &mut KiteEvent) -> bool {
        if let Some(src) = &self.source
            && e.source_name != *src
        {
            return false;
        }
        if self.event_type.as_ref().is_some_and(|g| !g.is_match(&e.ty))
            || self
                .event_substring
                .as_ref()
                .is_some_and(|t| !e.ty.contains(t.as_str()))
        {
            return false;
        }
        let data = e.data.doc();
        let changed = if e.ty == "com.github.push" {
            providers::github_changed_files(&data)
        } else {
            Vec::new()
        };
        let score = importance::score(
            &self.manifest.scoring,
            &Facts {
                source_name: &e.source_name,
                ty: &e.ty,
                data: &data,
                changed_files: &changed,
            },
        );
        drop(data);
        e.importance = score.importance;
        e.importance_reason = score.reason;
        self.importance.is_none_or(|min| e.importance >= min)
    }
}

/// `[HH:MM:SS] #<seq> <type>  <summary>` in local time.
/// The summary is empty when the event has none, as in the Kite CLI.
pub fn pretty_line(
    e: &KiteEvent,
    raw: &serde_json::Value,
    seq: u64,
    at: DateTime<Local>,
) -> String {
    format!(
        "[{}] #{} {}  {}",
        at.format("%H:%M:%S"),
        e.seq.unwrap_or(seq),
        e.ty,
        raw.get("kitesummary")
            .and_then(|s| s.as_str())
            .unwrap_or_default()
    )
}

/// The summary, or the type when there is none.
pub fn compact_line(e: &KiteEvent, raw: &serde_json::Value) -> String {
    match raw.get("kitesummary").and_then(|s| s.as_str()) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => e.ty.clone(),
    }
}

fn parse(incoming: &Incoming) -> anyhow::Result<KiteEvent> {
    let ce: cloudevents::Event = serde_json::from_str(incoming.event.get())?;
    let mut e = KiteEvent::from_cloudevent(&ce)?;
    if e.seq.is_none() {
        e.seq = Some(incoming.seq);
    }
    Ok(e)
}

pub async fn run(args: StreamArgs) -> anyhow::Result<()> {
    let url = args
        .relay
        .clone()
        .or_else(|| std::env::var("KITE_WS_URL").ok())
        .unwrap_or_else(|| DEFAULT_WS_URL.to_string());
    let url = relay_ws_url(&url).with_context(|| format!("{url:?} is not a relay URL"))?;
    let team = args
        .team
        .clone()
        .or_else(|| std::env::var("KITE_TEAM_ID").ok())
        .or_else(|| std::env::var("KITEDESK_RELAY_TEAM").ok())
        .context("no team: pass --team or set KITE_TEAM_ID")?;
    let token = match &args.token_env {
        Some(var) => std::env::var(var).with_context(|| format!("{var} is not set"))?,
        None => std::env::var("KITEDESK_RELAY_TOKEN")
            .or_else(|_| std::env::var("KITE_API_KEY"))
            .context("no API token: set KITEDESK_RELAY_TOKEN (or KITE_API_KEY)")?,
    };
    let manifest = match &args.manifest {
        Some(p) => kitedesk_daemon::config::load_manifest(Some(p))?,
        None => Manifest::default(),
    };
    let filter = Filter::new(&args, manifest)?;
    let exec = match &args.exec {
        Some(cmd) => {
            let mut c = ExecSinkConfig::new(ExecCommand::Shell(cmd.clone()));
            c.timeout = args.exec_timeout;
            Some(ExecSink::new(c)?)
        }
        None => None,
    };

    let mut cfg = LinkConfig::new(url.clone(), team.trim(), Token::new(token.trim()));
    cfg.scopes = filter.scopes();
    cfg.client_id = args.client_id.clone();
    cfg.buffer = 256;
    eprintln!("Connecting to {}...", cfg.display_url());
    let (link, mut events) = Link::spawn(cfg, None);
    let committer = link.committer();
    let mut status = link.watch();
    let mut stdout = std::io::stdout().lock();
    let stop = crate::serve::shutdown_signal();
    tokio::pin!(stop);
    let result: anyhow::Result<()> = loop {
        tokio::select! {
            _ = &mut stop => break Ok(()),
            changed = status.changed() => {
                if changed.is_err() { break Ok(()); }
                let s = status.borrow_and_update().clone();
                match s.state {
                    State::Connected => eprintln!("Connected (last_seq: {})", committer.last().map_or("-".into(), |s| s.to_string())),
                    State::CursorExpired => {
                        if let Some(g) = s.gap {
                            eprintln!("Warning: the relay no longer had events {} to {} (cursor expired); resuming after them", g.from, g.to);
                        }
                    }
                    State::Reconnecting => eprintln!("Disconnected: {}", s.error.unwrap_or_default()),
                    State::Offline => {
                        let err = s.error.unwrap_or_default();
                        if err.contains("(4001)") {
                            break Err(anyhow::anyhow!("{err}"));
                        }
                        eprintln!("Connection failed: {err}");
                    }
                }
            }
            incoming = events.recv() => {
                let Some(incoming) = incoming else { break Ok(()) };
                let seq = incoming.seq;
                match parse(&incoming) {
                    Err(e) => eprintln!("#{seq}: skipped, not a CloudEvent: {e}"),
                    Ok(mut e) => {
                        if filter.keep(&mut e) {
                            if let Some(exec) = &exec {
                                let attempt = exec.deliver(&Delivery::new(e.clone(), e.data.value().to_string())).await;
                                if let Some(stdout_text) = &attempt.stdout
                                    && !stdout_text.is_empty()
                                {
                                    let _ = stdout.write_all(stdout_text.as_bytes());
                                    let _ = stdout.flush();
                                }
                                if let Some(f) = attempt.failure() {
                                    eprintln!("#{seq}: --exec failed: {f}{}", attempt.stderr.as_ref().map(|s| format!(": {}", s.to_text_lossy().trim())).unwrap_or_default());
                                }
                            } else {
                                let raw: serde_json::Value = serde_json::from_str(incoming.event.get())?;
                                let line = if args.json {
                                    serde_json::to_string(&raw)?
                                } else if args.compact {
                                    compact_line(&e, &raw)
                                } else {
                                    pretty_line(&e, &raw, seq, Utc::now().with_timezone(&Local))
                                };
                                writeln!(stdout, "{line}")?;
                                stdout.flush()?;
                            }
                        }
                    }
                }
                // Shown, filtered or failed: the stream moves on.
                committer.commit(seq);
            }
        }
    };
    drop(stdout);
    link.shutdown().await;
    if let Err(e) = result {
        bail!("{e}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ty: &str, summary: &str) -> KiteEvent {
        let ce: cloudevents::Event = serde_json::from_value(serde_json::json!({
            "specversion": "1.0", "id": "1", "source": "s", "type": ty, "kitesummary": summary, "kiteseq": 42
        }))
        .unwrap();
        KiteEvent::from_cloudevent(&ce).unwrap()
    }

    #[test]
    fn pretty_has_two_spaces_before_the_summary() {
        let at = DateTime::parse_from_rfc3339("2026-11-24T09:05:07+00:00")
            .unwrap()
            .with_timezone(&Local);
        let raw = serde_json::json!({"kitesummary": "alice pushed"});
        let line = pretty_line(&ev("com.github.push", "alice pushed"), &raw, 7, at);
        assert_eq!(
            line,
            format!(
                "[{}] #42 com.github.push  alice pushed",
                at.format("%H:%M:%S")
            )
        );
    }

    #[test]
    fn importance_filters_instead_of_dropping_everything() {
        let args = StreamArgs::try_parse_from_for_test(&["--importance", "high"]);
        let f = Filter::new(&args, Manifest::default()).unwrap();
        assert!(f.keep(&mut ev("com.stripe.payment_intent.payment_failed", "x")));
        assert!(!f.keep(&mut ev("com.github.push", "y")));
    }

    impl StreamArgs {
        fn try_parse_from_for_test(a: &[&str]) -> StreamArgs {
            #[derive(clap::Parser)]
            struct W {
                #[command(flatten)]
                s: StreamArgs,
            }
            let mut v = vec!["t"];
            v.extend_from_slice(a);
            <W as clap::Parser>::try_parse_from(v).unwrap().s
        }
    }
}
