//! Opening `relay.db`: WAL, migrations, one writer connection.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub(crate) const FILE: &str = "relay.db";

/// The pools: `write` has one connection (the log writer, admin writes,
/// cursors and retention share it, so SQLite never reports "locked" inside
/// the relay); `read` serves WebSocket catch-up and token lookups;
/// `checkpoint` is one connection that copies the WAL back into the
/// database beside the writer ([`checkpoint`]), not inside its commits.
#[derive(Debug, Clone)]
pub(crate) struct Pools {
    pub(crate) write: SqlitePool,
    pub(crate) read: SqlitePool,
    pub(crate) checkpoint: SqlitePool,
}

/// The writer connection's own automatic checkpoint, in pages: 64 MB of
/// 8 KB pages (32 MB in a log created before, on 4 KB pages), only a safety net far above what [`checkpoint`] lets the WAL
/// reach. At SQLite's default (1,000 pages) the commit that crosses it
/// copies the WAL itself, and every append in that batch waits for it.
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 8192;

/// Copy what the WAL holds back into the database: a PASSIVE checkpoint,
/// which never waits for the writer or the readers and copies what it can.
pub(crate) async fn checkpoint(pools: &Pools) -> Result<(), sqlx::Error> {
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&pools.checkpoint)
        .await
        .map(drop)
}

/// Why the relay database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create the relay data dir {path}: {source}")]
    CreateDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open {path}: {source}")]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "{path} is not a Kite Desk relay database (or it is corrupted): {source}; it was not modified"
    )]
    Foreign {
        path: std::path::PathBuf,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

pub(crate) async fn open(data_dir: &Path) -> Result<Pools, OpenError> {
    std::fs::create_dir_all(data_dir).map_err(|source| OpenError::CreateDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700));
    }
    let path = data_dir.join(FILE);
    let open_err = |source| OpenError::Open {
        path: path.clone(),
        source,
    };
    let base = SqliteConnectOptions::from_str("sqlite://")
        .map_err(open_err)?
        .filename(&path)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL in WAL mode: a commit survives a process crash; only a
        // power loss can drop the last transactions before a checkpoint.
        .synchronous(SqliteSynchronous::Normal)
        // The admin commands may write while a relay runs.
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        // Statement journals and sorts in memory, not a temporary file
        // opened and closed for each multi-row INSERT.
        .pragma("temp_store", "memory");
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .connect_with(
            base.clone()
                .create_if_missing(true)
                // 8 KB pages for a new log (SQLite ignores this for an
                // existing file): a webhook's compressed CloudEvent row is
                // ~1.2 KB, over what a 4 KB page of this WITHOUT ROWID
                // table keeps inline (~1,000 bytes), so each row took an
                // overflow page of its own, mostly empty: ~4.8 KB written
                // per event instead of ~1.3 KB.
                .page_size(8192)
                .pragma(
                    "wal_autocheckpoint",
                    WRITER_AUTOCHECKPOINT_PAGES.to_string(),
                )
                // A WAL that did grow is cut back to this after a checkpoint.
                .pragma("journal_size_limit", (64 << 20).to_string()),
        )
        .await
        .map_err(open_err)?;
    if let Err(source) = MIGRATOR.run(&write).await {
        write.close().await;
        return Err(OpenError::Foreign { path, source });
    }
    let checkpoint = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(base.clone())
        .await
        .map_err(open_err)?;
    let read = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(base.read_only(true))
        .await
        .map_err(open_err)?;
    Ok(Pools {
        write,
        read,
        checkpoint,
    })
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
