//! `kitedesk relays list|add|rm`: the daemon's relay links, through its API
//! (`/api/relays`).
//!
//! `add`'s relay API token is read from stdin when it is not a terminal, or
//! from a no-echo prompt, never from the command line; the daemon puts it
//! in the keychain as `relay/<name>`.

use std::io::Write as _;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Target;
use crate::client::Client;
use crate::secrets::{call, encode, read_value};

#[derive(Debug, Subcommand)]
pub enum RelaysCommand {
    /// List the relay links (configured and added) and their state.
    List {
        #[command(flatten)]
        target: Target,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a relay link; its API token comes from stdin or a prompt.
    Add {
        /// The link's name (a slug: a-z, 0-9, -).
        name: String,
        /// The relay: ws://HOST:PORT/ws, wss://…, or an http(s) base.
        /// (`--relay`, as for `kitedesk serve`: the global `--url` is the
        /// daemon's.)
        #[arg(long = "relay", id = "relay_url", value_name = "URL")]
        url: String,
        /// Team id on that relay.
        #[arg(long)]
        team: String,
        /// Kite scope (`*`, `source:NAME`, `type:PATTERN`, `agent_to:ID`); repeatable.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Do not ask for a token: the link waits for the keychain secret
        /// relay/<name> (`kitedesk secrets set relay/<name>`).
        #[arg(long)]
        no_token: bool,
        #[command(flatten)]
        target: Target,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a relay link added through the API (and its keychain token).
    Rm {
        name: String,
        #[command(flatten)]
        target: Target,
    },
}

pub async fn run(cmd: RelaysCommand) -> anyhow::Result<()> {
    match cmd {
        RelaysCommand::List { target, json } => {
            let c = daemon(&target)?;
            let body = call(&c, Method::GET, "/api/relays", None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            let relays = body["relays"]
                .as_array()
                .context("unexpected answer from the daemon: no relays list")?;
            print_table(relays)?;
        }
        RelaysCommand::Add {
            name,
            url,
            team,
            scopes,
            no_token,
            target,
            json,
        } => {
            let c = daemon(&target)?;
            let mut body = json!({"name": name, "url": url, "team_id": team});
            if !scopes.is_empty() {
                body["scopes"] = scopes.into();
            }
            if !no_token {
                body["token"] = read_value(&format!("relay/{name}"))?.into();
            }
            let view = call(&c, Method::POST, "/api/relays", Some(body)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                eprintln!(
                    "added relay link {} ({}, team {}); token: {}",
                    str_of(&view, "name"),
                    str_of(&view, "url"),
                    str_of(&view, "team_id"),
                    if no_token {
                        format!(
                            "none yet, the link waits for it (kitedesk secrets set relay/{name})"
                        )
                    } else {
                        str_of(&view, "token_from").to_string()
                    }
                );
            }
        }
        RelaysCommand::Rm { name, target } => {
            let c = daemon(&target)?;
            call(
                &c,
                Method::DELETE,
                &format!("/api/relays/{}", encode(&name)),
                None,
            )
            .await?;
            eprintln!("removed relay link {name}");
        }
    }
    Ok(())
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("-")
}

fn print_table(relays: &[Value]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if relays.is_empty() {
        writeln!(
            out,
            "no relay links (add one: kitedesk relays add NAME --relay URL --team ID)"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<20} {:<7} {:<14} {:<20} {:<36} {:<16} TOKEN",
        "NAME", "ORIGIN", "STATE", "TEAM", "URL", "SCOPES"
    )?;
    for r in relays {
        let scopes = r["scopes"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "*".into());
        writeln!(
            out,
            "{:<20} {:<7} {:<14} {:<20} {:<36} {:<16} {}",
            str_of(r, "name"),
            str_of(r, "origin"),
            str_of(r, "state"),
            str_of(r, "team_id"),
            str_of(r, "url"),
            scopes,
            str_of(r, "token_from"),
        )?;
        if let Some(e) = r["error"].as_str() {
            writeln!(out, "  {e}")?;
        }
    }
    Ok(())
}

/// The running daemon's client, or an error saying how to start one.
pub(crate) fn daemon(target: &Target) -> anyhow::Result<Client> {
    match Client::locate(target)? {
        Some(c) => Ok(c),
        None => bail!(
            "no Kite Desk daemon is running for {} (no daemon.json there): start it with \
             `kitedesk serve` or the desktop app, or pass --url / --data-dir",
            target.data_dir().display()
        ),
    }
}
