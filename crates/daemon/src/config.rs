//! Daemon configuration: data dir, listen address, manifest, API token.
//!
//! Precedence (lowest first): the embedded default `kite.json`, the user's
//! manifest file, `KITEDESK_*` environment, command-line flags. The CLI
//! resolves flags and environment; this module holds the result.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use kitedesk_core::Manifest;
use serde::{Deserialize, Serialize};

/// Where `kitedesk serve` listens unless told otherwise. Not the Kite
/// relay's 7700, so a local relay and the daemon can run side by side.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7710";

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub manifest: Manifest,
    /// Where the manifest came from, for messages (`None` = embedded default).
    pub manifest_path: Option<PathBuf>,
    /// Variables to read source secrets from instead of the process
    /// environment (tests, and shells that hold secrets elsewhere).
    pub env_override: Option<std::collections::HashMap<String, String>>,
    /// Where secret values live; `None`: the OS keychain (Secret Service).
    pub keychain: Option<std::sync::Arc<dyn kitedesk_secrets::Keychain>>,
    /// Relay links to stream from, beside the local ingress.
    pub relays: Vec<crate::links::RelayLink>,
}

impl DaemonConfig {
    pub fn new(data_dir: PathBuf, listen: SocketAddr, manifest: Manifest) -> Self {
        Self {
            data_dir,
            listen,
            manifest,
            manifest_path: None,
            env_override: None,
            keychain: None,
            relays: Vec::new(),
        }
    }

    /// The value of an environment variable, honouring `env_override`.
    pub fn env_var(&self, name: &str) -> Option<String> {
        match &self.env_override {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    /// The API is for this machine only: refuse anything but loopback.
    pub fn check_listen(&self) -> anyhow::Result<()> {
        if !self.listen.ip().is_loopback() {
            bail!(
                "refusing to listen on {}: the Kite Desk API binds to loopback only (use 127.0.0.1 or [::1])",
                self.listen
            );
        }
        Ok(())
    }
}

/// Load a manifest file, or the embedded default when `path` is `None`.
pub fn load_manifest(path: Option<&Path>) -> anyhow::Result<Manifest> {
    match path {
        None => Ok(Manifest::embedded_default()),
        Some(p) => {
            let bytes = std::fs::read(p)
                .with_context(|| format!("cannot read manifest {}", p.display()))?;
            Manifest::from_json(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
        }
    }
}

/// The API token: `KITEDESK_API_TOKEN` if set, else the one stored in the
/// data dir (created once, mode 0600).
pub fn api_token(data_dir: &Path) -> anyhow::Result<String> {
    if let Ok(t) = std::env::var("KITEDESK_API_TOKEN") {
        let t = t.trim().to_string();
        if t.len() < 16 {
            bail!("KITEDESK_API_TOKEN must be at least 16 characters");
        }
        return Ok(t);
    }
    let path = data_dir.join("api-token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let token = format!("kd_{}", hex_token());
    write_private(&path, token.as_bytes())?;
    Ok(token)
}

fn hex_token() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write a file only the owner can read.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(contents)?;
    Ok(())
}

/// Make the data dir private to the user (it holds the token and history).
pub fn restrict_dir(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
}

/// What a running daemon publishes in `daemon.json` so the CLI can find it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RuntimeInfo {
    pub url: String,
    pub pid: u32,
}

impl RuntimeInfo {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            url: format!("http://{addr}"),
            pid: std::process::id(),
        }
    }

    pub fn read(data_dir: &Path) -> Option<RuntimeInfo> {
        let text = std::fs::read_to_string(data_dir.join("daemon.json")).ok()?;
        serde_json::from_str(&text).ok()
    }
}

pub fn write_runtime_info(path: &Path, info: &RuntimeInfo) -> anyhow::Result<()> {
    write_private(path, serde_json::to_string_pretty(info)?.as_bytes())
}

/// The default data dir: `$XDG_DATA_HOME/kitedesk` (~/.local/share/kitedesk).
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("kitedesk")
}
