//! `kitedesk forward`: send stored events to a URL (optionally re-signed
//! with a local secret) or to a configured sink, through the daemon's
//! outbox. Failures keep retrying there; `kitedesk deliveries` shows them.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{Context as _, bail};
use clap::Args;
use kitedesk_daemon::outbox::{Delivery, ForwardResponse};
use serde_json::{Value, json};

use crate::Target;
use crate::deliveries::{client, outcome};

/// Events sent per request: the daemon attempts 8 at once, so a chunk of 8
/// against a hung target ends within one HTTP timeout (10 s), well inside
/// the client's 30 s; and the progress bar moves steadily.
const CHUNK: usize = 8;

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// Events to forward (local ids or CloudEvent ids). Without any, the
    /// filters choose.
    event_ids: Vec<String>,
    /// The URL to POST to.
    #[arg(long, required_unless_present = "sink", conflicts_with = "sink")]
    to: Option<String>,
    /// A configured sink instead of a URL.
    #[arg(long)]
    sink: Option<String>,
    /// Re-sign with this scheme (github, stripe, kiket, standard-webhooks)…
    #[arg(long, requires = "resign_secret_env")]
    resign_scheme: Option<String>,
    /// …and the secret in this environment variable (never on the command line).
    #[arg(long, requires = "resign_scheme")]
    resign_secret_env: Option<String>,
    /// Send the structured CloudEvent instead of the original payload.
    #[arg(long)]
    envelope: bool,
    /// Only these sources (repeat or comma-separate).
    #[arg(long)]
    source: Vec<String>,
    /// CloudEvent type glob, e.g. 'com.github.*'.
    #[arg(long = "type")]
    ty: Option<String>,
    /// Minimum importance: low, normal, high, critical.
    #[arg(long)]
    importance: Option<String>,
    /// Received at or after (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Received before (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Full-text search.
    #[arg(long)]
    q: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
    #[command(flatten)]
    target: Target,
}

impl ForwardArgs {
    fn filter(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = self
            .source
            .iter()
            .map(|s| ("source".to_string(), s.clone()))
            .collect();
        for (k, v) in [
            ("type", &self.ty),
            ("importance", &self.importance),
            ("since", &self.since),
            ("until", &self.until),
            ("q", &self.q),
        ] {
            if let Some(v) = v {
                p.push((k.to_string(), v.clone()));
            }
        }
        p
    }

    fn target_json(&self) -> anyhow::Result<Value> {
        if let Some(sink) = &self.sink {
            return Ok(json!({"sink": sink}));
        }
        let url = self.to.as_deref().context("--to URL or --sink NAME")?;
        let mut t = json!({"url": url, "envelope": self.envelope});
        if let (Some(scheme), Some(var)) = (&self.resign_scheme, &self.resign_secret_env) {
            let secret = std::env::var(var)
                .ok()
                .filter(|s| !s.trim().is_empty())
                .with_context(|| format!("--resign-secret-env: ${var} is not set"))?;
            t["resign"] = json!({"scheme": scheme, "secret": secret.trim()});
        }
        Ok(t)
    }

    fn destination(&self) -> String {
        match (&self.sink, &self.to) {
            (Some(s), _) => format!("sink {s}"),
            (None, Some(u)) => u.clone(),
            (None, None) => "?".into(),
        }
    }
}

pub async fn run(a: ForwardArgs) -> anyhow::Result<()> {
    let c = client(&a.target)?;
    let target = a.target_json()?;
    let filter = a.filter();
    if !a.event_ids.is_empty() && !filter.is_empty() {
        bail!("give event ids or filters (--source, --type, …), not both");
    }
    if a.event_ids.is_empty() && filter.is_empty() {
        bail!("which events? give event ids or filters (--source, --type, --since, …)");
    }

    // Resolve the events to local ids, oldest first.
    let ids: Vec<i64> = if a.event_ids.is_empty() {
        let filter_obj: serde_json::Map<String, Value> = filter
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let dry = c
            .post_json(
                "/api/forward",
                &json!({"filter": filter_obj, "target": target, "dry_run": true}),
            )
            .await?;
        let count = dry["count"].as_u64().unwrap_or(0);
        if count == 0 {
            println!("no events match");
            return Ok(());
        }
        confirm(count, &a)?;
        let mut ids = Vec::new();
        let mut params = filter.clone();
        params.push(("limit".into(), "500".into()));
        loop {
            let page = c.get_query("/api/events", &params).await?;
            for e in page["events"].as_array().into_iter().flatten() {
                ids.push(e["id"].as_i64().context("event without id")?);
            }
            match page["next_cursor"].as_str() {
                Some(cur) => {
                    params.retain(|(k, _)| k != "cursor");
                    params.push(("cursor".into(), cur.to_string()));
                }
                None => break,
            }
        }
        ids.reverse();
        ids
    } else {
        let mut ids = Vec::new();
        for id in &a.event_ids {
            match id.parse::<i64>() {
                Ok(n) => ids.push(n),
                Err(_) => {
                    let e = c.get_query(&format!("/api/events/{id}"), &[]).await;
                    let e = e.with_context(|| format!("event {id:?}"))?;
                    ids.push(e["id"].as_i64().context("event without id")?);
                }
            }
        }
        if ids.len() > 1 {
            confirm(ids.len() as u64, &a)?;
        }
        ids
    };

    let bar = if std::io::stdout().is_terminal() && ids.len() > 1 {
        let bar = indicatif::ProgressBar::new(ids.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} forwarded ({per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut all: Vec<Delivery> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let r: ForwardResponse = serde_json::from_value(
            c.post_json(
                "/api/forward",
                &json!({"event_ids": chunk, "target": target}),
            )
            .await?,
        )?;
        all.extend(r.deliveries.unwrap_or_default());
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();

    let mut out = std::io::stdout().lock();
    if let [d] = all.as_slice() {
        let last = d.last.as_ref().map(outcome).unwrap_or_default();
        writeln!(out, "{} → {}: {} ({last})", d.ce_id, d.target, d.status)?;
        if let Some(a) = &d.last
            && !a.response_body.is_empty()
        {
            writeln!(
                out,
                "{}",
                crate::deliveries::printable(a.response_body.trim_end())
            )?;
        }
        if d.status == "pending" {
            writeln!(
                out,
                "retrying in the outbox: kitedesk deliveries show {}",
                d.id
            )?;
        }
    } else {
        let count = |s: &str| all.iter().filter(|d| d.status == s).count();
        writeln!(
            out,
            "forwarded {} events to {}: {} delivered, {} retrying in the outbox, {} dead",
            all.len(),
            a.destination(),
            count("delivered"),
            count("pending") + count("delivering"),
            count("dead")
        )?;
        for d in all.iter().filter(|d| d.status != "delivered") {
            writeln!(out, "  {}", crate::deliveries::line(d))?;
        }
    }
    if all.iter().any(|d| d.status == "dead") {
        bail!("some deliveries failed for good; see `kitedesk deliveries list --status dead`");
    }
    Ok(())
}

/// Ask before sending many events, unless `--yes`. Without a terminal to
/// ask on, refuse rather than guess.
fn confirm(count: u64, a: &ForwardArgs) -> anyhow::Result<()> {
    if a.yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "{count} events would be forwarded to {}; pass --yes to confirm",
            a.destination()
        );
    }
    eprint!("Forward {count} events to {}? [y/N] ", a.destination());
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        bail!("cancelled");
    }
    Ok(())
}
