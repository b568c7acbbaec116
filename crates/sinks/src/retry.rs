//! The retry schedule: how long to wait before each retry, and when to give
//! up and dead-letter a delivery. Pure: the caller passes the jitter sample
//! (from its RNG) and keeps the clock.

use std::time::Duration;

/// Delays between attempts, each stretched by up to `jitter` of itself.
///
/// The default is the Kite docs' "1 s / 4 s / 16 s / 64 s + jitter, then
/// give up": five attempts in all, the last about 85 s after the first.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    delays: Vec<Duration>,
    jitter: f64,
}

/// The Kite docs' delays.
pub const DEFAULT_DELAYS: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(4),
    Duration::from_secs(16),
    Duration::from_secs(64),
];

/// Up to 20 % added to each delay, so deliveries that failed together (a
/// local server restarting) do not all retry in the same instant. Added,
/// never subtracted: no retry comes earlier than the documented delay.
pub const DEFAULT_JITTER: f64 = 0.2;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("jitter must be a fraction between 0 and 1, got {0}")]
    Jitter(f64),
}

impl Schedule {
    /// `delays[i]` is the wait after the `i+1`-th failed attempt; after the
    /// last one the delivery is dead-lettered. An empty list means a single
    /// attempt. `jitter` is the largest fraction added to a delay (0..=1).
    pub fn new(delays: Vec<Duration>, jitter: f64) -> Result<Self, ScheduleError> {
        if !(0.0..=1.0).contains(&jitter) {
            return Err(ScheduleError::Jitter(jitter));
        }
        Ok(Self { delays, jitter })
    }

    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> usize {
        self.delays.len() + 1
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            delays: DEFAULT_DELAYS.to_vec(),
            jitter: DEFAULT_JITTER,
        }
    }
}

/// How long to wait before the next attempt, given how many attempts have
/// already been made (and failed); `None` means the schedule is used up:
/// dead-letter the delivery.
///
/// `attempts_made == 0` is `Some(ZERO)`: nothing has been tried, go now.
/// `sample` is a uniform sample in `[0, 1)` from the caller's RNG; values
/// outside are clamped (NaN counts as 0), so any `f64` is safe.
pub fn next_delay(attempts_made: u32, schedule: &Schedule, sample: f64) -> Option<Duration> {
    let index = match attempts_made.checked_sub(1) {
        None => return Some(Duration::ZERO),
        Some(i) => usize::try_from(i).ok()?,
    };
    let base = *schedule.delays.get(index)?;
    let sample = if sample.is_nan() {
        0.0
    } else {
        sample.clamp(0.0, 1.0)
    };
    let factor = 1.0 + schedule.jitter * sample;
    // try_from: a configured delay near Duration::MAX times the factor would
    // overflow; then the un-jittered delay is long enough.
    Some(Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base))
}
