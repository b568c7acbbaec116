//! `kitedesk secrets list|set|rotate|reveal|rm`: secrets in the OS keychain,
//! through the running daemon's API.
//!
//! Values are read from stdin when it is not a terminal, or from a no-echo
//! prompt; never from the command line (argv is visible to every process
//! on the machine and lands in shell history).
//!
//! A running daemon is required: it is the one writer of the history
//! database (where the metadata lives) and keeps the ingress's cached
//! secrets in step with the keychain.

use std::io::{IsTerminal as _, Read as _, Write as _};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use kitedesk_daemon::{Revealed, SecretMeta, SecretsList};
use reqwest::Method;
use serde_json::json;

use crate::Target;
use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// List secrets (metadata only) and what needs attention.
    List {
        #[command(flatten)]
        target: Target,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Store a new secret; the value comes from stdin or a prompt.
    Set {
        /// e.g. webhook/github (the signing secret of source github), relay/acme.
        name: String,
        /// webhook, relay_token or api_token (default: from the name).
        #[arg(long)]
        kind: Option<String>,
        /// The source a webhook secret signs (default: from the name).
        #[arg(long)]
        source: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Replace a secret's value; the old one stays valid for a grace window.
    Rotate {
        name: String,
        /// How long the old value keeps verifying webhooks (0: not at all).
        #[arg(long, default_value_t = 24)]
        grace_hours: u32,
        #[command(flatten)]
        target: Target,
    },
    /// Print a secret's value.
    Reveal {
        name: String,
        #[command(flatten)]
        target: Target,
    },
    /// Delete a secret from the keychain.
    Rm {
        name: String,
        #[command(flatten)]
        target: Target,
    },
}

pub async fn run(cmd: SecretsCommand) -> anyhow::Result<()> {
    match cmd {
        SecretsCommand::List { target, json } => {
            let c = daemon(&target)?;
            let body = call(&c, Method::GET, "/api/secrets", None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            let list: SecretsList =
                serde_json::from_value(body).context("unexpected answer from the daemon")?;
            print_list(&list)?;
        }
        SecretsCommand::Set {
            name,
            kind,
            source,
            target,
        } => {
            let c = daemon(&target)?;
            let value = read_value(&name)?;
            let mut body = json!({"name": name, "value": value});
            if let Some(k) = kind {
                body["kind"] = k.into();
            }
            if let Some(s) = source {
                body["source"] = s.into();
            }
            let meta: SecretMeta =
                serde_json::from_value(call(&c, Method::POST, "/api/secrets", Some(body)).await?)?;
            eprintln!(
                "stored {} in the keychain (fingerprint {})",
                meta.name, meta.fingerprint
            );
        }
        SecretsCommand::Rotate {
            name,
            grace_hours,
            target,
        } => {
            let c = daemon(&target)?;
            let value = read_value(&name)?;
            let meta: SecretMeta = serde_json::from_value(
                call(
                    &c,
                    Method::POST,
                    &format!("/api/secrets/{}/rotate", encode(&name)),
                    Some(json!({"value": value, "grace_hours": grace_hours})),
                )
                .await?,
            )?;
            match &meta.previous_valid_until {
                Some(until) => eprintln!(
                    "rotated {} (fingerprint {}); the previous value stays valid until {until}",
                    meta.name, meta.fingerprint
                ),
                None => eprintln!(
                    "rotated {} (fingerprint {}); the previous value is no longer valid",
                    meta.name, meta.fingerprint
                ),
            }
        }
        SecretsCommand::Reveal { name, target } => {
            let c = daemon(&target)?;
            let v: Revealed = serde_json::from_value(
                call(
                    &c,
                    Method::POST,
                    &format!("/api/secrets/{}/reveal", encode(&name)),
                    None,
                )
                .await?,
            )?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", v.value)?;
            out.flush()?;
        }
        SecretsCommand::Rm { name, target } => {
            let c = daemon(&target)?;
            call(
                &c,
                Method::DELETE,
                &format!("/api/secrets/{}", encode(&name)),
                None,
            )
            .await?;
            eprintln!("deleted {name} from the keychain");
        }
    }
    Ok(())
}

/// One API call; a non-2xx answer becomes `code (status): message`.
pub(crate) async fn call(
    c: &Client,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let mut req = c.request(method, path);
    if let Some(b) = &body {
        req = req.json(b);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach the daemon at {}", c.base))?;
    let status = resp.status();
    let bytes = resp.bytes().await.context("reading the daemon's answer")?;
    let json: serde_json::Value = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
    };
    if !status.is_success() {
        bail!(
            "{} ({}): {}",
            json["code"].as_str().unwrap_or("error"),
            status.as_u16(),
            json["message"].as_str().unwrap_or("request failed")
        );
    }
    Ok(json)
}

fn daemon(target: &Target) -> anyhow::Result<Client> {
    match Client::locate(target)? {
        Some(c) => Ok(c),
        None => bail!(
            "no Kite Desk daemon is running for {} (no daemon.json there). Secrets are managed \
             through the daemon, which keeps the keychain and its records in step: start it with \
             `kitedesk serve` or the desktop app, or pass --url / --data-dir",
            target.data_dir().display()
        ),
    }
}

/// Percent-encode everything but the name alphabet (names are checked by
/// the daemon; this only keeps a typo from changing the URL's shape).
pub(crate) fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value: stdin when piped (one trailing newline dropped), else a
/// no-echo prompt on the terminal.
pub(crate) fn read_value(name: &str) -> anyhow::Result<String> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Value for {name} (not echoed): "))
            .context("cannot read the value from the terminal")?
    } else {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .context("cannot read the value from stdin")?;
        let trimmed = buf
            .strip_suffix("\r\n")
            .or_else(|| buf.strip_suffix('\n'))
            .unwrap_or(&buf);
        trimmed.to_string()
    };
    if value.is_empty() {
        bail!("no value given (pipe it on stdin or type it at the prompt)");
    }
    Ok(value)
}

fn print_list(list: &SecretsList) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if list.secrets.is_empty() {
        writeln!(
            out,
            "no secrets (add one: kitedesk secrets set webhook/<source>)"
        )?;
    } else {
        writeln!(
            out,
            "{:<28} {:<12} {:<10} {:<11} {:>5}  {:<24}  PREVIOUS VALID UNTIL",
            "NAME", "KIND", "SOURCE", "FINGERPRINT", "AGE", "LAST USED"
        )?;
        for s in &list.secrets {
            writeln!(
                out,
                "{:<28} {:<12} {:<10} {:<11} {:>4}d  {:<24}  {}",
                s.name,
                s.kind.as_str(),
                s.source.as_deref().unwrap_or("-"),
                s.fingerprint,
                s.age_days,
                s.last_used_at.as_deref().unwrap_or("never"),
                s.previous_valid_until.as_deref().unwrap_or("-"),
            )?;
        }
    }
    let h = &list.health;
    writeln!(out, "\nkeychain: {}", h.backend)?;
    if !h.missing.is_empty() {
        writeln!(
            out,
            "sources that require a signature but have no secret: {}",
            h.missing.join(", ")
        )?;
    }
    if !h.old.is_empty() {
        writeln!(
            out,
            "older than {} days (rotate them): {}",
            h.max_age_days,
            h.old.join(", ")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn names_keep_their_slashes_and_odd_bytes_are_encoded() {
        assert_eq!(encode("webhook/github"), "webhook/github");
        assert_eq!(encode("a b?c#d"), "a%20b%3Fc%23d");
    }
}
