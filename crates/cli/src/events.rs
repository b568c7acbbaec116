//! `kitedesk events list|show|search|export`.

use std::io::{IsTerminal as _, Write as _};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use kitedesk_daemon::api::{EventDetail, EventPage, EventSummary};
use kitedesk_store::Store;

use crate::Target;
use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List events, newest first.
    List(ListArgs),
    /// Show one event in full (local id or CloudEvent id).
    Show {
        id: String,
        #[command(flatten)]
        target: Target,
        /// Print the event as CloudEvent JSON.
        #[arg(long)]
        json: bool,
    },
    /// Full-text search over summaries and payloads.
    Search {
        /// Words to find (all must match; `word*` for a prefix).
        text: String,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Write every matching event as one CloudEvent JSON per line.
    Export {
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        target: Target,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct Filters {
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
    /// Only verified events.
    #[arg(long, conflicts_with = "unverified")]
    verified: bool,
    /// Only unverified events.
    #[arg(long)]
    unverified: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[command(flatten)]
    filters: Filters,
    #[command(flatten)]
    target: Target,
    /// How many events (max 500 per page; use --all for everything).
    #[arg(long, short = 'n', default_value_t = 20)]
    limit: u32,
    /// Page through every matching event.
    #[arg(long)]
    all: bool,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

impl Filters {
    fn params(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        for s in &self.source {
            p.push(("source".into(), s.clone()));
        }
        let mut opt = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                p.push((k.to_string(), v.clone()));
            }
        };
        opt("type", &self.ty);
        opt("min_importance", &self.importance);
        opt("since", &self.since);
        opt("until", &self.until);
        if self.verified {
            p.push(("verified".into(), "true".into()));
        }
        if self.unverified {
            p.push(("verified".into(), "false".into()));
        }
        p
    }
}

/// The daemon API when a daemon runs, else the history file read-only.
enum Source {
    Api(Client),
    Db(Store),
}

impl Source {
    async fn open(t: &Target) -> anyhow::Result<Source> {
        if let Some(c) = Client::locate(t)? {
            return Ok(Source::Api(c));
        }
        let db = t.data_dir().join("history.db");
        if !db.exists() {
            bail!(
                "no daemon is running and there is no history at {}; start one with `kitedesk serve`",
                db.display()
            );
        }
        Ok(Source::Db(Store::open_read_only(&db).await?))
    }

    async fn page(&self, params: &[(String, String)]) -> anyhow::Result<EventPage> {
        match self {
            Source::Api(c) => {
                let qs = serde_urlencoded_pairs(params);
                Ok(serde_json::from_value(
                    c.get_json(&format!("/api/events?{qs}")).await?,
                )?)
            }
            Source::Db(store) => {
                let q = kitedesk_daemon::event_query_from_params(params)
                    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
                let page = store.list(&q).await?;
                Ok(EventPage {
                    events: page.events.iter().map(EventSummary::from).collect(),
                    next_cursor: page.next_cursor.map(|c| c.to_string()),
                })
            }
        }
    }

    async fn detail(&self, id: &str) -> anyhow::Result<EventDetail> {
        match self {
            Source::Api(c) => {
                let path = format!("/api/events/{}", percent_encode(id));
                Ok(serde_json::from_value(c.get_json(&path).await?)?)
            }
            Source::Db(store) => {
                let local = match id.parse::<i64>() {
                    Ok(n) => Some(n),
                    Err(_) => store.find_by_ce_id(id).await?,
                };
                let found = match local {
                    Some(n) => store.get(n).await?,
                    None => None,
                };
                let (ev, payload) = found.with_context(|| format!("no event {id:?}"))?;
                Ok(EventDetail {
                    summary: EventSummary::from(&ev),
                    cloudevent: ev.event.to_json()?,
                    headers: ev.event.original_headers.clone(),
                    payload,
                })
            }
        }
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn serde_urlencoded_pairs(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn run(cmd: EventsCommand) -> anyhow::Result<()> {
    match cmd {
        EventsCommand::List(args) => list(args, None).await,
        EventsCommand::Search { text, list: args } => list(args, Some(text)).await,
        EventsCommand::Show { id, target, json } => {
            let src = Source::open(&target).await?;
            let d = src.detail(&id).await?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&d.cloudevent)?)?;
            } else {
                print_detail(&mut out, &d)?;
            }
            Ok(())
        }
        EventsCommand::Export {
            filters,
            target,
            output,
        } => export(filters, target, output).await,
    }
}

async fn list(args: ListArgs, text: Option<String>) -> anyhow::Result<()> {
    let src = Source::open(&args.target).await?;
    let mut params = args.filters.params();
    if let Some(t) = text {
        params.push(("q".into(), t));
    }
    params.push(("limit".into(), args.limit.min(500).to_string()));
    let mut out = std::io::stdout().lock();
    let mut shown = 0u32;
    loop {
        let page = src.page(&params).await?;
        for e in &page.events {
            if args.json {
                writeln!(out, "{}", serde_json::to_string(e)?)?;
            } else {
                writeln!(out, "{}", human_line(e))?;
            }
            shown += 1;
        }
        match page.next_cursor {
            Some(c) if args.all || shown < args.limit => {
                params.retain(|(k, _)| k != "cursor");
                params.push(("cursor".into(), c));
            }
            _ => break,
        }
    }
    if shown == 0 && !args.json {
        eprintln!("no events match");
    }
    Ok(())
}

/// `2026-11-24 15:30:01  #12  critical  com.stripe.…  Payment of 20.00 USD failed`
pub fn human_line(e: &EventSummary) -> String {
    let when = chrono::DateTime::parse_from_rfc3339(&e.received_at)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| e.received_at.clone());
    format!(
        "{when}  #{:<5} {:<8} {}{}  {}",
        e.id,
        e.importance.as_str(),
        e.ty,
        if e.verified { "" } else { " (unverified)" },
        e.summary
    )
}

