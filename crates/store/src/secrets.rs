//! Secret metadata: names, kinds, times and fingerprints. Never values —
//! those live in the OS keychain (`kitedesk-secrets`).

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::{Store, StoreError};

/// One secret's metadata row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    pub name: String,
    /// `webhook`, `relay_token` or `api_token` (checked by the table).
    pub kind: String,
    pub source: Option<String>,
    pub created: DateTime<Utc>,
    pub rotated: Option<DateTime<Utc>>,
    pub last_used: Option<DateTime<Utc>>,
    /// First 8 hex digits of the value's SHA-256.
    pub fingerprint: String,
    pub previous_fingerprint: Option<String>,
    /// While this lies in the future, the previous value still verifies.
    pub previous_valid_until: Option<DateTime<Utc>>,
}

impl SecretRecord {
    /// When the current value was set (created or last rotated).
    pub fn value_since(&self) -> DateTime<Utc> {
        self.rotated.unwrap_or(self.created)
    }

    /// Is the previous value inside its grace window at `now`?
    pub fn previous_valid_at(&self, now: DateTime<Utc>) -> bool {
        self.previous_valid_until.is_some_and(|t| now < t)
    }
}

const COLUMNS: &str = "name, kind, source, created_ms, rotated_ms, last_used_ms, fingerprint, \
     previous_fingerprint, previous_valid_until_ms";

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

fn from_row(r: &SqliteRow) -> Result<SecretRecord, sqlx::Error> {
    Ok(SecretRecord {
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        source: r.try_get("source")?,
        created: time(r.try_get("created_ms")?),
        rotated: r.try_get::<Option<i64>, _>("rotated_ms")?.map(time),
        last_used: r.try_get::<Option<i64>, _>("last_used_ms")?.map(time),
        fingerprint: r.try_get("fingerprint")?,
        previous_fingerprint: r.try_get("previous_fingerprint")?,
        previous_valid_until: r
            .try_get::<Option<i64>, _>("previous_valid_until_ms")?
            .map(time),
    })
}

impl Store {
    /// All secrets' metadata, by name.
    pub async fn secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM secrets ORDER BY name"
        )))
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    pub async fn secret(&self, name: &str) -> Result<Option<SecretRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM secrets WHERE name = ?"
        )))
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Record a new secret. `false` when the name is taken (nothing changed).
    pub async fn insert_secret(&self, rec: &SecretRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO secrets ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (name) DO NOTHING"
        )))
        .bind(&rec.name)
        .bind(&rec.kind)
        .bind(&rec.source)
        .bind(rec.created.timestamp_millis())
        .bind(rec.rotated.map(|t| t.timestamp_millis()))
        .bind(rec.last_used.map(|t| t.timestamp_millis()))
        .bind(&rec.fingerprint)
        .bind(&rec.previous_fingerprint)
        .bind(rec.previous_valid_until.map(|t| t.timestamp_millis()))
        .execute(self.writer()?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A new value for `name`: the old fingerprint becomes the previous one,
    /// valid until `previous_valid_until` (`None`: not kept). `false` when
    /// there is no such secret.
    pub async fn rotate_secret(
        &self,
        name: &str,
        fingerprint: &str,
        at: DateTime<Utc>,
        previous_valid_until: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE secrets SET \
               previous_fingerprint = CASE WHEN ?3 IS NULL THEN NULL ELSE fingerprint END, \
               previous_valid_until_ms = ?3, fingerprint = ?2, rotated_ms = ?4 \
             WHERE name = ?1",
        )
        .bind(name)
        .bind(fingerprint)
        .bind(previous_valid_until.map(|t| t.timestamp_millis()))
        .bind(at.timestamp_millis())
        .execute(self.writer()?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forget the previous value of `name` (its grace window ended).
    pub async fn clear_previous_secret(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE secrets SET previous_fingerprint = NULL, previous_valid_until_ms = NULL \
             WHERE name = ?",
        )
        .bind(name)
        .execute(self.writer()?)
        .await?;
        Ok(())
    }

    /// Note that `name` verified something at `at`.
    pub async fn secret_used(&self, name: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE secrets SET last_used_ms = max(coalesce(last_used_ms, 0), ?2) WHERE name = ?1",
        )
        .bind(name)
        .bind(at.timestamp_millis())
        .execute(self.writer()?)
        .await?;
        Ok(())
    }

    /// `false` when there was no such secret.
    pub async fn delete_secret(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM secrets WHERE name = ?")
            .bind(name)
            .execute(self.writer()?)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
