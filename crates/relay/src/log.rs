//! The relay's event log: per-team `seq`, dedup, cursors, retention.
//!
//! [`EventLog`] is deliberately narrow (append, read from seq, bounds,
//! cursors, retention, head notifications) so a PostgreSQL backend for
//! several relay replicas is a new implementation, not a rewrite (DESIGN,
//! "When a team outgrows one relay"). [`SqliteLog`] is the embedded default:
//! one writer task takes appends from a bounded queue and commits them in
//! batches (group commit), assigning seqs in arrival order; every caller is
//! answered only after its batch is committed.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row as _, Sqlite};
use tokio::sync::{mpsc, oneshot, watch};

use crate::db::{self, Pools};

/// One event to append. `event_json` is the CloudEvent as a JSON object
/// without `kiteseq`: the log adds it once the seq is known.
#[derive(Debug, Clone)]
pub struct Append {
    pub team_id: String,
    pub ce_source: String,
    pub ce_id: String,
    pub source_name: String,
    pub ce_type: String,
    pub received: DateTime<Utc>,
    pub event_json: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    New(u64),
    /// Already in the log (same team, CloudEvent source and id) at this seq.
    Duplicate(u64),
}

impl Appended {
    pub fn seq(self) -> u64 {
        match self {
            Appended::New(s) | Appended::Duplicate(s) => s,
        }
    }
}

/// One logged event.
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: u64,
    pub source_name: String,
    pub ce_source: String,
    pub ce_type: String,
    /// The CloudEvent JSON with `kiteseq`.
    pub event_json: String,
}

/// What a team's log holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The oldest retained seq, if any event is retained.
    pub oldest: Option<u64>,
    /// The last seq handed out (0 before the first event).
    pub last: u64,
}

impl Bounds {
    /// The first seq a reader can still get: the oldest retained, or the
    /// next one when nothing is retained.
    pub fn first_available(&self) -> u64 {
        self.oldest.unwrap_or(self.last + 1)
    }
}

/// Retention: events older than `max_age`, and beyond the newest
/// `max_events_per_team` of a team, are deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Option<Duration>,
    pub max_events_per_team: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            max_events_per_team: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log database error: {0}")]
    Sql(#[source] Arc<sqlx::Error>),
    #[error("no team {0:?}")]
    UnknownTeam(String),
    #[error("the event log writer has stopped")]
    Stopped,
    #[error("stored event is not a JSON object")]
    NotAnObject,
    #[error("stored event: {0}")]
    StoredText(#[from] kitedesk_core::stored_text::StoredTextError),
}

impl From<sqlx::Error> for LogError {
    fn from(e: sqlx::Error) -> Self {
        LogError::Sql(Arc::new(e))
    }
}

impl LogError {
    /// The disk is full: the ingress answers 503 and senders retry.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, LogError::Sql(e) if matches!(&**e, sqlx::Error::Database(d) if d.code().as_deref() == Some("13")))
    }
}

