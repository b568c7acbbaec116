//! Kite Desk's history: a SQLite file (WAL) behind sqlx.
//!
//! [`Store`] owns two pools: one writer connection (the daemon is the only
//! process that writes, so SQLite never answers "database is locked") and a
//! pool of read-only connections for queries. Events dedup on
//! `(ce_source, ce_id)`; pages are keyset-paged on the local `id`; `q`
//! searches an FTS5 index over summary and payload.
//!
//! The delivery outbox (deliveries, attempts, the routing watermark) lives
//! in the same file: see [`DeliveryRecord`].
//!
//! Main types: [`Store`], [`NewEvent`], [`StoredEvent`], [`EventQuery`],
//! [`Page`], [`DeliveryRecord`].

mod events;
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
    IndexRow, Inserted, NewEvent, StoredBlobs, StoredEvent, VolumeBucket, index_rows_of,
};
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
    }
}

/// The history database.
#[derive(Debug, Clone)]
pub struct Store {
    write: Option<SqlitePool>,
    /// A connection of its own for [`Store::checkpoint`], so copying the
    /// WAL back into the database runs beside the writer, not in it.
    checkpointer: Option<SqlitePool>,
    read: SqlitePool,
    path: PathBuf,
}

/// The writer connection's own automatic checkpoint (in pages of 8 KB):
/// 64 MB, far above what the daemon's checkpoints let the WAL reach.
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 8192;

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
        // tables and migration log instead.
        let ours: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
             AND name IN ('_sqlx_migrations', 'events', 'fts_state')",
        )
        .fetch_one(&mut conn)
        .await?;
        Ok::<_, sqlx::Error>(
            (ours != 3).then(|| "it is a SQLite database without Kite Desk's tables".to_owned()),
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
                    .pragma("journal_size_limit", (64 << 20).to_string()),
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
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(base.read_only(true))
            .await
            .map_err(open_err)?;
        let store = Store {
            write: Some(write),
            checkpointer: Some(checkpointer),
            read,
            path: path.to_path_buf(),
        };
        // Index whatever a previous run stored but did not index (a crash
        // between an insert and its deferred indexing).
        let caught_up = store.index_pending().await?;
        if caught_up > 0 {
            tracing::info!(
                events = caught_up,
                "indexed events left unindexed by the previous run"
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
        let read = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Store {
            write: None,
            checkpointer: None,
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
        let mut conn = self.writer()?.acquire().await?;
        let result = async {
            let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
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
        if let Some(w) = &self.write {
            w.close().await;
        }
        if let Some(c) = &self.checkpointer {
            c.close().await;
        }
        self.read.close().await;
    }
}
