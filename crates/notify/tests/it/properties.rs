//! Properties of the policy over random event streams and settings.

use std::collections::{HashMap, HashSet};

use kitedesk_core::Importance;
use kitedesk_notify::{Clock, Decision, Suppression};
use proptest::prelude::*;

use crate::{at_ms, engine_with, event};

fn importance() -> impl Strategy<Value = Importance> {
    prop::sample::select(Importance::ALL.to_vec())
}

/// (gap before the event in ms, source index, importance, redelivery of an earlier event?)
fn stream() -> impl Strategy<Value = Vec<(i64, u8, Importance, Option<usize>)>> {
    prop::collection::vec(
        (
            0i64..3_000,
            0u8..4,
            importance(),
            prop::option::weighted(0.1, 0usize..1000),
        ),
        1..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever arrives: no event is shown twice; every shown or held event
    /// is at or above the threshold; each source shows at most
    /// max_individual individual notices per window; at most
    /// rate_limit_per_minute notices in any minute; every event is shown,
    /// held in a group that is flushed later, or suppressed with a reason —
    /// and the group notices account for exactly the held events.
    #[test]
    fn policy_invariants(
        events in stream(),
        threshold in importance(),
        max_individual in 1u32..6,
        window_secs in 1u32..20,
        rate in 1u32..40,
    ) {
        let mut e = engine_with(|s| {
            s.threshold = threshold;
            s.group.max_individual = max_individual;
            s.group.window_secs = window_secs;
            s.rate_limit_per_minute = rate;
        });
        let mut now = 0i64;
        let mut shown_ids = HashSet::new();
        let mut individual: HashMap<String, Vec<i64>> = HashMap::new();
        let mut notice_times = Vec::new();
        let mut held = 0u32;
        let mut flushed_count = 0u32;
        let mut all = Vec::new();
        for (i, (gap, src, imp, redeliver)) in events.into_iter().enumerate() {
            now += gap;
            for g in e.flush_due(at_ms(now)) {
                flushed_count += g.count;
                notice_times.push(now);
            }
            let ev = match redeliver.and_then(|k| all.get(k % all.len().max(1)).cloned()) {
                Some(prev) => prev,
                None => event(i as i64 + 1, &format!("org/repo{src}"), imp),
            };
            all.push(ev.clone());
            match e.decide(&ev, Clock::utc(at_ms(now))) {
                Decision::Notify(n) => {
                    prop_assert!(shown_ids.insert(n.event_id), "event {} shown twice", n.event_id);
                    prop_assert!(ev.importance >= threshold);
                    individual.entry(ev.source.clone()).or_default().push(now);
                    notice_times.push(now);
                }
                Decision::Grouped { .. } => {
                    prop_assert!(ev.importance >= threshold);
                    prop_assert!(shown_ids.insert(ev.id), "event {} held after being seen", ev.id);
                    held += 1;
                }
                Decision::Suppress(Suppression::BelowThreshold { importance, .. }) => {
                    prop_assert!(importance < threshold);
                }
                Decision::Suppress(Suppression::Duplicate) => {
                    prop_assert!(all[..all.len() - 1].iter().any(|p| p.id == ev.id));
                }
                Decision::Suppress(Suppression::RateLimited { .. }) => {}
                Decision::Suppress(other) => prop_assert!(false, "no mute, pause or quiet hours were set: {other:?}"),
            }
        }
        // Everything held is flushed eventually, as exactly as many events.
        for g in e.flush_due(at_ms(now + i64::from(window_secs) * 1000)) {
            flushed_count += g.count;
            notice_times.push(now);
        }
        prop_assert_eq!(flushed_count, held);
        prop_assert_eq!(e.held(), 0);
        let window = i64::from(window_secs) * 1000;
        for times in individual.values() {
            for (k, t) in times.iter().enumerate() {
                let in_window = times[k..].iter().take_while(|u| **u - t < window).count();
                prop_assert!(in_window <= max_individual as usize, "{in_window} individual notices within {window} ms");
            }
        }
        notice_times.sort_unstable();
        for (k, t) in notice_times.iter().enumerate() {
            let in_minute = notice_times[k..].iter().take_while(|u| **u - t < 60_000).count();
            // Group flushes are never dropped, so they may exceed the limit
            // by at most one per source (4 sources).
            prop_assert!(in_minute <= rate as usize + 4, "{in_minute} notices in a minute, limit {rate}");
        }
    }

    /// Settings survive JSON: what the API returns is what it was given.
    #[test]
    fn settings_round_trip(
        threshold in importance(),
        h in 0u32..24, m in 0u32..60,
        window in 1u32..3600, max_individual in 1u32..10_000, rate in 1u32..100_000,
        muted in prop::collection::vec("[a-z]{1,8}(/[a-z]{1,8})?", 0..4),
    ) {
        let mut s = kitedesk_notify::NotificationSettings {
            threshold,
            ..Default::default()
        };
        s.quiet_hours.start = format!("{h:02}:{m:02}");
        s.group.window_secs = window;
        s.group.max_individual = max_individual;
        s.rate_limit_per_minute = rate;
        s.muted_sources = muted.clone();
        s.muted_types = muted.iter().map(|m| format!("com.{m}.*")).collect();
        let bytes = serde_json::to_vec(&s).unwrap();
        prop_assert_eq!(kitedesk_notify::parse_settings(&bytes).unwrap(), s);
    }

    /// The settings parser never panics and always names a field.
    #[test]
    fn parser_total(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Err(e) = kitedesk_notify::parse_settings(&bytes) {
            prop_assert!(!e.field.is_empty());
        }
    }
}
