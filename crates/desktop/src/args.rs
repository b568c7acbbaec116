//! The app's command line. `kitedesk-app` takes the same daemon flags and
//! environment as `kitedesk serve` (the CLI's `ServeArgs` lives in a binary
//! crate, so the app declares its own small struct with identical names).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use kitedesk_daemon::DaemonConfig;
use kitedesk_daemon::config::{self, DEFAULT_LISTEN};

#[derive(Debug, Clone, Parser, PartialEq)]
#[command(
    name = "kitedesk-app",
    version,
    about = "Kite Desk: your webhook events in the tray, with the web UI in a window"
)]
pub struct AppArgs {
    /// Data directory (history, API token). Default: $XDG_DATA_HOME/kitedesk.
    #[arg(long, env = "KITEDESK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on (loopback only). Port 0 picks a free port.
    #[arg(long, env = "KITEDESK_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// kite.json manifest. Default: the embedded default configuration.
    #[arg(long, env = "KITEDESK_MANIFEST")]
    pub manifest: Option<PathBuf>,
    /// Start in the tray without opening the window (what "Start at login" uses).
    #[arg(long)]
    pub hidden: bool,
    /// Internal: run as the window process of a running app (it reads where
    /// to go from stdin; see `kitedesk_desktop::window_link`).
    #[arg(long, hide = true)]
    pub window: bool,
}

impl AppArgs {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(config::default_data_dir)
    }

    /// The daemon configuration these flags describe (reads the manifest).
    pub fn daemon_config(&self) -> anyhow::Result<DaemonConfig> {
        let manifest = config::load_manifest(self.manifest.as_deref())?;
        let mut cfg = DaemonConfig::new(self.data_dir(), self.listen, manifest);
        cfg.manifest_path = self.manifest.clone();
        Ok(cfg)
    }

    /// The arguments that reproduce this launch in the tray, for the
    /// autostart entry: the explicit daemon flags, always `--hidden`.
    /// The listen address is kept only when it is not the default, so a
    /// port-0 test launch never writes a random port into a login entry.
    pub fn autostart_args(&self) -> Vec<OsString> {
        let mut out = Vec::new();
        if let Some(d) = &self.data_dir {
            out.push("--data-dir".into());
            out.push(d.clone().into_os_string());
        }
        if self.listen.to_string() != DEFAULT_LISTEN && self.listen.port() != 0 {
            out.push("--listen".into());
            out.push(self.listen.to_string().into());
        }
        if let Some(m) = &self.manifest {
            out.push("--manifest".into());
            out.push(m.clone().into_os_string());
        }
        out.push("--hidden".into());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_flags_as_serve() {
        let a = AppArgs::try_parse_from([
            "kitedesk-app",
            "--data-dir",
            "/tmp/kd",
            "--listen",
            "127.0.0.1:0",
            "--hidden",
        ])
        .unwrap();
        assert_eq!(a.data_dir(), PathBuf::from("/tmp/kd"));
        assert_eq!(a.listen.port(), 0);
        assert!(a.hidden);
        let cfg = a.daemon_config().unwrap();
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/kd"));
        assert!(
            cfg.manifest_path.is_none(),
            "no --manifest: embedded default"
        );
    }

    #[test]
    fn autostart_args_keep_explicit_flags_but_not_port_zero() {
        let a = AppArgs::try_parse_from([
            "kitedesk-app",
            "--data-dir",
            "/d",
            "--listen",
            "127.0.0.1:0",
        ])
        .unwrap();
        assert_eq!(a.autostart_args(), ["--data-dir", "/d", "--hidden"]);
        let b = AppArgs::try_parse_from(["kitedesk-app", "--listen", "127.0.0.1:7800"]).unwrap();
        assert_eq!(
            b.autostart_args(),
            ["--listen", "127.0.0.1:7800", "--hidden"]
        );
    }

    #[test]
    fn missing_manifest_names_the_path() {
        let a = AppArgs::try_parse_from(["kitedesk-app", "--manifest", "/nonexistent/kite.json"])
            .unwrap();
        let err = format!("{:#}", a.daemon_config().unwrap_err());
        assert!(err.contains("/nonexistent/kite.json"), "{err}");
    }
}
