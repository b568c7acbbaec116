//! `kitedesk deliveries list|show` and `kitedesk retry`: the outbox through
//! the daemon API.

use std::io::Write as _;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use kitedesk_daemon::outbox::{Attempt, Delivery, DeliveryDetail, DeliveryPage, RetryAllResponse};

use crate::Target;
use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries, newest first.
    List(ListArgs),
    /// Show one delivery with every attempt.
    Show {
        id: i64,
        #[command(flatten)]
        target: Target,
        /// Print the delivery as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only deliveries in this state: pending, delivering, delivered, dead.
    #[arg(long)]
    status: Option<String>,
    /// Only deliveries to this sink (`forward` for forwards to a URL).
    #[arg(long)]
    sink: Option<String>,
    /// Only deliveries of this event (local id).
    #[arg(long)]
    event: Option<i64>,
    /// How many (max 500).
    #[arg(long, short = 'n', default_value_t = 20)]
    limit: u32,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    target: Target,
}

/// Send dead letters again.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The delivery to retry.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    id: Option<i64>,
    /// Retry every dead delivery.
    #[arg(long)]
    all: bool,
    /// Wait until the retried deliveries are delivered or dead again (with
    /// a progress bar when stdout is a terminal); fail if any ends dead.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    target: Target,
}

/// Ids of every delivery in `status`.
async fn ids_in(c: &Client, status: &str) -> anyhow::Result<std::collections::HashSet<i64>> {
    let mut ids = std::collections::HashSet::new();
    let mut params = vec![
        ("status".to_string(), status.to_string()),
        ("limit".to_string(), "500".to_string()),
    ];
    loop {
        let page: DeliveryPage =
            serde_json::from_value(c.get_query("/api/deliveries", &params).await?)?;
        ids.extend(page.deliveries.iter().map(|d| d.id));
        match page.next_cursor {
            Some(cur) => {
                params.retain(|(k, _)| k != "cursor");
                params.push(("cursor".into(), cur));
            }
            None => return Ok(ids),
        }
    }
}

