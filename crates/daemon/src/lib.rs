//! The Kite Desk daemon: wires the local ingress through the pipeline
//! (verify → normalize → score → store) to the history and the live feed,
//! and serves the loopback HTTP API.
//!
//! * [`Daemon::start`] binds, opens the history, spawns the writer and
//!   returns a [`RunningDaemon`] handle.
//! * [`api::Api`] is the service layer: every caller (HTTP routes, the CLI,
//!   the desktop shell) goes through its functions.
//! * [`bus::Bus`] carries [`bus::DaemonEvent`]s between components.

pub mod api;
pub mod bus;
pub mod config;
mod http;
mod ingest;
pub mod links;
pub mod notifier;
pub mod outbox;
pub mod samples;
mod secrets;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use api::{Api, ApiError, VolumeWindow, volume_window};
pub use config::{DaemonConfig, RuntimeInfo};
pub use http::{VolumeParams, event_query_from_params, volume_params};
// The settings bodies' parsers, for the fuzz targets.
pub use http::{
    RelayRequest, Retention, RetentionUpdate, check_new_sink, parse_new_relay,
    parse_retention_update,
};
pub use secrets::{NewSecret, Revealed, RotateSecret, SecretMeta, SecretsHealth, SecretsList};

/// A started daemon.
#[derive(Debug)]
pub struct RunningDaemon {
    pub addr: SocketAddr,
    pub api: Api,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<anyhow::Result<()>>,
    info_path: std::path::PathBuf,
}

/// Entry point.
#[derive(Debug)]
pub struct Daemon;

impl Daemon {
    /// Open the history, bind the listener and start serving. Returns once
    /// the socket is bound, so callers (and tests) can connect at once.
    pub async fn start(config: DaemonConfig) -> anyhow::Result<RunningDaemon> {
        config.check_listen()?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let (api, app) = Daemon::app(config.clone(), addr).await?;

        let (shutdown, mut rx) = watch::channel(false);
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await
                .context("HTTP server failed")
        });
        let info_path = config.data_dir.join("daemon.json");
        config::write_runtime_info(&info_path, &RuntimeInfo::new(addr))?;
        tracing::info!(%addr, data_dir = %config.data_dir.display(), "kitedesk daemon listening");
        Ok(RunningDaemon {
            addr,
            api,
            shutdown,
            server,
            info_path,
        })
    }

    /// Build the services and the HTTP router without binding a socket
    /// (`addr` is the address the router will be reachable at). Tests drive
    /// the router with `oneshot`.
    pub async fn app(
        config: DaemonConfig,
        addr: SocketAddr,
    ) -> anyhow::Result<(Api, axum::Router)> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        config::restrict_dir(&config.data_dir);
        let token = config::api_token(&config.data_dir)?;
        let store = kitedesk_store::Store::open(&config.data_dir.join("history.db")).await?;
        let bus = bus::Bus::new();
        let writer = writer::spawn(store.clone(), bus.clone())?;
        let outbox = outbox::Outbox::start(&config, store.clone(), bus.clone()).await?;
        let api = Api::new(Arc::new(api::Inner::new(
            config, store, bus, writer, token, addr, outbox,
        )));
        api.spawn_retention();
        api.load_secrets().await?;
        api.load_added_sinks().await?;
        api.start_links().await?;
        api.start_notifier().await?;
        let app = http::router(api.clone());
        Ok((api, app))
    }
}

impl RunningDaemon {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting requests, finish in-flight ones, flush the writer.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.api.stop_links().await;
        self.api.bus().publish(bus::DaemonEvent::ShuttingDown);
        let res = self.server.await.context("server task panicked")?;
        self.api.stop_outbox().await;
        let _ = std::fs::remove_file(&self.info_path);
        self.api.close().await;
        res
    }

    /// Serve until the task ends (Ctrl-C handling is the caller's).
    pub async fn wait(self, stop: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        stop.await;
        self.shutdown().await
    }
}
