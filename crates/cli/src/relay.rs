//! `kitedesk relay`: run a self-hosted Kite-protocol relay, and manage its
//! teams and tokens on the data dir (no running relay needed).
//!
//! Scripts rely on these outputs; keep them stable:
//! * `teams create NAME` prints the team id alone on stdout.
//! * `tokens create …` prints the token alone on stdout (shown once).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use kitedesk_relay::{Relay, RelayConfig, TokenKind, admin};

#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Relay data directory (relay.db). Default: $XDG_DATA_HOME/kitedesk/relay.
    #[arg(long, env = "KITEDESK_RELAY_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<RelayCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Address to listen on. 127.0.0.1:7700 is where a Kite CLI looks.
    #[arg(long, env = "KITEDESK_RELAY_LISTEN", default_value = kitedesk_relay::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// kite.json with `sources` (provider type, signing-secret variables)
    /// and `scoring`. Default: the embedded default configuration.
    #[arg(long, env = "KITEDESK_RELAY_MANIFEST")]
    manifest: Option<PathBuf>,
    /// Keep events this long (e.g. 7d, 12h, 30m).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    retention: Duration,
    /// Keep at most this many events per team.
    #[arg(long)]
    max_events: Option<u64>,
    /// Largest webhook body in bytes (at most 25 MB).
    #[arg(long, default_value_t = kitedesk_core::manifest::DEFAULT_MAX_BODY)]
    max_body_bytes: usize,
    /// Seconds between WebSocket pings.
    #[arg(long, default_value_t = 20)]
    ping_interval: u64,
    /// Base URL senders reach this relay at, for the printed hook URLs.
    #[arg(long)]
    public_url: Option<String>,
    /// Webhook requests per team and window, e.g. 100/1m (429 with
    /// Retry-After beyond). Default: unlimited.
    #[arg(
        long,
        env = "KITEDESK_RELAY_TEAM_RATE_LIMIT",
        value_name = "N/DURATION"
    )]
    team_rate_limit: Option<kitedesk_relay::limits::RateLimit>,
    /// New events per team and period, e.g. 10000/1d (429 beyond; WebSocket
    /// clients get billing_block and error 4005). Default: unlimited.
    #[arg(long, env = "KITEDESK_RELAY_TEAM_QUOTA", value_name = "N/DURATION")]
    team_quota: Option<kitedesk_relay::limits::Quota>,
}

#[derive(Debug, Subcommand)]
enum RelayCommand {
    /// Teams: `create NAME` prints the new team id.
    #[command(subcommand)]
    Teams(TeamsCommand),
    /// Hook and API tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
}

#[derive(Debug, Subcommand)]
enum TeamsCommand {
    /// Create a team and print its id (alone on stdout).
    Create { name: String },
    /// List teams.
    List,
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Create a token and print it (alone on stdout; it is shown only once).
    Create {
        #[arg(long)]
        team: String,
        /// hook: for webhook senders; api: for WebSocket clients.
        #[arg(long, value_enum)]
        kind: TokenKindArg,
        /// Comma-separated scopes (`*`, `source:NAME`, `type:GLOB`). Default: *.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
    },
    /// List tokens (metadata only, never values).
    List {
        #[arg(long)]
        team: Option<String>,
    },
    /// Revoke a token by id.
    Revoke { id: String },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TokenKindArg {
    Hook,
    Api,
}

impl From<TokenKindArg> for TokenKind {
    fn from(k: TokenKindArg) -> Self {
        match k {
            TokenKindArg::Hook => TokenKind::Hook,
            TokenKindArg::Api => TokenKind::Api,
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?}: add a unit (s, m, h, d)"))?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{s:?}: not a number"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(secs))
}

pub async fn run(args: RelayArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.unwrap_or_else(admin::default_data_dir);
    match args.command {
        None => serve(data_dir, args.run).await,
        Some(RelayCommand::Teams(TeamsCommand::Create { name })) => {
            let team = admin::create_team(&data_dir, &name).await?;
            println!("{}", team.id);
            Ok(())
        }
        Some(RelayCommand::Teams(TeamsCommand::List)) => {
            for t in admin::list_teams(&data_dir).await? {
                println!(
                    "{}\t{}\t{}",
                    t.id,
                    kitedesk_core::event::format_time(t.created_at),
                    t.name
                );
            }
            Ok(())
        }
        Some(RelayCommand::Tokens(TokensCommand::Create { team, kind, scopes })) => {
            let (info, token) =
                admin::create_token_info(&data_dir, &team, kind.into(), &scopes).await?;
            eprintln!(
                "created {} token {} for team {} (scopes: {}); it is shown only once",
                info.kind.as_str(),
                info.id,
                info.team_id,
                info.scopes.join(",")
            );
            println!("{token}");
            Ok(())
        }
        Some(RelayCommand::Tokens(TokensCommand::List { team })) => {
            for t in admin::list_tokens(&data_dir, team.as_deref()).await? {
                println!(
                    "{}\t{}\t{}\t{}…\t{}\t{}",
                    t.id,
                    t.team_id,
                    t.kind.as_str(),
                    t.prefix,
                    t.scopes.join(","),
                    match t.revoked_at {
                        Some(at) => format!("revoked {}", kitedesk_core::event::format_time(at)),
                        None => "active".to_string(),
                    }
                );
            }
            Ok(())
        }
        Some(RelayCommand::Tokens(TokensCommand::Revoke { id })) => {
            admin::revoke_token(&data_dir, &id).await?;
            eprintln!("revoked {id}");
            Ok(())
        }
    }
}

async fn serve(data_dir: PathBuf, args: RunArgs) -> anyhow::Result<()> {
    let mut cfg = RelayConfig::new(data_dir);
    cfg.listen = args.listen;
    cfg.manifest = kitedesk_daemon::config::load_manifest(args.manifest.as_deref())?;
    cfg.retention.max_age = Some(args.retention);
    cfg.retention.max_events_per_team = args.max_events;
    cfg.max_body_bytes = args.max_body_bytes;
    cfg.ping_interval = Duration::from_secs(args.ping_interval.max(1));
    cfg.public_url = args.public_url;
    cfg.team_rate_limit = args.team_rate_limit;
    cfg.team_quota = args.team_quota;
    let data_dir = cfg.data_dir.clone();
    let relay = Relay::start(cfg).await?;
    // Scripts and tests read these lines; keep their shape stable.
    println!("Kite Desk relay is running");
    println!("  hooks:     {}", relay.hook_url("{team_id}", "{source}"));
    println!("  websocket: {}", relay.ws_url());
    println!("  data:      {}", data_dir.display());
    use std::io::Write as _;
    std::io::stdout()
        .flush()
        .context("cannot write to stdout")?;
    stop_signal().await?;
    eprintln!("shutting down…");
    relay.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (service managers, `kill`): both shut down gracefully.
async fn stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot wait for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot wait for Ctrl-C")?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")
    }
}
