//! Per-team limits (Kite spec §7.2): a webhook request rate and an event
//! quota.
//!
//! * **Rate** ([`RateLimit`]): at most `requests` webhook requests per team
//!   in each fixed `window` (the hosted relay's `KITE_TEAM_RATE_LIMIT`,
//!   100 per window by default there; off by default here). Beyond it the
//!   ingress answers 429 `rate_limited` with `Retry-After`.
//! * **Quota** ([`Quota`]): at most `events` new events per team in each
//!   `period`. Beyond it the ingress answers 429 `quota_exceeded` with
//!   `Retry-After` (the end of the period), and a WebSocket client of that
//!   team is told after `connected` with `billing_block` and error 4005
//!   (`ERR_QUOTA_BLOCKED`); it still receives the events already logged.
//!   Every client also gets a `quota_snapshot` after `connected`.
//!
//! Counters live in memory, so a restarted relay starts a new window and
//! period for every team. Windows start at a team's first request (not on
//! the clock's minute), which keeps the state to two counters per team.
//! Time is passed in, so the rules are unit-tested without sleeping.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// `requests` webhook requests per `window`, per team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub window: Duration,
}

/// `events` new events per `period`, per team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub events: u64,
    pub period: Duration,
}

/// `N/DURATION`, e.g. `100/1m`, `10000/1d` (units s, m, h, d).
fn parse_per(s: &str) -> Result<(u64, Duration), String> {
    let bad = || format!("{s:?}: expected COUNT/DURATION, e.g. 100/1m or 10000/1d");
    let (n, d) = s.trim().split_once('/').ok_or_else(bad)?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    let d = d.trim();
    let split = d.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (k, unit) = d.split_at(split);
    // "1m" and "m" both mean one minute.
    let k: u64 = if k.is_empty() {
        1
    } else {
        k.parse().map_err(|_| bad())?
    };
    let secs = match unit {
        "s" => k,
        "m" => k.saturating_mul(60),
        "h" => k.saturating_mul(3600),
        "d" => k.saturating_mul(86_400),
        _ => return Err(bad()),
    };
    if n == 0 || secs == 0 {
        return Err(format!(
            "{s:?}: the count and the duration must be positive"
        ));
    }
    Ok((n, Duration::from_secs(secs)))
}

impl std::str::FromStr for RateLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (n, window) = parse_per(s)?;
        let requests = u32::try_from(n).map_err(|_| format!("{s:?}: too many requests"))?;
        Ok(Self { requests, window })
    }
}

impl std::str::FromStr for Quota {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (events, period) = parse_per(s)?;
        Ok(Self { events, period })
    }
}

/// Why a webhook is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too many requests in this window.
    RateLimited { retry_after: Duration },
    /// The team used its quota for this period.
    QuotaExceeded {
        retry_after: Duration,
        used: u64,
        limit: u64,
    },
}

/// A team's quota as a `quota_snapshot` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub used: u64,
    pub limit: u64,
    /// Time left in the current period.
    pub period_left: Duration,
}

impl Usage {
    pub fn exhausted(&self) -> bool {
        self.used >= self.limit
    }
}

#[derive(Debug)]
struct Window {
    start: Instant,
    count: u64,
}

impl Window {
    /// The window containing `now` (a new one once `len` has passed).
    fn current(w: &mut Option<Window>, now: Instant, len: Duration) -> &mut Window {
        if w.as_ref().is_none_or(|x| now >= x.start + len) {
            *w = Some(Window {
                start: now,
                count: 0,
            });
        }
        // Just set when it was None.
        w.get_or_insert(Window {
            start: now,
            count: 0,
        })
    }

    fn left(&self, now: Instant, len: Duration) -> Duration {
        (self.start + len).saturating_duration_since(now)
    }
}

#[derive(Debug, Default)]
struct Team {
    rate: Option<Window>,
    quota: Option<Window>,
}

/// The relay's limits and per-team counters.
#[derive(Debug)]
pub(crate) struct Limiter {
    rate: Option<RateLimit>,
    quota: Option<Quota>,
    teams: Mutex<HashMap<String, Team>>,
}

