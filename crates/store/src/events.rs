//! Inserting events (with dedup) and reading them back.

use chrono::{DateTime, Utc};
use kitedesk_core::{Headers, Importance, KiteEvent, Payload, Verification};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::inserter::HistoryInserter;
use crate::{Store, StoreError};

/// An event ready to store: the normalized envelope plus the payload text
/// exactly as received (forwarding replays these bytes).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: KiteEvent,
    pub payload: String,
    pub received: DateTime<Utc>,
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A new row with this local id.
    New(i64),
    /// `(ce_source, ce_id)` was already stored under this local id.
    Duplicate(i64),
}

impl Inserted {
    pub fn id(self) -> i64 {
        match self {
            Inserted::New(id) | Inserted::Duplicate(id) => id,
        }
    }
}

/// A stored event as the API and CLI see it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Local id: the keyset cursor and the `/api/events/{id}` key.
    pub id: i64,
    pub received: DateTime<Utc>,
    pub event: KiteEvent,
}

/// Event count for one source in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeBucket {
    pub source: String,
    /// Bucket start, Unix milliseconds.
    pub start_ms: i64,
    pub count: i64,
}

pub(crate) const LIST_COLUMNS: &str = "e.id, e.source_name, e.ce_source, e.ce_id, e.ce_type, e.time_ms, e.received_ms, \
     e.summary, e.importance, e.importance_reason, e.verified, e.verify_reason, e.relay_seq";

impl Store {
    /// Store a batch in one transaction (group commit: one commit for many
    /// webhooks), then index it, and anything still waiting, for search
    /// (in the search index's own file, right after the commit). Each
    /// element says whether it was new or a duplicate.
    pub async fn insert_batch(&self, batch: &[NewEvent]) -> Result<Vec<Inserted>, StoreError> {
        self.insert_batch_indexing(batch, Vec::new()).await
    }

    /// [`Store::insert_batch`] for a caller that holds the text of events
    /// it deferred earlier (`pending`, oldest first): they are indexed from
    /// memory with the batch, in one indexing step.
    pub async fn insert_batch_indexing(
        &self,
        batch: &[NewEvent],
        pending: Vec<IndexRow>,
    ) -> Result<Vec<Inserted>, StoreError> {
        let stored = encode_all(batch)?;
        self.insert_encoded(batch, stored, Some(pending)).await
    }

    /// Like [`Store::insert_batch`] but leaves search indexing to a later
    /// [`Store::index_rows`] or [`Store::index_pending`]: the daemon's
    /// writer always does, and its indexer indexes in large batches from
    /// the [`IndexRow`]s of the new events (see [`index_rows_of`]).
    pub async fn insert_batch_deferred(
        &self,
        batch: &[NewEvent],
    ) -> Result<Vec<Inserted>, StoreError> {
        let stored = encode_all(batch)?;
        self.insert_encoded(batch, stored, None).await
    }

    /// The insert behind the others, for a caller that compressed each
    /// event's payload and headers already (`stored[i]` belongs to
    /// `batch[i]`): the daemon does that in its request handlers, in
    /// parallel, so the single writer only writes. With `index` the batch
    /// and those deferred rows are indexed for search once the batch is
    /// committed ([`Store::insert_batch_indexing`]; a crash in between
    /// leaves them to the catch-up on the next open); without, indexing is
    /// deferred ([`Store::insert_batch_deferred`]).
    pub async fn insert_encoded(
        &self,
        batch: &[NewEvent],
        stored: Vec<StoredBlobs>,
        index: Option<Vec<IndexRow>>,
    ) -> Result<Vec<Inserted>, StoreError> {
        check_stored(batch, &stored)?;
        let out = self.inserter()?.insert(batch, stored).await?;
        if let Some(mut pending) = index {
            pending.extend(index_rows_of(batch, &out));
            self.index_rows(&pending).await?;
        }
        Ok(out)
    }

    /// A connection of its own for inserting events on the caller's thread
    /// (see [`HistoryInserter`]), beside the store's own writers.
    pub fn history_inserter(&self) -> Result<HistoryInserter, StoreError> {
        self.writer()?;
        HistoryInserter::open(&self.path)
    }

