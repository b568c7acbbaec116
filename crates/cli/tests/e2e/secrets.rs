//! Secrets with the REAL keychain: a private D-Bus session with an unlocked
//! gnome-keyring (crates/testkit), `kitedesk serve` and `kitedesk secrets`
//! as child processes in it.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kitedesk_core::verify::{self, Scheme, Secret};
use kitedesk_testkit::DesktopSession;

use super::push_body;

/// Distinctive values, so a byte search for them cannot hit by accident.
const FIRST: &str = "kd-e2e-first-7f3a9c2e5b8d41f6a0c3";
const SECOND: &str = "kd-e2e-second-1b6e8d0f4a2c97e5b3d1";

pub(super) struct Daemon {
    child: Child,
    pub(super) url: String,
    pub(super) token: String,
    pub(super) data_dir: PathBuf,
    pub(super) log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn kitedesk(session: &DesktopSession, data_dir: &Path) -> Command {
    let mut c = session.command(env!("CARGO_BIN_EXE_kitedesk"));
    c.env("KITEDESK_DATA_DIR", data_dir)
        .env_remove("KITEDESK_URL")
        .env_remove("KITEDESK_API_TOKEN")
        .env_remove("KITEDESK_MANIFEST")
        .env_remove("KITEDESK_GITHUB_SECRET")
        .env_remove("KITEDESK_RELAY_TOKEN")
        .env_remove("KITEDESK_RELAY_URL")
        .env_remove("KITEDESK_RELAY_TEAM");
    c
}

/// `kitedesk serve` in the session, debug logging to a file.
pub(super) fn serve(session: &DesktopSession, dir: &Path) -> Daemon {
    serve_with(session, dir, &[])
}

fn serve_with(session: &DesktopSession, dir: &Path, extra: &[&str]) -> Daemon {
    let data_dir = dir.join("data");
    let log = dir.join("daemon.log");
    let mut child = kitedesk(session, &data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("KITEDESK_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut found = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("UI:") {
            let (u, t) = rest.trim().split_once("/?token=").unwrap();
            found = Some((u.to_string(), t.to_string()));
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let (url, token) = found.expect("serve prints the UI URL");
    Daemon {
        child,
        url,
        token,
        data_dir,
        log,
    }
}

/// Run `kitedesk secrets …` with `stdin` piped in.
fn cli(session: &DesktopSession, d: &Daemon, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = kitedesk(session, &d.data_dir)
        .arg("secrets")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

async fn post_hook(d: &Daemon, secret: Option<&str>, delivery: &str) -> (u16, serde_json::Value) {
    let body = push_body();
    let mut req = reqwest::Client::new()
        .post(format!("{}/hooks/github", d.url))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", delivery)
        .body(body.clone());
    if let Some(s) = secret {
        for (k, v) in verify::sign(
            Scheme::Github,
            &Secret::new(s),
            &body,
            chrono::Utc::now(),
            "",
        ) {
            req = req.header(k, v);
        }
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

pub(super) async fn api(
    d: &Daemon,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", d.url))
        .bearer_auth(&d.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

pub(super) fn lookup(session: &DesktopSession, account: &str) -> Option<String> {
    session.secret_lookup(&[("service", "kitedesk"), ("username", account)])
}

/// Every file under `dir`, recursively.
pub(super) fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

pub(super) fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_live_in_the_real_keychain_and_nowhere_else() {
    let session = DesktopSession::builder().keyring(true).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = serve(&session, dir.path());

    // set: the value comes from stdin, lands in the keychain.
    let (ok, _, err) = cli(
        &session,
        &d,
        &["set", "webhook/github"],
        &format!("{FIRST}\n"),
    );
    assert!(ok, "secrets set failed: {err}");
    assert_eq!(
        lookup(&session, "webhook/github").as_deref(),
        Some(FIRST),
        "secret-tool finds the value under service=kitedesk username=webhook/github"
    );

    // It verifies a signed webhook; unsigned ones are now refused.
    let (status, out) = post_hook(&d, Some(FIRST), "sec-1").await;
    assert_eq!(status, 202, "{out}");
    assert_eq!(out["verified"], true);
    let (status, _) = post_hook(&d, None, "sec-unsigned").await;
    assert_eq!(status, 401, "with a secret, github webhooks must be signed");

    let (ok, list, err) = cli(&session, &d, &["list"], "");
    assert!(ok, "{err}");
    assert!(
        list.contains("webhook/github") && list.contains("secret-service"),
        "{list}"
    );
    assert!(!list.contains(FIRST), "list shows no value");

    // Rotate with a short grace window: both values verify, then only the new.
    let (status, meta) = api(
        &d,
        reqwest::Method::POST,
        "/api/secrets/webhook/github/rotate",
        Some(serde_json::json!({"value": SECOND, "grace_secs": 3})),
    )
    .await;
    assert_eq!(status, 200, "{meta}");
    assert_eq!(lookup(&session, "webhook/github").as_deref(), Some(SECOND));
    assert_eq!(
        lookup(&session, "webhook/github#previous").as_deref(),
        Some(FIRST),
        "the previous value waits out its grace window in the keychain"
    );
    assert_eq!(post_hook(&d, Some(SECOND), "sec-2").await.0, 202);
    assert_eq!(
        post_hook(&d, Some(FIRST), "sec-3").await.0,
        202,
        "the old value verifies inside the grace window"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    loop {
        n += 1;
        let (status, _) = post_hook(&d, Some(FIRST), &format!("sec-old-{n}")).await;
        if status == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "the old value never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(post_hook(&d, Some(SECOND), "sec-4").await.0, 202);

    // reveal prints exactly the value.
    let (ok, out, err) = cli(&session, &d, &["reveal", "webhook/github"], "");
    assert!(ok, "{err}");
    assert_eq!(out, format!("{SECOND}\n"));

    // Neither value is in the database, the data dir or the daemon's log.
    let mut checked = 0;
    for f in files(&d.data_dir).into_iter().chain([d.log.clone()]) {
        let bytes = std::fs::read(&f).unwrap();
        for v in [FIRST, SECOND] {
            assert!(
                !contains(&bytes, v),
                "a secret value leaked into {}",
                f.display()
            );
        }
        checked += 1;
    }
    assert!(
        files(&d.data_dir).iter().any(|f| f.ends_with("history.db")),
        "the SQLite file was among the files searched"
    );
    assert!(checked >= 3, "searched {checked} files");
    // The search does see what was stored and logged (so it could fail).
    assert!(
        files(&d.data_dir)
            .iter()
            .any(|f| contains(&std::fs::read(f).unwrap(), "sec-1")),
        "the stored delivery id is found in the data dir"
    );
    let log = std::fs::read(&d.log).unwrap();
    assert!(
        contains(&log, "secret stored in the keychain"),
        "the daemon logged the set"
    );

    // rm removes the value from the keychain.
    let (ok, _, err) = cli(&session, &d, &["rm", "webhook/github"], "");
    assert!(ok, "{err}");
    assert_eq!(lookup(&session, "webhook/github"), None);
    assert_eq!(lookup(&session, "webhook/github#previous"), None);
    let (status, _) = post_hook(&d, None, "sec-after-rm").await;
    assert_eq!(
        status, 202,
        "without a secret the embedded default allows unsigned github webhooks"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_keychain_the_daemon_runs_and_says_what_is_missing() {
    // A bus with no service activation and no keyring started: no Secret
    // Service at all.
    let session = DesktopSession::builder()
        .activation(false)
        .keyring(false)
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = serve(&session, dir.path());

    let (status, err) = api(&d, reqwest::Method::GET, "/api/secrets", None).await;
    assert_eq!(status, 503, "{err}");
    assert_eq!(err["code"], "keychain_unavailable");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.starts_with("no Secret Service on the session bus (DBUS_SESSION_BUS_ADDRESS=unix:"),
        "{msg}"
    );
    let (status, health) = api(&d, reqwest::Method::GET, "/api/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(health["secrets"]["backend"], "unavailable", "{health}");

    let (ok, _, err) = cli(&session, &d, &["set", "webhook/github"], FIRST);
    assert!(!ok, "set must fail without a keychain");
    assert!(
        err.contains("keychain_unavailable") && err.contains("no Secret Service"),
        "{err}"
    );

    // The daemon keeps working.
    assert_eq!(post_hook(&d, None, "nokc-1").await.0, 202);
    let log = std::fs::read(&d.log).unwrap();
    assert!(
        !contains(&log, FIRST),
        "a refused value is not logged either"
    );
}

#[test]
fn values_never_come_from_argv_and_a_daemon_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kitedesk"))
            .env("KITEDESK_DATA_DIR", dir.path())
            .env_remove("KITEDESK_URL")
            .env_remove("KITEDESK_API_TOKEN")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["secrets", "set", "webhook/github", FIRST]);
    assert!(
        !out.status.success(),
        "a value on the command line is refused, not stored"
    );
    let out = run(&["secrets", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no Kite Desk daemon is running") && err.contains("kitedesk serve"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_locked_keychain_is_named_as_such() {
    // A Secret Service whose keyring was never unlocked (and no prompter
    // can be started): every read or write needs an unlock that cannot
    // happen.
    let session = DesktopSession::builder()
        .activation(false)
        .keyring(false)
        .start()
        .unwrap();
    let mut keyring = session
        .command("gnome-keyring-daemon")
        .args(["--foreground", "--components=secrets"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !session.name_has_owner("org.freedesktop.secrets").unwrap() {
        assert!(
            Instant::now() < deadline,
            "gnome-keyring never appeared on the bus"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = tempfile::tempdir().unwrap();
    let d = serve(&session, dir.path());
    let (status, err) = api(&d, reqwest::Method::GET, "/api/secrets", None).await;
    let _ = keyring.kill();
    let _ = keyring.wait();
    assert_eq!(status, 503, "{err}");
    assert_eq!(err["code"], "keychain_unavailable");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("the keychain is locked"),
        "{err}"
    );
}

/// `kitedesk relay --data-dir DIR ARGS…` (an admin command); its stdout.
pub(super) fn relay_admin(relay_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kitedesk"))
        .arg("relay")
        .arg("--data-dir")
        .arg(relay_dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kitedesk relay {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub(super) struct RelayProc {
    child: Child,
    pub(super) ws: String,
    pub(super) hooks: String,
    pub(super) log: PathBuf,
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real `kitedesk relay` on a free port; its URLs from stdout (printed
/// once it listens).
pub(super) fn relay(relay_dir: &Path) -> RelayProc {
    let log = relay_dir.join("relay.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kitedesk"))
        .arg("relay")
        .arg("--data-dir")
        .arg(relay_dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("KITEDESK_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut ws, mut hooks) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        let line = line.trim();
        if let Some(u) = line.strip_prefix("websocket:") {
            ws = Some(u.trim().to_string());
        }
        if let Some(u) = line.strip_prefix("hooks:") {
            hooks = Some(u.trim().to_string());
        }
        if ws.is_some() && hooks.is_some() {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    RelayProc {
        child,
        ws: ws.expect("the relay prints its websocket URL"),
        hooks: hooks.expect("the relay prints its hook URL"),
        log,
    }
}

/// The daemon's connection named `name` in `GET /api/health`.
async fn connection(d: &Daemon, name: &str) -> serde_json::Value {
    let (status, health) = api(d, reqwest::Method::GET, "/api/health", None).await;
    assert_eq!(status, 200, "{health}");
    health["connections"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no connection {name:?} in {health}"))
}

pub(super) async fn wait_until<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    kitedesk_testkit::eventually_within(Duration::from_secs(60), what, f).await
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_link_takes_its_api_token_from_the_keychain() {
    let session = DesktopSession::builder().keyring(true).start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let relay_dir = dir.path().join("relay");
    let team = relay_admin(&relay_dir, &["teams", "create", "acme"]);
    let api_token = relay_admin(
        &relay_dir,
        &["tokens", "create", "--team", &team, "--kind", "api"],
    );
    let hook_token = relay_admin(
        &relay_dir,
        &["tokens", "create", "--team", &team, "--kind", "hook"],
    );
    let r = relay(&relay_dir);

    // No token anywhere yet: the daemon runs, the link waits, and says for
    // which secret. No KITEDESK_RELAY_TOKEN either (kitedesk() clears it).
    let d = serve_with(
        &session,
        dir.path(),
        &[
            "--relay",
            &r.ws,
            "--team",
            &team,
            "--relay-token-secret",
            "relay/acme",
            "--relay-reconnect-min",
            "50ms",
        ],
    );
    let link = connection(&d, "relay").await;
    assert_eq!(link["state"], "offline", "{link}");
    let error = link["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("\"relay/acme\"") && error.contains("kitedesk secrets set relay/acme"),
        "the error names the missing secret and how to add it: {link}"
    );

    // Store it through the CLI (stdin): the waiting link starts and connects.
    let (ok, _, err) = cli(
        &session,
        &d,
        &["set", "relay/acme", "--kind", "relay_token"],
        &format!("{api_token}\n"),
    );
    assert!(ok, "secrets set failed: {err}");
    assert_eq!(
        lookup(&session, "relay/acme").as_deref(),
        Some(api_token.as_str()),
        "the token is in the keychain"
    );
    wait_until("the link to connect with the keychain token", || async {
        (connection(&d, "relay").await["state"] == "connected").then_some(())
    })
    .await;

    // A webhook into the relay reaches the daemon's history over the link.
    let resp = reqwest::Client::new()
        .post(
            r.hooks
                .replace("{team_id}", &team)
                .replace("{source}", "app"),
        )
        .bearer_auth(&hook_token)
        .header("content-type", "application/cloudevents+json")
        .body(
            serde_json::json!({
                "specversion": "1.0", "id": "kc-1", "source": "https://e2e.test/app",
                "type": "com.app.tick", "kitesummary": "through the keychain link", "data": {}
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "relay answered {}",
        resp.status()
    );
    wait_until("the event in the daemon's history", || async {
        let (_, page) = api(&d, reqwest::Method::GET, "/api/events?limit=5", None).await;
        page.to_string()
            .contains("through the keychain link")
            .then_some(())
    })
    .await;

    // The token is in the keychain only: not in the daemon's files (history,
    // config, its debug log) nor in any API answer.
    let (_, secrets) = api(&d, reqwest::Method::GET, "/api/secrets", None).await;
    let (_, health) = api(&d, reqwest::Method::GET, "/api/health", None).await;
    for (what, text) in [
        ("secrets list", secrets.to_string()),
        ("health", health.to_string()),
    ] {
        assert!(
            !text.contains(&api_token),
            "the token leaked into {what}: {text}"
        );
    }
    let mut checked = files(&d.data_dir);
    checked.extend([d.log.clone(), r.log.clone()]);
    for f in checked {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains(&bytes, &api_token),
            "the relay token is in {}",
            f.display()
        );
    }
}
