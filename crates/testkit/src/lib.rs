//! Test-only helpers that start the real desktop services an end-to-end test
//! needs, privately and in parallel with other tests:
//!
//! * a D-Bus session bus of its own (`dbus-daemon`), with or without service
//!   activation (without it, nothing a test did not start is present: "no
//!   notification server", "no keychain");
//! * an X display (`Xvfb`, display number picked by Xvfb itself);
//! * a notification server (`dunst`) and a watch on `Notify` calls;
//! * an unlocked Secret Service keychain (`gnome-keyring-daemon`).
//!
//! Nothing here touches the test process's own environment (setting
//! variables in a multi-threaded test binary is unsound): tests run the
//! program under test as a child with [`DesktopSession::command`].
//! Every child is killed when the session is dropped.

mod notifications;
mod poll;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

pub use notifications::{Notification, NotificationWatch};
pub use poll::eventually_within;

/// How long a service may take to appear on the bus.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// The keychain password of the test keyring (it only guards a temp dir).
const KEYRING_PASSWORD: &str = "kitedesk-test";

/// What to start; see [`DesktopSession::builder`].
#[derive(Debug, Clone)]
pub struct SessionBuilder {
    display: bool,
    notifications: bool,
    keyring: bool,
    activation: bool,
}

/// A running private desktop session. Dropping it stops every service.
#[derive(Debug)]
pub struct DesktopSession {
    dir: tempfile::TempDir,
    bus_address: String,
    display: Option<String>,
    env: Vec<(String, String)>,
    children: Vec<(&'static str, Child)>,
}

impl SessionBuilder {
    /// Start `Xvfb` and give children its `DISPLAY`.
    pub fn display(mut self, on: bool) -> Self {
        self.display = on;
        self
    }
    /// Start `dunst` (implies a display).
    pub fn notifications(mut self, on: bool) -> Self {
        self.notifications = on;
        self
    }
    /// Start an unlocked `gnome-keyring-daemon` (secrets component).
    pub fn keyring(mut self, on: bool) -> Self {
        self.keyring = on;
        self
    }
    /// Whether the bus may start services on demand (the standard session
    /// service directories). Off: only what this session started exists.
    pub fn activation(mut self, on: bool) -> Self {
        self.activation = on;
        self
    }

    pub fn start(self) -> anyhow::Result<DesktopSession> {
        let dir = tempfile::Builder::new()
            .prefix("kitedesk-session-")
            .tempdir()?;
        let mut session = DesktopSession {
            bus_address: String::new(),
            display: None,
            env: Vec::new(),
            children: Vec::new(),
            dir,
        };
        session.prepare_dirs()?;
        session.start_bus(self.activation)?;
        if self.display || self.notifications {
            session.start_display()?;
        }
        if self.keyring {
            session.start_keyring()?;
        }
        if self.notifications {
            let child = session.spawn_logged("dunst", session.command("dunst"))?;
            session.children.push(("dunst", child));
            session.wait_for_name("org.freedesktop.Notifications", "dunst")?;
        }
        Ok(session)
    }
}

impl DesktopSession {
    /// Nothing started yet: a bus with activation, no display, no services.
    pub fn builder() -> SessionBuilder {
        SessionBuilder {
            display: false,
            notifications: false,
            keyring: false,
            activation: true,
        }
    }

    /// The environment a child needs to live in this session.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env.clone()
    }

    /// The session bus address (`unix:path=…`).
    pub fn bus_address(&self) -> &str {
        &self.bus_address
    }

    /// The X display (`:N`) when one was started.
    pub fn display(&self) -> Option<&str> {
        self.display.as_deref()
    }

    /// A scratch directory that lives as long as the session.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A command that runs `program` inside this session: the session's
    /// variables set, and no way back to the developer's own desktop.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_remove("WAYLAND_DISPLAY").env_remove("DISPLAY");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Start watching `Notify` calls on the bus. Returns once the watch is
    /// live, so every later notification is seen.
    pub fn notifications(&self) -> anyhow::Result<NotificationWatch> {
        NotificationWatch::start(self)
    }

    /// The secret stored under these attributes in the session's keychain
    /// (`secret-tool lookup`), if any.
    pub fn secret_lookup(&self, attributes: &[(&str, &str)]) -> Option<String> {
        let mut cmd = self.command("secret-tool");
        cmd.arg("lookup");
        for (k, v) in attributes {
            cmd.arg(k).arg(v);
        }
        let out = cmd.stderr(Stdio::null()).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn prepare_dirs(&mut self) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        for (var, sub) in [
            ("HOME", "home"),
            ("XDG_RUNTIME_DIR", "runtime"),
            ("XDG_DATA_HOME", "data"),
            ("XDG_CONFIG_HOME", "config"),
            ("XDG_CACHE_HOME", "cache"),
        ] {
            let path = self.dir.path().join(sub);
            std::fs::create_dir_all(&path)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
            self.env.push((var.into(), path_str(&path)?));
        }
        // No accessibility bus: it would wait for a service that is not there.
        self.env.push(("NO_AT_BRIDGE".into(), "1".into()));
        Ok(())
    }