/// The storage behind the relay. Implementations must hand out seqs per
/// team that only ever increase, never reuse one, and answer an append only
/// once it is durable.
pub trait EventLog: Send + Sync + 'static {
    fn append(&self, event: Append) -> impl Future<Output = Result<Appended, LogError>> + Send;
    /// Events of `team` with `seq >= from`, in seq order, at most `limit`.
    fn read_from(
        &self,
        team: &str,
        from: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Entry>, LogError>> + Send;
    fn bounds(&self, team: &str) -> impl Future<Output = Result<Bounds, LogError>> + Send;
    /// A watch on `team`'s last seq, to wake readers when events arrive.
    fn subscribe(
        &self,
        team: &str,
    ) -> impl Future<Output = Result<watch::Receiver<u64>, LogError>> + Send;
    /// The last seq `client` acknowledged (or was positioned at).
    fn cursor(
        &self,
        team: &str,
        client: &str,
    ) -> impl Future<Output = Result<Option<u64>, LogError>> + Send;
    /// Record a cursor. May be written lazily; `flush_cursor` makes it durable.
    fn set_cursor(&self, team: &str, client: &str, seq: u64);
    fn flush_cursor(
        &self,
        team: &str,
        client: &str,
    ) -> impl Future<Output = Result<(), LogError>> + Send;
    /// Apply retention; returns the number of events removed.
    fn retain(
        &self,
        policy: &Retention,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, LogError>> + Send;
}

/// Appends committed in one transaction at most.
const MAX_BATCH: usize = 2048;
/// Appends waiting for the writer before callers wait (backpressure).
const QUEUE: usize = 8192;
/// Rows per multi-row INSERT: 8 columns each, under SQLite's 32766
/// bound-parameter limit.
const INSERT_CHUNK: usize = 1000;
/// (source, id) pairs per dedup lookup.
const LOOKUP_CHUNK: usize = 400;
/// Retention deletes in chunks so the writer is never blocked for long.
const DELETE_CHUNK: i64 = 5000;

type Reply = oneshot::Sender<Result<Appended, LogError>>;

enum Request {
    Append(Box<Encoded>, Reply),
    /// Answered once everything queued before it is committed.
    Flush(oneshot::Sender<()>),
}

/// The SQLite event log (`relay.db`).
#[derive(Debug)]
pub struct SqliteLog {
    pools: Pools,
    tx: mpsc::Sender<Request>,
    heads: Arc<Heads>,
    /// Cursors acknowledged but not yet written (written every 200 ms, on
    /// session end and at shutdown): an ack per event would otherwise be a
    /// write per event.
    cursors: Arc<Mutex<HashMap<(String, String), u64>>>,
    flusher: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Append(a, _) => write!(f, "Append({}/{})", a.ce_source, a.ce_id),
            Request::Flush(_) => f.write_str("Flush"),
        }
    }
}

/// Per-team last seq, published after each commit.
#[derive(Debug, Default)]
struct Heads(Mutex<HashMap<String, watch::Sender<u64>>>);

impl Heads {
    fn publish(&self, team: &str, last: u64) {
        let Ok(mut map) = self.0.lock() else { return };
        match map.get(team) {
            Some(tx) => {
                tx.send_if_modified(|v| {
                    let changed = *v < last;
                    *v = (*v).max(last);
                    changed
                });
            }
            None => {
                map.insert(team.to_string(), watch::channel(last).0);
            }
        }
    }
}

impl SqliteLog {
    pub(crate) async fn new(pools: Pools) -> Result<SqliteLog, LogError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let heads = Arc::new(Heads::default());
        let wrote = spawn_checkpointer(pools.clone());
        tokio::spawn(writer(pools.write.clone(), rx, heads.clone(), wrote));
        let cursors: Arc<Mutex<HashMap<(String, String), u64>>> = Arc::default();
        let flusher = tokio::spawn({
            let cursors = cursors.clone();
            let pool = pools.write.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tick.tick().await;
                    if let Err(e) = write_cursors(&pool, &cursors, None).await {
                        tracing::warn!(error = %e, "cannot save client cursors; will retry");
                    }
                }
            }
        });
        Ok(SqliteLog {
            pools,
            tx,
            heads,
            cursors,
            flusher,
        })
    }

    /// Commit everything queued, save cursors, close the database.
    pub(crate) async fn close(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Request::Flush(done)).await.is_ok() {
            let _ = rx.await;
        }
        self.flusher.abort();
        if let Err(e) = write_cursors(&self.pools.write, &self.cursors, None).await {
            tracing::warn!(error = %e, "cannot save client cursors at shutdown");
        }
        self.pools.write.close().await;
        self.pools.checkpoint.close().await;
        self.pools.read.close().await;
    }
}