fn print_detail(out: &mut impl std::io::Write, d: &EventDetail) -> std::io::Result<()> {
    let s = &d.summary;
    writeln!(out, "#{}  {}", s.id, s.summary)?;
    writeln!(out, "  type        {}", s.ty)?;
    writeln!(out, "  source      {} ({})", s.source, s.source_name)?;
    writeln!(out, "  event id    {}", s.event_id)?;
    writeln!(
        out,
        "  time        {}  (received {})",
        s.time, s.received_at
    )?;
    writeln!(
        out,
        "  importance  {} — {}",
        s.importance, s.importance_reason
    )?;
    writeln!(
        out,
        "  verified    {} — {}",
        if s.verified { "yes" } else { "no" },
        s.verify_reason
    )?;
    writeln!(out, "  headers")?;
    for (k, v) in d.headers.iter() {
        writeln!(out, "    {k}: {v}")?;
    }
    writeln!(out, "  payload")?;
    let pretty = serde_json::from_str::<serde_json::Value>(&d.payload)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| d.payload.clone());
    for line in pretty.lines() {
        writeln!(out, "    {line}")?;
    }
    Ok(())
}

async fn export(
    filters: Filters,
    target: Target,
    output: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let src = Source::open(&target).await?;
    let mut sink: Box<dyn std::io::Write> = match &output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let progress = std::io::stderr().is_terminal();
    let mut params = filters.params();
    params.push(("limit".into(), "500".into()));
    let mut n = 0u64;
    loop {
        let page = src.page(&params).await?;
        for e in &page.events {
            let d = src.detail(&e.id.to_string()).await?;
            writeln!(sink, "{}", serde_json::to_string(&d.cloudevent)?)?;
            n += 1;
            if progress && n.is_multiple_of(100) {
                eprint!("\rexported {n} events");
            }
        }
        match page.next_cursor {
            Some(c) => {
                params.retain(|(k, _)| k != "cursor");
                params.push(("cursor".into(), c));
            }
            None => break,
        }
    }
    sink.flush()?;
    if progress {
        eprintln!("\rexported {n} events");
    }
    Ok(())
}
