//! The delivery outbox: deliveries of events to sinks, every attempt, and
//! the routing watermark over the history.
//!
//! Life of a delivery: `pending` (due at `next_attempt`) → claimed as
//! `delivering` for one attempt → settled as `delivered`, back to
//! `pending` (a later retry) or `dead`. Claiming and settling are guarded
//! by the current status, so a delivery is never attempted twice at once
//! and never again after it was delivered. See the migration for why a
//! `delivering` row found at startup is sent again (at-least-once).

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::events::{LIST_COLUMNS, StoredEvent, row_to_event};
use crate::{Store, StoreError};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Pending,
    Delivering,
    Delivered,
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivering => "delivering",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryStatus::Pending,
            "delivering" => DeliveryStatus::Delivering,
            "delivered" => DeliveryStatus::Delivered,
            "dead" => DeliveryStatus::Dead,
            _ => return None,
        })
    }
}

/// Why a delivery exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The manifest routes the event to a configured sink.
    Route,
    /// Someone forwarded the event (API, CLI, UI).
    Forward,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Route => "route",
            Origin::Forward => "forward",
        }
    }
}

/// A delivery to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub event_id: i64,
    pub ce_id: String,
    pub sink: String,
    /// `http`, `exec`, `file` or `socket`.
    pub kind: String,
    pub target: String,
    pub origin: Origin,
    /// Opaque settings the caller needs to rebuild an ad-hoc target (JSON);
    /// never a secret.
    pub spec: Option<String>,
}

/// One stored attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub n: u32,
    pub started: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub ok: bool,
    /// A stable failure code (`http_status`, `timeout`, `connect`, …).
    pub error_code: Option<String>,
    pub error: Option<String>,
    /// The start of the response body (the caller caps it).
    pub response_body: String,
    pub stderr: Option<String>,
}

/// A stored delivery with its latest attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub event_id: i64,
    pub ce_id: String,
    pub sink: String,
    pub kind: String,
    pub target: String,
    pub origin: Origin,
    pub spec: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// Attempts made before the current round of the retry schedule.
    pub round_start: u32,
    pub next_attempt: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub last: Option<AttemptRecord>,
}

impl DeliveryRecord {
    /// Attempts made in the current round (what the retry schedule counts).
    pub fn round_attempts(&self) -> u32 {
        self.attempts.saturating_sub(self.round_start)
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Delivered,
    /// Try again at this time.
    Retry(DateTime<Utc>),
    Dead,
}

/// Filters for a page of deliveries, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryQuery {
    pub status: Option<DeliveryStatus>,
    pub sink: Option<String>,
    pub event_id: Option<i64>,
    /// Deliveries with `id` below this (the previous page's `next_cursor`).
    pub before: Option<i64>,
    pub limit: Option<u32>,
}

/// What a retry request did.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryOutcome {
    /// Pending again, due now.
    Retried(Box<DeliveryRecord>),
    NotFound,
    /// Delivered already: never sent again.
    AlreadyDelivered,
    /// An attempt is running right now.
    InFlight,
}

const DELIVERY_COLUMNS: &str = "d.id, d.event_id, d.ce_id, d.sink, d.kind, d.target, d.origin, d.spec, \
     d.status, d.attempts, d.round_start, d.next_attempt_ms, d.created_ms, d.updated_ms, \
     a.n AS a_n, a.started_ms AS a_started_ms, a.status_code AS a_status_code, \
     a.latency_ms AS a_latency_ms, a.ok AS a_ok, a.error_code AS a_error_code, a.error AS a_error, \
     a.response_body AS a_response_body, a.stderr AS a_stderr";

const DELIVERY_FROM: &str =
    "deliveries d LEFT JOIN delivery_attempts a ON a.delivery_id = d.id AND a.n = d.attempts";

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

fn corrupt(id: i64, problem: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        id,
        problem: problem.into(),
    }
}

