//! The notification policy: for each stored event, notify it, fold it into
//! a group, or suppress it with a reason. Pure: no I/O, no clock (the caller
//! passes [`Clock`]), no tasks; the daemon drives it and flushes groups when
//! [`Engine::next_deadline`] passes.
//!
//! Order of the checks, and why:
//! 1. duplicate (same local id, or same `(source, ce id)`): a redelivery
//!    never notifies twice, whatever the settings say;
//! 2. below the threshold;
//! 3. muted source, 4. muted type: the user said never;
//! 5. paused: the user said not now (critical included: a pause is explicit);
//! 6. quiet hours (critical breaks through when the setting says so);
//! 7. grouping: more than `max_individual` from one source within the
//!    window are held and flushed as one "N new events from …";
//! 8. rate limit: the last safety valve, over everything actually shown.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, NaiveTime, Utc};
use kitedesk_core::Importance;
use serde::Serialize;

use crate::settings::Compiled;

/// How many recent ids the duplicate check remembers. Redeliveries come
/// within minutes (Kiket retries for 24 h, but the store dedups those
/// before they ever reach the engine); this guards overlaps between the live
/// bus and catch-up reads.
pub const DEDUP_MEMORY: usize = 4096;

/// The facts the policy looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFacts {
    /// Local history id (the deep link's key).
    pub id: i64,
    /// Configured source name (`github`).
    pub source_name: String,
    /// CloudEvent source URI (`https://github.com/acme/api`): the grouping key.
    pub source: String,
    /// CloudEvent id.
    pub ce_id: String,
    pub ty: String,
    pub summary: String,
    pub importance: Importance,
}

impl EventFacts {
    /// A short name for the source, for "N new events from acme/api": the
    /// URI's path when it has one, else the configured source name.
    pub fn source_label(&self) -> String {
        source_label(&self.source_name, &self.source)
    }
}

/// The short label of a CloudEvent source (see [`EventFacts::source_label`]).
pub fn source_label(source_name: &str, source: &str) -> String {
    let rest = source.split_once("://").map_or(source, |(_, r)| r);
    match rest.split_once('/') {
        Some((_, path)) if !path.trim_matches('/').is_empty() => path.trim_matches('/').to_string(),
        _ => source_name.to_string(),
    }
}

/// "Now", as the policy needs it: the instant and the user's local time of
/// day (quiet hours are wall-clock times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub now: DateTime<Utc>,
    pub local_time: NaiveTime,
}

impl Clock {
    pub fn new(now: DateTime<Utc>, local_time: NaiveTime) -> Self {
        Self { now, local_time }
    }
    /// For tests and UTC machines: local time = UTC.
    pub fn utc(now: DateTime<Utc>) -> Self {
        Self {
            now,
            local_time: now.time(),
        }
    }
}

/// Desktop urgency levels (the freedesktop spec's low/normal/critical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Low,
    Normal,
    Critical,
}

impl From<Importance> for Urgency {
    /// critical → Critical; high and normal → Normal; low → Low.
    fn from(i: Importance) -> Self {
        match i {
            Importance::Critical => Urgency::Critical,
            Importance::High | Importance::Normal => Urgency::Normal,
            Importance::Low => Urgency::Low,
        }
    }
}

/// What to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// The title: the event's summary, or "12 new events from acme/api".
    pub title: String,
    /// Source and type (for a group: the latest event's).
    pub body: String,
    pub urgency: Urgency,
    /// The event "Open" shows (a group's latest event).
    pub event_id: i64,
    /// How many events this notice stands for (1, or a group's size).
    pub count: u32,
    /// `<daemon url>/events/<id>`: filled in by whoever knows the daemon's
    /// address; the backend's "Open" action opens it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_url: Option<String>,
}

impl Notice {
    fn single(e: &EventFacts) -> Notice {
        Notice {
            title: e.summary.clone(),
            body: format!("{} · {} · {}", e.source_name, e.ty, e.importance),
            urgency: e.importance.into(),
            event_id: e.id,
            count: 1,
            open_url: None,
        }
    }
}

/// Why an event did not notify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Suppression {
    Duplicate,
    BelowThreshold {
        importance: Importance,
        threshold: Importance,
    },
    MutedSource {
        source: String,
    },
    MutedType {
        glob: String,
    },
    Paused {
        until: DateTime<Utc>,
    },
    QuietHours,
    RateLimited {
        per_minute: usize,
    },
}

