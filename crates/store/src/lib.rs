//! Kite Desk's history: a SQLite file (WAL) behind sqlx.
//!
//! [`Store`] owns two pools: one writer connection (the daemon is the only
//! process that writes, so SQLite never answers "database is locked") and a
//! pool of read-only connections for queries. Events dedup on
//! `(ce_source, ce_id)`; pages are keyset-paged on the local `id`; `q`
//! searches an FTS5 index over summary and payload.
//!
//! Main types: [`Store`], [`NewEvent`], [`StoredEvent`], [`EventQuery`],
//! [`Page`].

mod events;
mod query;
mod settings;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use events::{Inserted, NewEvent, StoredEvent, VolumeBucket};
pub use query::{DEFAULT_LIMIT, EventQuery, MAX_LIMIT, Page, QueryError};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the history database at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "{path} is not a Kite Desk history database (or it is corrupted): {source}. \
         Move it aside or pass another --data-dir; it was not modified"
    )]
    Foreign {
        path: PathBuf,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
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
    read: SqlitePool,
    path: PathBuf,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

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
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(open_err)?;
        if let Err(source) = MIGRATOR.run(&write).await {
            write.close().await;
            return Err(StoreError::Foreign {
                path: path.to_path_buf(),
                source,
            });
        }
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(base.read_only(true))
            .await
            .map_err(open_err)?;
        let store = Store {
            write: Some(write),
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

    pub async fn close(&self) {
        if let Some(w) = &self.write {
            w.close().await;
        }
        self.read.close().await;
    }
}
