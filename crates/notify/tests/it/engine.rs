use chrono::NaiveTime;
use kitedesk_core::Importance::{self, *};
use kitedesk_notify::{Clock, Decision, MemoryNotifier, Notifier as _, Suppression, Urgency};
use rstest::rstest;

use crate::{at_ms, engine_with, event, t0};

fn reason(d: &Decision) -> &'static str {
    match d {
        Decision::Notify(_) => "notify",
        Decision::Grouped { .. } => "grouped",
        Decision::Suppress(s) => s.code(),
    }
}

#[test]
fn a_high_event_notifies_with_its_summary_source_type_and_urgency() {
    let mut e = engine_with(|_| {});
    let d = e.decide(&event(7, "acme/api", High), Clock::utc(t0()));
    let Decision::Notify(n) = d else {
        panic!("high is at the default threshold: {d:?}")
    };
    assert_eq!(n.title, "CI failed #7 on acme/api");
    assert!(
        n.body.contains("github") && n.body.contains("com.github.workflow_run.completed"),
        "{}",
        n.body
    );
    assert_eq!(n.urgency, Urgency::Normal, "high maps to normal urgency");
    assert_eq!(n.event_id, 7);
    assert_eq!(n.count, 1);
}

#[rstest]
#[case(Critical, Urgency::Critical)]
#[case(High, Urgency::Normal)]
#[case(Normal, Urgency::Normal)]
#[case(Low, Urgency::Low)]
fn importance_maps_to_urgency(#[case] i: Importance, #[case] u: Urgency) {
    let mut e = engine_with(|s| s.threshold = Low);
    match e.decide(&event(1, "a/b", i), Clock::utc(t0())) {
        Decision::Notify(n) => assert_eq!(n.urgency, u),
        d => panic!("{d:?}"),
    }
}

#[rstest]
#[case(High, Low, "below_threshold")]
#[case(High, Normal, "below_threshold")]
#[case(High, High, "notify")]
#[case(High, Critical, "notify")]
#[case(Critical, High, "below_threshold")]
#[case(Low, Low, "notify")]
fn threshold_applies(
    #[case] threshold: Importance,
    #[case] importance: Importance,
    #[case] want: &str,
) {
    let mut e = engine_with(|s| s.threshold = threshold);
    let d = e.decide(&event(1, "a/b", importance), Clock::utc(t0()));
    assert_eq!(
        reason(&d),
        want,
        "{importance} at threshold {threshold}: {d:?}"
    );
}

#[test]
fn duplicates_by_local_id_or_by_source_and_ce_id_never_notify_twice() {
    let mut e = engine_with(|_| {});
    let first = event(1, "a/b", Critical);
    assert_eq!(reason(&e.decide(&first, Clock::utc(t0()))), "notify");
    assert_eq!(
        e.decide(&first, Clock::utc(at_ms(1))),
        Decision::Suppress(Suppression::Duplicate),
        "the same local id"
    );
    let mut redelivered = first.clone();
    redelivered.id = 2;
    assert_eq!(
        e.decide(&redelivered, Clock::utc(at_ms(2))),
        Decision::Suppress(Suppression::Duplicate),
        "the same (source, ce id) under another local id"
    );
    let mut other_source = first.clone();
    other_source.id = 3;
    other_source.source = "https://github.com/other/repo".into();
    assert_eq!(
        reason(&e.decide(&other_source, Clock::utc(at_ms(3)))),
        "notify",
        "the same ce id from another source is another event"
    );
}

#[test]
fn source_and_ce_id_are_one_key_not_their_concatenation() {
    // The engine remembers each (source, ce id) pair as a hash of the pair:
    // pairs whose texts run together the same way are still different.
    let mut e = engine_with(|_| {});
    let mut a = event(1, "a/b", Critical);
    a.source = "https://github.com/acme/api".into();
    a.ce_id = "1".into();
    let mut b = a.clone();
    b.id = 2;
    b.source = "https://github.com/acme/ap".into();
    b.ce_id = "i1".into();
    assert_eq!(reason(&e.decide(&a, Clock::utc(t0()))), "notify");
    assert_eq!(reason(&e.decide(&b, Clock::utc(at_ms(1)))), "notify");
}