impl Suppression {
    /// Stable code for the API and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Suppression::Duplicate => "duplicate",
            Suppression::BelowThreshold { .. } => "below_threshold",
            Suppression::MutedSource { .. } => "muted_source",
            Suppression::MutedType { .. } => "muted_type",
            Suppression::Paused { .. } => "paused",
            Suppression::QuietHours => "quiet_hours",
            Suppression::RateLimited { .. } => "rate_limited",
        }
    }
}

impl std::fmt::Display for Suppression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Suppression::Duplicate => f.write_str("already notified"),
            Suppression::BelowThreshold {
                importance,
                threshold,
            } => write!(
                f,
                "importance {importance} is below the threshold {threshold}"
            ),
            Suppression::MutedSource { source } => write!(f, "source {source} is muted"),
            Suppression::MutedType { glob } => write!(f, "type matches muted {glob}"),
            Suppression::Paused { until } => write!(f, "paused until {}", until.to_rfc3339()),
            Suppression::QuietHours => f.write_str("quiet hours"),
            Suppression::RateLimited { per_minute } => {
                write!(f, "more than {per_minute} notifications in a minute")
            }
        }
    }
}

/// The engine's answer for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Notify(Notice),
    /// Held in the source's group; it is shown when the group flushes.
    Grouped {
        source: String,
        held: u32,
    },
    Suppress(Suppression),
}

/// Events held for one source's group notification.
#[derive(Debug, Clone)]
struct Group {
    flush_at: DateTime<Utc>,
    count: u32,
    latest: EventFacts,
    max_importance: Importance,
}

#[derive(Debug, Default)]
struct SourceState {
    /// When individual notices for this source were shown, within the window.
    shown: VecDeque<DateTime<Utc>>,
    group: Option<Group>,
}

/// The policy and its memory (recent ids, windows, groups, rate).
#[derive(Debug)]
pub struct Engine {
    settings: Compiled,
    // Every stored event passes through these: foldhash (seeded randomly
    // per process, like the std hasher) is several times faster than SipHash
    // on these short keys.
    seen_ids: HashSet<i64, foldhash::fast::RandomState>,
    /// (CloudEvent source, id) pairs as a 64-bit keyed hash
    /// ([`Engine::key_of`]), not copies of the two strings: four string
    /// allocations and frees per event less. A new pair is taken for one of
    /// the 4,096 remembered with odds of 2^-52 (1 in 4.5 × 10^15).
    seen_keys: HashSet<u64, foldhash::fast::RandomState>,
    seen_order: VecDeque<(i64, u64)>,
    key_hasher: foldhash::quality::RandomState,
    sources: HashMap<String, SourceState>,
    /// When notices (individual or grouped) were shown in the last minute.
    sent: VecDeque<DateTime<Utc>>,
}

const MINUTE_MS: i64 = 60_000;
/// Sweep idle sources once this many are tracked.
const IDLE_SOURCE_SWEEP: usize = 256;

impl Engine {
    pub fn new(settings: Compiled) -> Self {
        Self {
            settings,
            seen_ids: HashSet::default(),
            seen_keys: HashSet::default(),
            seen_order: VecDeque::new(),
            key_hasher: foldhash::quality::RandomState::default(),
            sources: HashMap::new(),
            sent: VecDeque::new(),
        }
    }

    /// New settings apply to the next event; groups already held keep their
    /// flush time.
    pub fn set_settings(&mut self, settings: Compiled) {
        self.settings = settings;
    }

    pub fn settings(&self) -> &Compiled {
        &self.settings
    }

