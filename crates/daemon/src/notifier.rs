//! The notifier component: reacts to [`DaemonEvent::Stored`] on the bus,
//! asks the policy [`Engine`] what to do, and shows notices through the
//! configured [`Notifier`] backend. Also the service-layer functions behind
//! `/api/settings/notifications` and `/api/notifications/*`.
//!
//! Never twice, never skipped:
//! * the engine dedups by local id and `(source, ce id)` within a run;
//! * across restarts, the highest event id handled is persisted as a
//!   watermark (`notify.watermark`) *before* a notice is shown, so a crash
//!   can lose at most the notice being shown, never repeat one; events
//!   below the watermark are never looked at again;
//! * a subscriber that falls behind the bus (`Lagged`) catches up from the
//!   history by id, so nothing that should notify is skipped; on start the
//!   events stored after the watermark (within [`CATCH_UP_MAX_AGE`]) are
//!   handled the same way.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kitedesk_core::event::format_time;
use kitedesk_notify::settings::Compiled;
use kitedesk_notify::{
    Clock, Decision, Engine, EventFacts, Notice, NotificationSettings, Notifier, NotifyError,
    PauseRequest, Suppression,
};
use kitedesk_store::{EventQuery, Store, StoredEvent};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::api::{Api, ApiError};
use crate::bus::DaemonEvent;

/// Settings key of the user's notification settings.
pub const SETTINGS_KEY: &str = "notifications";
/// Settings key of the highest event id the notifier has handled.
pub const WATERMARK_KEY: &str = "notify.watermark";
/// While no server answers, check again this often.
pub const RETRY_EVERY: Duration = Duration::from_secs(30);
/// Persist the watermark of events that did not notify at most this late
/// (notified ones are persisted before they are shown).
const LAZY_PERSIST_EVERY: Duration = Duration::from_secs(5);
/// Messages taken from the bus in one pass of the notifier's loop, before
/// its timers (group flushes, persisting, probes) get their turn.
const DRAIN: usize = 256;
/// On start, events stored while the daemon was down notify only if they
/// are this recent: an hour-old alert is history, not news.
pub const CATCH_UP_MAX_AGE: chrono::Duration = chrono::Duration::minutes(10);
/// Notify calls that may await the server's reply at once.
const IN_FLIGHT: usize = 64;
/// Page size when catching up from the history.
const CATCH_UP_PAGE: u32 = 500;

/// Which backend shows notifications.
#[derive(Debug, Clone)]
pub enum NotifyBackend {
    /// None: the policy still runs (status and counters work); the status
    /// says "unavailable" with this reason.
    Off(String),
    On(Arc<dyn Notifier>),
}

impl Default for NotifyBackend {
    fn default() -> Self {
        NotifyBackend::Off("notifications are off (no backend configured)".into())
    }
}

/// `GET /api/notifications/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationStatus {
    /// `available` or `unavailable`.
    pub backend: String,
    /// `desktop`, `memory`, or `off`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<String>,
    /// Notices shown (a group counts once).
    pub sent_total: u64,
    /// Events that did not notify (any reason, including no server).
    pub suppressed_total: u64,
    /// Events folded into group notices.
    pub grouped_total: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<LastDecision>,
}

/// The latest event the notifier decided about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastDecision {
    pub event_id: i64,
    pub summary: String,
    /// `notified`, `grouped`, `suppressed` or `failed`.
    pub outcome: String,
    /// Why it did not notify (a stable code: `below_threshold`, `quiet_hours`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub at: String,
}

#[derive(Debug, Default)]
struct Counters {
    /// `None` until the first probe; then the last known availability.
    available: Option<Result<(), String>>,
    sent_total: u64,
    suppressed_total: u64,
    grouped_total: u64,
    last: Option<Last>,
}

/// The latest decision as the notifier records it, for every stored event:
/// turned into a [`LastDecision`] (text, timestamp) only when the status is
/// read.
#[derive(Debug)]
struct Last {
    event_id: i64,
    summary: String,
    outcome: &'static str,
    reason: Option<&'static str>,
    detail: Detail,
    at: DateTime<Utc>,
}

#[derive(Debug)]
enum Detail {
    None,
    Text(String),
    Suppressed(Suppression),
}