/// Poll until none of `ids` is pending or in flight; returns how many
/// ended dead.
async fn wait_settled(c: &Client, ids: &std::collections::HashSet<i64>) -> anyhow::Result<usize> {
    use std::io::IsTerminal as _;
    let bar = if std::io::stdout().is_terminal() {
        let bar = indicatif::ProgressBar::new(ids.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} settled ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    loop {
        let mut open = ids_in(c, "pending").await?;
        open.extend(ids_in(c, "delivering").await?);
        let waiting = ids.iter().filter(|id| open.contains(id)).count();
        bar.set_position((ids.len() - waiting) as u64);
        if waiting == 0 {
            bar.finish_and_clear();
            let dead = ids_in(c, "dead").await?;
            return Ok(ids.iter().filter(|id| dead.contains(id)).count());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

pub(crate) fn client(t: &Target) -> anyhow::Result<Client> {
    Client::locate(t)?.with_context(|| {
        format!(
            "no daemon is running for {}; start one with `kitedesk serve` (the outbox lives in the daemon)",
            t.data_dir().display()
        )
    })
}

pub async fn run(cmd: DeliveriesCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cmd {
        DeliveriesCommand::List(a) => {
            let c = client(&a.target)?;
            let mut params = vec![("limit".to_string(), a.limit.to_string())];
            for (k, v) in [("status", a.status), ("sink", a.sink)] {
                if let Some(v) = v {
                    params.push((k.into(), v));
                }
            }
            if let Some(e) = a.event {
                params.push(("event_id".into(), e.to_string()));
            }
            let page: DeliveryPage =
                serde_json::from_value(c.get_query("/api/deliveries", &params).await?)?;
            if a.json {
                for d in &page.deliveries {
                    writeln!(out, "{}", serde_json::to_string(d)?)?;
                }
            } else if page.deliveries.is_empty() {
                writeln!(out, "no deliveries")?;
            } else {
                for d in &page.deliveries {
                    writeln!(out, "{}", line(d))?;
                }
            }
        }
        DeliveriesCommand::Show { id, target, json } => {
            let c = client(&target)?;
            let d: DeliveryDetail =
                serde_json::from_value(c.get_json(&format!("/api/deliveries/{id}")).await?)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&d)?)?;
            } else {
                show(&mut out, &d)?;
            }
        }
    }
    Ok(())
}

pub async fn retry(a: RetryArgs) -> anyhow::Result<()> {
    let c = client(&a.target)?;
    let mut out = std::io::stdout().lock();
    match (a.id, a.all) {
        (Some(id), false) => {
            let d: Delivery = serde_json::from_value(
                c.post_json(
                    &format!("/api/deliveries/{id}/retry"),
                    &serde_json::json!({}),
                )
                .await?,
            )?;
            writeln!(
                out,
                "delivery #{} to {} is {} again",
                d.id, d.sink, d.status
            )?;
            if a.wait {
                let dead = wait_settled(&c, &[id].into_iter().collect()).await?;
                if dead > 0 {
                    bail!("delivery #{id} is dead again; see `kitedesk deliveries show {id}`");
                }
                writeln!(out, "delivered")?;
            }
        }
        (None, true) => {
            // The ids first, so --wait follows exactly these deliveries.
            let before = if a.wait {
                ids_in(&c, "dead").await?
            } else {
                Default::default()
            };
            let r: RetryAllResponse = serde_json::from_value(
                c.post_json(
                    "/api/deliveries/retry",
                    &serde_json::json!({"status": "dead"}),
                )
                .await?,
            )?;
            writeln!(out, "retrying {} dead deliveries", r.retried)?;
            if a.wait && !before.is_empty() {
                drop(out);
                let dead = wait_settled(&c, &before).await?;
                if dead > 0 {
                    bail!(
                        "{dead} deliveries are dead again; see `kitedesk deliveries list --status dead`"
                    );
                }
                println!("all {} delivered", before.len());
            }
        }
        _ => bail!("give a delivery id or --all"),
    }
    Ok(())
}

/// `#12  dead        3×  app  evt-1  HTTP 422, 12 ms  <updated>`
pub fn line(d: &Delivery) -> String {
    format!(
        "#{:<6} {:<10} {:>2}×  {}  event {} ({})  {}  {}",
        d.id,
        d.status,
        d.attempts,
        d.sink,
        d.event_id,
        d.ce_id,
        d.last
            .as_ref()
            .map(outcome)
            .unwrap_or_else(|| "not tried yet".into()),
        d.updated_at
    )
}

/// Text from a target (a response body, stderr) made safe for a terminal:
/// control characters other than newline and tab become `\u{..}` escapes,
/// so a hostile body cannot move the cursor or retitle the window.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\t' => c.to_string(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// What one attempt did, in a few words.
pub fn outcome(a: &Attempt) -> String {
    let what = match (a.status_code, &a.error) {
        (Some(code), _) => format!("HTTP {code}"),
        (None, Some(e)) => printable(e),
        (None, None) if a.ok => "ok".into(),
        (None, None) => "failed".into(),
    };
    format!("{what}, {} ms", a.latency_ms)
}

fn show(out: &mut impl std::io::Write, d: &DeliveryDetail) -> std::io::Result<()> {
    let x = &d.delivery;
    writeln!(out, "delivery #{}  {}", x.id, x.status)?;
    writeln!(out, "  event    {} ({})", x.event_id, x.ce_id)?;
    writeln!(out, "  sink     {} ({} → {})", x.sink, x.kind, x.target)?;
    writeln!(out, "  attempts {}", x.attempts)?;
    if let Some(next) = &x.next_attempt_at {
        writeln!(out, "  next     {next}")?;
    }
    writeln!(out, "  created  {}", x.created_at)?;
    for a in &d.attempt_log {
        writeln!(out, "attempt {} at {}: {}", a.n, a.started_at, outcome(a))?;
        if let Some(e) = a.error.as_ref().filter(|_| a.status_code.is_some()) {
            writeln!(out, "  error    {}", printable(e))?;
        }
        if !a.response_body.is_empty() {
            writeln!(out, "  response {}", printable(a.response_body.trim_end()))?;
        }
        if let Some(s) = a.stderr.as_ref().filter(|s| !s.is_empty()) {
            writeln!(out, "  stderr   {}", printable(s.trim_end()))?;
        }
    }
    Ok(())
}
