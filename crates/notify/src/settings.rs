//! The user's notification settings: the JSON shape the API reads and
//! writes (`/api/settings/notifications`), its validation (errors name the
//! field), and the compiled form the [`crate::Engine`] uses.

use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};
use kitedesk_core::Importance;
use kitedesk_core::glob::Glob;
use serde::{Deserialize, Serialize};

/// Longest grouping window: a group that waits longer than an hour is no
/// longer news.
pub const MAX_WINDOW_SECS: u32 = 3600;
/// Upper bounds that keep the engine's per-source and per-minute queues
/// small whatever a client sends.
pub const MAX_INDIVIDUAL: u32 = 10_000;
pub const MAX_RATE_PER_MINUTE: u32 = 100_000;
/// Longest pause through `POST /api/notifications/pause` (30 days).
pub const MAX_PAUSE_MINUTES: u32 = 30 * 24 * 60;
/// "Until tomorrow" ends at this local time on the next day: the start of
/// a working day rather than midnight, which may be minutes away.
pub const TOMORROW_AT: (u32, u32) = (8, 0);

/// The settings object, exactly as the API exchanges it. `PUT` replaces the
/// whole object; unknown fields are refused so a typo is not silently lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// Events below this importance never notify.
    pub threshold: Importance,
    pub quiet_hours: QuietHours,
    /// Notifications are paused until then (RFC 3339); a past time is the
    /// same as none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<DateTime<Utc>>,
    /// Source names (`github`), CloudEvent sources (`https://github.com/acme/api`)
    /// or their short labels (`acme/api`) that never notify.
    pub muted_sources: Vec<String>,
    /// Globs over the CloudEvent type (`com.github.check_run.*`).
    pub muted_types: Vec<String>,
    pub group: GroupSettings,
    /// At most this many notifications (individual or grouped) per minute.
    pub rate_limit_per_minute: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    pub enabled: bool,
    /// Local wall-clock time `HH:MM`. `start == end` means all day.
    pub start: String,
    pub end: String,
    /// Critical events notify even in quiet hours.
    pub critical_breaks_through: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSettings {
    /// The burst window per source.
    pub window_secs: u32,
    /// More than this many events from one source within the window are
    /// folded into one "N new events from …" notification.
    pub max_individual: u32,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            threshold: Importance::High,
            quiet_hours: QuietHours {
                enabled: false,
                start: "22:00".into(),
                end: "07:00".into(),
                critical_breaks_through: true,
            },
            paused_until: None,
            muted_sources: Vec::new(),
            muted_types: Vec::new(),
            group: GroupSettings {
                window_secs: 10,
                max_individual: 3,
            },
            rate_limit_per_minute: 20,
        }
    }
}

/// A setting that cannot be used, with the field's JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SettingsError {
    /// Dotted path, e.g. `quiet_hours.start` or `muted_types[1]`.
    pub field: String,
    pub problem: String,
}

impl SettingsError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Parse and validate a settings object sent by a client.
pub fn parse_settings(json: &[u8]) -> Result<NotificationSettings, SettingsError> {
    let de = &mut serde_json::Deserializer::from_slice(json);
    let settings: NotificationSettings = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        // serde's "missing field `x`" is reported at the parent ("."):
        // name the field itself.
        let inner = e.into_inner();
        let msg = inner.to_string();
        // "." is the top level; "?" a position serde could not name
        // (syntax errors); "" a top-level key named "" (found by the
        // `notification_settings` fuzz target: `{"":0}` named no field).
        let root = path == "." || path == "?" || path.is_empty();
        let field = match (root, missing_field(&msg)) {
            (true, Some(f)) => f.to_string(),
            (false, Some(f)) => format!("{path}.{f}"),
            (true, None) => "body".to_string(),
            (false, None) => path,
        };
        SettingsError::new(field, strip_position(&msg))
    })?;
    settings.compile()?;
    Ok(settings)
}

fn missing_field(msg: &str) -> Option<&str> {
    msg.strip_prefix("missing field `")?.split('`').next()
}

