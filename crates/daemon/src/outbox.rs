//! Forwarding: routes stored events to the configured sinks through the
//! persistent outbox, runs due deliveries with the retry schedule, and
//! serves explicit forwards (one event or many, to a URL or a named sink).
//!
//! * **No loss.** Routing reads the history from a watermark kept in SQLite
//!   and advanced in the same transaction as the deliveries it creates; the
//!   bus only wakes it. A crash, a restart or a lagging bus loses nothing.
//! * **At-least-once.** A delivery is claimed (`delivering`) before its
//!   attempt and settled after it. One found `delivering` at startup was cut
//!   off mid-attempt: the target may have got it, so it is sent again.
//!   Targets dedup on `x-kite-event-id` (the CloudEvent id, the same on
//!   every attempt). Nothing is sent after an attempt got a 2xx: settling
//!   and retrying are guarded by the stored status.
//! * **Isolation.** Attempts run on their own tasks with a global and a
//!   per-sink concurrency limit, every attempt has a timeout, and ingestion
//!   never waits for a sink: a hung or failing sink delays only its own
//!   deliveries.
//! * **Retry policy.** 2xx is delivered. A 4xx other than 408, 425 and 429,
//!   a redirect, or an event that cannot be rendered is permanent: the same
//!   request would get the same answer, so it is dead-lettered at once (fix
//!   the target, then retry the dead letter). Everything else (5xx, 408,
//!   425, 429, timeouts, connection errors, a failing command) follows the
//!   schedule (1 s, 4 s, 16 s, 64 s plus jitter by default), then is
//!   dead-lettered.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use kitedesk_core::event::format_time;
use kitedesk_core::importance::Facts;
use kitedesk_core::manifest::{Route, SinkConfig};
use kitedesk_core::verify::{Scheme, Secret};
use kitedesk_sinks::{
    Attempt as SinkAttempt, Delivery as SinkDelivery, Failure, HttpSink, HttpSinkConfig, Resign,
    Schedule, Sink, next_delay,
};
use kitedesk_store::{
    AttemptRecord, DeliveryQuery, DeliveryRecord, DeliveryStatus, NewDelivery, Origin,
    RetryOutcome, Settle, Store, StoredEvent,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore, watch};

use crate::api::{Api, ApiError};
use crate::bus::{Bus, DaemonEvent};
use crate::config::DaemonConfig;

/// The sink name of explicit forwards to a URL.
pub const FORWARD_SINK: &str = "forward";
/// Events routed per transaction.
const ROUTE_BATCH: u32 = 256;
/// Routing and the worker also look on their own this often, in case a
/// wake-up was missed (the bus is a hint, the watermark is the truth).
const SAFETY_TICK: Duration = Duration::from_secs(2);
/// Most events one forward request takes; more is a batch job for the CLI.
pub const MAX_FORWARD: usize = 10_000;
/// Forward attempts run at once within one request.
const FORWARD_CONCURRENCY: usize = 8;
/// How long shutdown waits for running attempts to be recorded.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct ConfiguredSink {
    name: String,
    sink: Sink,
    /// The exec sink's `importance` threshold (applied always, unlike the
    /// Kite CLI, which ignores it without a `scoring` block).
    min_importance: Option<kitedesk_core::Importance>,
}

/// The forwarding service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    store: Store,
    sinks: Vec<ConfiguredSink>,
    routes: Vec<Route>,
    /// Sinks some route names: they get only what their routes match.
    routed: HashSet<String>,
    schedule: Schedule,
    slots: Arc<Semaphore>,
    concurrency: usize,
    per_sink: usize,
    in_flight: Mutex<HashMap<String, usize>>,
    wake: Notify,
    /// Re-signing secrets of forwards to a URL that are still being
    /// retried. Memory only: secrets never reach the database, so after a
    /// restart such a delivery is dead-lettered with a clear reason.
    adhoc: Mutex<HashMap<i64, Resign>>,
    /// HTTP sinks added through `POST /api/sinks` (see `crate::http::sinks`):
    /// forward targets only, never routed to automatically.
    added: std::sync::RwLock<Vec<AddedSink>>,
    /// Serialises adding and removing sinks through the API.
    editing: tokio::sync::Mutex<()>,
    stop: watch::Sender<bool>,
}

/// An HTTP sink added through the API, as the outbox keeps it.
#[derive(Debug, Clone)]
pub(crate) struct AddedSink {
    /// How `/api/sinks` lists it (`origin: "api"`).
    pub info: SinkInfo,
    /// `None` while its re-signing secret cannot be read (`info.error`
    /// says why): nothing is sent unsigned in its place.
    pub sink: Option<Sink>,
}

