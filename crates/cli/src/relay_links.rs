//! `kitedesk serve --relay URL --team ID`: relay links from flags and
//! environment, merged with the manifest's `relays` list.

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use kitedesk_core::Manifest;
use kitedesk_core::manifest::{DEFAULT_RELAY_TOKEN_ENV, RelayTokenFrom, relay_ws_url};
use kitedesk_daemon::links::{RelayLink, RelayToken};
use kitedesk_stream::Token;

/// Relay links (repeat `--relay`/`--team` for several; the n-th `--team`,
/// `--relay-name`, `--relay-token-env` and `--relay-token-secret` go with
/// the n-th `--relay`).
#[derive(Debug, Clone, Default, Args)]
pub struct RelayArgs {
    /// Relay to stream from: ws://HOST:PORT/ws, wss://…, or an http(s) base.
    #[arg(long = "relay", value_name = "URL", env = "KITEDESK_RELAY_URL")]
    pub urls: Vec<String>,
    /// Team id on that relay.
    #[arg(long = "team", value_name = "ID", env = "KITEDESK_RELAY_TEAM")]
    pub teams: Vec<String>,
    /// Environment variable holding the relay API token (default KITEDESK_RELAY_TOKEN).
    #[arg(long = "relay-token-env", value_name = "VAR")]
    pub token_envs: Vec<String>,
    /// Keychain secret holding the relay API token (e.g. relay/acme, stored
    /// with `kitedesk secrets set relay/acme --kind relay_token`), instead
    /// of an environment variable.
    #[arg(
        long = "relay-token-secret",
        value_name = "NAME",
        conflicts_with = "token_envs"
    )]
    pub token_secrets: Vec<String>,
    /// Link name shown in the API (default "relay", "relay-2", …).
    #[arg(long = "relay-name", value_name = "NAME")]
    pub names: Vec<String>,
    /// Kite scope for the flag links (`*`, `source:NAME`, `type:NAME`); repeatable.
    #[arg(long = "relay-scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// WebSocket ping interval; a link silent for twice this long is dead (default 15s).
    #[arg(long = "relay-ping-interval", value_name = "DURATION", value_parser = parse_duration)]
    pub ping_interval: Option<Duration>,
    /// First reconnect delay, doubling up to 30s, with jitter (default 1s).
    #[arg(long = "relay-reconnect-min", value_name = "DURATION", value_parser = parse_duration)]
    pub reconnect_min: Option<Duration>,
}

/// `250ms`, `2s`, `1m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("invalid duration {s:?}: expected e.g. 500ms, 2s, 1m");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err(format!("{s:?} must be positive"));
    }
    Ok(d)
}

fn token_from(from: RelayTokenFrom<'_>, link: &str) -> anyhow::Result<RelayToken> {
    let var = match from {
        // Read by the daemon when the link starts.
        RelayTokenFrom::Secret(name) => return Ok(RelayToken::Keychain(name.trim().to_string())),
        RelayTokenFrom::Env(var) => var,
    };
    let v = std::env::var(var)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .with_context(|| {
            format!(
                "relay link {link:?}: no API token: set the environment variable {var}, \
                 or keep the token in the keychain and name it with --relay-token-secret \
                 (manifest: tokenSecret)"
            )
        })?;
    Ok(RelayToken::Value(Token::new(v)))
}

/// The n-th of a flag given once per `--relay`, or its only value.
fn nth(values: &[String], i: usize) -> Option<&str> {
    values.get(i).or(values.first()).map(String::as_str)
}

impl RelayArgs {
    /// The links from flags, then the manifest's `relays`.
    pub fn resolve(&self, manifest: &Manifest) -> anyhow::Result<Vec<RelayLink>> {
        if self.urls.len() != self.teams.len() {
            bail!(
                "--relay and --team go in pairs: got {} relay URL(s) and {} team(s)",
                self.urls.len(),
                self.teams.len()
            );
        }
        if self.token_envs.len() > 1 && self.token_envs.len() != self.urls.len() {
            bail!("give --relay-token-env once (for every link) or once per --relay");
        }
        if self.token_secrets.len() > 1 && self.token_secrets.len() != self.urls.len() {
            bail!("give --relay-token-secret once (for every link) or once per --relay");
        }
        if self.names.len() > self.urls.len() {
            bail!("more --relay-name than --relay");
        }
        let mut out: Vec<RelayLink> = Vec::new();
        for (i, (url, team)) in self.urls.iter().zip(&self.teams).enumerate() {
            let name = self.names.get(i).cloned().unwrap_or_else(|| {
                if i == 0 {
                    "relay".to_string()
                } else {
                    format!("relay-{}", i + 1)
                }
            });
            let ws = relay_ws_url(url).with_context(|| {
                format!("--relay {url:?}: expected ws://, wss://, http:// or https://")
            })?;
            let from = match (nth(&self.token_secrets, i), nth(&self.token_envs, i)) {
                (Some(secret), _) => RelayTokenFrom::Secret(secret),
                (None, var) => RelayTokenFrom::Env(var.unwrap_or(DEFAULT_RELAY_TOKEN_ENV)),
            };
            out.push(RelayLink {
                token: token_from(from, &name)?,
                name,
                url: ws,
                team_id: team.trim().to_string(),
                scopes: self.scopes.clone(),
                ping_interval: self.ping_interval,
                backoff_initial: self.reconnect_min,
            });
        }
        for r in &manifest.relays {
            let ws = relay_ws_url(&r.url)
                .with_context(|| format!("relays: {:?} is not a relay URL", r.url))?;
            out.push(RelayLink {
                token: token_from(r.token_from(), &r.name)?,
                name: r.name.clone(),
                url: ws,
                team_id: r.team.clone(),
                scopes: r.scopes.clone(),
                ping_interval: r.ping_interval.or(self.ping_interval),
                backoff_initial: self.reconnect_min,
            });
        }
        for (i, l) in out.iter().enumerate() {
            if l.name == "local" || out[..i].iter().any(|o| o.name == l.name) {
                bail!(
                    "relay link name {:?} is used twice (\"local\" is the ingress)",
                    l.name
                );
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn flags_pair_up() {
        let args = RelayArgs {
            urls: vec!["ws://a/ws".into()],
            teams: vec![],
            ..Default::default()
        };
        let e = args.resolve(&Manifest::default()).unwrap_err();
        assert!(e.to_string().contains("in pairs"), "{e}");
    }

    #[test]
    fn a_token_secret_is_left_for_the_daemon_and_env_stays_an_alternative() {
        let var = "KITEDESK_TEST_RELAY_TOKEN_UNSET_7c1e";
        let args = RelayArgs {
            urls: vec!["ws://a/ws".into(), "ws://b/ws".into()],
            teams: vec!["t1".into(), "t2".into()],
            token_secrets: vec!["relay/a".into(), "relay/b".into()],
            ..Default::default()
        };
        let links = args.resolve(&Manifest::default()).unwrap();
        assert!(
            matches!(&links[1].token, RelayToken::Keychain(n) if n == "relay/b"),
            "the n-th secret goes with the n-th relay: {:?}",
            links[1].token
        );
        // An environment variable that is not set: the error names it and
        // the keychain alternative.
        let args = RelayArgs {
            urls: vec!["ws://a/ws".into()],
            teams: vec!["t1".into()],
            token_envs: vec![var.into()],
            ..Default::default()
        };
        let e = format!("{:#}", args.resolve(&Manifest::default()).unwrap_err());
        assert!(e.contains(var) && e.contains("--relay-token-secret"), "{e}");
    }
}
