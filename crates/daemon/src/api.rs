//! The service layer: every caller (HTTP routes, CLI, desktop shell) uses
//! these functions and types. Errors carry an HTTP status and a stable
//! `code` the UI and scripts branch on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use kitedesk_core::event::format_time;
use kitedesk_core::{Headers, Importance};
use kitedesk_store::{EventQuery, Inserted, Store, StoreError, StoredEvent};
use serde::{Deserialize, Serialize};

use crate::bus::Bus;
use crate::config::DaemonConfig;
use crate::ingest;
use crate::writer::{WriteError, Writer};

/// An error at the API boundary: `{code, message}` with a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: status.as_u16(),
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }
    /// A 5xx: the detail goes to the log, the caller gets a generic message.
    pub fn internal(err: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the daemon log",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Query(q) => ApiError::bad_request("invalid_query", q.to_string()),
            e if e.is_disk_full() => {
                tracing::error!(error = %e, "history disk is full");
                ApiError::unavailable("storage_full", "the history disk is full; retry later")
            }
            e => ApiError::internal(&e),
        }
    }
}

/// One event in a list (no payload).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventSummary {
    pub id: i64,
    pub received_at: String,
    pub time: String,
    pub source_name: String,
    pub source: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub event_id: String,
    pub summary: String,
    pub importance: Importance,
    pub importance_reason: String,
    pub verified: bool,
    pub verify_reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl From<&StoredEvent> for EventSummary {
    fn from(s: &StoredEvent) -> Self {
        let e = &s.event;
        Self {
            id: s.id,
            received_at: format_time(s.received),
            time: format_time(e.time),
            source_name: e.source_name.clone(),
            source: e.source.clone(),
            ty: e.ty.clone(),
            event_id: e.id.clone(),
            summary: e.summary.clone(),
            importance: e.importance,
            importance_reason: e.importance_reason.clone(),
            verified: e.verification.verified,
            verify_reason: e.verification.reason.clone(),
            seq: e.seq,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventPage {
    pub events: Vec<EventSummary>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One event in full: the CloudEvent (with `data`), the original headers
/// and the payload text as received.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventDetail {
    #[serde(flatten)]
    pub summary: EventSummary,
    pub cloudevent: serde_json::Value,
    pub headers: Headers,
    pub payload: String,
}

/// The ingress answer (the Kite relay's shape: `{id, status}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IngestOutcome {
    /// Local history id.
    pub id: i64,
    /// CloudEvent id.
    pub event_id: String,
    /// `accepted`, or `duplicate_ignored` for a redelivery.
    pub status: String,
    pub importance: Importance,
    pub verified: bool,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VolumeResponse {
    pub from: String,
    pub to: String,
    pub bucket_secs: i64,
    pub buckets: Vec<kitedesk_store::VolumeBucket>,
}

/// The range and bucket width a volume query runs with, after defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeWindow {
    pub from: DateTime<Utc>,
    /// Exclusive.
    pub to: DateTime<Utc>,
    /// Positive, and small enough that `bucket_secs * 1000` fits an `i64`.
    pub bucket_secs: i64,
}

/// [`Api::volume`]'s defaults and checks, apart from the store so tests and
/// the `api_query` fuzz target reach them: `to` defaults to just after
/// `now`, `from` to 24 hours before `to` (or the earliest time there is),
/// the bucket to about 96 buckets over the range and at least a minute.
/// Refused: an empty range, a bucket that is not positive, one giving more
/// than 10000 buckets, or one too large to count in milliseconds.
pub fn volume_window(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    bucket_secs: Option<i64>,
    now: DateTime<Utc>,
) -> Result<VolumeWindow, ApiError> {
    // `to` is exclusive; by default include an event stored this millisecond.
    let to = to.unwrap_or_else(|| now + chrono::Duration::milliseconds(1));
    // Near the earliest representable time, 24 hours back does not exist.
    let from = from.unwrap_or_else(|| {
        to.checked_sub_signed(chrono::Duration::hours(24))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    });
    if from >= to {
        return Err(ApiError::bad_request(
            "invalid_query",
            "from must be before to",
        ));
    }
    let span = (to - from).num_seconds().max(1);
    // Default: about 96 buckets over the range, at least a minute each.
    let bucket_secs = bucket_secs.unwrap_or((span / 96).max(60));
    // The store counts in milliseconds: a bucket whose width in ms does not
    // fit an i64 would overflow (a panic with overflow checks, else a
    // negative width the store turns into 1 ms buckets).
    if bucket_secs <= 0 || bucket_secs.checked_mul(1000).is_none() || span / bucket_secs > 10_000 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "bucket must be positive and give at most 10000 buckets",
        ));
    }
    Ok(VolumeWindow {
        from,
        to,
        bucket_secs,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub events: i64,
    pub data_dir: String,
    pub hook_base: String,
    pub sources: Vec<SourceHealth>,
    /// The keychain's state, sources without a secret, old secrets.
    pub secrets: crate::secrets::SecretsHealth,
    /// The local ingress and every relay link, with their state.
    #[serde(default)]
    pub connections: Vec<crate::links::Connection>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceHealth {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub hook_url: String,
    /// `signed` (a secret is set), `unsigned-allowed`, or `missing-secret`.
    pub verification: String,
}

/// Shared daemon state behind [`Api`].
#[derive(Debug)]
pub struct Inner {
    pub(crate) config: DaemonConfig,
    pub(crate) store: Store,
    pub(crate) bus: Bus,
    pub(crate) writer: Writer,
    pub(crate) token: String,
    pub(crate) addr: SocketAddr,
    pub(crate) secrets: crate::secrets::SecretsState,
    pub(crate) links: crate::links::Links,
    pub(crate) outbox: crate::outbox::Outbox,
    pub(crate) notifications: crate::notifier::Notifications,
}

impl Inner {
    pub(crate) fn new(
        config: DaemonConfig,
        store: Store,
        bus: Bus,
        writer: Writer,
        token: String,
        addr: SocketAddr,
        outbox: crate::outbox::Outbox,
    ) -> Self {
        // Missing secrets are reported by `Api::load_secrets`.
        let secrets = crate::secrets::SecretsState::new(&config);
        Self {
            notifications: crate::notifier::Notifications::new(config.notify.clone()),
            config,
            store,
            bus,
            writer,
            token,
            addr,
            secrets,
            links: Default::default(),
            outbox,
        }
    }
}

/// A cheap-clone handle to the daemon's services.
#[derive(Debug, Clone)]
pub struct Api(pub(crate) Arc<Inner>);

impl Api {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self(inner)
    }

    pub fn bus(&self) -> &Bus {
        &self.0.bus
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn token(&self) -> &str {
        &self.0.token
    }

    pub fn hook_base(&self) -> String {
        format!("http://{}/hooks", self.0.addr)
    }

    /// Verify, normalize, score and commit one webhook.
    pub async fn ingest(
        &self,
        source_name: &str,
        headers: &Headers,
        body: &[u8],
    ) -> Result<IngestOutcome, ApiError> {
        let manifest = &self.0.config.manifest;
        let source = manifest.source(source_name).ok_or_else(|| {
            ApiError::not_found(
                "unknown_source",
                format!(
                    "no source named {source_name:?} is configured (sources: {})",
                    source_names(manifest)
                ),
            )
        })?;
        let mint = || uuid::Uuid::now_v7().to_string();
        let now = Utc::now();
        let secrets = self.webhook_secrets(source_name, now)?;
        let new = ingest::prepare(
            manifest,
            source,
            secrets.as_slice(),
            headers,
            body,
            now,
            kitedesk_core::MintId(&mint),
        )?;
        let (event_id, importance, verified, summary) = (
            new.event.id.clone(),
            new.event.importance,
            new.event.verification.verified,
            new.event.summary.clone(),
        );
        if verified {
            self.note_webhook_verified(&secrets, now);
        }
        let inserted = self.0.writer.insert(new).await.map_err(|e| match e {
            WriteError::Stopped => {
                ApiError::unavailable("shutting_down", "the daemon is shutting down")
            }
            WriteError::Store(e) if e.is_disk_full() => {
                ApiError::unavailable("storage_full", "the history disk is full; retry later")
            }
            WriteError::Store(e) => {
                tracing::error!(error = %e, "cannot store event");
                ApiError::unavailable(
                    "storage_unavailable",
                    "the history cannot be written; retry later",
                )
            }
        })?;
        let (id, status) = match inserted {
            Inserted::New(id) => (id, "accepted"),
            Inserted::Duplicate(id) => (id, "duplicate_ignored"),
        };
        tracing::debug!(source = source_name, id, status, "webhook ingested");
        Ok(IngestOutcome {
            id,
            event_id,
            status: status.to_string(),
            importance,
            verified,
            summary,
        })
    }

    pub async fn list_events(&self, q: &EventQuery) -> Result<EventPage, ApiError> {
        let page = self.0.store.list(q).await?;
        Ok(EventPage {
            events: page.events.iter().map(EventSummary::from).collect(),
            next_cursor: page.next_cursor.map(|c| c.to_string()),
        })
    }

    /// `id` is the local id, or else a CloudEvent id.
    pub async fn get_event(&self, id: &str) -> Result<EventDetail, ApiError> {
        let local = match id.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => self.0.store.find_by_ce_id(id).await?,
        };
        let not_found = || ApiError::not_found("event_not_found", format!("no event {id:?}"));
        let local = local.ok_or_else(not_found)?;
        let (stored, payload) = self.0.store.get(local).await?.ok_or_else(not_found)?;
        let cloudevent = stored.event.to_json().map_err(|e| ApiError::internal(&e))?;
        Ok(EventDetail {
            summary: EventSummary::from(&stored),
            cloudevent,
            headers: stored.event.original_headers.clone(),
            payload,
        })
    }

    pub async fn volume(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        bucket_secs: Option<i64>,
    ) -> Result<VolumeResponse, ApiError> {
        let VolumeWindow {
            from,
            to,
            bucket_secs,
        } = volume_window(from, to, bucket_secs, Utc::now())?;
        let buckets = self.0.store.volume(from, to, bucket_secs * 1000).await?;
        Ok(VolumeResponse {
            from: format_time(from),
            to: format_time(to),
            bucket_secs,
            buckets,
        })
    }

    pub async fn health(&self) -> Result<Health, ApiError> {
        let m = &self.0.config.manifest;
        Ok(Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            events: self.0.store.count().await?,
            data_dir: self.0.config.data_dir.display().to_string(),
            hook_base: self.hook_base(),
            sources: m
                .sources
                .iter()
                .map(|s| SourceHealth {
                    name: s.name.clone(),
                    kind: s.kind.as_str().into(),
                    hook_url: format!("{}/{}", self.hook_base(), s.name),
                    verification: if self.0.secrets.has_secret(&s.name) {
                        "signed"
                    } else if s.verify.allow_unsigned {
                        "unsigned-allowed"
                    } else {
                        "missing-secret"
                    }
                    .into(),
                })
                .collect(),
            secrets: self.secrets_health().await?,
            connections: self.connections(),
        })
    }

    /// Apply the retention now and every hour.
    pub(crate) fn spawn_retention(&self) {
        let api = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                if let Err(e) = api.apply_retention().await {
                    tracing::warn!(error = %e, "retention failed");
                }
            }
        });
    }

    /// Apply the retention in force (`/api/settings/retention`, else the
    /// manifest's `queue` block).
    pub async fn apply_retention(&self) -> Result<u64, ApiError> {
        let (max_age, max_events) = self.retention_policy().await?;
        if max_age.is_none() && max_events.is_none() {
            return Ok(0);
        }
        let cutoff = max_age.map(|d| Utc::now() - d);
        let n = self.0.store.retain(cutoff, max_events).await?;
        if n > 0 {
            tracing::info!(deleted = n, "retention removed old events");
        }
        Ok(n)
    }

    pub(crate) async fn close(&self) {
        self.0.store.close().await;
    }
}

fn source_names(m: &kitedesk_core::Manifest) -> String {
    m.sources
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