    fn start_bus(&mut self, activation: bool) -> anyhow::Result<()> {
        let servicedirs = if activation {
            "<standard_session_servicedirs/>"
        } else {
            ""
        };
        let config = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  {servicedirs}
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            dir = path_str(&self.dir.path().join("runtime"))?,
        );
        let config_path = self.dir.path().join("bus.conf");
        std::fs::write(&config_path, config)?;
        let mut cmd = self.command("dbus-daemon");
        cmd.arg(format!("--config-file={}", path_str(&config_path)?))
            .args(["--nofork", "--print-address=1"]);
        let (child, address) = self.spawn_and_read_line("dbus-daemon", cmd)?;
        self.children.push(("dbus-daemon", child));
        self.bus_address = address.clone();
        self.env.push(("DBUS_SESSION_BUS_ADDRESS".into(), address));
        Ok(())
    }

    fn start_display(&mut self) -> anyhow::Result<()> {
        let mut cmd = self.command("Xvfb");
        // -displayfd: Xvfb picks a free display and writes its number once
        // it accepts connections.
        cmd.args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ]);
        let (child, number) = self.spawn_and_read_line("Xvfb", cmd)?;
        self.children.push(("Xvfb", child));
        let display = format!(":{number}");
        self.env.push(("DISPLAY".into(), display.clone()));
        self.display = Some(display);
        Ok(())
    }

    fn start_keyring(&mut self) -> anyhow::Result<()> {
        let mut cmd = self.command("gnome-keyring-daemon");
        cmd.args(["--foreground", "--unlock", "--components=secrets"])
            .stdin(Stdio::piped());
        let mut child = self.spawn_logged("gnome-keyring-daemon", cmd)?;
        {
            let mut stdin = child.stdin.take().context("gnome-keyring stdin")?;
            stdin.write_all(KEYRING_PASSWORD.as_bytes())?;
        } // closing stdin ends the password
        self.children.push(("gnome-keyring-daemon", child));
        self.wait_for_name("org.freedesktop.secrets", "gnome-keyring-daemon")
    }

    /// Spawn with stdout/stderr into a log file under the session dir.
    fn spawn_logged(&self, name: &str, mut cmd: Command) -> anyhow::Result<Child> {
        let log = std::fs::File::create(self.log_path(name))?;
        cmd.stdout(log.try_clone()?).stderr(log);
        cmd.spawn()
            .with_context(|| format!("cannot start {name} (is it installed? run scripts/setup.sh)"))
    }

    /// Spawn with stdout piped and return its first line (a readiness
    /// signal: dbus-daemon's address, Xvfb's display number).
    fn spawn_and_read_line(&self, name: &str, mut cmd: Command) -> anyhow::Result<(Child, String)> {
        let log = std::fs::File::create(self.log_path(name))?;
        cmd.stdout(Stdio::piped()).stderr(log);
        let mut child = cmd.spawn().with_context(|| {
            format!("cannot start {name} (is it installed? run scripts/setup.sh)")
        })?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let line = line.trim().to_owned();
        if line.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{name} exited before it was ready: {}", self.log_tail(name));
        }
        Ok((child, line))
    }

    /// Poll the bus until `name` has an owner (or the child that should own
    /// it died, or the deadline passed).
    fn wait_for_name(&mut self, name: &str, child_name: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if self.name_has_owner(name)? {
                return Ok(());
            }
            if let Some((_, child)) = self.children.iter_mut().find(|(n, _)| *n == child_name)
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "{child_name} exited ({status}): {}",
                    self.log_tail(child_name)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} did not appear on the bus within {START_DEADLINE:?}: {}",
                    self.log_tail(child_name)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether a bus name has an owner (`NameHasOwner`).
    pub fn name_has_owner(&self, name: &str) -> anyhow::Result<bool> {
        let out = self
            .command("dbus-send")
            .args([
                &format!("--bus={}", self.bus_address),
                "--print-reply=literal",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                &format!("string:{name}"),
            ])
            .output()
            .context("cannot run dbus-send")?;
        if !out.status.success() {
            bail!("dbus-send failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).contains("true"))
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    /// The end of a service's log, for error messages.
    pub fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.log_path(name)).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        format!("[{name} log] {}", &text[start..])
    }
}

impl Drop for DesktopSession {
    fn drop(&mut self) {
        // Reverse order: services before the display and the bus.
        while let Some((_, mut child)) = self.children.pop() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn path_str(p: &Path) -> anyhow::Result<String> {
    p.to_str()
        .map(str::to_owned)
        .with_context(|| format!("not UTF-8: {}", p.display()))
}
