//! The single history writer with group commit: requests queue on a
//! bounded channel and each batch is one transaction, so a burst of
//! webhooks costs one commit while every caller still gets its answer only
//! after its row is committed.

use std::sync::Arc;

use kitedesk_store::{IndexRow, Inserted, NewEvent, Store, StoreError, StoredBlobs};
use tokio::sync::{mpsc, oneshot};

use crate::bus::{Bus, DaemonEvent};

/// Most events committed in one transaction.
const MAX_BATCH: usize = 256;
/// Pending inserts before callers wait (backpressure, never unbounded).
const QUEUE: usize = 4096;
/// Under load, search indexing is deferred; once this many events wait for
/// it, each write batch is followed by one indexing step of this size, so
/// indexing keeps up without ever blocking writes for long.
const INDEX_STEP: usize = 1024;
/// How long the writer waits for more webhooks before indexing deferred
/// ones: the most a search lags behind a burst.
const IDLE_INDEX_AFTER: std::time::Duration = std::time::Duration::from_millis(50);

/// After a commit, how long the checkpointer lets more commits gather
/// before it copies the WAL back into the database (beside the writer, on
/// its own connection). Bounds the WAL to what is written in this time.
const CHECKPOINT_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

type Reply = oneshot::Sender<Result<Inserted, Arc<StoreError>>>;
type Request = (NewEvent, StoredBlobs, Reply);

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

/// Index deferred events: all of them (when idle) or the oldest `step`.
/// Their text is still in memory (`pending`); the store falls back to
/// reading it back if that is not exactly what waits.
async fn index(store: &Store, pending: &mut Vec<IndexRow>, step: Option<usize>) {
    let n = step.unwrap_or(pending.len()).min(pending.len());
    match store.index_rows(&pending[..n]).await {
        Ok(_) => {
            pending.drain(..n);
        }
        Err(e) => tracing::warn!(error = %e, "search indexing failed; will retry"),
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

pub fn spawn(store: Store, bus: Bus) -> Writer {
    let (tx, mut rx) = mpsc::channel::<Request>(QUEUE);
    let wrote = spawn_checkpointer(store.clone());
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        // Events committed but not yet in the search index, oldest first.
        let mut pending: Vec<IndexRow> = Vec::new();
        loop {
            // With events waiting for the search index, stop waiting for
            // requests after a short idle spell and index them.
            let got = if !pending.is_empty() {
                match tokio::time::timeout(IDLE_INDEX_AFTER, rx.recv_many(&mut batch, MAX_BATCH))
                    .await
                {
                    Ok(n) => n,
                    Err(_) => {
                        index(&store, &mut pending, None).await;
                        continue;
                    }
                }
            } else {
                rx.recv_many(&mut batch, MAX_BATCH).await
            };
            if got == 0 {
                index(&store, &mut pending, None).await;
                return;
            }
            let mut events = Vec::with_capacity(batch.len());
            let mut stored = Vec::with_capacity(batch.len());
            let mut replies = Vec::with_capacity(batch.len());
            for (event, blobs, reply) in batch.drain(..) {
                events.push(event);
                stored.push(blobs);
                replies.push(reply);
            }
            // A lone webhook is indexed in its own transaction, so a search
            // right after its answer finds it. Concurrent webhooks (a batch
            // of several) commit without indexing, and are indexed later in
            // one large batch: each FTS5 transaction writes a segment, and
            // many small segments mean constant merging.
            let defer = events.len() > 1 || !rx.is_empty();
            let index_now = (!defer).then(|| std::mem::take(&mut pending));
            let result = store.insert_encoded(&events, &stored, index_now).await;
            drop(stored);
            match result {
                Ok(results) => {
                    // Full means a checkpoint is due already.
                    let _ = wrote.try_send(());
                    for ((ev, reply), res) in events.into_iter().zip(replies).zip(results) {
                        if let Inserted::New(id) = res {
                            if defer {
                                // The payload is not needed past this point:
                                // the index takes it rather than a copy.
                                pending.push(IndexRow {
                                    id,
                                    summary: ev.event.summary.clone(),
                                    payload: ev.payload,
                                });
                            }
                            bus.publish(DaemonEvent::Stored(Arc::new(
                                kitedesk_store::StoredEvent {
                                    id,
                                    received: ev.received,
                                    event: ev.event,
                                },
                            )));
                        }
                        let _ = reply.send(Ok(res));
                    }
                    if pending.len() >= INDEX_STEP {
                        index(&store, &mut pending, Some(INDEX_STEP)).await;
                    }
                }
                Err(e) => {
                    // Nothing of this batch was committed: every caller gets
                    // the error (the ingress answers 503 so senders retry).
                    tracing::error!(error = %e, batch = replies.len(), "history write failed");
                    let e = Arc::new(e);
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    });
    Writer { tx }
}
