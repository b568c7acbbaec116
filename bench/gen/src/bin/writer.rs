//! `kitedesk-bench-writer PUSH_FILE [rows=50000] [batch=32]`: how fast can
//! the history writer store the ingest bench's payload, without HTTP?
//! Inserts `rows` copies of one GitHub push (unique delivery ids) into fresh
//! histories, in transactions of `batch` rows (with 32 wrk connections the
//! daemon's batches hold at most 32 events), three ways:
//!
//! * `Store::insert_batch`: rows and their search index in one transaction
//!   (what the daemon's writer does when its queue is empty);
//! * `Store::insert_batch_deferred` plus `Store::index_pending` every 2048
//!   rows (what it does under load);
//! * `insert_batch_deferred` alone: the floor without search indexing.
//!
//! Rows are built as the daemon would store them (headers, summary,
//! importance), once, outside the timed part.

use std::time::Instant;

use chrono::Utc;
use kitedesk_core::{Headers, Importance, KiteEvent, Verification};
use kitedesk_store::{NewEvent, Store};

fn event(body: &str, n: usize) -> NewEvent {
    let now = Utc::now();
    let mut h = Headers::new();
    h.insert("Content-Type", "application/json");
    h.insert("User-Agent", "GitHub-Hookshot/bench");
    h.insert("X-GitHub-Event", "push");
    h.insert(
        "X-GitHub-Delivery",
        format!("6a7e0001-0000-4000-8000-{n:012x}"),
    );
    h.insert("X-GitHub-Hook-ID", "292430182");
    h.insert(
        "X-Hub-Signature-256",
        "sha256=0000000000000000000000000000000000000000000000000000000000000000",
    );
    NewEvent {
        payload: body.to_string(),
        received: now,
        event: KiteEvent {
            id: format!("6a7e0001-0000-4000-8000-{n:012x}"),
            source: "https://github.com/Codertocat/Hello-World".into(),
            ty: "com.github.push".into(),
            time: now,
            source_name: "github".into(),
            summary: "Codertocat pushed 1 commit to master in Codertocat/Hello-World".into(),
            data: kitedesk_core::Payload::null(),
            seq: None,
            original_headers: h,
            verification: Verification::verified("github signature valid"),
            importance: Importance::Normal,
            importance_reason: "default importance".into(),
        },
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let file = args
        .first()
        .ok_or("usage: kitedesk-bench-writer PUSH_FILE [rows=50000] [batch=32]")?;
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let body = std::fs::read_to_string(file)?;
    let dir = std::env::temp_dir().join(format!("kitedesk-bench-writer-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let rows: Vec<NewEvent> = (0..n).map(|i| event(&body, i)).collect();
    println!(
        "{n} rows of {} bytes, transactions of {batch} rows",
        body.len()
    );

    let report = |name: &str, t: Instant| {
        let s = t.elapsed().as_secs_f64();
        println!(
            "{name:<58} {:>8.0} rows/s  {:>6.1} us/row",
            n as f64 / s,
            s * 1e6 / n as f64
        );
    };
    for mode in [Mode::Indexed, Mode::Deferred, Mode::NoIndex] {
        let db = dir.join(format!("{mode:?}.db"));
        let store = Store::open(&db).await?;
        let t = Instant::now();
        let mut unindexed = 0;
        for chunk in rows.chunks(batch) {
            match mode {
                Mode::Indexed => {
                    store.insert_batch(chunk).await?;
                }
                Mode::Deferred | Mode::NoIndex => {
                    store.insert_batch_deferred(chunk).await?;
                    unindexed += chunk.len();
                    if mode == Mode::Deferred && unindexed >= INDEX_BATCH {
                        store.index_pending().await?;
                        unindexed = 0;
                    }
                }
            }
        }
        if mode == Mode::Deferred {
            store.index_pending().await?;
        }
        report(mode.describe(), t);
        store.close().await;
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The daemon writer's INDEX_BATCH (crates/daemon/src/writer.rs).
const INDEX_BATCH: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Indexed,
    Deferred,
    NoIndex,
}

impl Mode {
    fn describe(self) -> &'static str {
        match self {
            Mode::Indexed => "insert_batch (indexed in the same tx: writer idle)",
            Mode::Deferred => "insert_batch_deferred + index_pending/2048 (busy)",
            Mode::NoIndex => "insert_batch_deferred, never indexed (floor)",
        }
    }
}