/// serde_json appends " at line 1 column 42"; the field path says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Parse `HH:MM` (24-hour).
pub fn parse_clock(field: &str, s: &str) -> Result<NaiveTime, SettingsError> {
    let bad = || SettingsError::new(field, format!("{s:?} is not a time of day as HH:MM"));
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m) = (
        h.parse::<u32>().map_err(|_| bad())?,
        m.parse::<u32>().map_err(|_| bad())?,
    );
    NaiveTime::from_hms_opt(h, m, 0).ok_or_else(bad)
}

/// Settings ready for the engine: times parsed, globs compiled.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub threshold: Importance,
    pub quiet: Option<Quiet>,
    pub paused_until: Option<DateTime<Utc>>,
    pub muted_sources: Vec<String>,
    pub muted_types: Vec<Glob>,
    pub window_ms: i64,
    pub max_individual: usize,
    pub rate_limit_per_minute: usize,
}

/// Quiet hours in local wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quiet {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub critical_breaks_through: bool,
}

impl Quiet {
    /// Whether `t` (local) falls in `[start, end)`, wrapping past midnight
    /// when `end <= start`; `start == end` covers the whole day.
    pub fn covers(&self, t: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

impl NotificationSettings {
    /// Validate every field; the error names the first bad one.
    pub fn compile(&self) -> Result<Compiled, SettingsError> {
        let start = parse_clock("quiet_hours.start", &self.quiet_hours.start)?;
        let end = parse_clock("quiet_hours.end", &self.quiet_hours.end)?;
        let g = &self.group;
        if !(1..=MAX_WINDOW_SECS).contains(&g.window_secs) {
            return Err(SettingsError::new(
                "group.window_secs",
                format!("must be between 1 and {MAX_WINDOW_SECS}"),
            ));
        }
        if !(1..=MAX_INDIVIDUAL).contains(&g.max_individual) {
            return Err(SettingsError::new(
                "group.max_individual",
                format!("must be between 1 and {MAX_INDIVIDUAL}"),
            ));
        }
        if !(1..=MAX_RATE_PER_MINUTE).contains(&self.rate_limit_per_minute) {
            return Err(SettingsError::new(
                "rate_limit_per_minute",
                format!("must be between 1 and {MAX_RATE_PER_MINUTE}"),
            ));
        }
        for (i, s) in self.muted_sources.iter().enumerate() {
            if s.trim().is_empty() {
                return Err(SettingsError::new(
                    format!("muted_sources[{i}]"),
                    "must not be empty",
                ));
            }
        }
        let muted_types = self
            .muted_types
            .iter()
            .enumerate()
            .map(|(i, g)| {
                if g.trim().is_empty() {
                    return Err(SettingsError::new(
                        format!("muted_types[{i}]"),
                        "must not be empty",
                    ));
                }
                Glob::new(g)
                    .map_err(|e| SettingsError::new(format!("muted_types[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Compiled {
            threshold: self.threshold,
            quiet: self.quiet_hours.enabled.then_some(Quiet {
                start,
                end,
                critical_breaks_through: self.quiet_hours.critical_breaks_through,
            }),
            paused_until: self.paused_until,
            muted_sources: self
                .muted_sources
                .iter()
                .map(|s| s.trim().to_string())
                .collect(),
            muted_types,
            window_ms: i64::from(g.window_secs) * 1000,
            max_individual: g.max_individual as usize,
            rate_limit_per_minute: self.rate_limit_per_minute as usize,
        })
    }

    /// `paused_until` if it is still in the future.
    pub fn active_pause(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.paused_until.filter(|t| *t > now)
    }
}

/// A pause request (`POST /api/notifications/pause`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    #[serde(default)]
    pub until_tomorrow: bool,
}

/// Default pause when the request names no duration: an hour, as the tray's
/// first entry.
pub const DEFAULT_PAUSE_MINUTES: u32 = 60;

impl PauseRequest {
    /// When the pause ends. `now` is in the user's time zone so "tomorrow"
    /// means the user's tomorrow.
    pub fn until<Tz: TimeZone>(&self, now: DateTime<Tz>) -> Result<DateTime<Utc>, SettingsError> {
        match (self.minutes, self.until_tomorrow) {
            (Some(_), true) => Err(SettingsError::new(
                "minutes",
                "give either minutes or until_tomorrow, not both",
            )),
            (Some(m), false) if !(1..=MAX_PAUSE_MINUTES).contains(&m) => Err(SettingsError::new(
                "minutes",
                format!("must be between 1 and {MAX_PAUSE_MINUTES}"),
            )),
            (None, true) => Ok(tomorrow_morning(now)),
            (m, false) => Ok(now.with_timezone(&Utc)
                + chrono::Duration::minutes(i64::from(m.unwrap_or(DEFAULT_PAUSE_MINUTES)))),
        }
    }
}

/// [`TOMORROW_AT`] on the day after `now`'s local date. On a DST gap (the
/// time does not exist that day) the next valid instant an hour later.
pub fn tomorrow_morning<Tz: TimeZone>(now: DateTime<Tz>) -> DateTime<Utc> {
    let tz = now.timezone();
    let day = now
        .date_naive()
        .checked_add_days(Days::new(1))
        .unwrap_or(now.date_naive());
    let (h, m) = TOMORROW_AT;
    let at = |hour: u32| {
        day.and_hms_opt(hour, m, 0)
            .and_then(|naive| tz.from_local_datetime(&naive).earliest())
    };
    let now_utc = now.with_timezone(&Utc);
    at(h)
        .or_else(|| at(h + 1))
        .map(|t| t.with_timezone(&Utc))
        // No 08:00 or 09:00 that day cannot happen in real zones; a day from
        // now is a sane answer anyway.
        .unwrap_or(now_utc + chrono::Duration::days(1))
        .clamp(
            now_utc + chrono::Duration::minutes(1),
            now_utc + chrono::Duration::days(2),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn json(s: &NotificationSettings) -> serde_json::Value {
        serde_json::to_value(s).unwrap()
    }

    #[test]
    fn defaults_match_the_contract() {
        let v = json(&NotificationSettings::default());
        assert_eq!(
            v,
            serde_json::json!({
                "threshold": "high",
                "quiet_hours": {"enabled": false, "start": "22:00", "end": "07:00", "critical_breaks_through": true},
                "muted_sources": [], "muted_types": [],
                "group": {"window_secs": 10, "max_individual": 3},
                "rate_limit_per_minute": 20
            }),
            "the API contract's field names and the issue's defaults (high, 10 s, 3)"
        );
        NotificationSettings::default().compile().unwrap();
    }

    #[test]
    fn round_trips_with_a_pause() {
        let s = NotificationSettings {
            paused_until: Some("2026-11-24T20:00:00Z".parse().unwrap()),
            muted_types: vec!["com.github.check_run.*".into()],
            ..Default::default()
        };
        let bytes = serde_json::to_vec(&s).unwrap();
        assert_eq!(parse_settings(&bytes).unwrap(), s);
    }

    fn with(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
        let mut v = json(&NotificationSettings::default());
        edit(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    #[rstest]
    #[case::threshold(with(|v| v["threshold"] = "urgent".into()), "threshold", "unknown variant")]
    #[case::start(with(|v| v["quiet_hours"]["start"] = "25:00".into()), "quiet_hours.start", "HH:MM")]
    #[case::end(with(|v| v["quiet_hours"]["end"] = "7am".into()), "quiet_hours.end", "HH:MM")]
    #[case::glob(with(|v| v["muted_types"] = serde_json::json!(["com.*", "com.[github"])), "muted_types[1]", "invalid glob")]
    #[case::empty_source(with(|v| v["muted_sources"] = serde_json::json!([" "])), "muted_sources[0]", "empty")]
    #[case::window(with(|v| v["group"]["window_secs"] = 0.into()), "group.window_secs", "between")]
    #[case::max(with(|v| v["group"]["max_individual"] = 0.into()), "group.max_individual", "between")]
    #[case::rate(with(|v| v["rate_limit_per_minute"] = 0.into()), "rate_limit_per_minute", "between")]
    #[case::negative(with(|v| v["rate_limit_per_minute"] = (-1).into()), "rate_limit_per_minute", "invalid value")]
    #[case::missing(with(|v| { v.as_object_mut().unwrap().remove("group"); }), "group", "missing field")]
    #[case::missing_nested(with(|v| { v["quiet_hours"].as_object_mut().unwrap().remove("end"); }), "quiet_hours.end", "missing field")]
    #[case::unknown(with(|v| v["treshold"] = "low".into()), "treshold", "unknown field")]
    #[case::paused(with(|v| v["paused_until"] = "tomorrow".into()), "paused_until", "")]
    #[case::not_json(b"{".to_vec(), "body", "EOF")]
    fn bad_settings_name_the_field(
        #[case] body: Vec<u8>,
        #[case] field: &str,
        #[case] problem: &str,
    ) {
        let e = parse_settings(&body).unwrap_err();
        assert_eq!(e.field, field, "{e}");
        assert!(e.problem.contains(problem), "{e}");
    }

    /// Found by `cargo fuzz run notification_settings`: an unknown
    /// top-level key named "" gave an error whose field was empty.
    #[test]
    fn fuzz_regression_unknown_empty_key_names_the_body() {
        let e = parse_settings(br#"{"":0}"#).unwrap_err();
        assert_eq!(e.field, "body", "{e}");
        assert!(e.problem.contains("unknown field"), "{e}");
        let e = parse_settings(&with(|v| v[""] = 0.into())).unwrap_err();
        assert_eq!(e.field, "body", "{e}");
        // What `cargo fuzz tmin` shrank the crash to: EOF under that key.
        let e = parse_settings(br#"{"""#).unwrap_err();
        assert_eq!(e.field, "body", "{e}");
    }

    #[rstest]
    #[case("22:00", "07:00", "23:30", true)]
    #[case("22:00", "07:00", "06:59", true)]
    #[case("22:00", "07:00", "07:00", false)]
    #[case("22:00", "07:00", "12:00", false)]
    #[case("09:00", "17:00", "09:00", true)]
    #[case("09:00", "17:00", "17:00", false)]
    #[case("00:00", "00:00", "13:37", true)]
    fn quiet_hours_wrap_midnight(
        #[case] start: &str,
        #[case] end: &str,
        #[case] t: &str,
        #[case] want: bool,
    ) {
        let q = Quiet {
            start: parse_clock("s", start).unwrap(),
            end: parse_clock("e", end).unwrap(),
            critical_breaks_through: false,
        };
        assert_eq!(
            q.covers(parse_clock("t", t).unwrap()),
            want,
            "{start}-{end} at {t}"
        );
    }

    #[test]
    fn pause_durations() {
        let now: DateTime<Utc> = "2026-11-24T18:30:00Z".parse().unwrap();
        let one_hour = PauseRequest::default().until(now).unwrap();
        assert_eq!(one_hour, now + chrono::Duration::hours(1));
        let m = PauseRequest {
            minutes: Some(5),
            until_tomorrow: false,
        };
        assert_eq!(m.until(now).unwrap(), now + chrono::Duration::minutes(5));
        let t = PauseRequest {
            minutes: None,
            until_tomorrow: true,
        };
        assert_eq!(
            t.until(now).unwrap(),
            "2026-11-25T08:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        // In UTC+9, 18:30 UTC is 03:30 on the 25th: tomorrow is the 26th.
        let tokyo = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
        assert_eq!(
            t.until(now.with_timezone(&tokyo)).unwrap(),
            "2026-11-25T23:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        let both = PauseRequest {
            minutes: Some(5),
            until_tomorrow: true,
        };
        assert_eq!(both.until(now).unwrap_err().field, "minutes");
        let zero = PauseRequest {
            minutes: Some(0),
            until_tomorrow: false,
        };
        assert_eq!(zero.until(now).unwrap_err().field, "minutes");
    }
}