fn row_to_delivery(r: &SqliteRow) -> Result<DeliveryRecord, StoreError> {
    let id: i64 = r.try_get("id")?;
    let status: String = r.try_get("status")?;
    let origin: String = r.try_get("origin")?;
    let last = match r.try_get::<Option<i64>, _>("a_n")? {
        None => None,
        Some(n) => Some(AttemptRecord {
            n: n as u32,
            started: from_ms(r.try_get("a_started_ms")?),
            status_code: r
                .try_get::<Option<i64>, _>("a_status_code")?
                .map(|c| c as u16),
            latency_ms: r.try_get::<i64, _>("a_latency_ms")? as u64,
            ok: r.try_get("a_ok")?,
            error_code: r.try_get("a_error_code")?,
            error: r.try_get("a_error")?,
            response_body: r.try_get("a_response_body")?,
            stderr: r.try_get("a_stderr")?,
        }),
    };
    Ok(DeliveryRecord {
        id,
        event_id: r.try_get("event_id")?,
        ce_id: r.try_get("ce_id")?,
        sink: r.try_get("sink")?,
        kind: r.try_get("kind")?,
        target: r.try_get("target")?,
        origin: match origin.as_str() {
            "route" => Origin::Route,
            "forward" => Origin::Forward,
            other => return Err(corrupt(id, format!("delivery origin {other:?}"))),
        },
        spec: r.try_get("spec")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt(id, format!("delivery status {status:?}")))?,
        attempts: r.try_get::<i64, _>("attempts")? as u32,
        round_start: r.try_get::<i64, _>("round_start")? as u32,
        next_attempt: r.try_get::<Option<i64>, _>("next_attempt_ms")?.map(from_ms),
        created: from_ms(r.try_get("created_ms")?),
        updated: from_ms(r.try_get("updated_ms")?),
        last,
    })
}

fn attempt_from_row(r: &SqliteRow) -> Result<AttemptRecord, StoreError> {
    Ok(AttemptRecord {
        n: r.try_get::<i64, _>("n")? as u32,
        started: from_ms(r.try_get("started_ms")?),
        status_code: r
            .try_get::<Option<i64>, _>("status_code")?
            .map(|c| c as u16),
        latency_ms: r.try_get::<i64, _>("latency_ms")? as u64,
        ok: r.try_get("ok")?,
        error_code: r.try_get("error_code")?,
        error: r.try_get("error")?,
        response_body: r.try_get("response_body")?,
        stderr: r.try_get("stderr")?,
    })
}

