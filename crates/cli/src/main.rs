//! `kitedesk`: the command-line entry to Kite Desk.
//!
//! `serve` runs the daemon; `events` reads the history through the daemon
//! API (or read-only from the database when no daemon runs); `send-test`
//! posts a realistic, signed sample webhook to a running daemon.

mod client;
mod deliveries;
mod events;
mod forward;
mod relay;
mod relay_links;
mod relays_cmd;
mod retention_cmd;
mod run_cmd;
mod secrets;
mod send_test;
mod serve;
mod stream_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

// The daemon allocates many small short-lived objects per webhook; glibc's
// malloc was about a quarter of the request path's time in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "kitedesk",
    version,
    about = "Kite Desk: see, search and forward your webhook events"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the daemon's data lives and how to reach it.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Data directory (history, API token). Default: $XDG_DATA_HOME/kitedesk.
    #[arg(long, env = "KITEDESK_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Daemon URL. Default: the one the running daemon wrote to <data-dir>/daemon.json.
    #[arg(long, env = "KITEDESK_URL", global = true)]
    url: Option<String>,
}

impl Target {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(kitedesk_daemon::config::default_data_dir)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: local ingress, history, live feed and API.
    Serve(serve::ServeArgs),
    /// Browse the event history.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Post a realistic sample webhook (signed when a secret is configured).
    SendTest(send_test::SendTestArgs),
    /// Secrets in the OS keychain: list, set, rotate, reveal, rm.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Run a self-hosted Kite-protocol relay; manage its teams and tokens.
    Relay(relay::RelayArgs),
    /// Stream events from a relay, one line each (the Kite CLI's `kite stream`).
    Stream(stream_cmd::StreamArgs),
    /// The outbox: deliveries to sinks and forwards, with every attempt.
    #[command(subcommand)]
    Deliveries(deliveries::DeliveriesCommand),
    /// Send a dead delivery (or all of them) again.
    Retry(deliveries::RetryArgs),
    /// Forward stored events to a URL or a configured sink.
    Forward(forward::ForwardArgs),
    /// Run a kite.json manifest against a relay: filters, enrichment, scoring, sinks.
    Run(run_cmd::RunArgs),
    /// The daemon's relay links: list, add (token from stdin or a prompt), rm.
    #[command(subcommand)]
    Relays(relays_cmd::RelaysCommand),
    /// How long the history keeps events: show, set, reset.
    Retention(retention_cmd::RetentionArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KITEDESK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Events(cmd) => events::run(cmd).await,
            Command::SendTest(args) => send_test::run(args).await,
            Command::Secrets(cmd) => secrets::run(cmd).await,
            Command::Relay(args) => relay::run(args).await,
            Command::Stream(args) => stream_cmd::run(args).await,
            Command::Deliveries(cmd) => deliveries::run(cmd).await,
            Command::Retry(args) => deliveries::retry(args).await,
            Command::Forward(args) => forward::run(args).await,
            Command::Run(args) => run_cmd::run(args).await,
            Command::Relays(cmd) => relays_cmd::run(cmd).await,
            Command::Retention(args) => retention_cmd::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`kitedesk events list | head`) is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every subcommand (duplicate
    /// argument ids, e.g. a subcommand's `--url` against the global one).
    /// A release build skips them at run time, so they are checked here.
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
