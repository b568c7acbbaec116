//! SIGKILL the daemon 10 times during a 100k-event catch-up.
//!
//! The daemon (`kitedesk serve --relay …`, a child process) registers with
//! the relay and goes offline. 100 000 events are put into the relay while
//! it is away: the first 1 000 as real webhooks through the relay's HTTP
//! ingress, the other 99 000 appended straight to the relay's event log
//! through its Rust API ([`RunningRelay::log`]), as CloudEvents of exactly
//! the shape the ingress produced for the first ones. (99 000 HTTP posts
//! would test the ingress, not the catch-up, and take most of the time
//! budget in a debug build.) The daemon then reconnects and catches up; it
//! is killed with SIGKILL at 10 random points of the catch-up (random
//! progress thresholds plus a random delay, the seed printed so a failure
//! can be replayed with `KITEDESK_FAULT_SEED`) and restarted each time.
//!
//! Afterwards: the history holds exactly the 100 000 ids, once each, with
//! seqs 1..=100 000; the daemon's link reports `last_seq` 100 000 and
//! connected; the relay's stored cursor for the daemon's client id is the
//! team's last seq (so nothing would be sent again, and nothing skipped).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use kitedesk_relay::EventLog as _;
use kitedesk_relay::log::Append;
use rand::{Rng as _, SeedableRng as _};

use super::{
    Daemon, Relay, events_count, eventually, eventually_within, health, history_ids_and_seqs,
    history_path, post, relay_config, relay_conn, serve, setup,
};

/// Rows in the history file (opened read-only: the daemon is dead).
async fn history_count(data_dir: &std::path::Path) -> i64 {
    let store = kitedesk_store::Store::open_read_only(&history_path(data_dir))
        .await
        .unwrap();
    let n = store.count().await.unwrap();
    store.close().await;
    n
}

