//! `kitedesk retention [show]`, `kitedesk retention set --max-age … --max-events …`
//! and `kitedesk retention reset`: how long the history keeps events,
//! through the daemon's API (`/api/settings/retention`).

use std::io::Write as _;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::Target;
use crate::relays_cmd::daemon;
use crate::secrets::call;

#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(subcommand)]
    command: Option<RetentionCommand>,
    #[command(flatten)]
    target: Target,
    /// Print the API's JSON.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Show the retention in force and where it comes from (the default).
    Show,
    /// Set the retention (applied at once); a limit not given stays as it is.
    Set {
        /// Keep events this many days (`30`, `30d`), or `none` for no age limit.
        #[arg(long, value_name = "DAYS|none", value_parser = parse_days)]
        max_age: Option<Limit>,
        /// Keep at most this many events, or `none` for no count limit.
        #[arg(long, value_name = "N|none", value_parser = parse_count)]
        max_events: Option<Limit>,
    },
    /// Forget the setting: the manifest's `queue` block applies again.
    Reset,
}

/// A limit from the command line: a number, or none (`null` in the API).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    None,
    Of(u64),
}

impl Limit {
    fn json(self) -> Value {
        match self {
            Limit::None => Value::Null,
            Limit::Of(n) => n.into(),
        }
    }
}

fn parse_limit(s: &str, suffix: Option<char>) -> Result<Limit, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(Limit::None);
    }
    let digits = suffix.and_then(|c| t.strip_suffix(c)).unwrap_or(t);
    digits
        .parse::<u64>()
        .map(Limit::Of)
        .map_err(|_| format!("{s:?} is not a whole number or `none`"))
}

fn parse_days(s: &str) -> Result<Limit, String> {
    parse_limit(s, Some('d'))
}

fn parse_count(s: &str) -> Result<Limit, String> {
    parse_limit(s, None)
}

pub async fn run(args: RetentionArgs) -> anyhow::Result<()> {
    let c = daemon(&args.target)?;
    let view = match args.command.unwrap_or(RetentionCommand::Show) {
        RetentionCommand::Show => call(&c, Method::GET, "/api/settings/retention", None).await?,
        RetentionCommand::Set {
            max_age,
            max_events,
        } => {
            if max_age.is_none() && max_events.is_none() {
                bail!(
                    "nothing to set: give --max-age DAYS|none and/or --max-events N|none \
                     (or `kitedesk retention reset`)"
                );
            }
            // A limit not given keeps the one in force.
            let now = call(&c, Method::GET, "/api/settings/retention", None).await?;
            let body = json!({
                "max_age_days": max_age.map_or_else(|| now["max_age_days"].clone(), Limit::json),
                "max_events": max_events.map_or_else(|| now["max_events"].clone(), Limit::json),
            });
            call(&c, Method::PUT, "/api/settings/retention", Some(body)).await?
        }
        RetentionCommand::Reset => {
            call(
                &c,
                Method::PUT,
                "/api/settings/retention",
                Some(json!({"reset": true})),
            )
            .await?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    print_view(&view)
}

fn print_view(v: &Value) -> anyhow::Result<()> {
    let age = |r: &Value| match r["max_age_days"].as_u64() {
        Some(d) => format!("{d} days"),
        None => "no limit".into(),
    };
    let count = |r: &Value| match r["max_events"].as_u64() {
        Some(n) => format!("{n} events"),
        None => "no limit".into(),
    };
    let origin = v["origin"]
        .as_str()
        .context("unexpected answer from the daemon: no origin")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "max age:    {}", age(v))?;
    writeln!(out, "max events: {}", count(v))?;
    writeln!(
        out,
        "set by:     {}",
        match origin {
            "settings" => "settings (kitedesk retention set; `reset` goes back to the manifest)",
            "manifest" => "the manifest's queue block (or its defaults)",
            other => other,
        }
    )?;
    if origin == "settings" {
        let m = &v["manifest"];
        writeln!(out, "manifest:   {}, {}", age(m), count(m))?;
    }
    if let Some(n) = v["deleted"].as_u64() {
        writeln!(out, "applied:    {n} events removed")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Limit, parse_count, parse_days};

    #[test]
    fn limits_are_numbers_or_none() {
        assert_eq!(parse_days("30"), Ok(Limit::Of(30)));
        assert_eq!(parse_days("30d"), Ok(Limit::Of(30)));
        assert_eq!(parse_days("None"), Ok(Limit::None));
        assert_eq!(parse_count("1000"), Ok(Limit::Of(1000)));
        for bad in ["", "-1", "3.5", "30x", "d"] {
            assert!(parse_days(bad).is_err(), "{bad}");
        }
        assert!(parse_count("30d").is_err());
    }
}
