//! Relay links: the stable client id and the last committed relay seq per
//! configured link (table `relay_links`).

use chrono::Utc;
use sqlx::Row;

use crate::{Store, StoreError};

/// What the store remembers about one relay link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkCursor {
    pub name: String,
    pub url: String,
    pub team_id: String,
    /// Sent in `connect`, so the relay resumes from this client's cursor.
    pub client_id: String,
    /// The last relay seq whose event is committed to the history.
    pub last_seq: Option<u64>,
}

impl Store {
    /// The link's row, created (with `new_client_id`) if missing. A link
    /// whose URL or team changed is a different stream: it gets the new
    /// client id and no seq.
    pub async fn ensure_link(
        &self,
        name: &str,
        url: &str,
        team_id: &str,
        new_client_id: &str,
    ) -> Result<LinkCursor, StoreError> {
        if let Some(c) = self.link_cursor(name).await?
            && c.url == url
            && c.team_id == team_id
        {
            return Ok(c);
        }
        sqlx::query(
            "INSERT INTO relay_links (name, url, team_id, client_id, last_seq, updated_ms)
             VALUES (?, ?, ?, ?, NULL, ?)
             ON CONFLICT (name) DO UPDATE SET url = excluded.url, team_id = excluded.team_id,
               client_id = excluded.client_id, last_seq = NULL, updated_ms = excluded.updated_ms",
        )
        .bind(name)
        .bind(url)
        .bind(team_id)
        .bind(new_client_id)
        .bind(Utc::now().timestamp_millis())
        .execute(self.writer()?)
        .await?;
        Ok(LinkCursor {
            name: name.to_string(),
            url: url.to_string(),
            team_id: team_id.to_string(),
            client_id: new_client_id.to_string(),
            last_seq: None,
        })
    }

    pub async fn link_cursor(&self, name: &str) -> Result<Option<LinkCursor>, StoreError> {
        let row = sqlx::query(
            "SELECT name, url, team_id, client_id, last_seq FROM relay_links WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(LinkCursor {
                name: r.try_get("name")?,
                url: r.try_get("url")?,
                team_id: r.try_get("team_id")?,
                client_id: r.try_get("client_id")?,
                last_seq: r
                    .try_get::<Option<i64>, _>("last_seq")?
                    .and_then(|s| u64::try_from(s).ok()),
            })
        })
        .transpose()
    }

    /// Forget a link (removed through the API): a link added again under
    /// the name starts a new stream, with a new client id. Whether a row was
    /// there.
    pub async fn delete_link(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM relay_links WHERE name = ?")
            .bind(name)
            .execute(self.writer()?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Record the last committed seq of a link.
    pub async fn set_link_seq(&self, name: &str, seq: u64) -> Result<(), StoreError> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        sqlx::query("UPDATE relay_links SET last_seq = ?, updated_ms = ? WHERE name = ?")
            .bind(seq)
            .bind(Utc::now().timestamp_millis())
            .bind(name)
            .execute(self.writer()?)
            .await?;
        Ok(())
    }
}