impl Last {
    fn new(event_id: i64, summary: String, outcome: &'static str) -> Last {
        Last {
            event_id,
            summary,
            outcome,
            reason: None,
            detail: Detail::None,
            at: Utc::now(),
        }
    }

    fn of_notice(n: &Notice, outcome: &'static str) -> Last {
        Last::new(n.event_id, n.title.clone(), outcome)
    }

    fn reason(self, reason: &'static str) -> Last {
        Last {
            reason: Some(reason),
            ..self
        }
    }

    fn detail(self, detail: Detail) -> Last {
        Last { detail, ..self }
    }

    fn decision(&self) -> LastDecision {
        LastDecision {
            event_id: self.event_id,
            summary: self.summary.clone(),
            outcome: self.outcome.into(),
            reason: self.reason.map(String::from),
            detail: match &self.detail {
                Detail::None => None,
                Detail::Text(t) => Some(t.clone()),
                Detail::Suppressed(why) => Some(why.to_string()),
            },
            at: format_time(self.at),
        }
    }
}

/// The notifier's shared state: settings (a watch the task follows) and
/// counters for the status.
#[derive(Debug)]
pub struct Notifications {
    settings: watch::Sender<NotificationSettings>,
    counters: Arc<Mutex<Counters>>,
    backend: NotifyBackend,
}

impl Notifications {
    pub(crate) fn new(backend: NotifyBackend) -> Self {
        Self {
            settings: watch::Sender::new(NotificationSettings::default()),
            counters: Arc::default(),
            backend,
        }
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        lock(&self.counters)
    }
}

fn lock(c: &Mutex<Counters>) -> std::sync::MutexGuard<'_, Counters> {
    // Counters stay meaningful even if a holder panicked.
    c.lock().unwrap_or_else(|p| p.into_inner())
}

fn invalid(e: kitedesk_notify::SettingsError) -> ApiError {
    ApiError::bad_request("invalid_settings", e.to_string())
}

impl Api {
    fn notifications(&self) -> &Notifications {
        &self.0.notifications
    }

