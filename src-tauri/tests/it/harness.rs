//! Starting the app, the tray host stand-in, and talking to both.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kitedesk_testkit::DesktopSession;

/// The API token the app is started with (`KITEDESK_API_TOKEN`).
pub const TOKEN: &str = "kd_e2e_0123456789abcdef0123";

/// Generous: a debug build under Xvfb on a busy 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Poll `f` until it returns `Some`, or give up at the deadline.
pub fn wait_for<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn desktop_session(activation: bool) -> DesktopSession {
    DesktopSession::builder()
        .display(true)
        .activation(activation)
        .start()
        .unwrap()
}

/// `tests/desktop/sni_watcher.py`: owns `org.kde.StatusNotifierWatcher`
/// and prints `REGISTERED item=…` for each tray item.
pub struct Watcher {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Watcher {
    pub fn start(session: &DesktopSession) -> Watcher {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/desktop/sni_watcher.py");
        let mut child = session
            .command("/usr/bin/python3")
            .arg(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        // Printed after it owns the name: the app will find it.
        assert_eq!(
            first.trim(),
            "watcher ready",
            "the SNI watcher did not start"
        );
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Watcher { child, lines }
    }

    /// The first registered tray item as (bus name, object path).
    pub fn wait_registered(&self) -> (String, String) {
        wait_for("the tray item to register", DEADLINE, || {
            let lines = self.lines.lock().unwrap();
            let item = lines
                .iter()
                .find_map(|l| l.strip_prefix("REGISTERED item="))?
                .split(' ')
                .next()?
                .to_string();
            // Either "busname/path" or a bare bus name (default path).
            Some(match item.split_once('/') {
                Some((svc, path)) => (svc.to_string(), format!("/{path}")),
                None => (item, "/StatusNotifierItem".to_string()),
            })
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `kitedesk-app`.
pub struct App {
    pub child: Child,
    pub data_dir: PathBuf,
    pub url: String,
    log: PathBuf,
}

pub fn app_command(session: &DesktopSession, data_dir: &Path, log: &Path) -> Command {
    let mut cmd = session.command(env!("CARGO_BIN_EXE_kitedesk-app"));
    cmd.arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0", "--hidden"])
        .env("KITEDESK_API_TOKEN", TOKEN)
        .env("KITEDESK_LOG", "info,kitedesk_app=debug")
        .env_remove("KITEDESK_DATA_DIR")
        .env_remove("KITEDESK_LISTEN")
        .env_remove("KITEDESK_MANIFEST")
        .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
        .stderr(std::fs::File::create(log).unwrap());
    cmd
}

impl App {
    /// Start the app and wait until its daemon has written `daemon.json`.
    pub fn start(session: &DesktopSession, name: &str) -> App {
        let data_dir = session.dir().join(format!("{name}-data"));
        let log = session.dir().join(format!("{name}.log"));
        let child = app_command(session, &data_dir, &log).spawn().unwrap();
        let mut app = App {
            child,
            data_dir,
            url: String::new(),
            log,
        };
        app.url = wait_for("the app's daemon.json", DEADLINE, || {
            if let Ok(Some(status)) = app.child.try_wait() {
                panic!("the app exited early ({status}): {}", app.log());
            }
            let text = std::fs::read_to_string(app.data_dir.join("daemon.json")).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            Some(v["url"].as_str()?.to_string())
        });
        app
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        wait_for("the app to exit", within, || self.child.try_wait().unwrap())
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every process below `pid` (children, grandchildren, …) as (pid, comm).
pub fn descendants(pid: u32) -> Vec<(u32, String)> {
    let mut parent = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may hold spaces, so split at ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let Some((p, comm)) = head.split_once(" (") else {
            continue;
        };
        let (Ok(p), Some(Ok(ppid))) = (
            p.trim().parse::<u32>(),
            rest.split_whitespace().nth(1).map(str::parse::<u32>),
        ) else {
            continue;
        };
        parent.insert(p, (ppid, comm.to_string()));
    }
    let mut out: Vec<(u32, String)> = parent
        .iter()
        .filter(|(p, _)| {
            let mut q = **p;
            while let Some((pp, _)) = parent.get(&q) {
                if *pp == pid {
                    return true;
                }
                q = *pp;
            }
            false
        })
        .map(|(p, (_, comm))| (*p, comm.clone()))
        .collect();
    out.sort();
    out
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// The X windows whose name matches `name` (a regex, `xdotool search`).
pub fn windows_named(session: &kitedesk_testkit::DesktopSession, name: &str) -> Vec<String> {
    let out = session
        .command("xdotool")
        .args(["search", "--name", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// A plain HTTP/1.1 request (no client library needed for two verbs).
/// Returns (status, body).
pub fn http(url: &str, method: &str, path: &str, body: &str, token: Option<&str>) -> (u16, String) {
    let host = url.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split(' ').nth(1).unwrap().parse().unwrap();
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub fn post_hook(url: &str, source: &str, body: &str) {
    let (status, text) = http(url, "POST", &format!("/hooks/{source}"), body, None);
    assert_eq!(status, 202, "webhook to {source} not accepted: {text}");
}

/// `gdbus call` in the session; panics with its stderr on failure.
pub fn gdbus(
    session: &DesktopSession,
    dest: &str,
    path: &str,
    method: &str,
    args: &[&str],
) -> String {
    let out = session
        .command("gdbus")
        .args([
            "call",
            "--session",
            "--dest",
            dest,
            "--object-path",
            path,
            "--method",
            method,
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gdbus {method} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tray item, reached the way a panel does.
pub struct TrayItem<'a> {
    session: &'a DesktopSession,
    pub service: String,
    pub path: String,
    pub menu: String,
}

impl<'a> TrayItem<'a> {
    pub fn find(session: &'a DesktopSession, watcher: &Watcher) -> TrayItem<'a> {
        let (service, path) = watcher.wait_registered();
        let raw = gdbus(
            session,
            &service,
            &path,
            "org.freedesktop.DBus.Properties.Get",
            &["org.kde.StatusNotifierItem", "Menu"],
        );
        // (<objectpath '/org/ayatana/NotificationItem/…/Menu'>,)
        let menu = raw
            .split('\'')
            .nth(1)
            .unwrap_or_else(|| panic!("no Menu property in {raw}"))
            .to_string();
        TrayItem {
            session,
            service,
            path,
            menu,
        }
    }

    pub fn property(&self, name: &str) -> String {
        gdbus(
            self.session,
            &self.service,
            &self.path,
            "org.freedesktop.DBus.Properties.Get",
            &["org.kde.StatusNotifierItem", name],
        )
    }

    /// `com.canonical.dbusmenu.GetLayout` of the whole menu, as gdbus prints it.
    pub fn layout(&self) -> String {
        gdbus(
            self.session,
            &self.service,
            &self.menu,
            "com.canonical.dbusmenu.GetLayout",
            &["--", "0", "-1", "[]"],
        )
    }

    /// Poll the layout until `pred` holds; returns it.
    pub fn wait_layout(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let last = self.layout();
            if pred(&last) {
                return last;
            }
            assert!(
                Instant::now() < end,
                "menu never showed {what}; last layout: {last}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Click the item labelled `label` (`com.canonical.dbusmenu.Event`).
    pub fn click(&self, label: &str) {
        let layout = self.layout();
        let id = item_id(&layout, label).unwrap_or_else(|| panic!("no {label:?} in {layout}"));
        gdbus(
            self.session,
            &self.service,
            &self.menu,
            "com.canonical.dbusmenu.Event",
            &["--", &id.to_string(), "clicked", "<int32 0>", "0"],
        );
    }
}

/// The dbusmenu id of the item with this exact label. In gdbus's text an
/// item is `<(ID, {…, 'label': <'LABEL'>, …}, [children])>`: the id is the
/// number after the nearest `<(` before the label.
pub fn item_id(layout: &str, label: &str) -> Option<i32> {
    let at = layout.find(&format!("'label': <'{label}'>"))?;
    let start = layout[..at].rfind("<(")? + 2;
    let digits: String = layout[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[test]
fn item_id_reads_gdbus_text() {
    let layout = "((uint32 4, (0, {'children-display': <'submenu'>}, [<(1, {'enabled': <false>, 'label': <'Kite Desk: connected'>}, @av [])>, <(12, {'label': <'Quit'>}, @av [])>])),)";
    assert_eq!(item_id(layout, "Quit"), Some(12));
    assert_eq!(item_id(layout, "Kite Desk: connected"), Some(1));
    assert_eq!(item_id(layout, "Open"), None);
}