    /// Index events whose text the caller still holds (the daemon's indexer
    /// gets it from the writer): they go to the index straight from memory
    /// when they are exactly the events waiting for it, oldest first;
    /// otherwise (a restart, retention in between, a backlog) the oldest
    /// waiting events are read back from the history instead, at most
    /// [`CATCH_UP_STEP`] of them. Returns how many were indexed: fewer than
    /// offered means the index is behind the offered rows.
    ///
    /// Indexing writes the search index's own file ([`crate::search_path`])
    /// through its own connection, so it runs beside inserts.
    pub async fn index_rows(&self, rows: &[IndexRow]) -> Result<u64, StoreError> {
        self.search_tx(async |tx| index_in(tx, rows).await).await
    }

    /// FTS5's integrity check of the search index plus SQLite's own check
    /// of both files: an error if either is damaged.
    pub async fn integrity_check(&self) -> Result<(), StoreError> {
        let s = self.search_writer()?;
        sqlx::query("INSERT INTO events_fts (events_fts, rank) VALUES ('integrity-check', 1)")
            .execute(s)
            .await?;
        for (pool, schema) in [(self.writer()?, "main"), (s, "main")] {
            let ok: String =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("PRAGMA {schema}.quick_check")))
                    .fetch_one(pool)
                    .await?;
            if ok != "ok" {
                return Err(StoreError::Corrupt { id: 0, problem: ok });
            }
        }
        Ok(())
    }

    /// Events stored but not in the search index yet: how far search lags
    /// the history (a backlog the daemon's indexer is catching up on).
    pub async fn unindexed(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM h.events WHERE id > (SELECT indexed_upto FROM main.fts_state)",
        )
        .fetch_one(self.search_writer()?)
        .await?)
    }

    /// Add every stored event not yet in the search index. Returns how many.
    pub async fn index_pending(&self) -> Result<u64, StoreError> {
        self.index_pending_up_to(None).await
    }

    /// Index at most `max_rows` pending events in one short transaction,
    /// reading their text back from the history.
    pub async fn index_pending_up_to(&self, max_rows: Option<u64>) -> Result<u64, StoreError> {
        self.search_tx(async |tx| index_pending_in(tx, max_rows.map(|m| m as i64)).await)
            .await
    }

    pub async fn insert(&self, event: NewEvent) -> Result<Inserted, StoreError> {
        let mut v = self.insert_batch(std::slice::from_ref(&event)).await?;
        Ok(v.remove(0))
    }

    /// One event with its payload and headers.
    pub async fn get(&self, id: i64) -> Result<Option<(StoredEvent, String)>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LIST_COLUMNS}, e.headers, e.payload FROM events e WHERE e.id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            let mut ev = row_to_event(&r)?;
            let payload = decode_text(ev.id, r.try_get("payload")?)?;
            let headers = decode_text(ev.id, r.try_get("headers")?)?;
            ev.event.original_headers =
                serde_json::from_str::<Headers>(&headers).map_err(|e| StoreError::Corrupt {
                    id: ev.id,
                    problem: format!("headers: {e}"),
                })?;
            ev.event.data = Payload::from_text(payload.clone());
            Ok((ev, payload))
        })
        .transpose()
    }

    /// Look an event up by its CloudEvent id (newest first if several
    /// sources used the same id).
    pub async fn find_by_ce_id(&self, ce_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM events WHERE ce_id = ? ORDER BY id DESC LIMIT 1")
                .bind(ce_id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.read)
            .await?)
    }

    /// Counts per source per bucket of `bucket_ms`, for events received in
    /// `[from, to)`.
    pub async fn volume(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket_ms: i64,
    ) -> Result<Vec<VolumeBucket>, StoreError> {
        let rows = sqlx::query(
            "SELECT source_name, (received_ms / ?1) * ?1 AS bucket, count(*) AS n
             FROM events WHERE received_ms >= ?2 AND received_ms < ?3
             GROUP BY source_name, bucket ORDER BY bucket, source_name",
        )
        .bind(bucket_ms.max(1))
        .bind(from.timestamp_millis())
        .bind(to.timestamp_millis())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(VolumeBucket {
                    source: r.try_get("source_name")?,
                    start_ms: r.try_get("bucket")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// Delete events received before `older_than` and, beyond that, the
    /// oldest events past `max_count`. Deletes in chunks so the writer never
    /// holds the lock for long. Returns how many rows went.
    pub async fn retain(
        &self,
        older_than: Option<DateTime<Utc>>,
        max_count: Option<u64>,
    ) -> Result<u64, StoreError> {
        let w = self.writer()?;
        let mut deleted = 0;
        if let Some(cutoff) = older_than {
            deleted += self
                .delete_chunked(RETAIN_AGE_SQL, cutoff.timestamp_millis())
                .await?;
        }
        if let Some(max) = max_count.filter(|m| *m > 0) {
            // The id of the oldest row to keep; everything below it goes.
            let keep_from: Option<i64> =
                sqlx::query_scalar("SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?")
                    .bind(max.saturating_sub(1) as i64)
                    .fetch_optional(w)
                    .await?;
            if let Some(keep_from) = keep_from {
                deleted += self
                    .delete_chunked(
                        "DELETE FROM events WHERE id IN
                           (SELECT id FROM events WHERE id < ? ORDER BY id LIMIT ?)
                         RETURNING id",
                        keep_from,
                    )
                    .await?;
            }
        }
        Ok(deleted)
    }
}

/// One chunk of the age retention: the oldest received events below the
/// cutoff, found through `events_received`. Ordered by id instead, SQLite
/// walked the whole table in id order looking for old rows: on an 8M-event
/// history with none old enough that read all 15 GB, and the daemon, whose
/// retention runs at start, gave up waiting for its writer after 30 s.
const RETAIN_AGE_SQL: &str = "DELETE FROM events WHERE id IN
     (SELECT id FROM events WHERE received_ms < ? ORDER BY received_ms LIMIT ?)
     RETURNING id";

impl Store {
    /// SQLite's plan (`EXPLAIN QUERY PLAN` details) for one chunk of the age
    /// retention [`Store::retain`] runs, for tests that pin it.
    pub async fn retain_plan(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {RETAIN_AGE_SQL}"
        )))
        .bind(0_i64)
        .bind(1_i64)
        .fetch_all(self.writer()?)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("detail")?))
            .collect()
    }
}

