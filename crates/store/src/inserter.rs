//! The thread that inserts events: a connection of its own to the history
//! (rusqlite, on a plain OS thread) that takes a whole batch per hand-off.
//!
//! Through sqlx, each statement of a batch (`BEGIN`, the inserts, `COMMIT`)
//! was a round trip between the caller's task and sqlx's connection thread,
//! each one a wake-up that waited for a core on a busy machine. Under a
//! webhook burst that writer was busy 96 % of the time, about 730 µs for a
//! batch of 13 webhooks, and it bounded ingest; one hand-off per batch on a
//! thread that runs the statements back to back took ingest from 15.2–16.1k
//! to 19.3k req/s (bench/RESULTS.md, Session 7).
//!
//! The daemon's writer goes one step further: it runs on a thread of its
//! own and inserts through a [`HistoryInserter`], a connection of its own
//! used on that thread, so a batch needs no hand-off at all. This thread
//! serves the store's async callers ([`crate::Store::insert_batch`] and
//! the like).
//!
//! The other writes (outbox, settings, retention, links) keep the sqlx
//! writer connection: SQLite serializes the two writers on its file lock and
//! each waits for the other (`busy_timeout`), never failing while the other
//! holds it for less than that.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, params};
use tokio::sync::oneshot;

use crate::events::{Inserted, NewEvent, StoredBlobs};
use crate::{JOURNAL_SIZE_LIMIT, StoreError, WRITER_AUTOCHECKPOINT_PAGES};

/// One event as bound to the insert (owned: it crosses to the thread).
struct Row {
    source_name: String,
    ce_source: String,
    ce_id: String,
    ce_type: String,
    time_ms: i64,
    received_ms: i64,
    summary: String,
    importance: i64,
    importance_reason: String,
    verified: bool,
    verify_reason: String,
    relay_seq: Option<i64>,
    headers: Vec<u8>,
    payload: Vec<u8>,
}

enum Job {
    Insert(Vec<Row>, oneshot::Sender<Result<Vec<Inserted>, StoreError>>),
    Close(oneshot::Sender<()>),
}

/// The handle to the inserting thread; the thread ends when it is closed
/// or every handle is dropped.
#[derive(Debug)]
pub(crate) struct Inserter {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Insert(rows, _) => write!(f, "Insert({} rows)", rows.len()),
            Job::Close(_) => f.write_str("Close"),
        }
    }
}

const INSERT_SQL: &str = "INSERT INTO events (source_name, ce_source, ce_id, ce_type, time_ms, \
     received_ms, summary, importance, importance_reason, verified, verify_reason, relay_seq, \
     headers, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (ce_source, ce_id) DO NOTHING";
const DUPLICATE_SQL: &str = "SELECT id FROM events WHERE ce_source = ? AND ce_id = ?";

impl Inserter {
    /// Open the thread's connection to the history at `path` (migrated
    /// already) and start it.
    pub(crate) fn start(path: &Path) -> Result<Inserter, StoreError> {
        let inserter = HistoryInserter::open(path)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("kitedesk-insert".into())
            .spawn(move || run(inserter, rx))
            .map_err(|e| StoreError::Corrupt {
                id: 0,
                problem: format!("cannot start the insert thread: {e}"),
            })?;
        Ok(Inserter { jobs })
    }