    /// Decide for one event. Every event passes through here exactly once
    /// per process (duplicates are answered `Suppress(Duplicate)`).
    pub fn decide(&mut self, e: &EventFacts, clock: Clock) -> Decision {
        if !self.remember(e) {
            return Decision::Suppress(Suppression::Duplicate);
        }
        let s = &self.settings;
        if e.importance < s.threshold {
            return Decision::Suppress(Suppression::BelowThreshold {
                importance: e.importance,
                threshold: s.threshold,
            });
        }
        let label = e.source_label();
        if let Some(m) = s
            .muted_sources
            .iter()
            .find(|m| **m == e.source_name || **m == e.source || **m == label)
        {
            return Decision::Suppress(Suppression::MutedSource { source: m.clone() });
        }
        if let Some(g) = s.muted_types.iter().find(|g| g.is_match(&e.ty)) {
            return Decision::Suppress(Suppression::MutedType {
                glob: g.as_str().to_string(),
            });
        }
        if let Some(until) = s.paused_until.filter(|t| *t > clock.now) {
            return Decision::Suppress(Suppression::Paused { until });
        }
        if let Some(q) = s.quiet
            && q.covers(clock.local_time)
            && !(q.critical_breaks_through && e.importance == Importance::Critical)
        {
            return Decision::Suppress(Suppression::QuietHours);
        }
        let (window_ms, max_individual, rate) =
            (s.window_ms, s.max_individual, s.rate_limit_per_minute);
        if self.sources.len() >= IDLE_SOURCE_SWEEP && !self.sources.contains_key(&e.source) {
            self.forget_idle_sources(clock.now);
        }
        let state = self.sources.entry(e.source.clone()).or_default();
        prune(&mut state.shown, clock.now, window_ms);
        if let Some(g) = &mut state.group {
            g.count += 1;
            g.max_importance = g.max_importance.max(e.importance);
            g.latest = e.clone();
            return Decision::Grouped {
                source: label,
                held: g.count,
            };
        }
        if state.shown.len() >= max_individual {
            state.group = Some(Group {
                flush_at: clock.now + chrono::Duration::milliseconds(window_ms),
                count: 1,
                latest: e.clone(),
                max_importance: e.importance,
            });
            return Decision::Grouped {
                source: label,
                held: 1,
            };
        }
        prune(&mut self.sent, clock.now, MINUTE_MS);
        if self.sent.len() >= rate {
            return Decision::Suppress(Suppression::RateLimited { per_minute: rate });
        }
        state.shown.push_back(clock.now);
        self.sent.push_back(clock.now);
        Decision::Notify(Notice::single(e))
    }

    /// When the earliest held group is due.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.sources
            .values()
            .filter_map(|s| s.group.as_ref().map(|g| g.flush_at))
            .min()
    }

    /// Number of events currently held in groups.
    pub fn held(&self) -> u32 {
        self.sources
            .values()
            .filter_map(|s| s.group.as_ref().map(|g| g.count))
            .sum()
    }

    /// The group notices due at `now` (oldest deadline first). A group of
    /// one is shown as that event's own notice. Group notices count toward
    /// the rate limit but are never dropped by it: they already stand for
    /// many events, one per source per window.
    pub fn flush_due(&mut self, now: DateTime<Utc>) -> Vec<Notice> {
        let mut due: Vec<(DateTime<Utc>, Notice)> = Vec::new();
        for state in self.sources.values_mut() {
            let Some(g) = state.group.take_if(|g| g.flush_at <= now) else {
                continue;
            };
            let notice = if g.count == 1 {
                Notice::single(&g.latest)
            } else {
                let latest = &g.latest;
                Notice {
                    title: format!("{} new events from {}", g.count, latest.source_label()),
                    body: format!(
                        "Latest: {}\n{} · {}",
                        latest.summary, latest.source_name, latest.ty
                    ),
                    urgency: g.max_importance.into(),
                    event_id: latest.id,
                    count: g.count,
                    open_url: None,
                }
            };
            due.push((g.flush_at, notice));
        }
        due.sort_by_key(|(t, n)| (*t, n.event_id));
        prune(&mut self.sent, now, MINUTE_MS);
        self.sent.extend(due.iter().map(|_| now));
        due.into_iter().map(|(_, n)| n).collect()
    }

    /// Forget sources with nothing held and nothing shown in the window, so
    /// the map stays as small as the set of active sources.
    fn forget_idle_sources(&mut self, now: DateTime<Utc>) {
        let window_ms = self.settings.window_ms;
        self.sources.retain(|_, s| {
            prune(&mut s.shown, now, window_ms);
            s.group.is_some() || !s.shown.is_empty()
        });
    }

    /// The duplicate key of an event: its (CloudEvent source, id) pair,
    /// hashed with this engine's random key (so no sender can choose ids
    /// that collide).
    fn key_of(&self, e: &EventFacts) -> u64 {
        use std::hash::BuildHasher as _;
        self.key_hasher
            .hash_one((e.source.as_str(), e.ce_id.as_str()))
    }

    /// Record the event as seen; false if it was seen before.
    fn remember(&mut self, e: &EventFacts) -> bool {
        let key = self.key_of(e);
        if self.seen_ids.contains(&e.id) || self.seen_keys.contains(&key) {
            return false;
        }
        self.seen_ids.insert(e.id);
        self.seen_keys.insert(key);
        self.seen_order.push_back((e.id, key));
        while self.seen_order.len() > DEDUP_MEMORY {
            if let Some((id, key)) = self.seen_order.pop_front() {
                self.seen_ids.remove(&id);
                self.seen_keys.remove(&key);
            }
        }
        true
    }
}

/// Drop times older than `window_ms` before `now`.
fn prune(times: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>, window_ms: i64) {
    while times
        .front()
        .is_some_and(|t| (now - *t).num_milliseconds() >= window_ms)
    {
        times.pop_front();
    }
}