/// How long the checkpointer lets commits gather before it copies the WAL
/// back into the database. Measured with `bash bench/relay-ingest.sh 1229
/// 10` (bench/RESULTS.md, "Session 6"), quiet machine: 1 ms 17.6-17.8k
/// req/s, p99 3.4-3.5 ms; 10 ms 18.2-18.9k, p99 6.7-7.5 ms; none at all
/// (checkpoints back to back) 14.0-14.4k, p99 3.7 ms. Under load a longer
/// wait lets the tail grow with it: 200 ms gave p99 58-365 ms.
const CHECKPOINT_AFTER: Duration = Duration::from_millis(1);

/// Checkpoint the log after commits (the writer sends on the returned
/// channel) until the writer stops and drops its sender: one checkpoint
/// [`CHECKPOINT_AFTER`] a commit lands, covering every commit until it
/// runs; commits during it make one more.
fn spawn_checkpointer(pools: Pools) -> mpsc::Sender<()> {
    let (wrote, mut commits) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        while commits.recv().await.is_some() {
            tokio::time::sleep(CHECKPOINT_AFTER).await;
            if let Err(e) = db::checkpoint(&pools).await {
                tracing::warn!(error = %e, "event log checkpoint failed; the writer's own checkpoint takes over");
            }
        }
    });
    wrote
}