impl Outbox {
    /// Build the sinks from the manifest (failing early on a bad target or
    /// a missing re-signing secret), requeue deliveries interrupted by the
    /// previous run, and start routing and the worker.
    pub async fn start(config: &DaemonConfig, store: Store, bus: Bus) -> anyhow::Result<Outbox> {
        let m = &config.manifest;
        let mut sinks = Vec::new();
        for (name, sc) in m.forwarding_sinks() {
            let resign = match sc {
                SinkConfig::Proxy {
                    resign: Some(r), ..
                } => {
                    let value = config
                        .env_var(&r.secret_env)
                        .filter(|v| !v.trim().is_empty());
                    let value = value.with_context(|| {
                        format!(
                            "sink {name:?} re-signs with the secret in ${}, which is not set",
                            r.secret_env
                        )
                    })?;
                    Some(Resign {
                        scheme: r.scheme,
                        secret: Secret::new(value.trim()),
                    })
                }
                _ => None,
            };
            let sink = Sink::from_manifest_with(sc, resign)
                .with_context(|| format!("sink {name:?} in the manifest"))?;
            let min_importance = match sc {
                SinkConfig::Exec { importance, .. } => *importance,
                _ => None,
            };
            sinks.push(ConfiguredSink {
                name: name.to_string(),
                sink,
                min_importance,
            });
        }
        let o = &m.outbox;
        let schedule = Schedule::new(o.retry.clone(), o.jitter).context("outbox.jitter")?;
        let routed = m
            .routes
            .iter()
            .flat_map(|r| r.sinks.iter().cloned())
            .collect();
        let outbox = Outbox(Arc::new(Inner {
            store,
            sinks,
            routes: m.routes.clone(),
            routed,
            schedule,
            slots: Arc::new(Semaphore::new(o.concurrency)),
            concurrency: o.concurrency,
            per_sink: o.per_sink_concurrency,
            in_flight: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            adhoc: Mutex::new(HashMap::new()),
            added: std::sync::RwLock::new(Vec::new()),
            editing: tokio::sync::Mutex::new(()),
            stop: watch::channel(false).0,
        }));
        let requeued = outbox.0.store.reset_interrupted(Utc::now()).await?;
        if requeued > 0 {
            tracing::info!(
                deliveries = requeued,
                "deliveries interrupted by the previous run will be sent again"
            );
        }
        tokio::spawn(outbox.clone().route_loop(bus));
        tokio::spawn(outbox.clone().work_loop());
        Ok(outbox)
    }

    /// Stop routing and claiming, and wait (briefly) for running attempts
    /// to be recorded. Anything cut off stays `delivering` and is sent again
    /// at the next start.
    pub async fn stop(&self) {
        let _ = self.0.stop.send(true);
        if self.0.sinks.is_empty()
            && let Err(e) = self.0.store.advance_routed_to_end().await
        {
            tracing::warn!(error = %e, "cannot record the routing watermark");
        }
        let all = u32::try_from(self.0.concurrency).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(STOP_GRACE, self.0.slots.acquire_many(all)).await;
    }

    fn stopped(&self) -> bool {
        *self.0.stop.borrow()
    }

    /// A sink by name: from the manifest, or added through the API.
    fn sink(&self, name: &str) -> Option<Result<Sink, String>> {
        if let Some(s) = self.0.sinks.iter().find(|s| s.name == name) {
            return Some(Ok(s.sink.clone()));
        }
        self.added()
            .iter()
            .find(|a| a.info.name == name)
            .map(|a| match &a.sink {
                Some(sink) => Ok(sink.clone()),
                None => Err(a.info.error.clone().unwrap_or_default()),
            })
    }

    /// Whether the manifest configures a sink of this name.
    pub(crate) fn is_manifest_sink(&self, name: &str) -> bool {
        self.0.sinks.iter().any(|s| s.name == name)
    }

    pub(crate) fn editing(&self) -> &tokio::sync::Mutex<()> {
        &self.0.editing
    }

    /// The sinks added through the API.
    pub(crate) fn added(&self) -> std::sync::RwLockReadGuard<'_, Vec<AddedSink>> {
        match self.0.added.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Add or replace (by name) a sink added through the API.
    pub(crate) fn put_added(&self, sink: AddedSink) {
        let mut g = match self.0.added.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        g.retain(|a| a.info.name != sink.info.name);
        g.push(sink);
    }

    /// Forget a sink added through the API; whether there was one. Its
    /// pending deliveries are dead-lettered (`sink_gone`) at their turn.
    pub(crate) fn remove_added(&self, name: &str) -> bool {
        let mut g = match self.0.added.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let before = g.len();
        g.retain(|a| a.info.name != name);
        before != g.len()
    }

    /// The configured sinks an event goes to.
    fn targets_for(&self, e: &StoredEvent) -> Vec<&ConfiguredSink> {
        let ev = &e.event;
        let data = ev.data.doc();
        let facts = Facts {
            source_name: &ev.source_name,
            ty: &ev.ty,
            data: &data,
            changed_files: &[],
        };
        let at_least =
            |min: Option<kitedesk_core::Importance>| min.is_none_or(|m| ev.importance >= m);
        self.0
            .sinks
            .iter()
            .filter(|s| at_least(s.min_importance))
            .filter(|s| {
                !self.0.routed.contains(&s.name)
                    || self.0.routes.iter().any(|r| {
                        r.sinks.contains(&s.name)
                            && at_least(r.importance)
                            && r.rule.matches(&facts)
                    })
            })
            .collect()
    }

