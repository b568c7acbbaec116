//! Reconnect delays: exponential, capped, with jitter so that many clients
//! cut off together (a relay restart) do not all come back in the same
//! instant. The Kite CLI uses 1 s doubling to 30 s with no jitter.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Fraction of each delay that is random: the delay is uniformly drawn
    /// from `[d × (1 − jitter), d]`. 0 = no jitter, 1 = "full jitter".
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// The delay before reconnect attempt `failures + 1`, given a uniform
    /// sample in `[0, 1)` (values outside are clamped; NaN counts as 0).
    pub fn delay(&self, failures: u32, sample: f64) -> Duration {
        let base = self
            .initial
            .checked_mul(2u32.saturating_pow(failures.min(31)))
            .unwrap_or(self.max)
            .min(self.max);
        let sample = if sample.is_nan() {
            0.0
        } else {
            sample.clamp(0.0, 1.0)
        };
        let jitter = self.jitter.clamp(0.0, 1.0);
        base.mul_f64(1.0 - jitter * sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let b = Backoff {
            jitter: 0.0,
            ..Backoff::default()
        };
        let secs: Vec<u64> = (0..8).map(|n| b.delay(n, 0.7).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(b.delay(u32::MAX, 0.0), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let b = Backoff::default();
        assert_eq!(b.delay(3, 0.0), Duration::from_secs(8));
        assert_eq!(b.delay(3, 1.0), Duration::from_secs(4));
        let mid = b.delay(3, 0.5);
        assert!(mid > Duration::from_secs(4) && mid < Duration::from_secs(8));
        assert_eq!(b.delay(3, f64::NAN), Duration::from_secs(8));
        assert_eq!(b.delay(3, -5.0), Duration::from_secs(8));
    }
}