async fn write_cursors(
    pool: &sqlx::SqlitePool,
    cursors: &Mutex<HashMap<(String, String), u64>>,
    only: Option<(&str, &str)>,
) -> Result<(), LogError> {
    let pending: Vec<((String, String), u64)> = {
        let Ok(mut map) = cursors.lock() else {
            return Ok(());
        };
        match only {
            Some((t, c)) => map
                .remove(&(t.to_string(), c.to_string()))
                .map(|s| ((t.to_string(), c.to_string()), s))
                .into_iter()
                .collect(),
            None => map.drain().collect(),
        }
    };
    if pending.is_empty() {
        return Ok(());
    }
    let now = db::now_ms();
    // See `commit`: after an error the connection is closed, not reused.
    let mut conn = None;
    let result = async {
        let c = conn.insert(pool.acquire().await?);
        let mut tx = sqlx::Connection::begin_with(&mut **c, "BEGIN IMMEDIATE").await?;
        for ((team, client), seq) in &pending {
            // Cursors only move forward (acks are cumulative).
            sqlx::query(
                "INSERT INTO cursors (team_id, client_id, acked_seq, updated_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (team_id, client_id) DO UPDATE
                 SET acked_seq = MAX(acked_seq, excluded.acked_seq), updated_at = excluded.updated_at",
            )
            .bind(team)
            .bind(client)
            .bind(to_i64(*seq))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        if let Some(c) = conn.as_mut() {
            c.close_on_drop();
        }
        // Put them back (unless newer acks arrived) for the next attempt.
        if let Ok(mut map) = cursors.lock() {
            for (k, s) in pending {
                let v = map.entry(k).or_insert(s);
                *v = (*v).max(s);
            }
        }
        return Err(e.into());
    }
    Ok(())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// An append on its way to the writer, its CloudEvent already compressed
/// by the caller's task (so that work runs on every core, not in the single
/// writer). The stored CloudEvent has no `kiteseq`: the seq is the row's
/// `seq` column, spliced in when the event is read ([`with_stored_seq`]).
#[derive(Debug)]
struct Encoded {
    team_id: String,
    ce_source: String,
    ce_id: String,
    source_name: String,
    ce_type: String,
    received: DateTime<Utc>,
    /// A zstd frame of the CloudEvent JSON object.
    event: Vec<u8>,
}

impl Encoded {
    fn new(a: Append) -> Result<Encoded, LogError> {
        // Refuse what the read side could not splice a seq into.
        let body = a.event_json.trim();
        if !(body.starts_with('{') && body.ends_with('}')) {
            return Err(LogError::NotAnObject);
        }
        Ok(Encoded {
            event: kitedesk_core::stored_text::encode(body)?,
            team_id: a.team_id,
            ce_source: a.ce_source,
            ce_id: a.ce_id,
            source_name: a.source_name,
            ce_type: a.ce_type,
            received: a.received,
        })
    }
}

/// A logged CloudEvent as readers get it: with `"kiteseq":seq` as its last
/// member. Rows appended before the seq was kept apart hold it already.
fn with_stored_seq(stored: String, seq: u64) -> Result<String, LogError> {
    if stored.trim_end().ends_with(&format!("\"kiteseq\":{seq}}}")) {
        return Ok(stored);
    }
    with_seq(&stored, seq)
}

/// `event_json` with `"kiteseq":seq` as its last member.
/// A splice, not a re-serialization: the object came from serde_json.
fn with_seq(event_json: &str, seq: u64) -> Result<String, LogError> {
    let body = event_json.trim_end();
    let inner = body
        .strip_suffix('}')
        .filter(|_| body.starts_with('{'))
        .ok_or(LogError::NotAnObject)?;
    let empty = inner.trim_start_matches('{').trim().is_empty();
    let sep = if empty { "" } else { "," };
    Ok(format!("{inner}{sep}\"kiteseq\":{seq}}}"))
}

impl EventLog for SqliteLog {
    async fn append(&self, event: Append) -> Result<Appended, LogError> {
        let encoded = Encoded::new(event)?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Append(Box::new(encoded), reply))
            .await
            .map_err(|_| LogError::Stopped)?;
        rx.await.map_err(|_| LogError::Stopped)?
    }

    async fn read_from(&self, team: &str, from: u64, limit: usize) -> Result<Vec<Entry>, LogError> {
        let rows = sqlx::query(
            "SELECT seq, source_name, ce_source, ce_type, event FROM events
             WHERE team_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
        )
        .bind(team)
        .bind(to_i64(from))
        .bind(to_i64(limit as u64))
        .fetch_all(&self.pools.read)
        .await?;
        rows.iter()
            .map(|r| {
                let seq = to_u64(r.try_get("seq")?);
                // A zstd frame (or, written before compression, text).
                let stored = kitedesk_core::stored_text::decode(r.try_get("event")?)?;
                Ok(Entry {
                    seq,
                    source_name: r.try_get("source_name")?,
                    ce_source: r.try_get("ce_source")?,
                    ce_type: r.try_get("ce_type")?,
                    event_json: with_stored_seq(stored, seq)?,
                })
            })
            .collect()
    }

    async fn bounds(&self, team: &str) -> Result<Bounds, LogError> {
        let row = sqlx::query(
            "SELECT t.last_seq AS last, (SELECT MIN(seq) FROM events WHERE team_id = t.id) AS oldest
             FROM teams t WHERE t.id = ?",
        )
        .bind(team)
        .fetch_optional(&self.pools.read)
        .await?
        .ok_or_else(|| LogError::UnknownTeam(team.to_string()))?;
        Ok(Bounds {
            last: to_u64(row.get("last")),
            oldest: row.get::<Option<i64>, _>("oldest").map(to_u64),
        })
    }

    async fn subscribe(&self, team: &str) -> Result<watch::Receiver<u64>, LogError> {
        if let Ok(map) = self.heads.0.lock()
            && let Some(tx) = map.get(team)
        {
            return Ok(tx.subscribe());
        }
        // Read the committed head first, then register: if the writer
        // published in between, its (newer) sender wins the entry.
        let last = self.bounds(team).await?.last;
        let Ok(mut map) = self.heads.0.lock() else {
            return Err(LogError::Stopped);
        };
        Ok(map
            .entry(team.to_string())
            .or_insert_with(|| watch::channel(last).0)
            .subscribe())
    }

    async fn cursor(&self, team: &str, client: &str) -> Result<Option<u64>, LogError> {
        let pending = self
            .cursors
            .lock()
            .ok()
            .and_then(|m| m.get(&(team.to_string(), client.to_string())).copied());
        let stored: Option<i64> =
            sqlx::query_scalar("SELECT acked_seq FROM cursors WHERE team_id = ? AND client_id = ?")
                .bind(team)
                .bind(client)
                .fetch_optional(&self.pools.read)
                .await?;
        Ok(match (pending, stored.map(to_u64)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        })
    }

    fn set_cursor(&self, team: &str, client: &str, seq: u64) {
        if let Ok(mut map) = self.cursors.lock() {
            let v = map
                .entry((team.to_string(), client.to_string()))
                .or_insert(seq);
            *v = (*v).max(seq);
        }
    }

    async fn flush_cursor(&self, team: &str, client: &str) -> Result<(), LogError> {
        write_cursors(&self.pools.write, &self.cursors, Some((team, client))).await
    }

    async fn retain(&self, policy: &Retention, now: DateTime<Utc>) -> Result<u64, LogError> {
        let mut removed = 0u64;
        if let Some(age) = policy
            .max_age
            .and_then(|a| chrono::Duration::from_std(a).ok())
        {
            let cutoff = (now - age).timestamp_millis();
            loop {
                let n = sqlx::query(
                    "DELETE FROM events WHERE (team_id, seq) IN
                     (SELECT team_id, seq FROM events WHERE received_at < ? LIMIT ?)",
                )
                .bind(cutoff)
                .bind(DELETE_CHUNK)
                .execute(&self.pools.write)
                .await?
                .rows_affected();
                removed += n;
                if n < DELETE_CHUNK as u64 {
                    break;
                }
            }
        }
        if let Some(max) = policy.max_events_per_team {
            let teams: Vec<String> = sqlx::query_scalar("SELECT id FROM teams")
                .fetch_all(&self.pools.read)
                .await?;
            for team in teams {
                // The seq of the oldest event to keep.
                let keep_from: Option<i64> = if max == 0 {
                    Some(i64::MAX)
                } else {
                    sqlx::query_scalar(
                        "SELECT seq FROM events WHERE team_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
                    )
                    .bind(&team)
                    .bind(to_i64(max - 1))
                    .fetch_optional(&self.pools.read)
                    .await?
                };
                let Some(keep_from) = keep_from else { continue };
                loop {
                    let n = sqlx::query(
                        "DELETE FROM events WHERE team_id = ?1 AND seq IN
                         (SELECT seq FROM events WHERE team_id = ?1 AND seq < ?2 ORDER BY seq LIMIT ?3)",
                    )
                    .bind(&team)
                    .bind(keep_from)
                    .bind(DELETE_CHUNK)
                    .execute(&self.pools.write)
                    .await?
                    .rows_affected();
                    removed += n;
                    if n < DELETE_CHUNK as u64 {
                        break;
                    }
                }
            }
        }
        Ok(removed)
    }
}

/// The single writer: batches of appends, each batch one transaction.
async fn writer(
    pool: sqlx::SqlitePool,
    mut rx: mpsc::Receiver<Request>,
    heads: Arc<Heads>,
    wrote: mpsc::Sender<()>,
) {
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    // Last seq per team as committed; loaded on first use.
    let mut last: HashMap<String, u64> = HashMap::new();
    loop {
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let mut appends = Vec::with_capacity(batch.len());
        let mut flushes = Vec::new();
        for r in batch.drain(..) {
            match r {
                Request::Append(a, reply) => appends.push((*a, reply)),
                Request::Flush(done) => flushes.push(done),
            }
        }
        if !appends.is_empty() {
            let (events, replies): (Vec<Encoded>, Vec<Reply>) = appends.into_iter().unzip();
            let before = last.clone();
            match commit(&pool, &events, &mut last).await {
                Ok(results) => {
                    // Full means a checkpoint is due already.
                    let _ = wrote.try_send(());
                    for (team, seq) in &last {
                        if before.get(team) != Some(seq) {
                            heads.publish(team, *seq);
                        }
                    }
                    for (reply, res) in replies.into_iter().zip(results) {
                        let _ = reply.send(res);
                    }
                }
                Err(e) => {
                    // Nothing of this batch was committed: forget the seqs
                    // it handed out, and fail every caller (the ingress
                    // answers 503 so senders retry).
                    last = before;
                    tracing::error!(error = %e, batch = replies.len(), "event log write failed");
                    let e = Arc::new(e);
                    for reply in replies {
                        let _ = reply.send(Err(LogError::Sql(e.clone())));
                    }
                }
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Commit one batch. Per team: look up which (source, id) are already
/// logged, hand the new ones consecutive seqs, insert them with multi-row
/// INSERTs, store the team's last seq.
async fn commit(
    pool: &sqlx::SqlitePool,
    events: &[Encoded],
    last: &mut HashMap<String, u64>,
) -> Result<Vec<Result<Appended, LogError>>, sqlx::Error> {
    // After any error (SQLITE_FULL, I/O) the connection is closed rather
    // than reused: SQLite may have rolled the transaction back itself, and
    // sqlx would then nest the next `begin()` as a SAVEPOINT inside a
    // transaction nobody commits (appends acknowledged but never durable;
    // see kitedesk_store::Store::write_tx). The cached last seqs may have
    // run ahead of what was committed, so they are read again.
    let mut conn = pool.acquire().await?;
    let result = commit_on(&mut conn, events, last).await;
    if result.is_err() {
        conn.close_on_drop();
        last.clear();
    }
    result
}

async fn commit_on(
    conn: &mut sqlx::SqliteConnection,
    events: &[Encoded],
    last: &mut HashMap<String, u64>,
) -> Result<Vec<Result<Appended, LogError>>, sqlx::Error> {
    let mut results: Vec<Option<Result<Appended, LogError>>> =
        (0..events.len()).map(|_| None).collect();
    let mut tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
    let mut by_team: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        by_team.entry(e.team_id.as_str()).or_default().push(i);
    }
    for (team, idx) in by_team {
        let mut seq = match last.get(team) {
            Some(s) => *s,
            None => {
                let s: Option<i64> = sqlx::query_scalar("SELECT last_seq FROM teams WHERE id = ?")
                    .bind(team)
                    .fetch_optional(&mut *tx)
                    .await?;
                match s {
                    Some(s) => to_u64(s),
                    None => {
                        for i in idx {
                            results[i] = Some(Err(LogError::UnknownTeam(team.to_string())));
                        }
                        continue;
                    }
                }
            }
        };
        // Already logged: one lookup per chunk of (source, id) pairs.
        let mut existing: HashMap<(&str, &str), u64> = HashMap::new();
        for chunk in idx.chunks(LOOKUP_CHUNK) {
            // Join from the VALUES list (CROSS JOIN fixes that order), so
            // each pair is one lookup in events_dedup; `(a, b) IN (VALUES …)`
            // would scan the whole team.
            let mut q =
                QueryBuilder::<Sqlite>::new("SELECT e.ce_source, e.ce_id, e.seq FROM (VALUES ");
            let mut sep = q.separated(", ");
            for &i in chunk {
                sep.push("(");
                sep.push_bind_unseparated(events[i].ce_source.as_str());
                sep.push_unseparated(", ");
                sep.push_bind_unseparated(events[i].ce_id.as_str());
                sep.push_unseparated(")");
            }
            q.push(") AS v CROSS JOIN events e ON e.team_id = ");
            q.push_bind(team);
            q.push(" AND e.ce_source = v.column1 AND e.ce_id = v.column2");
            for row in q.build().fetch_all(&mut *tx).await? {
                let (s, id): (String, String) = (row.get("ce_source"), row.get("ce_id"));
                let seq = to_u64(row.get("seq"));
                if let Some(&i) = chunk
                    .iter()
                    .find(|&&i| events[i].ce_source == s && events[i].ce_id == id)
                {
                    existing.insert(
                        (events[i].ce_source.as_str(), events[i].ce_id.as_str()),
                        seq,
                    );
                }
            }
        }
        let mut rows: Vec<(usize, u64)> = Vec::with_capacity(idx.len());
        for i in idx {
            let e = &events[i];
            let key = (e.ce_source.as_str(), e.ce_id.as_str());
            if let Some(&s) = existing.get(&key) {
                results[i] = Some(Ok(Appended::Duplicate(s)));
                continue;
            }
            seq += 1;
            // A retry inside the same batch is a duplicate too.
            existing.insert(key, seq);
            rows.push((i, seq));
            results[i] = Some(Ok(Appended::New(seq)));
        }
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events (team_id, seq, ce_source, ce_id, source_name, ce_type, received_at, event) ",
            );
            q.push_values(chunk, |mut b, (i, seq)| {
                let e = &events[*i];
                b.push_bind(team)
                    .push_bind(to_i64(*seq))
                    .push_bind(e.ce_source.as_str())
                    .push_bind(e.ce_id.as_str())
                    .push_bind(e.source_name.as_str())
                    .push_bind(e.ce_type.as_str())
                    .push_bind(e.received.timestamp_millis())
                    // A zstd frame: a webhook's CloudEvent is a few KB of
                    // JSON, which would overflow a page of this WITHOUT
                    // ROWID table; compressed it mostly fits.
                    .push_bind(e.event.as_slice());
            });
            q.build().execute(&mut *tx).await?;
        }
        if !rows.is_empty() {
            sqlx::query("UPDATE teams SET last_seq = ? WHERE id = ?")
                .bind(to_i64(seq))
                .bind(team)
                .execute(&mut *tx)
                .await?;
        }
        last.insert(team.to_string(), seq);
    }
    tx.commit().await?;
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or(Err(LogError::Stopped)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_is_spliced_as_the_last_member() {
        let s = with_seq(r#"{"specversion":"1.0","id":"a"}"#, 7).unwrap();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["kiteseq"], 7);
        assert_eq!(v["id"], "a");
        assert_eq!(with_seq("{}", 1).unwrap(), r#"{"kiteseq":1}"#);
        assert!(with_seq("[1]", 1).is_err());
    }

    #[test]
    fn readers_get_the_seq_once_whether_or_not_the_row_holds_it() {
        // Appended now: the row holds the event without its seq.
        let new = with_stored_seq(r#"{"id":"a"}"#.into(), 17).unwrap();
        assert_eq!(new, r#"{"id":"a","kiteseq":17}"#);
        // Appended before the seq was kept apart: already spliced.
        let old = with_stored_seq(r#"{"id":"a","kiteseq":17}"#.into(), 17).unwrap();
        assert_eq!(old, r#"{"id":"a","kiteseq":17}"#);
        // Only the row's own seq counts as already there.
        let other = with_stored_seq(r#"{"id":"a","x":{"kiteseq":7}}"#.into(), 7).unwrap();
        let v: serde_json::Value = serde_json::from_str(&other).unwrap();
        assert_eq!(v["kiteseq"], 7, "{other}");
    }

    #[test]
    fn an_append_that_is_no_json_object_is_refused_before_the_writer() {
        let a = |json: &str| Append {
            team_id: "t".into(),
            ce_source: "s".into(),
            ce_id: "i".into(),
            source_name: "github".into(),
            ce_type: "com.github.push".into(),
            received: Utc::now(),
            event_json: json.into(),
        };
        assert!(matches!(Encoded::new(a("[1]")), Err(LogError::NotAnObject)));
        assert!(matches!(Encoded::new(a("")), Err(LogError::NotAnObject)));
        let e = Encoded::new(a(" {\"id\":\"i\"} ")).unwrap();
        assert_eq!(
            kitedesk_core::stored_text::decode(e.event).unwrap(),
            r#"{"id":"i"}"#
        );
    }
}
