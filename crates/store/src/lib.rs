//! Kite Desk's history: a SQLite file (WAL) behind sqlx.
//!
//! [`Store`] owns the history's writers (the daemon is the only process
//! that writes): event inserts on a thread with a connection of its own
//! (`inserter`), everything else through one sqlx writer connection; SQLite
//! serializes the two on its file lock (`busy_timeout`). Queries use a pool
//! of read-only connections. Events dedup on
//! `(ce_source, ce_id)`; pages are keyset-paged on the local `id`; `q`
//! searches an FTS5 index over summary and payload, kept in a file of its
//! own beside the history ([`search_path`]) with its own writer connection.
//!
//! The delivery outbox (deliveries, attempts, the routing watermark) lives
//! in the same file: see [`DeliveryRecord`].
//!
//! Main types: [`Store`], [`NewEvent`], [`StoredEvent`], [`EventQuery`],
//! [`Page`], [`DeliveryRecord`].

mod events;
mod inserter;
mod links;
mod outbox;
mod query;
mod secrets;
mod settings;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _, SqlitePool};

pub use events::{
    CATCH_UP_STEP, IndexRow, Inserted, NewEvent, StoredBlobs, StoredEvent, VolumeBucket,
    index_rows_of,
};
pub use inserter::HistoryInserter;
pub use links::LinkCursor;
pub use outbox::{
    AttemptRecord, DeliveryQuery, DeliveryRecord, DeliveryStatus, NewDelivery, Origin,
    RetryOutcome, Settle,
};
pub use query::{DEFAULT_LIMIT, EventQuery, MAX_LIMIT, Page, QueryError, fts_query, sql_globs};
pub use secrets::SecretRecord;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the history database at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "{path} is not a Kite Desk history database (or it is corrupted): {reason}. \
         Move it aside or pass another --data-dir; it was not modified"
    )]
    Foreign { path: PathBuf, reason: String },
    #[error("history database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("history database error: {0}")]
    Insert(#[from] rusqlite::Error),
    #[error("stored row {id} is unreadable: {problem}")]
    Corrupt { id: i64, problem: String },
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("the history was opened read-only")]
    ReadOnly,
}

impl StoreError {
    /// The disk is full: the ingress answers 503 and the caller may retry.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Sql(sqlx::Error::Database(e)) if e.code().as_deref() == Some("13"))
            || self.is_insert_disk_full()
    }
}

/// The history database.
#[derive(Debug, Clone)]
pub struct Store {
    write: Option<SqlitePool>,
    /// Event inserts: a connection of their own on a thread of their own
    /// ([`inserter`]).
    inserter: Option<std::sync::Arc<inserter::Inserter>>,
    /// A connection of its own for [`Store::checkpoint`], so copying the
    /// WAL back into the database runs beside the writer, not in it.
    checkpointer: Option<SqlitePool>,
    /// The search index's own writer connection (its file as `main`,
    /// the history attached as `h`): indexing is written beside the
    /// history's writer, not between its inserts (see [`search_path`]).
    search: Option<SqlitePool>,
    read: SqlitePool,
    path: PathBuf,
}

/// The search index of the history at `history`: a SQLite file of its own
/// beside it (`history.db` → `history.search.db`). SQLite takes one writer
/// per file, so with the index in the history file every indexing step
/// held up the inserts behind it; in its own file, with its own writer
/// connection, indexing runs beside them. It holds only what can be made
/// again from the history: a missing or deleted file is rebuilt. Readers
/// attach it as `search`, so `events_fts` resolves to it.
pub fn search_path(history: &Path) -> PathBuf {
    history.with_extension("search.db")
}

/// `PRAGMA application_id` of a Kite Desk search index: "KDSI".
const SEARCH_APPLICATION_ID: i64 = 0x4B44_5349;

/// `PRAGMA user_version` of the search index: what its text is. 1: each
/// event's summary and its payload's values (`kitedesk_core::search_text`).
/// An index of another version (0: whole payloads, keys included) is
/// emptied on open and rebuilt from the history, like a missing one.
const SEARCH_FORMAT: i64 = 1;