    /// Load the saved settings and watermark, then start the notifier task.
    pub(crate) async fn start_notifier(&self) -> anyhow::Result<()> {
        let store = self.store().clone();
        let n = self.notifications();
        if let Some(v) = store.setting(SETTINGS_KEY).await? {
            match serde_json::from_value::<NotificationSettings>(v)
                .map_err(|e| e.to_string())
                .and_then(|s| s.compile().map(|_| s).map_err(|e| e.to_string()))
            {
                Ok(s) => {
                    n.settings.send_replace(s);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "saved notification settings are unusable; using the defaults")
                }
            }
        }
        // Subscribe before reading the history, so nothing stored in between
        // is missed (the engine drops what is seen twice). Whatever is
        // stored after this point is taken from the bus only, in order with
        // settings changes: read back by the start-up catch-up instead, an
        // event could be decided before a pause published ahead of it.
        let rx = self.bus().subscribe();
        let on_bus_after = store.max_event_id().await?;
        let watermark = match store.setting(WATERMARK_KEY).await?.and_then(|v| v.as_i64()) {
            Some(w) => w,
            None => {
                // First run: the history before now is not news.
                let w = store.max_event_id().await?;
                store.put_setting(WATERMARK_KEY, &w.into()).await?;
                w
            }
        };
        if let NotifyBackend::On(backend) = &n.backend {
            let probe = backend.probe().await;
            record_availability(
                &n.counters,
                backend.name(),
                probe.map_err(|e| e.to_string()),
            );
        }
        let settings = n.settings.borrow().compile()?;
        let task = Task {
            engine: Engine::new(settings),
            store,
            backend: n.backend.clone(),
            counters: n.counters.clone(),
            base_url: format!("http://{}", self.0.addr),
            processed: watermark,
            persisted: watermark,
            on_bus_after,
            in_flight: Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT)),
        };
        tokio::spawn(task.run(rx));
        Ok(())
    }

    pub fn notification_settings(&self) -> NotificationSettings {
        self.notifications().settings.borrow().clone()
    }

    /// Follows every settings change (a pause from the tray, the UI or the
    /// CLI), for callers that show the state, like the desktop tray.
    pub fn watch_notification_settings(&self) -> watch::Receiver<NotificationSettings> {
        self.notifications().settings.subscribe()
    }

    /// Replace the settings (validated; persisted before they apply).
    pub async fn set_notification_settings(
        &self,
        settings: NotificationSettings,
    ) -> Result<NotificationSettings, ApiError> {
        settings.compile().map_err(invalid)?;
        let value = serde_json::to_value(&settings).map_err(|e| ApiError::internal(&e))?;
        self.store().put_setting(SETTINGS_KEY, &value).await?;
        self.notifications().settings.send_replace(settings.clone());
        self.bus()
            .publish(DaemonEvent::NotificationSettings(Arc::new(
                settings.clone(),
            )));
        Ok(settings)
    }

    pub async fn pause_notifications(
        &self,
        req: &PauseRequest,
    ) -> Result<NotificationStatus, ApiError> {
        let until = req
            .until(chrono::Local::now())
            .map_err(|e| ApiError::bad_request("invalid_pause", e.to_string()))?;
        let mut s = self.notification_settings();
        s.paused_until = Some(until);
        self.set_notification_settings(s).await?;
        Ok(self.notification_status())
    }

    pub async fn resume_notifications(&self) -> Result<NotificationStatus, ApiError> {
        let mut s = self.notification_settings();
        s.paused_until = None;
        self.set_notification_settings(s).await?;
        Ok(self.notification_status())
    }

    pub fn notification_status(&self) -> NotificationStatus {
        let n = self.notifications();
        let paused_until = n
            .settings
            .borrow()
            .active_pause(Utc::now())
            .map(format_time);
        let c = n.counters();
        let (kind, error) = match (&n.backend, &c.available) {
            (NotifyBackend::Off(reason), _) => ("off", Some(reason.clone())),
            (NotifyBackend::On(b), None) => (b.name(), Some("not checked yet".to_string())),
            (NotifyBackend::On(b), Some(Ok(()))) => (b.name(), None),
            (NotifyBackend::On(b), Some(Err(e))) => (b.name(), Some(e.clone())),
        };
        NotificationStatus {
            backend: if error.is_none() {
                "available"
            } else {
                "unavailable"
            }
            .into(),
            kind: kind.into(),
            error,
            paused_until,
            sent_total: c.sent_total,
            suppressed_total: c.suppressed_total,
            grouped_total: c.grouped_total,
            last: c.last.as_ref().map(Last::decision),
        }
    }
}

/// Log availability changes once (not per notice) and keep them for the status.
fn record_availability(counters: &Mutex<Counters>, backend: &str, now: Result<(), String>) {
    let mut c = lock(counters);
    match (&c.available, &now) {
        (Some(Err(_)), Err(_)) => {}
        (_, Err(e)) => tracing::warn!(
            backend,
            error = %e,
            retry_secs = RETRY_EVERY.as_secs(),
            "desktop notifications are unavailable; events keep being stored, and the server is checked again periodically"
        ),
        (Some(Err(_)), Ok(())) => {
            tracing::info!(backend, "desktop notifications are available again")
        }
        (_, Ok(())) => tracing::debug!(backend, "desktop notifications are available"),
    }
    c.available = Some(now);
}

fn facts(e: &StoredEvent) -> EventFacts {
    EventFacts {
        id: e.id,
        source_name: e.event.source_name.clone(),
        source: e.event.source.clone(),
        ce_id: e.event.id.clone(),
        ty: e.event.ty.clone(),
        summary: e.event.summary.clone(),
        importance: e.event.importance,
    }
}

fn clock() -> Clock {
    Clock::new(Utc::now(), chrono::Local::now().time())
}

