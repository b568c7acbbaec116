//! The single history writer with group commit: requests queue on a
//! bounded channel and each batch is one transaction, so a burst of
//! webhooks costs one commit while every caller still gets its answer only
//! after its row is committed. The writer is a thread with its own
//! connection ([`kitedesk_store::HistoryInserter`]); search indexing
//! follows in its own task, file and connection (the indexer), beside it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kitedesk_store::{
    HistoryInserter, IndexRow, Inserted, NewEvent, Store, StoreError, StoredBlobs,
};
use tokio::sync::{mpsc, oneshot};

use crate::bus::{Bus, DaemonEvent};

/// Most events committed in one transaction.
const MAX_BATCH: usize = 256;
/// Pending inserts before callers wait (backpressure, never unbounded).
const QUEUE: usize = 4096;
/// Committed batches waiting for the indexer before the writer waits for
/// it: under a sustained burst ingest runs no faster than search indexing
/// keeps up (up to 256 batches behind), so search never falls
/// behind without bound.
const INDEX_QUEUE: usize = 256;
/// Events one indexing step waits to gather under load …
const INDEX_STEP: usize = 1024;
/// … for at most this long: how far search may lag a burst.
const INDEX_GATHER: std::time::Duration = std::time::Duration::from_millis(50);

/// After a commit, how long the checkpointer lets more commits gather
/// before it copies the WAL back into the database (beside the writer, on
/// its own connection). Bounds the WAL to what is written in this time.
/// As in the relay (crates/relay/src/log.rs): small checkpoints right after
/// commits keep each one's fsync short. With the search index in its own
/// file, 1 ms against 200 ms measured the same throughput (16.0–16.2k vs
/// 16.3k req/s) and p99 5.8–6.1 ms instead of 27 ms (1 s: 54 ms).
const CHECKPOINT_AFTER: std::time::Duration = std::time::Duration::from_millis(1);

type Reply = oneshot::Sender<Result<Inserted, Arc<StoreError>>>;
type Request = (NewEvent, StoredBlobs, Reply);

/// What the writer hands the indexer after a commit: the new events' text,
/// and the answers to send once they are searchable (a lone webhook's, so a
/// search right after its answer finds it; under load answers go out at
/// commit and search follows within one indexing step).
struct IndexJob {
    rows: Vec<IndexRow>,
    replies: Vec<(Reply, Inserted)>,
}

#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the history writer has stopped")]
    Stopped,
    #[error(transparent)]
    Store(Arc<StoreError>),
}

impl Writer {
    /// Queue an event and wait until it is committed (or known duplicate).
    /// Its payload and headers are compressed here, in the caller's task,
    /// so that work runs in parallel rather than in the single writer.
    pub async fn insert(&self, event: NewEvent) -> Result<Inserted, WriteError> {
        let stored = StoredBlobs::encode(&event).map_err(|e| WriteError::Store(Arc::new(e)))?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((event, stored, reply))
            .await
            .map_err(|_| WriteError::Stopped)?;
        rx.await
            .map_err(|_| WriteError::Stopped)?
            .map_err(WriteError::Store)
    }
}

/// Checkpoint the history a moment after commits, until the writer stops
/// (its sender is dropped).
fn spawn_checkpointer(store: Store) -> mpsc::Sender<()> {
    let (wrote, mut commits) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        while commits.recv().await.is_some() {
            tokio::time::sleep(CHECKPOINT_AFTER).await;
            if let Err(e) = store.checkpoint().await {
                tracing::warn!(error = %e, "history checkpoint failed; the writer's own checkpoint takes over");
            }
        }
    });
    wrote
}