/// The search index's schema, created on first open. The index is
/// contentless (payloads are stored compressed in the history), with
/// `contentless_delete` so a deleted event leaves it by its rowid;
/// `fts_state.indexed_upto` is the highest event id in the index, committed
/// with the index itself.
///
/// Merging (set on every open): FTS5 merges 16 segments at a time instead
/// of 4, since each merge rewrites the segments it joins, so wider merges
/// rewrite every token fewer times (the database thread's CPU per webhook
/// fell from about 50 to 44.5 µs under a burst, bench/RESULTS.md session
/// 4). With `crisismerge` at its default of 16 as well, the incremental
/// merge never began before a level held 16 segments, and the whole level
/// was merged in the step that reached it: 200,000 pushes in steps of 1,000
/// took 10.7 µs an event with the longest step 74 ms; with `crisismerge`
/// 64, 11.0 µs and 25 ms (in the daemon under load such a step took 612 ms
/// and stalled the writer behind it).
const SEARCH_SCHEMA: &str = "
CREATE VIRTUAL TABLE IF NOT EXISTS main.events_fts USING fts5(
    summary, payload,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61'
);
CREATE TABLE IF NOT EXISTS main.fts_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_upto INTEGER NOT NULL
);
INSERT INTO main.fts_state (id, indexed_upto) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
";

/// The writer connection's own automatic checkpoint (in pages of 8 KB):
/// 64 MB, far above what the daemon's checkpoints let the WAL reach.
pub(crate) const WRITER_AUTOCHECKPOINT_PAGES: u32 = 8192;

/// What a WAL that did grow is cut back to after a checkpoint (bytes).
pub(crate) const JOURNAL_SIZE_LIMIT: u64 = 64 << 20;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// `PRAGMA application_id` of a Kite Desk history: "KDHS".
const APPLICATION_ID: i64 = 0x4B44_4853;

/// Before anything writes to an existing file at `path` (switching it to
/// WAL, migrating), make sure it is a Kite Desk history: not some other
/// program's SQLite database, not a file that is not SQLite at all.
async fn check_existing(path: &Path) -> Result<(), StoreError> {
    let foreign = |reason: String| StoreError::Foreign {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(foreign(e.to_string())),
        Ok(m) if m.len() == 0 => return Ok(()),
        Ok(_) => {}
    }
    let opts = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut conn = opts.connect().await.map_err(|e| foreign(e.to_string()))?;
    let checked = async {
        let app_id: i64 = sqlx::query_scalar("PRAGMA application_id")
            .fetch_one(&mut conn)
            .await?;
        if app_id == APPLICATION_ID {
            return Ok(None);
        }
        if app_id != 0 {
            return Ok(Some(format!(
                "it belongs to another program (application_id {app_id:#x})"
            )));
        }
        // Histories created before the application id was set carry our
        // tables and migration log instead (`fts_state` too, until the
        // search index moved to its own file).
        let ours: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
             AND name IN ('_sqlx_migrations', 'events')",
        )
        .fetch_one(&mut conn)
        .await?;
        Ok::<_, sqlx::Error>(
            (ours != 2).then(|| "it is a SQLite database without Kite Desk's tables".to_owned()),
        )
    }
    .await;
    let _ = conn.close().await;
    match checked {
        Ok(None) => Ok(()),
        Ok(Some(reason)) => Err(foreign(reason)),
        Err(e) => Err(foreign(e.to_string())),
    }
}

