//! Opening `relay.db`: WAL, migrations, one writer connection.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub(crate) const FILE: &str = "relay.db";

/// Both pools: `write` has one connection (the log writer, admin writes,
/// cursors and retention share it, so SQLite never reports "locked" inside
/// the relay); `read` serves WebSocket catch-up and token lookups.
#[derive(Debug, Clone)]
pub(crate) struct Pools {
    pub(crate) write: SqlitePool,
    pub(crate) read: SqlitePool,
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
        .connect_with(base.clone().create_if_missing(true))
        .await
        .map_err(open_err)?;
    if let Err(source) = MIGRATOR.run(&write).await {
        write.close().await;
        return Err(OpenError::Foreign { path, source });
    }
    let read = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(base.read_only(true))
        .await
        .map_err(open_err)?;
    Ok(Pools { write, read })
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