/// `Retry-After` is in whole seconds: round up, and never 0 (which would
/// invite an immediate retry into the same refusal).
pub fn retry_after_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl Limiter {
    pub(crate) fn new(rate: Option<RateLimit>, quota: Option<Quota>) -> Self {
        Self {
            rate,
            quota,
            teams: Mutex::new(HashMap::new()),
        }
    }

    fn with_team<T>(&self, team: &str, f: impl FnOnce(&mut Team) -> T) -> T {
        let mut teams = self.teams.lock().unwrap_or_else(|p| p.into_inner());
        if !teams.contains_key(team) {
            teams.insert(team.to_string(), Team::default());
        }
        match teams.get_mut(team) {
            Some(t) => f(t),
            None => f(&mut Team::default()),
        }
    }

    /// Admit one webhook request for `team`: counts it against the rate and
    /// reserves one event of the quota. Give the reservation back with
    /// [`Limiter::release`] when no new event was appended.
    pub(crate) fn admit(&self, team: &str, now: Instant) -> Result<(), Refusal> {
        if self.rate.is_none() && self.quota.is_none() {
            return Ok(());
        }
        self.with_team(team, |t| {
            if let Some(q) = self.quota {
                let w = Window::current(&mut t.quota, now, q.period);
                if w.count >= q.events {
                    return Err(Refusal::QuotaExceeded {
                        retry_after: w.left(now, q.period),
                        used: w.count,
                        limit: q.events,
                    });
                }
            }
            if let Some(r) = self.rate {
                let w = Window::current(&mut t.rate, now, r.window);
                if w.count >= u64::from(r.requests) {
                    return Err(Refusal::RateLimited {
                        retry_after: w.left(now, r.window),
                    });
                }
                w.count += 1;
            }
            if let Some(q) = self.quota {
                Window::current(&mut t.quota, now, q.period).count += 1;
            }
            Ok(())
        })
    }

    /// An admitted request appended nothing new (a duplicate, or an error).
    pub(crate) fn release(&self, team: &str, now: Instant) {
        let Some(q) = self.quota else { return };
        self.with_team(team, |t| {
            let w = Window::current(&mut t.quota, now, q.period);
            w.count = w.count.saturating_sub(1);
        });
    }

    /// The team's quota now (`None` without a quota).
    pub(crate) fn usage(&self, team: &str, now: Instant) -> Option<Usage> {
        let q = self.quota?;
        Some(self.with_team(team, |t| {
            let w = Window::current(&mut t.quota, now, q.period);
            Usage {
                used: w.count,
                limit: q.events,
                period_left: w.left(now, q.period),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[rstest]
    #[case("100/1m", 100, 60)]
    #[case("5/s", 5, 1)]
    #[case(" 10000 / 1d ", 10_000, 86_400)]
    #[case("3/2h", 3, 7200)]
    fn parses_count_per_duration(#[case] s: &str, #[case] n: u32, #[case] secs: u64) {
        let r: RateLimit = s.parse().unwrap();
        assert_eq!((r.requests, r.window), (n, Duration::from_secs(secs)));
        let q: Quota = s.parse().unwrap();
        assert_eq!(
            (q.events, q.period),
            (u64::from(n), Duration::from_secs(secs))
        );
    }

    #[rstest]
    #[case("100")]
    #[case("0/1m")]
    #[case("10/0s")]
    #[case("10/1w")]
    #[case("x/1m")]
    fn refuses_bad_limits(#[case] s: &str) {
        assert!(s.parse::<RateLimit>().is_err(), "{s}");
    }

    #[test]
    fn rate_is_per_team_and_per_window() {
        let l = Limiter::new(
            Some(RateLimit {
                requests: 2,
                window: 10 * S,
            }),
            None,
        );
        let t0 = Instant::now();
        assert_eq!(l.admit("a", t0), Ok(()));
        assert_eq!(l.admit("a", t0 + S), Ok(()));
        assert_eq!(
            l.admit("a", t0 + 3 * S),
            Err(Refusal::RateLimited { retry_after: 7 * S }),
            "the third in the window waits for the window's end"
        );
        assert_eq!(l.admit("b", t0 + 3 * S), Ok(()), "another team has its own");
        assert_eq!(l.admit("a", t0 + 10 * S), Ok(()), "a new window");
        assert_eq!(l.usage("a", t0), None, "no quota configured");
    }

    #[test]
    fn quota_counts_new_events_only() {
        let l = Limiter::new(
            None,
            Some(Quota {
                events: 2,
                period: 100 * S,
            }),
        );
        let t0 = Instant::now();
        assert_eq!(l.admit("a", t0), Ok(()));
        assert_eq!(l.admit("a", t0), Ok(()));
        // The second was a duplicate: its reservation comes back.
        l.release("a", t0);
        assert_eq!(l.admit("a", t0 + S), Ok(()));
        let refused = l.admit("a", t0 + 40 * S);
        assert_eq!(
            refused,
            Err(Refusal::QuotaExceeded {
                retry_after: 60 * S,
                used: 2,
                limit: 2
            })
        );
        let u = l.usage("a", t0 + 40 * S).unwrap();
        assert!(u.exhausted(), "{u:?}");
        assert!(!l.usage("b", t0).unwrap().exhausted());
        assert_eq!(l.admit("a", t0 + 100 * S), Ok(()), "the next period");
    }

    #[test]
    fn retry_after_rounds_up_to_a_whole_second() {
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(7 * S), 7);
    }
}