impl Store {
    /// Run a `DELETE … WHERE x < ?1 … LIMIT ?2 RETURNING id` until it
    /// deletes less than a chunk, so the writer never holds the lock for
    /// long, and take each chunk's events out of the search index.
    async fn delete_chunked(&self, sql: &'static str, bound: i64) -> Result<u64, StoreError> {
        const CHUNK: i64 = 5_000;
        let mut deleted = 0;
        loop {
            let ids: Vec<i64> = sqlx::query_scalar(sql)
                .bind(bound)
                .bind(CHUNK)
                .fetch_all(self.writer()?)
                .await?;
            let n = ids.len() as u64;
            deleted += n;
            self.unindex(&ids).await?;
            if n < CHUNK as u64 {
                return Ok(deleted);
            }
        }
    }

    /// Take deleted events out of the search index: those it holds (ids up
    /// to its watermark; later ones were not indexed yet). This runs after
    /// the history's delete committed: a crash in between, or an indexing
    /// step racing the delete with the text of events it removed (see
    /// [`Store::index_rows`]), leaves entries for ids that no longer exist,
    /// which a search never shows (it joins the events table) and no new
    /// event reuses (ids are AUTOINCREMENT).
    async fn unindex(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let list = serde_json::to_string(ids).map_err(|e| StoreError::Corrupt {
            id: 0,
            problem: e.to_string(),
        })?;
        self.search_tx(async |tx| {
            sqlx::query(
                "DELETE FROM main.events_fts WHERE rowid IN (SELECT value FROM json_each(?))
                   AND rowid <= (SELECT indexed_upto FROM main.fts_state)",
            )
            .bind(list)
            .execute(&mut *tx)
            .await?;
            Ok(())
        })
        .await
    }
}

/// The text the search index needs for one stored event. The index is
/// contentless (payloads are stored compressed), so the writer hands it the
/// text it already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    pub id: i64,
    pub summary: String,
    pub payload: String,
}

