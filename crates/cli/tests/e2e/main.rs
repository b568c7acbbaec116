//! End to end: the real `kitedesk` binary, a real socket on 127.0.0.1:0, a
//! real SQLite file. Webhooks go in through the ingress and come back out
//! through the API, the SSE feed and `kitedesk events`.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic with the failing value"
)]

mod faults;
mod forward;
mod forward_faults;
mod notify;
mod secrets;
mod settings_cli;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt as _;
use kitedesk_core::verify::{self, Scheme, Secret};

const SECRET: &str = "e2e-github-secret";

fn kitedesk(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kitedesk"));
    c.env("KITEDESK_DATA_DIR", data_dir)
        .env("KITEDESK_GITHUB_SECRET", SECRET)
        .env_remove("KITEDESK_URL")
        .env_remove("KITEDESK_API_TOKEN")
        .env_remove("KITEDESK_MANIFEST");
    c
}

struct Served {
    child: Child,
    url: String,
    token: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `kitedesk serve` on port 0 and read its URL from stdout (the
/// socket is bound before the line is printed, so no waiting is needed).
fn serve(data_dir: &Path) -> Served {
    serve_with(data_dir, &[])
}

/// [`serve`] with extra arguments (`--manifest …`).
fn serve_with(data_dir: &Path, extra: &[&str]) -> Served {
    let mut child = kitedesk(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut url = None;
    let mut token = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("UI:") {
            let (u, t) = rest.trim().split_once("/?token=").unwrap();
            url = Some(u.to_string());
            token = Some(t.to_string());
        }
        if line.trim().starts_with("Hooks:") {
            assert!(line.contains("/hooks/<source>"), "{line}");
            break;
        }
    }
    // Keep draining stdout so the daemon never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        url: url.expect("serve prints the UI URL"),
        token: token.unwrap(),
    }
}

fn run_cli(data_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = kitedesk(data_dir).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn push_body() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../core/tests/fixtures/github/push.branch-created.json"
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_in_events_out_through_api_sse_and_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = serve(dir.path());
    let http = reqwest::Client::new();

    // The live feed, opened before anything arrives.
    let resp = http
        .get(format!("{}/api/stream", d.url))
        .bearer_auth(&d.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut sse = resp.bytes_stream();
    let mut buf = String::new();
    let mut next_frame = async || loop {
        if let Some(end) = buf.find("\n\n") {
            let f: String = buf.drain(..end + 2).collect();
            if f.starts_with(':') {
                continue;
            }
            return f;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(20), sse.next())
            .await
            .expect("SSE frame in time")
            .unwrap()
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
    };
    assert!(next_frame().await.contains("event: ready"));

    // A real GitHub payload, signed as GitHub signs it.
    let body = push_body();
    let mut req = http
        .post(format!("{}/hooks/github", d.url))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", "e2e-delivery-1")
        .body(body.clone());
    for (k, v) in verify::sign(
        Scheme::Github,
        &Secret::new(SECRET),
        &body,
        chrono::Utc::now(),
        "",
    ) {
        req = req.header(k, v);
    }
    let accepted: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
    assert_eq!(accepted["status"], "accepted", "{accepted}");
    assert_eq!(accepted["verified"], true);

    // A forged one is refused and never shows up anywhere.
    let forged = http
        .post(format!("{}/hooks/github", d.url))
        .header("x-github-event", "push")
        .header("x-github-delivery", "e2e-forged")
        .header("x-hub-signature-256", format!("sha256={}", "0".repeat(64)))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    // send-test signs with the same configured secret.
    let (ok, out, err) = run_cli(dir.path(), &["send-test", "stripe"]);
    assert!(ok, "send-test: {out} {err}");
    assert!(
        out.starts_with("accepted #2 [critical] Payment of 20.00 USD"),
        "{out}"
    );

    // SSE saw both, in order.
    let f1 = next_frame().await;
    assert!(
        f1.contains("id: 1") && f1.contains("com.github.push"),
        "{f1}"
    );
    let f2 = next_frame().await;
    assert!(
        f2.contains("id: 2") && f2.contains("com.stripe.payment_intent.payment_failed"),
        "{f2}"
    );

    // The API has them.
    let page: serde_json::Value = http
        .get(format!("{}/api/events", d.url))
        .bearer_auth(&d.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "com.stripe.payment_intent.payment_failed",
            "com.github.push"
        ]
    );

    // The CLI reads them through the daemon.
    let (ok, out, err) = run_cli(dir.path(), &["events", "list", "--json"]);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[1]["event_id"], "e2e-delivery-1");
    let (ok, out, _) = run_cli(dir.path(), &["events", "search", "insufficient_funds"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("#2") && out.contains("critical"), "{out}");
    let (ok, out, _) = run_cli(dir.path(), &["events", "list", "--importance", "critical"]);
    assert!(ok && out.lines().count() == 1, "{out}");
    let (ok, out, _) = run_cli(dir.path(), &["events", "show", "e2e-delivery-1", "--json"]);
    assert!(ok);
    let ce: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ce["specversion"], "1.0");
    assert_eq!(ce["kiteverified"], true);
    let (ok, out, _) = run_cli(dir.path(), &["events", "export"]);
    assert!(ok);
    assert_eq!(
        out.lines().count(),
        2,
        "export writes one CloudEvent per line"
    );

    // With the daemon gone, the CLI reads the history file read-only.
    drop(d);
    std::fs::remove_file(dir.path().join("daemon.json")).ok();
    let (ok, out, err) = run_cli(dir.path(), &["events", "list"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[test]
fn serve_refuses_a_non_loopback_address_and_a_bad_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run_cli(dir.path(), &["serve", "--listen", "0.0.0.0:0"]);
    assert!(!ok);
    assert!(err.contains("loopback"), "{err}");
    let manifest = dir.path().join("kite.json");
    std::fs::write(
        &manifest,
        r#"{"scoring": {"rules": [{"match": {"type": "com.[x"}, "importance": "high"}]}}"#,
    )
    .unwrap();
    let (ok, _, err) = run_cli(
        dir.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--manifest",
            manifest.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("scoring.rules[0].match.type"),
        "names the field: {err}"
    );
}

#[test]
fn cli_without_a_daemon_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run_cli(dir.path(), &["events", "list"]);
    assert!(!ok);
    assert!(err.contains("kitedesk serve"), "{err}");
    let (ok, _, err) = run_cli(dir.path(), &["send-test", "gitlab"]);
    assert!(!ok);
    assert!(err.contains("no source \"gitlab\""), "{err}");
}