#[test]
fn the_duplicate_memory_forgets_the_oldest_beyond_its_size() {
    let mut e = engine_with(|s| {
        s.threshold = Critical;
    });
    let old = event(1, "a/b", Low);
    assert_eq!(reason(&e.decide(&old, Clock::utc(t0()))), "below_threshold");
    for id in 2..=kitedesk_notify::engine::DEDUP_MEMORY as i64 {
        e.decide(&event(id, "a/b", Low), Clock::utc(t0()));
    }
    // Still remembered (a redelivery under a new local id): the memory
    // holds exactly DEDUP_MEMORY events, and a duplicate takes no place.
    let mut again = old.clone();
    again.id = 10_000_000;
    assert_eq!(reason(&e.decide(&again, Clock::utc(at_ms(1)))), "duplicate");
    // One more new event pushes the oldest out.
    e.decide(&event(10_000_001, "x/y", Low), Clock::utc(t0()));
    let mut third = old.clone();
    third.id = 10_000_002;
    assert_eq!(
        reason(&e.decide(&third, Clock::utc(at_ms(2)))),
        "below_threshold",
        "forgotten after DEDUP_MEMORY newer events: decided afresh"
    );
}

#[test]
fn a_duplicate_is_remembered_even_when_it_was_suppressed() {
    let mut e = engine_with(|s| s.threshold = Critical);
    let ev = event(1, "a/b", High);
    assert_eq!(reason(&e.decide(&ev, Clock::utc(t0()))), "below_threshold");
    e.set_settings(
        kitedesk_notify::NotificationSettings {
            threshold: Low,
            ..Default::default()
        }
        .compile()
        .unwrap(),
    );
    assert_eq!(
        reason(&e.decide(&ev, Clock::utc(at_ms(1)))),
        "duplicate",
        "an event gets one decision; lowering the threshold later does not replay it"
    );
}

#[rstest]
#[case::by_name("github")]
#[case::by_uri("https://github.com/acme/api")]
#[case::by_label("acme/api")]
fn muted_sources(#[case] muted: &str) {
    let mut e = engine_with(|s| s.muted_sources = vec![muted.into()]);
    assert_eq!(
        e.decide(&event(1, "acme/api", Critical), Clock::utc(t0())),
        Decision::Suppress(Suppression::MutedSource {
            source: muted.into()
        })
    );
}

#[test]
fn muted_source_does_not_mute_others() {
    let mut e = engine_with(|s| s.muted_sources = vec!["acme/api".into()]);
    assert_eq!(
        reason(&e.decide(&event(1, "acme/web", High), Clock::utc(t0()))),
        "notify"
    );
}

#[rstest]
#[case("com.github.workflow_run.*", "muted_type")]
#[case("com.github.*", "muted_type")]
#[case("com.{stripe,github}.workflow_run.completed", "muted_type")]
#[case("com.stripe.*", "notify")]
#[case("com.github.check_run.*", "notify")]
fn muted_type_globs(#[case] glob: &str, #[case] want: &str) {
    let mut e = engine_with(|s| s.muted_types = vec![glob.into()]);
    let d = e.decide(&event(1, "a/b", High), Clock::utc(t0()));
    assert_eq!(reason(&d), want, "{glob}: {d:?}");
}

#[test]
fn paused_until_a_time_then_not() {
    let until = at_ms(60_000);
    let mut e = engine_with(|s| s.paused_until = Some(until));
    assert_eq!(
        e.decide(&event(1, "a/b", Critical), Clock::utc(t0())),
        Decision::Suppress(Suppression::Paused { until }),
        "a pause holds back critical events too"
    );
    assert_eq!(
        reason(&e.decide(&event(2, "a/b", High), Clock::utc(until))),
        "notify",
        "the pause ends at paused_until"
    );
}