/// The search indexer: indexes what the writer committed, in the search
/// index's own file and connection, so indexing runs beside the inserts
/// instead of between them. Each step takes every job waiting (one FTS5
/// transaction for all: each transaction writes an index segment, and many
/// small segments mean constant merging). When the index is behind what it
/// is offered (a backlog at start, retention in between, a failed step) it
/// catches up from the history in bounded steps, answering jobs as it goes.
fn spawn_indexer(store: Store, idle: Arc<AtomicBool>) -> mpsc::Sender<IndexJob> {
    let (tx, mut jobs) = mpsc::channel::<IndexJob>(INDEX_QUEUE);
    tokio::spawn(async move {
        // Whatever a previous run left unindexed beyond what opening the
        // store caught up on.
        let mut behind = true;
        let mut got: Vec<IndexJob> = Vec::new();
        loop {
            if behind {
                // The rows of jobs taken now are read back from the
                // history by this catch-up, oldest first.
                while let Ok(job) = jobs.try_recv() {
                    got.push(job);
                }
                match store
                    .index_pending_up_to(Some(kitedesk_store::CATCH_UP_STEP))
                    .await
                {
                    Ok(n) => behind = n == kitedesk_store::CATCH_UP_STEP,
                    Err(e) => {
                        tracing::warn!(error = %e, "search indexing failed; will retry");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
                answer(&mut got);
                if behind || !jobs.is_empty() {
                    continue;
                }
            }
            idle.store(true, Ordering::Release);
            let n = jobs.recv_many(&mut got, INDEX_QUEUE).await;
            idle.store(false, Ordering::Release);
            if n == 0 {
                return;
            }
            gather(&mut jobs, &mut got).await;
            let rows: Vec<IndexRow> = got.iter_mut().flat_map(|j| j.rows.drain(..)).collect();
            match store.index_rows(&rows).await {
                // Fewer than offered: some were read back instead (the index
                // was behind them); make sure it has caught up.
                Ok(n) => behind = n < rows.len() as u64,
                Err(e) => {
                    tracing::warn!(error = %e, "search indexing failed; will retry from the history");
                    behind = true;
                }
            }
            answer(&mut got);
        }
    });
    tx
}

/// Under load, wait a little for more committed batches before an indexing
/// step, so each step indexes many events: every FTS5 transaction writes a
/// segment, and with one per write batch (a few dozen events) the index
/// spent its time merging them (one step of 16 events once took 547 ms,
/// holding up everything queued behind it). A job whose answers wait for
/// it (a lone webhook: no load) is indexed at once.
async fn gather(jobs: &mut mpsc::Receiver<IndexJob>, got: &mut Vec<IndexJob>) {
    let rows = |got: &Vec<IndexJob>| got.iter().map(|j| j.rows.len()).sum::<usize>();
    let until = tokio::time::Instant::now() + INDEX_GATHER;
    while rows(got) < INDEX_STEP && got.iter().all(|j| j.replies.is_empty()) {
        match tokio::time::timeout_at(until, jobs.recv_many(got, INDEX_QUEUE)).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Send the answers held back until their events were indexed.
fn answer(jobs: &mut Vec<IndexJob>) {
    for job in jobs.drain(..) {
        for (reply, res) in job.replies {
            let _ = reply.send(Ok(res));
        }
    }
}

pub fn spawn(store: Store, bus: Bus) -> Result<Writer, StoreError> {
    let inserter = store.history_inserter()?;
    let (tx, rx) = mpsc::channel::<Request>(QUEUE);
    let wrote = spawn_checkpointer(store.clone());
    let indexer_idle = Arc::new(AtomicBool::new(false));
    let indexer = spawn_indexer(store.clone(), indexer_idle.clone());
    let writer = WriteLoop {
        inserter,
        bus,
        wrote,
        indexer,
        indexer_idle,
    };
    // A thread of its own with its own connection, not a task handing
    // batches to the store's insert thread: each batch's cycle (take what
    // is queued, commit, answer) then never waits for another thread to get
    // a core. As a task it waited twice per batch, once for the insert
    // thread and once for a runtime worker busy with requests.
    std::thread::Builder::new()
        .name("kitedesk-writer".into())
        .spawn(move || writer.run(rx))
        .map_err(|e| StoreError::Corrupt {
            id: 0,
            problem: format!("cannot start the history writer thread: {e}"),
        })?;
    Ok(Writer { tx })
}

struct WriteLoop {
    inserter: HistoryInserter,
    bus: Bus,
    /// Tells the checkpointer a commit happened.
    wrote: mpsc::Sender<()>,
    indexer: mpsc::Sender<IndexJob>,
    indexer_idle: Arc<AtomicBool>,
}

impl WriteLoop {
    /// Until every [`Writer`] is dropped: take everything queued (up to
    /// [`MAX_BATCH`]), commit it as one transaction, answer.
    fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            // A lone webhook (nothing else queued, the indexer waiting for
            // work) is answered once it is searchable, which takes one
            // short indexing step; under load answers go out at commit.
            let lone =
                batch.len() == 1 && rx.is_empty() && self.indexer_idle.load(Ordering::Acquire);
            self.write(batch.drain(..), lone);
        }
    }

    fn write(&mut self, batch: impl ExactSizeIterator<Item = Request>, lone: bool) {
        let mut events = Vec::with_capacity(batch.len());
        let mut stored = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for (event, blobs, reply) in batch {
            events.push(event);
            stored.push(blobs);
            replies.push(reply);
        }
        let results = match self.inserter.insert(&events, stored) {
            Ok(results) => results,
            Err(e) => {
                // Nothing of this batch was committed: every caller gets
                // the error (the ingress answers 503 so senders retry).
                tracing::error!(error = %e, batch = replies.len(), "history write failed");
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
                return;
            }
        };
        // Full means a checkpoint is due already.
        let _ = self.wrote.try_send(());
        let mut job = IndexJob {
            rows: Vec::with_capacity(events.len()),
            replies: Vec::new(),
        };
        for ((ev, reply), res) in events.into_iter().zip(replies).zip(results) {
            if let Inserted::New(id) = res {
                // The payload is not needed past this point: the index
                // takes it rather than a copy.
                job.rows.push(IndexRow {
                    id,
                    summary: ev.event.summary.clone(),
                    payload: ev.payload,
                });
                self.bus
                    .publish(DaemonEvent::Stored(Arc::new(kitedesk_store::StoredEvent {
                        id,
                        received: ev.received,
                        event: ev.event,
                    })));
            }
            if lone && matches!(res, Inserted::New(_)) {
                job.replies.push((reply, res));
            } else {
                let _ = reply.send(Ok(res));
            }
        }
        if !job.rows.is_empty() {
            // Waits when the indexer is INDEX_QUEUE batches behind.
            if let Err(mpsc::error::SendError(job)) = self.indexer.blocking_send(job) {
                // The indexer is gone (shutting down): the next start
                // indexes these from the history.
                answer(&mut vec![job]);
            }
        }
    }
}
