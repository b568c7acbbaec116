//! `kitedesk serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use kitedesk_daemon::config::{self, DEFAULT_LISTEN};
use kitedesk_daemon::{Daemon, DaemonConfig};

use crate::Target;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    target: Target,
    /// Address to listen on (loopback only). Port 0 picks a free port.
    #[arg(long, env = "KITEDESK_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// kite.json manifest. Default: the embedded default configuration.
    #[arg(long, env = "KITEDESK_MANIFEST")]
    manifest: Option<PathBuf>,
    #[command(flatten)]
    relay: crate::relay_links::RelayArgs,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let manifest = config::load_manifest(args.manifest.as_deref())?;
    let mut cfg = DaemonConfig::new(args.target.data_dir(), args.listen, manifest);
    cfg.manifest_path = args.manifest.clone();
    cfg.relays = args.relay.resolve(&cfg.manifest)?;
    let relays: Vec<String> = cfg
        .relays
        .iter()
        .map(|r| format!("{} {} (team {})", r.name, r.url, r.team_id))
        .collect();
    let sources: Vec<String> = cfg
        .manifest
        .sources
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let daemon = Daemon::start(cfg).await?;
    let url = daemon.url();
    // Scripts and tests read these lines; keep their shape stable.
    println!(
        "Kite Desk is running ({})",
        match &args.manifest {
            Some(p) => format!("manifest {}", p.display()),
            None => "embedded default configuration".to_string(),
        }
    );
    println!("  UI:    {url}/?token={}", daemon.api.token());
    println!(
        "  API:   {url}/api (Authorization: Bearer <token from {}>)",
        token_hint(&args.target)
    );
    println!(
        "  Hooks: {} (sources: {})",
        daemon.api.hook_base() + "/<source>",
        sources.join(", ")
    );
    for r in &relays {
        println!("  Relay: {r}");
    }
    println!("  Try:   kitedesk send-test github && kitedesk events list");
    use std::io::Write as _;
    std::io::stdout().flush().context("stdout")?;
    daemon.wait(shutdown_signal()).await
}

fn token_hint(t: &Target) -> String {
    if std::env::var_os("KITEDESK_API_TOKEN").is_some() {
        "KITEDESK_API_TOKEN".into()
    } else {
        t.data_dir().join("api-token").display().to_string()
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