impl Store {
    /// Open (creating if needed) the history at `path` for writing and run
    /// migrations. Only the daemon does this.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let base = SqliteConnectOptions::from_str("sqlite://")
            .map_err(open_err)?
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a commit survives a process crash; only a
            // power loss can drop the last transactions before a checkpoint.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Statement journals (every multi-row INSERT keeps one) and
            // sorts in memory: otherwise each statement opens, writes and
            // closes a temporary file.
            .pragma("temp_store", "memory");
        check_existing(path).await?;
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // 8 KB pages for a new history: a compressed event row is about
            // 1 KB, and 4 KB pages hold only 3 of them (a quarter wasted).
            // SQLite ignores this for an existing file.
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .page_size(8192)
                    // The daemon checkpoints from its own connection
                    // ([`Store::checkpoint`]); the writer's own automatic
                    // checkpoint is only the safety net for a WAL that
                    // grows past 64 MB.
                    .pragma(
                        "wal_autocheckpoint",
                        WRITER_AUTOCHECKPOINT_PAGES.to_string(),
                    )
                    // A WAL that did grow is cut back to this after a checkpoint.
                    .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string()),
            )
            .await
            .map_err(open_err)?;
        if let Err(e) = MIGRATOR.run(&write).await {
            write.close().await;
            return Err(StoreError::Foreign {
                path: path.to_path_buf(),
                reason: e.to_string(),
            });
        }
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(base.clone())
            .await
            .map_err(open_err)?;
        let search = open_search(&base, path).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .after_connect(attach(search_path(path), ATTACH_SEARCH))
            .connect_with(base.read_only(true))
            .await
            .map_err(open_err)?;
        let inserter = match inserter::Inserter::start(path) {
            Ok(i) => i,
            Err(e) => {
                write.close().await;
                return Err(e);
            }
        };
        let store = Store {
            write: Some(write),
            inserter: Some(std::sync::Arc::new(inserter)),
            checkpointer: Some(checkpointer),
            search: Some(search),
            read,
            path: path.to_path_buf(),
        };
        // Index what a previous run stored but did not index (a crash
        // between an insert and its indexing), up to a bound: a larger
        // backlog (a new or deleted search file under a big history) is
        // left to the daemon's indexer, which catches up in the background
        // while the daemon serves.
        let caught_up = store.index_pending_up_to(Some(OPEN_CATCH_UP)).await?;
        if caught_up > 0 {
            tracing::info!(
                events = caught_up,
                "indexed events the search index did not have yet"
            );
        }
        Ok(store)
    }

    /// Open an existing history read-only (for the CLI while the daemon runs).
    pub async fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(5));
        // Read-only connections attach the search index read-only (SQLite
        // opens attached files with the connection's flags), when there is
        // one: without it, listing works and only searching fails.
        let search = search_path(path);
        let mut pool = SqlitePoolOptions::new().max_connections(2);
        if search.exists() {
            pool = pool.after_connect(attach(search, ATTACH_SEARCH));
        }
        let read = pool
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Store {
            write: None,
            inserter: None,
            checkpointer: None,
            search: None,
            read,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn writer(&self) -> Result<&SqlitePool, StoreError> {
        self.write.as_ref().ok_or(StoreError::ReadOnly)
    }

    fn inserter(&self) -> Result<&inserter::Inserter, StoreError> {
        self.inserter.as_deref().ok_or(StoreError::ReadOnly)
    }

    /// The search index's writer connection.
    fn search_writer(&self) -> Result<&SqlitePool, StoreError> {
        self.search.as_ref().ok_or(StoreError::ReadOnly)
    }

    /// Run `f` in one write transaction of the search index (see
    /// [`Store::write_tx`], whose error handling it shares). A deferred
    /// `BEGIN`, not `BEGIN IMMEDIATE`: that would take the write lock of
    /// every attached file, the history's too, and hold up its writer for
    /// the whole indexing step. Deferred, the step reads the history from a
    /// snapshot and locks only the index's own file, which nothing else
    /// writes.
    pub(crate) async fn search_tx<T>(
        &self,
        f: impl AsyncFnOnce(&mut sqlx::SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        tx_on(self.search_writer()?, "BEGIN", f).await
    }

    /// Run `f` in one write transaction and commit it. Every multi-statement
    /// write goes through here.
    ///
    /// After any error the connection is closed instead of reused (SQLite
    /// rolls back whatever it had open; the pool opens a fresh one). The
    /// reason: after SQLITE_FULL or SQLITE_IOERR, SQLite may already have
    /// rolled the transaction back itself; sqlx's `ROLLBACK` then fails,
    /// its transaction depth stays at 1, and its next `begin()` becomes a
    /// `SAVEPOINT` inside a transaction nobody ever commits: later writes
    /// would be acknowledged but never durable. `BEGIN IMMEDIATE` as an
    /// explicit statement also makes sqlx refuse to nest instead of
    /// silently creating a savepoint.
    pub(crate) async fn write_tx<T>(
        &self,
        f: impl AsyncFnOnce(&mut sqlx::SqliteConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        tx_on(self.writer()?, "BEGIN IMMEDIATE", f).await
    }

    /// Copy what the WAL holds back into the database file (a PASSIVE
    /// checkpoint: it never waits for the writer or readers, and copies
    /// what it can). Returns the WAL's frames and how many of them are in
    /// the database now.
    pub async fn checkpoint(&self) -> Result<(i64, i64), StoreError> {
        let pool = self.checkpointer.as_ref().ok_or(StoreError::ReadOnly)?;
        let row: (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(pool)
            .await?;
        Ok((row.1, row.2))
    }

    pub async fn close(&self) {
        if let Some(i) = &self.inserter {
            i.close().await;
        }
        if let Some(w) = &self.write {
            w.close().await;
        }
        if let Some(s) = &self.search {
            s.close().await;
        }
        if let Some(c) = &self.checkpointer {
            c.close().await;
        }
        self.read.close().await;
    }
}

/// [`Store::write_tx`] on `pool`'s one connection.
async fn tx_on<T>(
    pool: &SqlitePool,
    begin: &'static str,
    f: impl AsyncFnOnce(&mut sqlx::SqliteConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut conn = pool.acquire().await?;
    let result = async {
        let mut tx = sqlx::Connection::begin_with(&mut *conn, begin).await?;
        let value = f(&mut tx).await?;
        tx.commit().await?;
        Ok(value)
    }
    .await;
    if result.is_err() {
        conn.close_on_drop();
    }
    result
}

/// Events [`Store::open`] indexes itself when the search index is behind;
/// beyond that the daemon's indexer catches up in the background.
const OPEN_CATCH_UP: u64 = 20_000;

/// How readers attach the search index: as `search`, so `events_fts`
/// resolves to it.
const ATTACH_SEARCH: &str = "ATTACH DATABASE ? AS search";

/// A pool's `after_connect`: run `sql` (an `ATTACH … AS name`) with
/// `file`'s path bound.
fn attach(
    file: PathBuf,
    sql: &'static str,
) -> impl for<'c> Fn(
    &'c mut sqlx::SqliteConnection,
    sqlx::pool::PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'c, Result<(), sqlx::Error>>
+ Send
+ Sync
+ 'static {
    let file = file.to_string_lossy().into_owned();
    move |conn, _| {
        let file = file.clone();
        Box::pin(async move {
            sqlx::query(sql).bind(file).execute(conn).await?;
            Ok(())
        })
    }
}

/// Open (creating if needed) the search index of the history at `history`
/// with its writer connection, which attaches the history as `h` (indexing
/// reads the events it catches up on from there).
async fn open_search(
    base: &SqliteConnectOptions,
    history: &Path,
) -> Result<SqlitePool, StoreError> {
    let file = search_path(history);
    let open_err = |source| StoreError::Open {
        path: file.clone(),
        source,
    };
    if let Some(reason) = foreign_search(&file).await {
        return Err(StoreError::Foreign {
            path: file.clone(),
            reason: format!(
                "{reason}; it holds only the search index, which is rebuilt from the history when the file is missing"
            ),
        });
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .after_connect(attach(history.to_path_buf(), "ATTACH DATABASE ? AS h"))
        .connect_with(
            base.clone()
                .filename(&file)
                .create_if_missing(true)
                .page_size(8192)
                // SQLite's own automatic checkpoint (1,000 pages, 8 MB),
                // inside the indexer's commits: the indexer is not what a
                // webhook's answer waits for, and small checkpoints keep
                // each of its steps short.
                .pragma("wal_autocheckpoint", "1000")
                .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string()),
        )
        .await
        .map_err(open_err)?;
    let created = async {
        let mut c = pool.acquire().await?;
        let format: i64 = sqlx::query_scalar("PRAGMA main.user_version")
            .fetch_one(&mut *c)
            .await?;
        if format != SEARCH_FORMAT {
            // A new file, or an index of another format: (re)made empty,
            // then filled from the history by the catch-up.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "BEGIN;
                 DROP TABLE IF EXISTS main.events_fts;
                 DROP TABLE IF EXISTS main.fts_state;
                 PRAGMA main.user_version = {SEARCH_FORMAT};
                 COMMIT;"
            )))
            .execute(&mut *c)
            .await?;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA main.application_id = {SEARCH_APPLICATION_ID}; {SEARCH_SCHEMA}"
        )))
        .execute(&mut *c)
        .await?;
        sqlx::raw_sql(
            "INSERT INTO main.events_fts (events_fts, rank) VALUES ('automerge', 16);
             INSERT INTO main.events_fts (events_fts, rank) VALUES ('crisismerge', 64);",
        )
        .execute(&mut *c)
        .await?;
        Ok::<_, sqlx::Error>(())
    }
    .await;
    if let Err(e) = created {
        pool.close().await;
        return Err(open_err(e));
    }
    Ok(pool)
}

/// Why the file at the search index's path is not one (another program's
/// database, not SQLite at all), or `None` when it is one or is missing.
async fn foreign_search(file: &Path) -> Option<String> {
    match std::fs::metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(e.to_string()),
        Ok(m) if m.len() == 0 => return None,
        Ok(_) => {}
    }
    let opts = SqliteConnectOptions::new().filename(file).read_only(true);
    let mut conn = match opts.connect().await {
        Ok(c) => c,
        Err(e) => return Some(e.to_string()),
    };
    let app_id = sqlx::query_scalar::<_, i64>("PRAGMA application_id")
        .fetch_one(&mut conn)
        .await;
    let _ = conn.close().await;
    match app_id {
        Ok(SEARCH_APPLICATION_ID) => None,
        Ok(other) => Some(format!(
            "it is not a Kite Desk search index (application_id {other:#x})"
        )),
        Err(e) => Some(e.to_string()),
    }
}
