//! `kitedesk forward`, `deliveries` and `retry` against the real binary, a
//! real daemon and a real HTTP target on 127.0.0.1:0.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use super::{run_cli, serve};

struct Target {
    url: String,
    status: Arc<AtomicU16>,
    bodies: Arc<Mutex<Vec<String>>>,
}

async fn target() -> Target {
    let status = Arc::new(AtomicU16::new(200));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (s, b) = (status.clone(), bodies.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| async move {
            b.lock().unwrap().push(body);
            let code = s.load(Ordering::SeqCst);
            (
                axum::http::StatusCode::from_u16(code).unwrap(),
                format!("local app says {code}"),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Target {
        url,
        status,
        bodies,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forward_list_show_and_retry_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = serve(dir.path());
    let t = target().await;
    let http = reqwest::Client::new();
    for n in 0..3 {
        let r = http
            .post(format!("{}/hooks/demo", d.url))
            .header("content-type", "application/json")
            .body(format!(r#"{{"message":"demo {n}"}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let dd = dir.path();
    let cli = |args: Vec<String>| {
        let dd = dd.to_path_buf();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                run_cli(&dd, &args)
            })
            .await
            .unwrap()
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // Many events without --yes and no terminal to ask on: refused.
    let (ok, _, err) = cli(args(&["forward", "--to", &t.url, "--source", "demo"])).await;
    assert!(!ok, "a bulk forward needs confirmation");
    assert!(
        err.contains("3 events would be forwarded") && err.contains("--yes"),
        "{err}"
    );
    assert!(t.bodies.lock().unwrap().is_empty(), "nothing was sent");

    let (ok, out, err) = cli(args(&[
        "forward", "--to", &t.url, "--source", "demo", "--yes",
    ]))
    .await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("forwarded 3 events") && out.contains("3 delivered"),
        "{out}"
    );
    let mut bodies = t.bodies.lock().unwrap().clone();
    // Sent oldest first, several at once: arrival order is not fixed.
    bodies.sort();
    assert_eq!(
        bodies,
        [0, 1, 2].map(|n| format!(r#"{{"message":"demo {n}"}}"#)),
        "each original payload exactly once"
    );

    // One event to a target that refuses it: a dead letter, shown and retried.
    t.status.store(400, Ordering::SeqCst);
    let (ok, out, err) = cli(args(&["forward", "--to", &t.url, "1"])).await;
    assert!(!ok, "a dead delivery fails the command: {out}");
    assert!(
        out.contains("dead (HTTP 400") && out.contains("local app says 400"),
        "{out}"
    );
    assert!(err.contains("deliveries list --status dead"), "{err}");

    let (ok, out, _) = cli(args(&["deliveries", "list", "--status", "dead", "--json"])).await;
    assert!(ok);
    let dead: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 1, "{out}");
    let id = dead[0]["id"].as_i64().unwrap().to_string();

    let (ok, out, _) = cli(args(&["deliveries", "show", &id])).await;
    assert!(ok);
    assert!(
        out.contains("attempt 1") && out.contains("HTTP 400"),
        "{out}"
    );

    t.status.store(200, Ordering::SeqCst);
    let (ok, out, err) = cli(args(&["retry", "--all", "--wait"])).await;
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["retrying 1 dead deliveries", "all 1 delivered"]
    );
    let (_, out, _) = cli(args(&["deliveries", "show", &id, "--json"])).await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["status"], "delivered");
    assert_eq!(v["attempt_log"].as_array().unwrap().len(), 2);
    let (ok, out, _) = cli(args(&["deliveries", "list"])).await;
    assert!(ok);
    assert_eq!(
        out.lines().count(),
        4,
        "three forwards and the retried one: {out}"
    );
    let (ok, _, err) = cli(args(&["retry", &id])).await;
    assert!(!ok && err.contains("already_delivered"), "{err}");
}
