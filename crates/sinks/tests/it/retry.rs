//! The retry schedule.

use std::time::Duration;

use kitedesk_sinks::retry::ScheduleError;
use kitedesk_sinks::{Schedule, next_delay};

const S: fn(u64) -> Duration = Duration::from_secs;

#[test]
fn the_default_is_1_4_16_64_seconds_then_dead_letter() {
    let s = Schedule::default();
    assert_eq!(s.max_attempts(), 5);
    assert_eq!(
        next_delay(0, &s, 0.7),
        Some(Duration::ZERO),
        "first try: now"
    );
    let unjittered: Vec<_> = (1..=5).map(|n| next_delay(n, &s, 0.0)).collect();
    assert_eq!(
        unjittered,
        [Some(S(1)), Some(S(4)), Some(S(16)), Some(S(64)), None],
        "after the fifth attempt the delivery is dead-lettered"
    );
    assert_eq!(next_delay(u32::MAX, &s, 0.5), None);
}

#[test]
fn jitter_only_adds_up_to_its_fraction() {
    let s = Schedule::default();
    assert_eq!(next_delay(2, &s, 0.5), Some(Duration::from_millis(4400)));
    let high = next_delay(4, &s, 0.999_999).unwrap();
    assert!(
        high >= S(64) && high < Duration::from_secs_f64(64.0 * 1.2),
        "{high:?}"
    );
}

#[test]
fn any_sample_is_safe() {
    let s = Schedule::default();
    assert_eq!(next_delay(1, &s, f64::NAN), Some(S(1)), "NaN counts as 0");
    assert_eq!(next_delay(1, &s, -3.0), Some(S(1)));
    assert_eq!(
        next_delay(1, &s, f64::INFINITY),
        Some(Duration::from_millis(1200)),
        "clamped to the largest jitter"
    );
    let huge = Schedule::new(vec![Duration::MAX], 1.0).unwrap();
    assert_eq!(
        next_delay(1, &huge, 0.9),
        Some(Duration::MAX),
        "an overflowing delay stays at its base instead of panicking"
    );
}

#[test]
fn schedules_are_configurable_and_checked() {
    let s = Schedule::new(vec![S(2), S(30)], 0.5).unwrap();
    assert_eq!(s.max_attempts(), 3);
    assert_eq!(next_delay(1, &s, 0.5), Some(Duration::from_millis(2500)));
    assert_eq!(next_delay(2, &s, 0.0), Some(S(30)));
    assert_eq!(next_delay(3, &s, 0.0), None);

    let once = Schedule::new(vec![], 0.0).unwrap();
    assert_eq!(
        next_delay(1, &once, 0.0),
        None,
        "no delays: one attempt only"
    );

    for bad in [-0.1, 1.5, f64::NAN] {
        assert!(
            matches!(
                Schedule::new(vec![S(1)], bad),
                Err(ScheduleError::Jitter(_))
            ),
            "jitter {bad} is refused"
        );
    }
}