fn quiet(
    start: &str,
    end: &str,
    breaks: bool,
) -> impl FnOnce(&mut kitedesk_notify::NotificationSettings) {
    let (start, end) = (start.to_string(), end.to_string());
    move |s| {
        s.quiet_hours.enabled = true;
        s.quiet_hours.start = start;
        s.quiet_hours.end = end;
        s.quiet_hours.critical_breaks_through = breaks;
    }
}

fn local(h: u32, m: u32) -> Clock {
    Clock::new(t0(), NaiveTime::from_hms_opt(h, m, 0).unwrap())
}

#[rstest]
#[case(High, true, (23, 0), "quiet_hours")]
#[case(Critical, true, (23, 0), "notify")]
#[case(Critical, false, (23, 0), "quiet_hours")]
#[case(High, true, (6, 59), "quiet_hours")]
#[case(High, true, (7, 0), "notify")]
#[case(High, true, (12, 0), "notify")]
fn quiet_hours_use_local_time(
    #[case] importance: Importance,
    #[case] breaks: bool,
    #[case] (h, m): (u32, u32),
    #[case] want: &str,
) {
    let mut e = engine_with(quiet("22:00", "07:00", breaks));
    let d = e.decide(&event(1, "a/b", importance), local(h, m));
    assert_eq!(
        reason(&d),
        want,
        "{importance} at {h:02}:{m:02}, breaks through: {breaks}"
    );
}

#[test]
fn disabled_quiet_hours_do_nothing() {
    let mut e = engine_with(|s| {
        quiet("00:00", "00:00", false)(s);
        s.quiet_hours.enabled = false;
    });
    assert_eq!(
        reason(&e.decide(&event(1, "a/b", High), local(3, 0))),
        "notify"
    );
}

/// The example: 12 events from one source within 10 s → three
/// individual notices, then one "9 new events from acme/api" when the
/// window ends.
#[test]
fn a_burst_from_one_source_is_grouped() {
    let mut e = engine_with(|_| {});
    let mut shown = Vec::new();
    for i in 0..12 {
        match e.decide(&event(i + 1, "acme/api", High), Clock::utc(at_ms(i * 100))) {
            Decision::Notify(n) => shown.push(n),
            Decision::Grouped { source, held } => {
                assert_eq!(source, "acme/api");
                assert_eq!(held as i64, i - 2, "held counts up from 1");
            }
            d => panic!("{d:?}"),
        }
    }
    assert_eq!(shown.len(), 3, "max_individual = 3 are shown at once");
    assert_eq!(e.held(), 9);
    let due_at = e.next_deadline().unwrap();
    assert_eq!(
        due_at,
        at_ms(300 + 10_000),
        "the group flushes a window after it started"
    );
    assert!(
        e.flush_due(at_ms(300 + 9_999)).is_empty(),
        "not before its deadline"
    );
    let flushed = e.flush_due(due_at);
    assert_eq!(flushed.len(), 1);
    let g = &flushed[0];
    assert_eq!(g.title, "9 new events from acme/api");
    assert_eq!(g.count, 9);
    assert_eq!(g.event_id, 12, "Open shows the newest event of the group");
    assert!(g.body.contains("CI failed #12"), "{}", g.body);
    assert_eq!(e.held(), 0);
    assert_eq!(e.next_deadline(), None);
}

#[test]
fn a_group_takes_the_highest_urgency_of_its_events() {
    let mut e = engine_with(|s| s.group.max_individual = 1);
    e.decide(&event(1, "a/b", High), Clock::utc(t0()));
    e.decide(&event(2, "a/b", Critical), Clock::utc(at_ms(1)));
    e.decide(&event(3, "a/b", High), Clock::utc(at_ms(2)));
    let g = e.flush_due(at_ms(20_000));
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].urgency, Urgency::Critical);
    assert_eq!(g[0].title, "2 new events from a/b");
}