struct Task {
    engine: Engine,
    store: Store,
    backend: NotifyBackend,
    counters: Arc<Mutex<Counters>>,
    base_url: String,
    /// Highest event id stored before the notifier subscribed to the bus:
    /// the start-up catch-up reads the history up to it, later events come
    /// from the bus.
    on_bus_after: i64,
    /// Highest event id decided.
    processed: i64,
    /// Highest event id in the persisted watermark.
    persisted: i64,
    /// Notify calls awaiting the server's reply.
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Task {
    async fn run(mut self, mut rx: broadcast::Receiver<DaemonEvent>) {
        // Whatever was stored after the watermark while we were down.
        self.catch_up(Some(Utc::now() - CATCH_UP_MAX_AGE), Some(self.on_bus_after))
            .await;
        let mut lazy = tokio::time::interval(LAZY_PERSIST_EVERY);
        let mut retry = tokio::time::interval(RETRY_EVERY);
        retry.reset();
        'run: loop {
            let deadline = self.engine.next_deadline();
            let flush = async {
                match deadline {
                    Some(at) => {
                        let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                        tokio::time::sleep(wait).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = rx.recv() => {
                    // What is already on the bus too, up to a bound: under a
                    // burst, one pass of this loop (and one wake-up) for
                    // many events instead of one each.
                    let mut first = Some(msg);
                    for _ in 0..DRAIN {
                        let msg = match first.take() {
                            Some(msg) => msg,
                            None => match rx.try_recv() {
                                Ok(event) => Ok(event),
                                Err(broadcast::error::TryRecvError::Empty) => break,
                                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                                    Err(broadcast::error::RecvError::Lagged(n))
                                }
                                Err(broadcast::error::TryRecvError::Closed) => {
                                    Err(broadcast::error::RecvError::Closed)
                                }
                            },
                        };
                        match msg {
                            Ok(event) => {
                                if !self.on_event(&event).await {
                                    break 'run;
                                }
                            }
                            Err(broadcast::error::RecvError::Lagged(missed)) => {
                                tracing::warn!(missed, "notifier fell behind the bus; catching up from the history");
                                self.catch_up(None, None).await;
                            }
                            Err(broadcast::error::RecvError::Closed) => break 'run,
                        }
                    }
                }
                () = flush => {
                    for notice in self.engine.flush_due(Utc::now()) {
                        self.show(notice).await;
                    }
                }
                _ = lazy.tick() => self.persist(self.processed).await,
                _ = retry.tick() => self.retry_probe().await,
            }
        }
        self.persist(self.processed).await;
    }

    /// One message from the bus; `false` when the notifier should stop.
    async fn on_event(&mut self, event: &DaemonEvent) -> bool {
        match event {
            DaemonEvent::Stored(e) => self.handle(e).await,
            // In the bus's order, so every event is decided under the
            // settings it arrived in: a webhook answered before a pause was
            // lifted stays quiet, one sent after a pause began too.
            DaemonEvent::NotificationSettings(settings) => {
                let compiled: Result<Compiled, _> = settings.compile();
                match compiled {
                    Ok(c) => self.engine.set_settings(c),
                    Err(e) => tracing::warn!(error = %e, "ignoring invalid notification settings"),
                }
            }
            DaemonEvent::ShuttingDown => return false,
            DaemonEvent::Connection(_) => {}
        }
        true
    }

    /// Handle the events after `processed` from the history, oldest first,
    /// up to id `upto` when given. `received_after`: skip (but pass) older
    /// ones.
    async fn catch_up(&mut self, received_after: Option<DateTime<Utc>>, upto: Option<i64>) {
        loop {
            let q = EventQuery {
                after: Some(self.processed),
                oldest_first: true,
                limit: Some(CATCH_UP_PAGE),
                ..EventQuery::default()
            };
            let page = match self.store.list(&q).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "notifier cannot read the history to catch up");
                    return;
                }
            };
            let n = page.events.len();
            for e in &page.events {
                if upto.is_some_and(|u| e.id > u) {
                    return;
                }
                if received_after.is_some_and(|t| e.received < t) {
                    self.processed = self.processed.max(e.id);
                    continue;
                }
                self.handle(e).await;
            }
            if n < CATCH_UP_PAGE as usize {
                return;
            }
        }
    }

    async fn handle(&mut self, e: &StoredEvent) {
        if e.id <= self.processed.max(self.persisted) {
            // Handled before a restart, or already in this run: the bus
            // delivers in id order, and an event stored while the notifier
            // caught up from the history comes once from each.
            return;
        }
        let f = facts(e);
        let decision = self.engine.decide(&f, clock());
        self.processed = self.processed.max(e.id);
        match decision {
            Decision::Notify(notice) => self.show(notice).await,
            Decision::Grouped { source, held } => {
                let last = Last::new(f.id, f.summary, "grouped").detail(Detail::Text(format!(
                    "{held} held for a group notice for {source}"
                )));
                let mut c = lock(&self.counters);
                c.grouped_total += 1;
                c.last = Some(last);
            }
            Decision::Suppress(why) => {
                tracing::debug!(id = e.id, reason = why.code(), "not notified: {why}");
                let last = Last::new(f.id, f.summary, "suppressed").reason(why.code());
                let mut c = lock(&self.counters);
                c.suppressed_total += 1;
                c.last = Some(last.detail(Detail::Suppressed(why)));
            }
        }
    }

    async fn show(&mut self, mut notice: Notice) {
        notice.open_url = Some(format!("{}/events/{}", self.base_url, notice.event_id));
        let backend = match &self.backend {
            NotifyBackend::On(b) if !matches!(lock(&self.counters).available, Some(Err(_))) => {
                b.clone()
            }
            NotifyBackend::On(_) | NotifyBackend::Off(_) => {
                let mut c = lock(&self.counters);
                c.suppressed_total += u64::from(notice.count);
                c.last = Some(Last::of_notice(&notice, "suppressed").reason("backend_unavailable"));
                return;
            }
        };
        // Persist first: a crash after this loses the notice, never repeats it.
        let started = std::time::Instant::now();
        self.persist(self.processed.max(notice.event_id)).await;
        let persisted = started.elapsed();
        // The server's reply is awaited on its own task: a server that is
        // slow to answer (dunst drawing on a busy machine took ~100 ms) must
        // not hold back the next event's notification. At most IN_FLIGHT
        // calls wait at once; each has the backend's timeout.
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            // The server has not answered IN_FLIGHT calls: drop this one
            // rather than stall the notifier (and every later event).
            let mut c = lock(&self.counters);
            c.suppressed_total += u64::from(notice.count);
            c.last = Some(Last::of_notice(&notice, "failed").reason("server_busy"));
            return;
        };
        let counters = self.counters.clone();
        tokio::spawn(async move {
            let result = backend.show(notice.clone()).await;
            drop(permit);
            tracing::debug!(
                event_id = notice.event_id,
                persist_us = persisted.as_micros() as u64,
                show_us = (started.elapsed() - persisted).as_micros() as u64,
                "notice handed to the notification server"
            );
            {
                let mut c = lock(&counters);
                match &result {
                    Ok(()) => {
                        c.sent_total += 1;
                        let count = notice.count;
                        let last = Last::of_notice(&notice, "notified");
                        c.last = Some(if count > 1 {
                            last.detail(Detail::Text(format!("{count} events")))
                        } else {
                            last
                        });
                    }
                    Err(e) => {
                        c.suppressed_total += u64::from(notice.count);
                        c.last = Some(
                            Last::of_notice(&notice, "failed")
                                .reason("backend_unavailable")
                                .detail(Detail::Text(e.to_string())),
                        );
                    }
                }
            }
            match result {
                Ok(()) => {
                    if !matches!(lock(&counters).available, Some(Ok(()))) {
                        record_availability(&counters, backend.name(), Ok(()));
                    }
                }
                // A slow answer is not a missing server: the call reached it.
                Err(NotifyError::Timeout(t)) => {
                    tracing::debug!(timeout = ?t, "the notification server answered late");
                }
                Err(e) => record_availability(&counters, backend.name(), Err(e.to_string())),
            }
        });
    }

    async fn retry_probe(&mut self) {
        if let NotifyBackend::On(b) = &self.backend
            && matches!(lock(&self.counters).available, Some(Err(_)))
        {
            let r = b.probe().await.map_err(|e| e.to_string());
            record_availability(&self.counters, b.name(), r);
        }
    }

    async fn persist(&mut self, upto: i64) {
        if upto <= self.persisted {
            return;
        }
        match self.store.put_setting(WATERMARK_KEY, &upto.into()).await {
            Ok(()) => self.persisted = upto,
            Err(e) => tracing::warn!(error = %e, "cannot persist the notifier watermark"),
        }
    }
}