    /// Route every event past the watermark, a batch per transaction.
    /// Returns how many deliveries were added.
    async fn route_pending(&self) -> Result<u64, kitedesk_store::StoreError> {
        let store = &self.0.store;
        let mut added = 0;
        loop {
            let from = store.routed_upto().await?;
            let events = store.events_after(from, ROUTE_BATCH).await?;
            let Some(last) = events.last().map(|e| e.id) else {
                return Ok(added);
            };
            let rows: Vec<NewDelivery> = events
                .iter()
                .flat_map(|e| {
                    self.targets_for(e).into_iter().map(|s| NewDelivery {
                        event_id: e.id,
                        ce_id: e.event.id.clone(),
                        sink: s.name.clone(),
                        kind: s.sink.kind().as_str().into(),
                        target: s.sink.target(),
                        origin: Origin::Route,
                        spec: None,
                    })
                })
                .collect();
            let n = store.enqueue_routed(&rows, last, Utc::now()).await?;
            if n > 0 {
                added += n;
                self.0.wake.notify_one();
            }
        }
    }

    async fn route_loop(self, bus: Bus) {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        if self.0.sinks.is_empty() {
            return self.follow_end().await;
        }
        let mut events = bus.subscribe();
        let mut stop = self.0.stop.subscribe();
        loop {
            if self.stopped() {
                return;
            }
            if let Err(e) = self.route_pending().await {
                tracing::warn!(error = %e, "routing events to sinks failed; will retry");
            }
            tokio::select! {
                got = events.recv() => match got {
                    Ok(DaemonEvent::ShuttingDown) | Err(RecvError::Closed) => return,
                    // Lagged: the watermark catches up from the history.
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                },
                _ = tokio::time::sleep(SAFETY_TICK) => {}
                _ = stop.changed() => return,
            }
            // One pass covers every event announced so far: drop the
            // queued announcements instead of making a pass for each.
            loop {
                match events.try_recv() {
                    Ok(DaemonEvent::ShuttingDown) | Err(TryRecvError::Closed) => return,
                    Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                    Err(TryRecvError::Empty) => break,
                }
            }
        }
    }

