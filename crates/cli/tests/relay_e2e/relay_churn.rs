//! Relay restarts and connection cuts every 2 s for 60 s, under load.
//!
//! Senders post webhooks continuously (a steady rate from several tasks,
//! each retrying a refused or cut request with the same CloudEvent id, as
//! webhook senders do) through a TCP proxy to the relay; the daemon
//! (`kitedesk serve --relay …`) reads the relay through a second TCP proxy.
//! Every 2 s, in turn: the relay restarts (graceful shutdown, a new relay
//! on the same data dir and a new port, both proxies retargeted), or every
//! proxied connection (the daemon's WebSocket and the senders' HTTP) is cut.
//!
//! Afterwards: the relay logged each accepted webhook once, and the
//! daemon's history holds each of them exactly once with seqs 1..=N, its
//! link connected at the relay's last seq.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use super::{
    Proxy, Relay, eventually_within, health, history_ids_and_seqs, hook_body, relay_config,
    relay_conn, serve, setup,
};

/// How long the faults go on, and how often one strikes.
const RUN: Duration = Duration::from_secs(60);
const EVERY: Duration = Duration::from_secs(2);
/// Concurrent senders and the total rate they aim for (webhooks/s).
const SENDERS: u32 = 8;
const RATE: u32 = 1000;

/// Post webhook `i` until the relay accepts it (or says it already has
/// it). Returns how many tries it took.
async fn send_until_accepted(http: &reqwest::Client, url: &str, token: &str, i: u32) -> u32 {
    let mut tries = 0;
    loop {
        tries += 1;
        let sent = http
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/cloudevents+json")
            .body(hook_body(i))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                // The answer itself may be cut; then it is sent again.
                if let Ok(v) = r.json::<serde_json::Value>().await {
                    let status = v["status"].as_str().unwrap_or_default();
                    assert!(
                        status == "accepted" || status == "duplicate_ignored",
                        "webhook {i}: {v}"
                    );
                    return tries;
                }
            }
            // Shutting down, or the log is busy: retry like a sender.
            Ok(r) if r.status().is_server_error() => {}
            Ok(r) => panic!("webhook {i}: unexpected {}", r.status()),
            // Refused or cut: the proxy found no relay, or was cut.
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_restarts_and_cuts_every_2s_for_60s_lose_and_duplicate_nothing() {
    let s = Arc::new(setup().await);
    let http = reqwest::Client::new();
    let mut relay = Relay::start(relay_config(s.relay_dir.path()))
        .await
        .unwrap();
    let ws_proxy = Proxy::start(relay.addr).await;
    let hook_proxy = Proxy::start(relay.addr).await;
    let ws = format!("ws://{}/ws", ws_proxy.addr);
    let hook_url = format!("http://{}/hooks/{}/app", hook_proxy.addr, s.team);
    let data = tempfile::tempdir().unwrap();
    let daemon = serve(data.path(), &ws, &s.team, &s.api_token, &[]);
    eventually_within(Duration::from_secs(60), "the link to connect", || async {
        (relay_conn(&health(&http, &daemon).await?)["state"] == "connected").then_some(())
    })
    .await;

    // The load: SENDERS tasks, each at RATE / SENDERS per second.
    let next = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (http, url, s) = (http.clone(), hook_url.clone(), s.clone());
            let (next, stop) = (next.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1) * SENDERS / RATE);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut retried = 0;
                while !stop.load(Ordering::SeqCst) {
                    tick.tick().await;
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    retried += send_until_accepted(&http, &url, &s.hook_token, i).await - 1;
                }
                retried
            })
        })
        .collect();

    // The faults.
    let start = tokio::time::Instant::now();
    let (mut restarts, mut cuts, mut link_cuts) = (0, 0, 0);
    let mut tick = 1;
    while EVERY * tick <= RUN {
        tokio::time::sleep_until(start + EVERY * tick).await;
        if tick % 2 == 1 {
            relay.shutdown().await;
            relay = Relay::start(relay_config(s.relay_dir.path()))
                .await
                .unwrap();
            ws_proxy.retarget(relay.addr);
            hook_proxy.retarget(relay.addr);
            restarts += 1;
        } else {
            // The daemon holds one WebSocket; it reconnects within ~50 ms.
            if ws_proxy.cut() > 0 {
                link_cuts += 1;
            }
            hook_proxy.cut();
            cuts += 1;
        }
        tick += 1;
    }
    stop.store(true, Ordering::SeqCst);
    let mut retried = 0;
    for t in senders {
        retried += t.await.unwrap();
    }
    let total = next.load(Ordering::SeqCst);
    eprintln!(
        "{total} webhooks, {retried} re-sent by senders; {restarts} relay restarts, \
         {cuts} cuts ({link_cuts} with a live link)"
    );
    assert!(
        total >= RATE * 60 / 4,
        "the load kept going through the faults: only {total} webhooks in {RUN:?}"
    );
    assert!(
        link_cuts * 3 >= cuts * 2,
        "most cuts hit a live link: {link_cuts} of {cuts}"
    );

    let last = relay.last_seq(&s.team).await.unwrap();
    assert_eq!(last, u64::from(total), "the relay logged each webhook once");
    eventually_within(
        Duration::from_secs(300),
        "every event stored and committed",
        || async {
            let h = health(&http, &daemon).await?;
            let c = relay_conn(&h);
            (h["events"] == i64::from(total) && c["last_seq"] == last && c["state"] == "connected")
                .then_some(())
        },
    )
    .await;

    let (ids, seqs) = history_ids_and_seqs(data.path()).await;
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no event stored twice");
    let want: HashSet<String> = (0..total).map(|i| format!("e2e-{i:05}")).collect();
    assert!(
        unique.len() == want.len() && unique.iter().all(|id| want.contains(*id)),
        "every accepted webhook, once: {} stored of {}",
        unique.len(),
        want.len()
    );
    assert_eq!(
        seqs,
        (1..=u64::from(total)).collect::<Vec<_>>(),
        "each seq once"
    );
    drop(daemon);
    relay.shutdown().await;
}
