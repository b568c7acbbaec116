//! Fault injection with the real binary: a full disk under the history,
//! and files at the data path that are not a Kite Desk history.

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Lines, Write as _};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

use kitedesk_core::verify::{self, Scheme, Secret};

use super::{SECRET, kitedesk, push_body};

const API_TOKEN: &str = "faults-e2e-api-token";

/// Runs `kitedesk serve` with its data dir on a 3 MB tmpfs of its own (a
/// private user + mount namespace, so no root is needed and nothing leaks
/// to the host), plus a control loop on stdin: `fill` fills the tmpfs with
/// a filler file, `free` deletes it.
const FULL_DISK_SCRIPT: &str = r#"
set -eu
mount -t tmpfs -o size=3m,mode=0700 kitedesk-full "$1"
"$2" serve --data-dir "$1/data" --listen 127.0.0.1:0 &
while read -r cmd; do
    case "$cmd" in
        fill) head -c 64M /dev/zero > "$1/filler" 2>/dev/null || true
              echo "filled $(stat -c %s "$1/filler")" ;;
        free) rm -f "$1/filler"; echo freed ;;
    esac
done
kill %1
wait
"#;

struct FullDisk {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    url: String,
}

impl FullDisk {
    fn start(mount_point: &Path, log: &Path) -> FullDisk {
        // The same environment `kitedesk()` gives the binary, around
        // `unshare … bash -c SCRIPT`.
        let template = kitedesk(mount_point);
        let mut cmd = std::process::Command::new("unshare");
        cmd.args(["--user", "--map-root-user", "--mount", "bash", "-c"])
            .arg(FULL_DISK_SCRIPT)
            .arg("bash")
            .arg(mount_point)
            .arg(template.get_program());
        for (k, v) in template.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let mut child = cmd
            .env_remove("KITEDESK_DATA_DIR")
            .env("KITEDESK_API_TOKEN", API_TOKEN)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut url = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.trim().strip_prefix("UI:") {
                url = rest
                    .trim()
                    .split_once("/?token=")
                    .map(|(u, _)| u.to_owned());
            }
            if line.trim().starts_with("Hooks:") {
                break;
            }
        }
        let url = url.unwrap_or_else(|| {
            panic!(
                "serve on a tmpfs did not start: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
        FullDisk {
            child,
            stdin,
            lines,
            url,
        }
    }

    /// Send a control command and wait for its answer line.
    fn control(&mut self, cmd: &str, answer: &str) -> String {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{cmd}").unwrap();
        stdin.flush().unwrap();
        for line in self.lines.by_ref() {
            let line = line.unwrap();
            if line.starts_with(answer) {
                return line;
            }
        }
        panic!("no `{answer}` answer to `{cmd}`");
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        // Closing stdin ends the control loop, which stops the daemon.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

async fn post_push(http: &reqwest::Client, url: &str, delivery: &str) -> (u16, serde_json::Value) {
    let body = push_body();
    let mut req = http
        .post(format!("{url}/hooks/github"))
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", delivery)
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
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, body)
}

/// Disk full under the history: the ingress answers 503 `storage_full`
/// (so senders retry), nothing accepted before is lost or half-written,
/// and it accepts again once there is space.
#[tokio::test(flavor = "multi_thread")]
async fn disk_full_answers_503_loses_nothing_and_recovers() {
    if std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "true"])
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        panic!("this test needs unshare(1) with user namespaces (util-linux)");
    }
    let mount_point = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("serve.log");
    let mut d = FullDisk::start(mount_point.path(), &log);
    let http = reqwest::Client::new();
    let mut accepted = BTreeSet::new();

    for n in 0..5 {
        let id = format!("before-full-{n}");
        let (status, body) = post_push(&http, &d.url, &id).await;
        assert_eq!(status, 202, "{body}");
        accepted.insert(id);
    }

    let filled = d.control("fill", "filled");
    assert!(
        filled != "filled 0",
        "the filler took the free space: {filled}"
    );

    // SQLite may still fit a few rows in pages it already owns; keep
    // sending until the disk refuses one. Every answer is a 202 or a 503.
    let mut refused = Vec::new();
    for n in 0..400 {
        let id = format!("while-full-{n}");
        let (status, body) = post_push(&http, &d.url, &id).await;
        match status {
            202 => {
                accepted.insert(id);
            }
            503 => {
                assert_eq!(body["code"], "storage_full", "{body}");
                refused.push(id);
                if refused.len() >= 3 {
                    break;
                }
            }
            other => panic!(
                "status {other} {body} while the disk is full; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        }
    }
    assert!(!refused.is_empty(), "the full disk never refused a write");

    d.control("free", "freed");
    // The senders retry what was refused; now it is accepted.
    for id in &refused {
        let (status, body) = post_push(&http, &d.url, id).await;
        assert_eq!(
            status,
            202,
            "{body}; log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        accepted.insert(id.clone());
    }

    // Exactly the accepted events, once each, each one whole.
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut req = http
            .get(format!("{}/api/events", d.url))
            .bearer_auth(API_TOKEN)
            .query(&[("limit", "200")]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let page: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
        for e in page["events"].as_array().unwrap() {
            listed.push(e["event_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "no event stored twice");
    assert_eq!(
        unique,
        accepted,
        "log: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    for id in refused.iter().chain(accepted.iter().take(2)) {
        let detail: serde_json::Value = http
            .get(format!("{}/api/events/{id}", d.url))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            detail["payload"].as_str(),
            Some(String::from_utf8(push_body()).unwrap().as_str()),
            "payload of {id} intact"
        );
    }
}

/// Files at the data path that are not a Kite Desk history: a clear error
/// naming the file, and the file left exactly as it was.
#[test]
fn serve_refuses_a_corrupted_or_foreign_history_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    // Random bytes; then a SQLite header followed by garbage.
    let mut garbage = b"SQLite format 3\0".to_vec();
    garbage.extend((0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    for content in [b"not a database at all".to_vec(), garbage] {
        std::fs::write(&path, &content).unwrap();
        let out = kitedesk(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("history.db") && err.contains("not a Kite Desk history"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), content, "file untouched");
    }
}