    /// Insert `batch` (`stored[i]` is `batch[i]`'s compressed payload and
    /// headers, moved to the thread rather than copied) in one transaction
    /// and commit it.
    pub(crate) async fn insert(
        &self,
        batch: &[NewEvent],
        stored: Vec<StoredBlobs>,
    ) -> Result<Vec<Inserted>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Insert(rows(batch, stored), reply))
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Stop the thread once it has finished what was sent before, closing
    /// its connection.
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.jobs.send(Job::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

/// The rows of `batch`, each with its stored form.
fn rows(batch: &[NewEvent], stored: Vec<StoredBlobs>) -> Vec<Row> {
    batch
        .iter()
        .zip(stored)
        .map(|(ne, b)| {
            let e = &ne.event;
            Row {
                source_name: e.source_name.clone(),
                ce_source: e.source.clone(),
                ce_id: e.id.clone(),
                ce_type: e.ty.clone(),
                time_ms: e.time.timestamp_millis(),
                received_ms: ne.received.timestamp_millis(),
                summary: e.summary.clone(),
                importance: e.importance.rank(),
                importance_reason: e.importance_reason.clone(),
                verified: e.verification.verified,
                verify_reason: e.verification.reason.clone(),
                relay_seq: e.seq.map(|s| s as i64),
                headers: b.headers,
                payload: b.payload,
            }
        })
        .collect()
}

/// A connection of its own to the history that inserts events on the
/// caller's thread ([`crate::Store::history_inserter`]): for a writer that
/// runs on a thread of its own (the daemon's), where handing each batch to
/// another thread and back cost two wake-ups, each waiting for a core on a
/// busy machine. Not for async code: every call blocks until its commit.
#[derive(Debug)]
pub struct HistoryInserter {
    conn: Connection,
    path: PathBuf,
}

impl HistoryInserter {
    pub(crate) fn open(path: &Path) -> Result<HistoryInserter, StoreError> {
        Ok(HistoryInserter {
            conn: connect(path)?,
            path: path.to_path_buf(),
        })
    }

    /// Insert `batch` (`stored[i]` is `batch[i]`'s compressed payload and
    /// headers) in one transaction and commit it. A new key gets a new row;
    /// a key stored before (or earlier in the batch) answers its row's id
    /// as a duplicate.
    pub fn insert(
        &mut self,
        batch: &[NewEvent],
        stored: Vec<StoredBlobs>,
    ) -> Result<Vec<Inserted>, StoreError> {
        crate::events::check_stored(batch, &stored)?;
        self.insert_rows(&rows(batch, stored))
    }

    fn insert_rows(&mut self, rows: &[Row]) -> Result<Vec<Inserted>, StoreError> {
        let result = insert(&self.conn, rows);
        if result.is_err() {
            // SQLite may have rolled back already (SQLITE_FULL); if a
            // transaction is still open, end it, and if that fails too,
            // start over on a new connection.
            let _ = self.conn.execute_batch("ROLLBACK");
            if !self.conn.is_autocommit() {
                match connect(&self.path) {
                    Ok(c) => self.conn = c,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot reopen the history for inserts")
                    }
                }
            }
        }
        result
    }
}

fn closed() -> StoreError {
    StoreError::Corrupt {
        id: 0,
        problem: "the history's insert thread has stopped".into(),
    }
}

/// The thread's connection, with the settings of the store's sqlx writer
/// (see `Store::open`). The history is in WAL mode already.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES};
         PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT};"
    ))?;
    Ok(conn)
}

fn run(mut inserter: HistoryInserter, jobs: mpsc::Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Close(done) => {
                drop(inserter);
                let _ = done.send(());
                return;
            }
            Job::Insert(rows, reply) => {
                let _ = reply.send(inserter.insert_rows(&rows));
            }
        }
    }
}

/// Insert `rows` in one transaction: a new key gets a new row, a key stored
/// before (or earlier in the batch) answers its row's id as a duplicate.
fn insert(conn: &Connection, rows: &[Row]) -> Result<Vec<Inserted>, StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut out = Vec::with_capacity(rows.len());
    {
        let mut ins = conn.prepare_cached(INSERT_SQL)?;
        let mut dup = conn.prepare_cached(DUPLICATE_SQL)?;
        for r in rows {
            let n = ins.execute(params![
                r.source_name,
                r.ce_source,
                r.ce_id,
                r.ce_type,
                r.time_ms,
                r.received_ms,
                r.summary,
                r.importance,
                r.importance_reason,
                r.verified,
                r.verify_reason,
                r.relay_seq,
                r.headers,
                r.payload,
            ])?;
            out.push(if n == 1 {
                Inserted::New(conn.last_insert_rowid())
            } else {
                Inserted::Duplicate(dup.query_row(params![r.ce_source, r.ce_id], |row| row.get(0))?)
            });
        }
    }
    conn.execute_batch("COMMIT")?;
    Ok(out)
}

impl StoreError {
    /// SQLite's disk-full answer from the insert thread's connection.
    pub(crate) fn is_insert_disk_full(&self) -> bool {
        matches!(self, StoreError::Insert(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::DiskFull)
    }
}