    /// With no sink configured, routing only keeps the watermark at the end
    /// of the history (so a sink added later does not get the past), on the
    /// tick: no write per webhook, and no wake-up per webhook either (it
    /// does not follow the bus; under a burst those wake-ups were about
    /// 1.5 % of the daemon's CPU).
    async fn follow_end(self) {
        let mut stop = self.0.stop.subscribe();
        loop {
            if self.stopped() {
                return;
            }
            if let Err(e) = self.0.store.advance_routed_to_end().await {
                tracing::warn!(error = %e, "cannot record the routing watermark; will retry");
            }
            tokio::select! {
                _ = tokio::time::sleep(SAFETY_TICK) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn work_loop(self) {
        let mut stop = self.0.stop.subscribe();
        loop {
            if self.stopped() {
                return;
            }
            let pass = Utc::now();
            if let Err(e) = self.claim_and_spawn(pass).await {
                tracing::warn!(error = %e, "outbox worker failed; will retry");
            }
            let wait = match self.0.store.next_due().await {
                // Due after the pass looked: sleep until then, or not at
                // all if that moment came while the pass ran (a retry due
                // in between would otherwise wait a whole SAFETY_TICK).
                Ok(Some(t)) if t > pass => (t - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(SAFETY_TICK),
                // Due before the pass and still pending: held back by the
                // concurrency limits; a finishing attempt wakes the worker.
                _ => SAFETY_TICK,
            };
            tokio::select! {
                _ = self.0.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Claim what is due, within the global and per-sink limits, and start
    /// an attempt task for each.
    async fn claim_and_spawn(&self, now: DateTime<Utc>) -> Result<(), kitedesk_store::StoreError> {
        for sink in self.0.store.due_sinks(now).await? {
            let busy = self.in_flight(&sink, 0);
            let free = self
                .0
                .per_sink
                .saturating_sub(busy)
                .min(self.0.slots.available_permits());
            if free == 0 {
                continue;
            }
            let claimed = self.0.store.claim_due(&sink, now, free as u32).await?;
            for d in claimed {
                let Ok(permit) = self.0.slots.clone().try_acquire_owned() else {
                    // Cannot happen (the slots were counted above and only
                    // this loop takes them); the row is recovered at restart.
                    tracing::error!(delivery = d.id, "no free slot for a claimed delivery");
                    break;
                };
                self.in_flight(&sink, 1);
                let this = self.clone();
                let sink = sink.clone();
                tokio::spawn(async move {
                    if let Err(e) = this.attempt(d).await {
                        tracing::warn!(error = %e, "recording a delivery attempt failed");
                    }
                    this.in_flight(&sink, -1);
                    drop(permit);
                    this.0.wake.notify_one();
                });
            }
        }
        Ok(())
    }

    /// Adjust and return a sink's in-flight count.
    fn in_flight(&self, sink: &str, delta: isize) -> usize {
        let mut map = match self.0.in_flight.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let n = map.entry(sink.to_string()).or_insert(0);
        *n = n.saturating_add_signed(delta);
        *n
    }

    fn adhoc(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Resign>> {
        match self.0.adhoc.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Run one attempt of a claimed delivery and settle it.
    async fn attempt(
        &self,
        d: DeliveryRecord,
    ) -> Result<DeliveryRecord, kitedesk_store::StoreError> {
        let started = Utc::now();
        let sink = match self.resolve(&d) {
            Ok(sink) => sink,
            Err((code, why)) => return self.give_up(&d, started, code, why).await,
        };
        let (stored, payload) = match self.0.store.get(d.event_id).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                return self
                    .give_up(
                        &d,
                        started,
                        "event_gone",
                        "the event is no longer in the history".into(),
                    )
                    .await;
            }
            Err(e @ kitedesk_store::StoreError::Corrupt { .. }) => {
                return self
                    .give_up(&d, started, "event_unreadable", e.to_string())
                    .await;
            }
            Err(e) => {
                // A passing database problem: an attempt that never left,
                // retried on the schedule like any other failure.
                let settle = self.decide(&d, &SinkAttempt::not_sent(Failure::Io(e.to_string())));
                let mut record =
                    attempt_record(started, &SinkAttempt::not_sent(Failure::Io(e.to_string())));
                record.error_code = Some("history_read".into());
                return self.settle(&d, &record, settle).await;
            }
        };
        let delivery = SinkDelivery::new(stored.event, payload);
        let attempt = sink.deliver(&delivery).await;
        let settle = self.decide(&d, &attempt);
        if !matches!(settle, Settle::Retry(_)) {
            self.adhoc().remove(&d.id);
        }
        let record = attempt_record(started, &attempt);
        self.settle(&d, &record, settle).await
    }

    async fn settle(
        &self,
        d: &DeliveryRecord,
        record: &AttemptRecord,
        settle: Settle,
    ) -> Result<DeliveryRecord, kitedesk_store::StoreError> {
        match self
            .0
            .store
            .settle(d.id, record, settle, Utc::now())
            .await?
        {
            Some(settled) => Ok(settled),
            None => Err(kitedesk_store::StoreError::Corrupt {
                id: d.id,
                problem: "delivery was not claimed when its attempt ended".into(),
            }),
        }
    }

    /// Dead-letter a delivery that cannot be attempted, saying why.
    async fn give_up(
        &self,
        d: &DeliveryRecord,
        started: DateTime<Utc>,
        code: &str,
        why: String,
    ) -> Result<DeliveryRecord, kitedesk_store::StoreError> {
        tracing::warn!(delivery = d.id, sink = %d.sink, reason = %why, "delivery dead-lettered");
        self.adhoc().remove(&d.id);
        let record = AttemptRecord {
            n: 0,
            started,
            status_code: None,
            latency_ms: 0,
            ok: false,
            error_code: Some(code.to_string()),
            error: Some(why),
            response_body: String::new(),
            stderr: None,
        };
        self.settle(d, &record, Settle::Dead).await
    }

    /// The sink a delivery goes to: a configured one by name, or the
    /// forward URL it was created with.
    fn resolve(&self, d: &DeliveryRecord) -> Result<Sink, (&'static str, String)> {
        match &d.spec {
            None => match self.sink(&d.sink) {
                Some(Ok(sink)) => Ok(sink),
                Some(Err(why)) => Err(("sink_unavailable", why)),
                None => Err((
                    "sink_gone",
                    format!("sink {:?} is no longer configured", d.sink),
                )),
            },
            Some(spec) => {
                let spec: ForwardSpec = serde_json::from_str(spec)
                    .map_err(|e| ("invalid_spec", format!("stored forward target: {e}")))?;
                let resign = match spec.resign_scheme {
                    None => None,
                    Some(_) => Some(self.adhoc().get(&d.id).cloned().ok_or((
                        "resign_secret_lost",
                        "the re-signing secret is kept in memory only and the daemon restarted; forward the event again"
                            .to_string(),
                    ))?),
                };
                let mut c = HttpSinkConfig::new(spec.url);
                c.envelope = spec.envelope;
                c.resign = resign;
                HttpSink::new(c)
                    .map(Sink::Http)
                    .map_err(|e| ("invalid_target", e.to_string()))
            }
        }
    }

    fn decide(&self, d: &DeliveryRecord, attempt: &SinkAttempt) -> Settle {
        let Some(failure) = attempt.failure() else {
            return Settle::Delivered;
        };
        if is_permanent(failure) {
            return Settle::Dead;
        }
        let made = d.round_attempts() + 1;
        match next_delay(made, &self.0.schedule, rand::random::<f64>()) {
            Some(delay) => Settle::Retry(
                Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::days(1)),
            ),
            None => Settle::Dead,
        }
    }
}

/// Failures the same request would meet again: dead-letter at once.
pub fn is_permanent(f: &Failure) -> bool {
    match f {
        Failure::Status(code) => (400..500).contains(code) && !matches!(code, 408 | 425 | 429),
        Failure::Redirect { .. } | Failure::Envelope(_) => true,
        _ => false,
    }
}

fn attempt_record(started: DateTime<Utc>, a: &SinkAttempt) -> AttemptRecord {
    // The exec sink's stdout is its "response".
    let body = a.body.as_ref().or(a.stdout.as_ref());
    AttemptRecord {
        n: 0,
        started,
        status_code: a.status,
        latency_ms: u64::try_from(a.latency.as_millis()).unwrap_or(u64::MAX),
        ok: a.is_delivered(),
        error_code: a.failure().map(|f| f.code().to_string()),
        error: a.failure().map(|f| f.to_string()),
        response_body: body
            .map(|b| b.to_text_lossy().into_owned())
            .unwrap_or_default(),
        stderr: a.stderr.as_ref().map(|s| s.to_text_lossy().into_owned()),
    }
}

/// What a forward to a URL stores to be retried later (never the secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ForwardSpec {
    url: String,
    #[serde(default)]
    envelope: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resign_scheme: Option<Scheme>,
}

// ---------------------------------------------------------------------------
// API types (the "Outbox and forwarding" contract)

/// One sink, as `/api/sinks` lists it (never a secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SinkInfo {
    pub name: String,
    pub kind: String,
    pub target: String,
    /// `manifest` (kite.json; read-only) or `api` (added through
    /// `POST /api/sinks`; removable, a forward target only).
    #[serde(default = "manifest_origin")]
    pub origin: String,
    /// The re-signing scheme (`github`, `stripe`, …), when it re-signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resign_scheme: Option<Scheme>,
    /// The keychain secret it re-signs with (a name, never the value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<String>,
    /// Why it cannot be used now (e.g. its secret is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn manifest_origin() -> String {
    "manifest".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SinkList {
    pub sinks: Vec<SinkInfo>,
}

/// One attempt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attempt {
    pub n: u32,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Stable failure code: `http_status`, `timeout`, `connect`, `exit`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The start of the response body (HTTP) or stdout (exec), at most 4 KB.
    pub response_body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

impl From<&AttemptRecord> for Attempt {
    fn from(a: &AttemptRecord) -> Self {
        Self {
            n: a.n,
            started_at: format_time(a.started),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            ok: a.ok,
            error: a.error.clone(),
            error_code: a.error_code.clone(),
            response_body: a.response_body.clone(),
            stderr: a.stderr.clone(),
        }
    }
}

/// One delivery of one event to one sink.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    pub id: i64,
    /// Local event id.
    pub event_id: i64,
    pub ce_id: String,
    pub sink: String,
    pub kind: String,
    pub target: String,
    /// `pending`, `delivering`, `delivered` or `dead`.
    pub status: String,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Attempt>,
}

impl From<&DeliveryRecord> for Delivery {
    fn from(d: &DeliveryRecord) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            ce_id: d.ce_id.clone(),
            sink: d.sink.clone(),
            kind: d.kind.clone(),
            target: d.target.clone(),
            status: d.status.as_str().into(),
            attempts: d.attempts,
            next_attempt_at: d
                .next_attempt
                .filter(|_| d.status == DeliveryStatus::Pending)
                .map(format_time),
            created_at: format_time(d.created),
            updated_at: format_time(d.updated),
            last: d.last.as_ref().map(Attempt::from),
        }
    }
}

/// A delivery with every attempt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub attempt_log: Vec<Attempt>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeliveryPage {
    pub deliveries: Vec<Delivery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A secret from a request body. `Debug` never shows it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct RequestSecret(String);

impl std::fmt::Debug for RequestSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResignRequest {
    pub scheme: Scheme,
    pub secret: RequestSecret,
}

/// Where to forward: a URL (optionally re-signed) or a configured sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ForwardTarget {
    Url {
        url: String,
        #[serde(default)]
        resign: Option<ResignRequest>,
        #[serde(default)]
        envelope: Option<bool>,
    },
    Sink {
        sink: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardRequest {
    #[serde(default)]
    pub event_ids: Option<Vec<i64>>,
    /// The `GET /api/events` query keys: source, type, importance, since,
    /// until, verified, q.
    #[serde(default)]
    pub filter: Option<BTreeMap<String, serde_json::Value>>,
    pub target: ForwardTarget,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ForwardResponse {
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<Delivery>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryAllRequest {
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RetryAllResponse {
    pub retried: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventDeliveries {
    pub deliveries: Vec<Delivery>,
}

/// The query parameters of `GET /api/deliveries` (`status`, `sink`,
/// `event_id`, `cursor` or its alias `before`, `limit`), as axum's
/// `Query<Vec<(String, String)>>` splits them; values are trimmed and a
/// repeated parameter's last value wins. Pure, so the fuzz target
/// `deliveries_query` (`fuzz/fuzz_targets/deliveries_query.rs`) runs the
/// handler's own parsing. Every refusal is a 400 `invalid_query` whose
/// message starts with `parameter <name>: `.
pub fn parse_delivery_query(params: &[(String, String)]) -> Result<DeliveryQuery, ApiError> {
    let mut q = DeliveryQuery::default();
    let param = |k: &str, p: &str| bad("invalid_query", format!("parameter {k}: {p}"));
    for (k, v) in params {
        let v = v.trim();
        match k.as_str() {
            "status" => {
                q.status =
                    Some(DeliveryStatus::parse(v).ok_or_else(|| {
                        param(k, "expected pending, delivering, delivered or dead")
                    })?)
            }
            "sink" => q.sink = Some(v.to_string()).filter(|s| !s.is_empty()),
            "event_id" => {
                q.event_id = Some(
                    v.parse()
                        .map_err(|_| param(k, "expected a local event id"))?,
                )
            }
            "cursor" | "before" => {
                q.before = Some(
                    v.parse()
                        .map_err(|_| param(k, "expected a cursor from next_cursor"))?,
                )
            }
            "limit" => {
                let n: u32 = v.parse().map_err(|_| param(k, "expected a number"))?;
                if n == 0 || n > kitedesk_store::MAX_LIMIT {
                    return Err(param(
                        k,
                        &format!("must be between 1 and {}", kitedesk_store::MAX_LIMIT),
                    ));
                }
                q.limit = Some(n);
            }
            other => return Err(param(other, "unknown parameter")),
        }
    }
    Ok(q)
}

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, message)
}

fn delivery_not_found(id: i64) -> ApiError {
    ApiError::not_found("delivery_not_found", format!("no delivery {id}"))
}

/// The `filter` object as `/api/events` query parameters.
fn filter_params(
    filter: &BTreeMap<String, serde_json::Value>,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for (k, v) in filter {
        if matches!(k.as_str(), "cursor" | "before" | "after" | "limit") {
            return Err(bad(
                "invalid_query",
                format!("filter.{k}: not a filter key"),
            ));
        }
        match v {
            serde_json::Value::Null => {}
            serde_json::Value::String(s) => out.push((k.clone(), s.clone())),
            serde_json::Value::Bool(b) => out.push((k.clone(), b.to_string())),
            serde_json::Value::Number(n) => out.push((k.clone(), n.to_string())),
            serde_json::Value::Array(items) => {
                for item in items {
                    match item {
                        serde_json::Value::String(s) => out.push((k.clone(), s.clone())),
                        _ => {
                            return Err(bad(
                                "invalid_query",
                                format!("filter.{k}: expected strings"),
                            ));
                        }
                    }
                }
            }
            serde_json::Value::Object(_) => {
                return Err(bad(
                    "invalid_query",
                    format!("filter.{k}: expected a string"),
                ));
            }
        }
    }
    Ok(out)
}

impl Api {
    fn outbox(&self) -> &Outbox {
        &self.0.outbox
    }

    /// Stop the outbox before the history closes (daemon shutdown).
    pub(crate) async fn stop_outbox(&self) {
        self.outbox().stop().await;
    }

    /// Route what the history holds past the watermark now (tests and the
    /// CLI do not need to wait for the next wake-up).
    pub async fn route_now(&self) -> Result<u64, ApiError> {
        Ok(self.outbox().route_pending().await?)
    }

    pub fn sinks(&self) -> SinkList {
        let outbox = self.outbox();
        let mut sinks: Vec<SinkInfo> = outbox
            .0
            .sinks
            .iter()
            .map(|s| SinkInfo {
                name: s.name.clone(),
                kind: s.sink.kind().as_str().into(),
                target: s.sink.target(),
                origin: manifest_origin(),
                resign_scheme: None,
                secret_name: None,
                timeout_ms: None,
                envelope: None,
                added_at: None,
                error: None,
            })
            .collect();
        sinks.extend(outbox.added().iter().map(|a| a.info.clone()));
        SinkList { sinks }
    }

    /// Forward events once, right away; failures stay in the outbox and
    /// follow the retry schedule.
    pub async fn forward(&self, req: ForwardRequest) -> Result<ForwardResponse, ApiError> {
        let outbox = self.outbox().clone();
        // Check the target before touching any event.
        let (sink_name, kind, target, spec, resign) = match &req.target {
            ForwardTarget::Sink { sink } => {
                // An added sink reads its re-signing secret again (it may
                // have been rotated or set since).
                self.refresh_added_sink(sink).await?;
                let s = outbox
                    .sink(sink)
                    .ok_or_else(|| {
                        ApiError::not_found("unknown_sink", format!("no sink named {sink:?}"))
                    })?
                    .map_err(|why| {
                        ApiError::new(
                            axum::http::StatusCode::CONFLICT,
                            "sink_unavailable",
                            format!("sink {sink:?} cannot be used now: {why}"),
                        )
                    })?;
                (sink.clone(), s.kind().as_str(), s.target(), None, None)
            }
            ForwardTarget::Url {
                url,
                resign,
                envelope,
            } => {
                let resign = resign.as_ref().map(|r| Resign {
                    scheme: r.scheme,
                    secret: Secret::new(r.secret.0.clone()),
                });
                if resign
                    .as_ref()
                    .is_some_and(|r| r.secret.expose().is_empty())
                {
                    return Err(bad("invalid_target", "the re-signing secret is empty"));
                }
                let mut c = HttpSinkConfig::new(url.clone());
                c.envelope = envelope.unwrap_or(false);
                HttpSink::new(c).map_err(|e| bad("invalid_target", e.to_string()))?;
                let spec = ForwardSpec {
                    url: url.clone(),
                    envelope: envelope.unwrap_or(false),
                    resign_scheme: resign.as_ref().map(|r| r.scheme),
                };
                let spec = serde_json::to_string(&spec).map_err(|e| ApiError::internal(&e))?;
                (
                    FORWARD_SINK.to_string(),
                    "http",
                    url.clone(),
                    Some(spec),
                    resign,
                )
            }
        };
        let ids = self.forward_ids(&req).await?;
        if req.dry_run {
            return Ok(ForwardResponse {
                count: ids.len() as u64,
                deliveries: None,
            });
        }
        let mut rows = Vec::with_capacity(ids.len());
        for (id, ce_id) in ids {
            rows.push(NewDelivery {
                event_id: id,
                ce_id,
                sink: sink_name.clone(),
                kind: kind.to_string(),
                target: target.clone(),
                origin: Origin::Forward,
                spec: spec.clone(),
            });
        }
        let count = rows.len() as u64;
        // On its own task: if the caller goes away (a client timeout), the
        // deliveries it started still finish and settle instead of staying
        // claimed until the next restart.
        let work = {
            let outbox = outbox.clone();
            tokio::spawn(async move {
                futures_util::stream::iter(rows)
                    .map(|row| {
                        let outbox = outbox.clone();
                        let resign = resign.clone();
                        async move {
                            let claimed = outbox.0.store.insert_claimed(&row, Utc::now()).await?;
                            if let Some(r) = resign {
                                outbox.adhoc().insert(claimed.id, r);
                            }
                            Ok::<_, ApiError>(outbox.attempt(claimed).await?)
                        }
                    })
                    .buffered(FORWARD_CONCURRENCY)
                    .collect::<Vec<_>>()
                    .await
            })
        };
        let results = work.await.map_err(|e| ApiError::internal(&e))?;
        outbox.0.wake.notify_one();
        let deliveries = results
            .into_iter()
            .map(|r| r.map(|d| Delivery::from(&d)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ForwardResponse {
            count,
            deliveries: Some(deliveries),
        })
    }

    /// The events a forward names: `event_ids` (each must exist) or every
    /// event the filter matches (oldest first).
    async fn forward_ids(&self, req: &ForwardRequest) -> Result<Vec<(i64, String)>, ApiError> {
        let store = self.store();
        match (&req.event_ids, &req.filter) {
            (Some(_), Some(_)) => Err(bad("invalid_request", "give event_ids or filter, not both")),
            (None, None) => Err(bad("invalid_request", "give event_ids or filter")),
            (Some(ids), None) => {
                if ids.len() > MAX_FORWARD {
                    return Err(bad(
                        "too_many_events",
                        format!("at most {MAX_FORWARD} events per request"),
                    ));
                }
                let mut out = Vec::with_capacity(ids.len());
                for &id in ids {
                    let (e, _) = store.get(id).await?.ok_or_else(|| {
                        ApiError::not_found("event_not_found", format!("no event {id}"))
                    })?;
                    out.push((id, e.event.id));
                }
                Ok(out)
            }
            (None, Some(filter)) => {
                let mut q = crate::http::event_query_from_params(&filter_params(filter)?)?;
                q.limit = Some(kitedesk_store::MAX_LIMIT);
                let mut out = Vec::new();
                loop {
                    let page = store.list(&q).await?;
                    out.extend(page.events.iter().map(|e| (e.id, e.event.id.clone())));
                    if out.len() > MAX_FORWARD && !req.dry_run {
                        return Err(bad(
                            "too_many_events",
                            format!(
                                "the filter matches more than {MAX_FORWARD} events; narrow it or forward in batches of event_ids"
                            ),
                        ));
                    }
                    match page.next_cursor {
                        Some(c) => q.before = Some(c),
                        None => break,
                    }
                }
                out.reverse();
                Ok(out)
            }
        }
    }

    /// `status`, `sink`, `event_id`, `cursor`, `limit` (see
    /// [`parse_delivery_query`]).
    pub async fn list_deliveries(
        &self,
        params: &[(String, String)],
    ) -> Result<DeliveryPage, ApiError> {
        let q = parse_delivery_query(params)?;
        let (rows, next) = self.store().list_deliveries(&q).await?;
        Ok(DeliveryPage {
            deliveries: rows.iter().map(Delivery::from).collect(),
            next_cursor: next.map(|c| c.to_string()),
        })
    }

    pub async fn get_delivery(&self, id: i64) -> Result<DeliveryDetail, ApiError> {
        let d = self
            .store()
            .delivery(id)
            .await?
            .ok_or_else(|| delivery_not_found(id))?;
        let log = self.store().delivery_attempts(id).await?;
        Ok(DeliveryDetail {
            delivery: Delivery::from(&d),
            attempt_log: log.iter().map(Attempt::from).collect(),
        })
    }

    /// Every delivery of one event (local id or CloudEvent id), newest first.
    pub async fn event_deliveries(&self, id: &str) -> Result<EventDeliveries, ApiError> {
        let not_found = || ApiError::not_found("event_not_found", format!("no event {id:?}"));
        let local = match id.parse::<i64>() {
            Ok(n) => n,
            Err(_) => self
                .store()
                .find_by_ce_id(id)
                .await?
                .ok_or_else(not_found)?,
        };
        self.store().get(local).await?.ok_or_else(not_found)?;
        let mut out = Vec::new();
        let mut q = DeliveryQuery {
            event_id: Some(local),
            limit: Some(kitedesk_store::MAX_LIMIT),
            ..Default::default()
        };
        loop {
            let (rows, next) = self.store().list_deliveries(&q).await?;
            out.extend(rows.iter().map(Delivery::from));
            match next {
                Some(c) => q.before = Some(c),
                None => break,
            }
        }
        Ok(EventDeliveries { deliveries: out })
    }

    /// Send a dead (or waiting) delivery again now.
    pub async fn retry_delivery(&self, id: i64) -> Result<Delivery, ApiError> {
        let outcome = self.store().retry_delivery(id, Utc::now()).await?;
        match outcome {
            RetryOutcome::Retried(d) => {
                self.outbox().0.wake.notify_one();
                Ok(Delivery::from(&*d))
            }
            RetryOutcome::NotFound => Err(delivery_not_found(id)),
            RetryOutcome::AlreadyDelivered => Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "already_delivered",
                format!("delivery {id} was delivered; forward the event again to send it anew"),
            )),
            RetryOutcome::InFlight => Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "delivery_in_flight",
                format!("delivery {id} is being attempted right now"),
            )),
        }
    }

    /// Send every delivery in a status (default: dead) again now.
    pub async fn retry_deliveries(
        &self,
        req: RetryAllRequest,
    ) -> Result<RetryAllResponse, ApiError> {
        let status = match req.status.as_deref().unwrap_or("dead") {
            "dead" => DeliveryStatus::Dead,
            "pending" => DeliveryStatus::Pending,
            other => {
                return Err(bad(
                    "invalid_request",
                    format!("status {other:?}: only dead or pending deliveries can be retried"),
                ));
            }
        };
        let retried = self.store().retry_all(status, Utc::now()).await?;
        if retried > 0 {
            self.outbox().0.wake.notify_one();
        }
        Ok(RetryAllResponse { retried })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<DeliveryQuery, ApiError> {
        let params: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_delivery_query(&params)
    }

    /// The refusal the API gave for these parameters: (status, code, message).
    fn refusal(pairs: &[(&str, &str)]) -> (u16, &'static str, String) {
        let e = parse(pairs).expect_err("refused");
        (e.status, e.code, e.message)
    }

    #[test]
    fn delivery_query_reads_every_parameter() {
        assert_eq!(parse(&[]).unwrap(), DeliveryQuery::default());
        let q = parse(&[
            ("status", "dead"),
            ("sink", " app "),
            ("event_id", "42"),
            ("cursor", "1234"),
            ("limit", "500"),
        ])
        .unwrap();
        assert_eq!(
            q,
            DeliveryQuery {
                status: Some(DeliveryStatus::Dead),
                sink: Some("app".into()),
                event_id: Some(42),
                before: Some(1234),
                limit: Some(500),
            }
        );
        for s in ["pending", "delivering", "delivered", "dead"] {
            let q = parse(&[("status", &format!(" {s}\t"))]).unwrap();
            assert_eq!(q.status.map(DeliveryStatus::as_str), Some(s));
        }
        // `before` is an alias of `cursor`; the last value of a repeated
        // parameter wins; an empty `sink` means any sink.
        assert_eq!(parse(&[("before", "-7")]).unwrap().before, Some(-7));
        let q = parse(&[
            ("cursor", "9"),
            ("before", "8"),
            ("limit", "1"),
            ("limit", "2"),
            ("sink", "a"),
            ("sink", "  "),
        ])
        .unwrap();
        assert_eq!((q.before, q.limit, q.sink), (Some(8), Some(2), None));
    }

    #[test]
    fn delivery_query_refusals_name_the_parameter() {
        let bad = |m: &str| (400, "invalid_query", m.to_string());
        for (pairs, want) in [
            (
                &[("status", "lost")][..],
                bad("parameter status: expected pending, delivering, delivered or dead"),
            ),
            (
                &[("status", "Dead")],
                bad("parameter status: expected pending, delivering, delivered or dead"),
            ),
            (
                &[("event_id", "abc")],
                bad("parameter event_id: expected a local event id"),
            ),
            (
                &[("event_id", "9223372036854775808")],
                bad("parameter event_id: expected a local event id"),
            ),
            (
                &[("cursor", "next")],
                bad("parameter cursor: expected a cursor from next_cursor"),
            ),
            (
                &[("before", "")],
                bad("parameter before: expected a cursor from next_cursor"),
            ),
            (
                &[("limit", "ten")],
                bad("parameter limit: expected a number"),
            ),
            (
                &[("limit", "-1")],
                bad("parameter limit: expected a number"),
            ),
            (
                &[("limit", "0")],
                bad("parameter limit: must be between 1 and 500"),
            ),
            (
                &[("limit", "501")],
                bad("parameter limit: must be between 1 and 500"),
            ),
            (
                &[("colour", "red")],
                bad("parameter colour: unknown parameter"),
            ),
            // The first bad parameter is the one named.
            (
                &[("status", "dead"), ("limit", "0"), ("colour", "red")],
                bad("parameter limit: must be between 1 and 500"),
            ),
        ] {
            assert_eq!(refusal(pairs), want, "{pairs:?}");
        }
    }
}
