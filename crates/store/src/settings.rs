//! Key/value settings with JSON values (the `settings` table): the
//! daemon's notification settings and the notifier's watermark live here,
//! next to the history they refer to.

use chrono::Utc;

use crate::{Store, StoreError};

impl Store {
    /// The value stored under `key`, if any.
    pub async fn setting(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.read)
            .await?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|e| StoreError::Corrupt {
                id: 0,
                problem: format!("setting {key}: {e}"),
            })
        })
        .transpose()
    }

    /// Insert or replace `key`.
    pub async fn put_setting(
        &self,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
        )
        .bind(key)
        .bind(value.to_string())
        .bind(Utc::now().timestamp_millis())
        .execute(self.writer()?)
        .await?;
        Ok(())
    }

    /// The newest event's local id (0 for an empty history).
    pub async fn max_event_id(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar::<_, Option<i64>>("SELECT max(id) FROM events")
                .fetch_one(&self.read)
                .await?
                .unwrap_or(0),
        )
    }
}