#[test]
fn a_group_of_one_is_shown_as_the_event_itself() {
    let mut e = engine_with(|s| s.group.max_individual = 1);
    e.decide(&event(1, "a/b", High), Clock::utc(t0()));
    assert_eq!(
        reason(&e.decide(&event(2, "a/b", High), Clock::utc(at_ms(5)))),
        "grouped"
    );
    let g = e.flush_due(at_ms(10_005));
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].title, "CI failed #2 on a/b");
    assert_eq!(g[0].count, 1);
}

#[test]
fn sources_are_grouped_separately_and_the_window_slides() {
    let mut e = engine_with(|_| {});
    for i in 0..3 {
        assert_eq!(
            reason(&e.decide(&event(i, "a/one", High), Clock::utc(at_ms(i)))),
            "notify"
        );
    }
    assert_eq!(
        reason(&e.decide(&event(10, "a/two", High), Clock::utc(at_ms(10)))),
        "notify",
        "another source has its own window"
    );
    assert_eq!(
        reason(&e.decide(&event(11, "a/one", High), Clock::utc(at_ms(11)))),
        "grouped"
    );
    let flushed = e.flush_due(at_ms(10_011));
    assert_eq!(flushed.len(), 1);
    assert_eq!(
        reason(&e.decide(&event(12, "a/one", High), Clock::utc(at_ms(10_012)))),
        "notify",
        "after the window, the earlier individual notices no longer count"
    );
}

#[test]
fn the_rate_limit_caps_notices_per_minute() {
    let mut e = engine_with(|s| {
        s.rate_limit_per_minute = 5;
        s.group.max_individual = 100;
    });
    let decisions: Vec<_> = (0..8)
        .map(|i| {
            reason(&e.decide(
                &event(i, &format!("s/{i}"), High),
                Clock::utc(at_ms(i * 1000)),
            ))
        })
        .collect();
    assert_eq!(
        decisions,
        ["notify"; 5]
            .iter()
            .chain(["rate_limited"; 3].iter())
            .copied()
            .collect::<Vec<_>>()
    );
    assert_eq!(
        reason(&e.decide(&event(100, "s/x", High), Clock::utc(at_ms(60_000)))),
        "notify",
        "a minute after the first notice there is room again"
    );
}

#[test]
fn group_notices_count_toward_the_rate_but_are_not_dropped() {
    let mut e = engine_with(|s| {
        s.rate_limit_per_minute = 2;
        s.group.max_individual = 1;
    });
    assert_eq!(
        reason(&e.decide(&event(1, "a/b", High), Clock::utc(t0()))),
        "notify"
    );
    assert_eq!(
        reason(&e.decide(&event(2, "a/b", High), Clock::utc(at_ms(1)))),
        "grouped"
    );
    assert_eq!(
        reason(&e.decide(&event(3, "a/b", High), Clock::utc(at_ms(2)))),
        "grouped"
    );
    assert_eq!(e.flush_due(at_ms(10_001)).len(), 1);
    assert_eq!(
        reason(&e.decide(&event(4, "c/d", High), Clock::utc(at_ms(10_002)))),
        "rate_limited",
        "one individual + one group = the limit of 2"
    );
}

#[tokio::test]
async fn memory_backend_records_fails_and_clicks() {
    let opened = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = opened.clone();
    let m = MemoryNotifier::new(Some(std::sync::Arc::new(move |r| {
        sink.lock().unwrap().push(r)
    })));
    let mut e = engine_with(|_| {});
    let Decision::Notify(mut n) = e.decide(&event(5, "a/b", High), Clock::utc(t0())) else {
        panic!()
    };
    n.open_url = Some("http://127.0.0.1:1/events/5".into());
    m.probe().await.unwrap();
    m.show(n.clone()).await.unwrap();
    assert_eq!(m.shown(), vec![n.clone()]);
    assert!(m.click(0));
    assert!(!m.click(1), "no second notice");
    assert_eq!(opened.lock().unwrap()[0].url, "http://127.0.0.1:1/events/5");
    m.set_unavailable(Some("no server"));
    assert!(m.probe().await.is_err());
    assert!(m.show(n).await.is_err());
    assert_eq!(m.shown().len(), 1, "a failed show records nothing");
}