/// The [`IndexRow`]s of the events of `batch` that were new.
pub fn index_rows_of(batch: &[NewEvent], inserted: &[Inserted]) -> Vec<IndexRow> {
    batch
        .iter()
        .zip(inserted)
        .filter_map(|(ne, r)| match r {
            Inserted::New(id) => Some(IndexRow {
                id: *id,
                summary: ne.event.summary.clone(),
                payload: ne.payload.clone(),
            }),
            Inserted::Duplicate(_) => None,
        })
        .collect()
}

/// Rows per multi-row INSERT into the search index (3 values each). FTS5
/// writes what a statement added as a new segment of the index when the
/// next statement of the transaction begins, and every segment is merged
/// later, so an indexing step is best one statement: the writer's steps
/// are this size.
const INDEX_ROWS_PER_STATEMENT: usize = 1024;

/// Index `rows` if they are exactly the oldest events waiting for the index
/// (every id after the watermark up to the last row's, in order); otherwise
/// index whatever waits by reading it back from the history. Returns how
/// many were indexed.
async fn index_in(tx: &mut sqlx::SqliteConnection, rows: &[IndexRow]) -> Result<u64, StoreError> {
    let upto: i64 = sqlx::query_scalar("SELECT indexed_upto FROM main.fts_state WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let rows: Vec<&IndexRow> = rows.iter().filter(|r| r.id > upto).collect();
    let Some(last) = rows.last().map(|r| r.id) else {
        // Nothing new offered: leave what waits to its own step.
        return Ok(0);
    };
    // The rows must be every event from the watermark to the last one
    // offered (later ones may wait for a later step). Ids are unique, so
    // rows numbered upto+1, upto+2, … are all of them, proven without
    // reading the history: a read would hold a snapshot of the history for
    // the whole step, and with steps back to back the history's WAL could
    // never start over (it grew to its 64 MB limit, where every commit
    // checkpoints). Anything else (a gap: another writer's events, or
    // events the index is behind on) is read back from the history.
    let contiguous = rows.iter().zip(upto + 1..).all(|(r, id)| r.id == id);
    if contiguous {
        insert_index_rows(tx, &rows).await?;
        set_indexed_upto(tx, last).await?;
        Ok(rows.len() as u64)
    } else {
        index_pending_in(tx, Some(CATCH_UP_STEP as i64)).await
    }
}

/// Most events one indexing step reads back from the history when the
/// rows offered are not what waits (see [`Store::index_rows`]).
pub const CATCH_UP_STEP: u64 = 5_000;

async fn insert_index_rows(
    tx: &mut sqlx::SqliteConnection,
    rows: &[&IndexRow],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(INDEX_ROWS_PER_STATEMENT) {
        let mut sql = String::from("INSERT INTO main.events_fts (rowid, summary, payload) VALUES ");
        sql.push_str(&vec!["(?, ?, ?)"; chunk.len()].join(", "));
        // The SQL is built from fixed fragments only; every value is bound.
        // A payload's values, not its keys and punctuation (see
        // `kitedesk_core::search_text`).
        let texts: Vec<_> = chunk
            .iter()
            .map(|r| kitedesk_core::search_text::search_text(&r.payload))
            .collect();
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (r, text) in chunk.iter().zip(&texts) {
            q = q.bind(r.id).bind(&r.summary).bind(text.as_ref());
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

async fn set_indexed_upto(tx: &mut sqlx::SqliteConnection, upto: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE main.fts_state SET indexed_upto = ? WHERE id = 1")
        .bind(upto)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Index up to `max_rows` stored events not yet in the search index (all of
/// them when `None`), oldest first, reading their text back from the
/// history. Returns how many were indexed.
async fn index_pending_in(
    tx: &mut sqlx::SqliteConnection,
    max_rows: Option<i64>,
) -> Result<u64, StoreError> {
    // Bounded reads, so a large backlog (after a migration) never sits in
    // memory at once.
    const READ_CHUNK: i64 = 2_000;
    let mut left = max_rows.unwrap_or(i64::MAX);
    let mut indexed = 0u64;
    while left > 0 {
        let found = sqlx::query(
            "SELECT id, summary, payload FROM h.events
             WHERE id > (SELECT indexed_upto FROM main.fts_state) ORDER BY id LIMIT ?",
        )
        .bind(left.min(READ_CHUNK))
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = found.last() else { break };
        let last: i64 = last.try_get("id")?;
        let rows = found
            .iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                Ok(IndexRow {
                    id,
                    summary: r.try_get("summary")?,
                    payload: decode_text(id, r.try_get("payload")?)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        insert_index_rows(tx, &rows.iter().collect::<Vec<_>>()).await?;
        set_indexed_upto(tx, last).await?;
        indexed += rows.len() as u64;
        left -= rows.len() as i64;
    }
    Ok(indexed)
}

/// One stored form per event.
pub(crate) fn check_stored(batch: &[NewEvent], stored: &[StoredBlobs]) -> Result<(), StoreError> {
    if batch.len() != stored.len() {
        return Err(StoreError::Corrupt {
            id: 0,
            problem: format!(
                "{} events offered with {} stored forms",
                batch.len(),
                stored.len()
            ),
        });
    }
    Ok(())
}

/// An event's payload and header list as stored, made by
/// [`StoredBlobs::encode`] wherever the caller has CPU to spare: the
/// payload as a zstd frame, the header list as plain JSON text. A header
/// list is a few hundred bytes, and compressing it cost more than the
/// payload's compression (zstd builds its tables for every input: 3.4 µs
/// of the ~80 µs of CPU a webhook takes, bench/RESULTS.md session 8) to
/// save about 100 bytes; both columns read back either way.
#[derive(Debug, Clone)]
pub struct StoredBlobs {
    pub(crate) headers: Vec<u8>,
    pub(crate) payload: Vec<u8>,
}

impl StoredBlobs {
    pub fn encode(event: &NewEvent) -> Result<StoredBlobs, StoreError> {
        let headers = serde_json::to_string(&event.event.original_headers).map_err(|err| {
            StoreError::Corrupt {
                id: 0,
                problem: err.to_string(),
            }
        })?;
        Ok(StoredBlobs {
            headers: headers.into_bytes(),
            payload: encode_text(&event.payload)?,
        })
    }
}

fn encode_all(batch: &[NewEvent]) -> Result<Vec<StoredBlobs>, StoreError> {
    batch.iter().map(StoredBlobs::encode).collect()
}

/// A payload (or header list) as stored: a zstd frame.
pub(crate) fn encode_text(text: &str) -> Result<Vec<u8>, StoreError> {
    kitedesk_core::stored_text::encode(text).map_err(|e| StoreError::Corrupt {
        id: 0,
        problem: e.to_string(),
    })
}

/// A stored payload or header list back as text (a zstd frame, or TEXT
/// from before compression).
pub(crate) fn decode_text(id: i64, stored: Vec<u8>) -> Result<String, StoreError> {
    kitedesk_core::stored_text::decode(stored).map_err(|e| StoreError::Corrupt {
        id,
        problem: e.to_string(),
    })
}

fn millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

/// Map a row of [`LIST_COLUMNS`] to an event without payload or headers.
pub(crate) fn row_to_event(r: &SqliteRow) -> Result<StoredEvent, StoreError> {
    let id: i64 = r.try_get("id")?;
    let rank: i64 = r.try_get("importance")?;
    let importance = Importance::from_rank(rank).ok_or_else(|| StoreError::Corrupt {
        id,
        problem: format!("importance {rank}"),
    })?;
    let verified: bool = r.try_get("verified")?;
    let reason: String = r.try_get("verify_reason")?;
    let seq: Option<i64> = r.try_get("relay_seq")?;
    Ok(StoredEvent {
        id,
        received: millis(r.try_get("received_ms")?),
        event: KiteEvent {
            id: r.try_get("ce_id")?,
            source: r.try_get("ce_source")?,
            ty: r.try_get("ce_type")?,
            time: millis(r.try_get("time_ms")?),
            source_name: r.try_get("source_name")?,
            summary: r.try_get("summary")?,
            data: Payload::null(),
            seq: seq.map(|s| s as u64),
            original_headers: Headers::new(),
            verification: Verification { verified, reason },
            importance,
            importance_reason: r.try_get("importance_reason")?,
        },
    })
}