impl Store {
    /// The routing watermark: every event with a lower or equal id has
    /// been routed.
    pub async fn routed_upto(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT routed_upto FROM outbox_state WHERE id = 1")
                .fetch_one(&self.read)
                .await?,
        )
    }

    /// Events after `after`, oldest first, with `data` (routing matches on
    /// payload fields) but without headers.
    pub async fn events_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LIST_COLUMNS}, e.payload FROM events e WHERE e.id > ? ORDER BY e.id LIMIT ?"
        )))
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let mut ev = row_to_event(r)?;
                let payload = crate::events::decode_text(ev.id, r.try_get("payload")?)?;
                // A payload that is not JSON (relayed plain text) has no
                // fields: only source and type match.
                ev.event.data = kitedesk_core::Payload::from_text(payload);
                Ok(ev)
            })
            .collect()
    }

    /// Add the deliveries for routed events and move the watermark to
    /// `upto`, in one transaction. Rows already present (the same event and
    /// sink) are skipped. Returns how many were added.
    pub async fn enqueue_routed(
        &self,
        rows: &[NewDelivery],
        upto: i64,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.write_tx(async |tx| {
            let mut added = 0;
            for d in rows {
                added += sqlx::query(
                "INSERT INTO deliveries (event_id, ce_id, sink, kind, target, origin, spec, status,
                     next_attempt_ms, created_ms, updated_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)
                 ON CONFLICT (event_id, sink) WHERE origin = 'route' DO NOTHING",
            )
            .bind(d.event_id)
            .bind(&d.ce_id)
            .bind(&d.sink)
            .bind(&d.kind)
            .bind(&d.target)
            .bind(d.origin.as_str())
            .bind(&d.spec)
            .bind(ms(now))
            .bind(ms(now))
            .bind(ms(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            }
            sqlx::query("UPDATE outbox_state SET routed_upto = max(routed_upto, ?) WHERE id = 1")
                .bind(upto)
                .execute(&mut *tx)
                .await?;
            Ok(added)
        })
        .await
    }

    /// Move the watermark to the newest event without routing anything
    /// (no sink is configured). Writes only when it is behind.
    pub async fn advance_routed_to_end(&self) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE outbox_state SET routed_upto = (SELECT max(id) FROM events)
             WHERE id = 1 AND routed_upto < (SELECT coalesce(max(id), 0) FROM events)",
        )
        .execute(self.writer()?)
        .await?
        .rows_affected())
    }

    /// Create a delivery already claimed (`delivering`): an explicit forward
    /// attempts it at once.
    pub async fn insert_claimed(
        &self,
        d: &NewDelivery,
        now: DateTime<Utc>,
    ) -> Result<DeliveryRecord, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO deliveries (event_id, ce_id, sink, kind, target, origin, spec, status,
                 created_ms, updated_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'delivering', ?, ?) RETURNING id",
        )
        .bind(d.event_id)
        .bind(&d.ce_id)
        .bind(&d.sink)
        .bind(&d.kind)
        .bind(&d.target)
        .bind(d.origin.as_str())
        .bind(&d.spec)
        .bind(ms(now))
        .bind(ms(now))
        .fetch_one(self.writer()?)
        .await?;
        self.delivery_on_writer(id)
            .await?
            .ok_or_else(|| corrupt(id, "delivery vanished after insert"))
    }

    /// Read a delivery through the writer connection (right after writing
    /// it, in the order of the writes).
    async fn delivery_on_writer(&self, id: i64) -> Result<Option<DeliveryRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE d.id = ?"
        )))
        .bind(id)
        .fetch_optional(self.writer()?)
        .await?;
        row.as_ref().map(row_to_delivery).transpose()
    }

    /// Sinks with deliveries due at `now`.
    pub async fn due_sinks(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT sink FROM deliveries WHERE status = 'pending' AND next_attempt_ms <= ?",
        )
        .bind(ms(now))
        .fetch_all(&self.read)
        .await?)
    }

    /// When the next pending delivery is due, if any.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT min(next_attempt_ms) FROM deliveries WHERE status = 'pending'",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(next.map(from_ms))
    }

    /// Claim up to `limit` due deliveries of one sink (oldest due first):
    /// they become `delivering` and are returned.
    pub async fn claim_due(
        &self,
        sink: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let mut out = self
            .write_tx(async |tx| {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "UPDATE deliveries SET status = 'delivering', updated_ms = ?1
             WHERE id IN (SELECT id FROM deliveries
                          WHERE sink = ?2 AND status = 'pending' AND next_attempt_ms <= ?1
                          ORDER BY next_attempt_ms, id LIMIT ?3)
             RETURNING id",
                )
                .bind(ms(now))
                .bind(sink)
                .bind(limit as i64)
                .fetch_all(&mut *tx)
                .await?;
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE d.id = ?"
                    )))
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                    out.push(row_to_delivery(&row)?);
                }
                Ok(out)
            })
            .await?;
        out.sort_by_key(|d| (d.next_attempt, d.id));
        Ok(out)
    }

    /// Record an attempt of a claimed delivery and settle it, in one
    /// transaction. Only a `delivering` row is settled: `Ok(None)` means the
    /// row was not claimed (or is gone), and nothing was written.
    pub async fn settle(
        &self,
        id: i64,
        attempt: &AttemptRecord,
        settle: Settle,
        now: DateTime<Utc>,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let settled = self.write_tx(async |tx| {
        let (status, next) = match settle {
            Settle::Delivered => ("delivered", None),
            Settle::Retry(at) => ("pending", Some(ms(at))),
            Settle::Dead => ("dead", None),
        };
        let n: Option<i64> = sqlx::query_scalar(
            "UPDATE deliveries SET status = ?, next_attempt_ms = ?, attempts = attempts + 1, updated_ms = ?
             WHERE id = ? AND status = 'delivering' RETURNING attempts",
        )
        .bind(status)
        .bind(next)
        .bind(ms(now))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(n) = n else {
            return Ok(false);
        };
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, n, started_ms, status_code, latency_ms, ok,
                 error_code, error, response_body, stderr)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(n)
        .bind(ms(attempt.started))
        .bind(attempt.status_code.map(i64::from))
        .bind(attempt.latency_ms as i64)
        .bind(attempt.ok)
        .bind(&attempt.error_code)
        .bind(&attempt.error)
        .bind(&attempt.response_body)
        .bind(&attempt.stderr)
        .execute(&mut *tx)
        .await?;
        Ok(true)
        })
        .await?;
        if !settled {
            return Ok(None);
        }
        self.delivery_on_writer(id).await
    }

    /// At startup: deliveries left `delivering` by an interrupted run are
    /// pending again, due now. Returns how many.
    pub async fn reset_interrupted(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE deliveries SET status = 'pending', next_attempt_ms = ?1, updated_ms = ?1
             WHERE status = 'delivering'",
        )
        .bind(ms(now))
        .execute(self.writer()?)
        .await?
        .rows_affected())
    }

    pub async fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE d.id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(row_to_delivery).transpose()
    }

    /// Every attempt of a delivery, first first.
    pub async fn delivery_attempts(&self, id: i64) -> Result<Vec<AttemptRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT n, started_ms, status_code, latency_ms, ok, error_code, error, response_body, stderr
             FROM delivery_attempts WHERE delivery_id = ? ORDER BY n",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    /// A page of deliveries, newest first; the cursor is the last id.
    pub async fn list_deliveries(
        &self,
        q: &DeliveryQuery,
    ) -> Result<(Vec<DeliveryRecord>, Option<i64>), StoreError> {
        let limit = q
            .limit
            .unwrap_or(crate::DEFAULT_LIMIT)
            .clamp(1, crate::MAX_LIMIT);
        let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM {DELIVERY_FROM} WHERE 1=1");
        if q.status.is_some() {
            sql.push_str(" AND d.status = ?");
        }
        if q.sink.is_some() {
            sql.push_str(" AND d.sink = ?");
        }
        if q.event_id.is_some() {
            sql.push_str(" AND d.event_id = ?");
        }
        if q.before.is_some() {
            sql.push_str(" AND d.id < ?");
        }
        sql.push_str(" ORDER BY d.id DESC LIMIT ?");
        // Only fixed fragments are formatted into the SQL; values are bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(s) = q.status {
            query = query.bind(s.as_str());
        }
        if let Some(s) = &q.sink {
            query = query.bind(s.clone());
        }
        if let Some(e) = q.event_id {
            query = query.bind(e);
        }
        if let Some(b) = q.before {
            query = query.bind(b);
        }
        let rows = query
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.read)
            .await?;
        let mut out = rows
            .iter()
            .map(row_to_delivery)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if out.len() > limit as usize {
            out.truncate(limit as usize);
            out.last().map(|d| d.id)
        } else {
            None
        };
        Ok((out, next))
    }

    /// Make a dead (or waiting) delivery due now. A dead letter starts the
    /// retry schedule again.
    pub async fn retry_delivery(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<RetryOutcome, StoreError> {
        let changed = sqlx::query(
            "UPDATE deliveries SET
                 round_start = CASE WHEN status = 'dead' THEN attempts ELSE round_start END,
                 status = 'pending', next_attempt_ms = ?1, updated_ms = ?1
             WHERE id = ?2 AND status IN ('dead', 'pending')",
        )
        .bind(ms(now))
        .bind(id)
        .execute(self.writer()?)
        .await?
        .rows_affected();
        let current = self.delivery_on_writer(id).await?;
        Ok(match (changed, current) {
            (_, None) => RetryOutcome::NotFound,
            (1, Some(d)) => RetryOutcome::Retried(Box::new(d)),
            (_, Some(d)) if d.status == DeliveryStatus::Delivered => RetryOutcome::AlreadyDelivered,
            (_, Some(_)) => RetryOutcome::InFlight,
        })
    }

    /// Make every delivery in `status` (dead, or pending) due now. Returns
    /// how many.
    pub async fn retry_all(
        &self,
        status: DeliveryStatus,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        if !matches!(status, DeliveryStatus::Dead | DeliveryStatus::Pending) {
            return Ok(0);
        }
        Ok(sqlx::query(
            "UPDATE deliveries SET
                 round_start = CASE WHEN status = 'dead' THEN attempts ELSE round_start END,
                 status = 'pending', next_attempt_ms = ?1, updated_ms = ?1
             WHERE status = ?2",
        )
        .bind(ms(now))
        .bind(status.as_str())
        .execute(self.writer()?)
        .await?
        .rows_affected())
    }

    /// How many deliveries are in `status`.
    pub async fn count_deliveries(&self, status: DeliveryStatus) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE status = ?")
                .bind(status.as_str())
                .fetch_one(&self.read)
                .await?,
        )
    }
}