const TOTAL: u32 = 100_000;
/// Sent through the ingress; the rest are appended to the log directly.
const VIA_HTTP: u32 = 1_000;
const KILLS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daemon_killed_ten_times_during_a_100k_catch_up_stores_each_event_once() {
    let seed: u64 = std::env::var("KITEDESK_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("catch-up kill schedule seed: {seed} (set KITEDESK_FAULT_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let s = setup().await;
    let http = reqwest::Client::new();
    let relay = Relay::start(relay_config(s.relay_dir.path()))
        .await
        .unwrap();
    let ws = relay.ws_url();
    let data = tempfile::tempdir().unwrap();

    // First contact registers the client id at the head (0); then offline.
    let daemon = serve(data.path(), &ws, &s.team, &s.api_token, &[]);
    let link_name = eventually("the link to connect", || async {
        let c = relay_conn(&health(&http, &daemon).await?);
        (c["state"] == "connected").then(|| c["name"].as_str().unwrap().to_string())
    })
    .await;
    daemon.kill();
    let client_id = {
        let store = kitedesk_store::Store::open_read_only(&history_path(data.path()))
            .await
            .unwrap();
        let link = store
            .link_cursor(&link_name)
            .await
            .unwrap()
            .expect("the link is recorded in the history");
        store.close().await;
        link.client_id
    };

    // The backlog, while the daemon is away.
    let fill = Instant::now();
    post(&http, &relay, &s, 0..VIA_HTTP).await;
    let first = relay.log().read_from(&s.team, 1, 1).await.unwrap();
    let first = first.first().expect("the first webhook is logged");
    let mut template: serde_json::Value = serde_json::from_str(&first.event_json).unwrap();
    template.as_object_mut().unwrap().remove("kiteseq");
    // The webhooks are posted concurrently: seq 1 is one of them, any one.
    assert!(
        template["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("e2e-")),
        "{template}"
    );
    let appends = (VIA_HTTP..TOTAL).map(|i| {
        let mut ev = template.clone();
        ev["id"] = format!("e2e-{i:05}").into();
        ev["kitesummary"] = format!("tick {i}").into();
        ev["data"] = serde_json::json!({ "i": i });
        Append {
            team_id: s.team.clone(),
            ce_source: first.ce_source.clone(),
            ce_id: format!("e2e-{i:05}"),
            source_name: first.source_name.clone(),
            ce_type: first.ce_type.clone(),
            received: chrono::Utc::now(),
            event_json: ev.to_string(),
        }
    });
    // Many appends in flight so the log's group commit fills its batches.
    futures_util::stream::iter(appends)
        .map(|a| relay.log().append(a))
        .buffer_unordered(4096)
        .for_each(|r| async move {
            assert!(
                matches!(r, Ok(kitedesk_relay::log::Appended::New(_))),
                "{r:?}"
            );
        })
        .await;
    let last = relay.last_seq(&s.team).await.unwrap();
    assert_eq!(last, u64::from(TOTAL), "the relay logged each event once");
    eprintln!("backlog of {TOTAL} filled in {:?}", fill.elapsed());

    // Kill points: random progress thresholds over the catch-up (a repeat
    // or one already passed means a kill right after the restart), each
    // followed by a random delay so the kill lands mid-batch.
    let mut thresholds: Vec<i64> = (0..KILLS)
        .map(|_| rng.random_range(0..i64::from(TOTAL) * 95 / 100))
        .collect();
    thresholds.sort_unstable();
    let catch_up = Instant::now();
    let mut daemon: Daemon = serve(data.path(), &ws, &s.team, &s.api_token, &[]);
    let mut killed_at = Vec::new();
    let mut ahead = 0;
    for threshold in thresholds {
        let stored = eventually_within(
            Duration::from_secs(300),
            "catch-up progress before a kill",
            || async {
                let n = events_count(&http, &daemon).await?;
                (n >= threshold).then_some(n)
            },
        )
        .await;
        let delay = Duration::from_millis(rng.random_range(0..300));
        tokio::time::sleep(delay).await;
        daemon.kill();
        // Committed by the dead daemon but not acked to the relay: the
        // relay sends these again, and the history must drop them.
        let committed = history_count(data.path()).await;
        let acked = relay
            .log()
            .cursor(&s.team, &client_id)
            .await
            .unwrap()
            .unwrap_or(0);
        ahead += u64::try_from(committed).unwrap().saturating_sub(acked);
        killed_at.push((stored, delay));
        daemon = serve(data.path(), &ws, &s.team, &s.api_token, &[]);
    }
    eprintln!(
        "killed at (events stored, then delay): {killed_at:?}; \
         {ahead} events in all were committed but not yet acked at a kill"
    );

    let h = eventually_within(
        Duration::from_secs(600),
        "every event stored and committed",
        || async {
            let h = health(&http, &daemon).await?;
            let c = relay_conn(&h);
            (h["events"] == i64::from(TOTAL) && c["last_seq"] == last && c["state"] == "connected")
                .then_some(h)
        },
    )
    .await;
    eprintln!("catch-up with {KILLS} kills took {:?}", catch_up.elapsed());
    assert!(
        relay_conn(&h)["gap"].is_null(),
        "no gap reported: {}",
        relay_conn(&h)
    );

    // The relay's cursor for this client: acks are sent after the commit,
    // so it reaches the head a moment after the daemon's own state.
    eventually("the relay cursor at the head", || async {
        let c = relay.log().cursor(&s.team, &client_id).await.unwrap();
        (c == Some(last)).then_some(())
    })
    .await;

    // Exactly once, each: read the history file itself.
    let (ids, seqs) = history_ids_and_seqs(data.path()).await;
    assert_eq!(ids.len(), TOTAL as usize, "one row per event");
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no event stored twice");
    let mut sorted = ids.clone();
    sorted.sort();
    let want: Vec<String> = (0..TOTAL).map(|i| format!("e2e-{i:05}")).collect();
    assert!(
        sorted == want,
        "every event, once (first id {:?})",
        sorted.first()
    );
    assert_eq!(
        seqs,
        (1..=u64::from(TOTAL)).collect::<Vec<_>>(),
        "each seq once"
    );
    drop(daemon);
    relay.shutdown().await;
}
