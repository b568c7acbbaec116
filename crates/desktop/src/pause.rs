//! The tray's "Pause notifications" submenu: what a click asks of the
//! daemon ([`PauseCommand`]) and what the submenu shows, read from the
//! daemon's notification status ([`pause_state`]).
//!
//! The clock is passed in (`now`), in the user's time zone: "until 09:00"
//! and "tomorrow" are wall-clock words.

use chrono::{DateTime, TimeZone};
use kitedesk_daemon::notifier::NotificationStatus;
use kitedesk_notify::PauseRequest;

use crate::menu::{MenuId, Pause};

/// The tray's short pause: one hour.
pub const TRAY_PAUSE_MINUTES: u32 = 60;

/// What a pause-menu click asks of the daemon's notification service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PauseCommand {
    Pause(PauseRequest),
    Resume,
}

impl PauseCommand {
    /// The command behind a menu item, `None` for items that are not part
    /// of the pause submenu.
    pub fn for_menu(id: MenuId) -> Option<Self> {
        Some(match id {
            MenuId::PauseHour => Self::Pause(PauseRequest {
                minutes: Some(TRAY_PAUSE_MINUTES),
                until_tomorrow: false,
            }),
            MenuId::PauseTomorrow => Self::Pause(PauseRequest {
                minutes: None,
                until_tomorrow: true,
            }),
            MenuId::Resume => Self::Resume,
            _ => return None,
        })
    }
}

/// What the submenu shows for this status at `now`:
/// * no working notification server (none on the bus, or notifications
///   off) → [`Pause::Unavailable`]: pausing what cannot be shown means nothing;
/// * a pause that has not ended → [`Pause::PausedUntil`] with its end as
///   `HH:MM` today, `tomorrow HH:MM`, or `Mon 24 Nov HH:MM` further out;
/// * otherwise [`Pause::Active`].
pub fn pause_state<Tz: TimeZone>(status: &NotificationStatus, now: &DateTime<Tz>) -> Pause
where
    Tz::Offset: std::fmt::Display,
{
    if status.backend != "available" {
        return Pause::Unavailable;
    }
    let Some(until) = status
        .paused_until
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&now.timezone()))
        .filter(|t| t > now)
    else {
        return Pause::Active;
    };
    let days = (until.date_naive() - now.date_naive()).num_days();
    Pause::PausedUntil(match days {
        0 => until.format("%H:%M").to_string(),
        1 => until.format("tomorrow %H:%M").to_string(),
        _ => until.format("%a %-d %b %H:%M").to_string(),
    })
}

#[cfg(test)]
mod tests {
    use chrono::FixedOffset;
    use rstest::rstest;

    use super::*;

    fn status(backend: &str, paused_until: Option<&str>) -> NotificationStatus {
        NotificationStatus {
            backend: backend.into(),
            kind: "desktop".into(),
            error: (backend != "available").then(|| "no notification server".into()),
            paused_until: paused_until.map(str::to_string),
            sent_total: 0,
            suppressed_total: 0,
            grouped_total: 0,
            last: None,
        }
    }

    /// 22:30 in a UTC+1 zone (21:30 UTC).
    fn now() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-24T22:30:00+01:00").unwrap()
    }

    #[rstest]
    #[case::active("available", None, Pause::Active)]
    #[case::within_the_day("available", Some("2026-11-24T22:30:00.000Z"), Pause::PausedUntil("23:30".into()))]
    #[case::tomorrow_morning("available", Some("2026-11-25T07:00:00.000Z"), Pause::PausedUntil("tomorrow 08:00".into()))]
    #[case::later("available", Some("2026-12-01T07:00:00Z"), Pause::PausedUntil("Tue 1 Dec 08:00".into()))]
    #[case::ended("available", Some("2026-11-24T21:29:59Z"), Pause::Active)]
    #[case::garbled("available", Some("soon"), Pause::Active)]
    #[case::no_server("unavailable", None, Pause::Unavailable)]
    #[case::no_server_while_paused("unavailable", Some("2026-11-24T22:30:00Z"), Pause::Unavailable)]
    fn submenu_state_follows_the_status(
        #[case] backend: &str,
        #[case] until: Option<&str>,
        #[case] want: Pause,
    ) {
        assert_eq!(
            pause_state(&status(backend, until), &now()),
            want,
            "times are shown in the user's zone (UTC+1 here), relative to the local day"
        );
    }

    #[test]
    fn menu_items_map_to_commands() {
        assert_eq!(
            PauseCommand::for_menu(MenuId::PauseHour),
            Some(PauseCommand::Pause(PauseRequest {
                minutes: Some(60),
                until_tomorrow: false
            }))
        );
        let Some(PauseCommand::Pause(tomorrow)) = PauseCommand::for_menu(MenuId::PauseTomorrow)
        else {
            panic!("until tomorrow is a pause");
        };
        // The daemon accepts it (exactly one of minutes / until_tomorrow) and
        // it ends on the next day.
        let until = tomorrow.until(now()).unwrap();
        assert_eq!(
            until.to_rfc3339(),
            "2026-11-25T07:00:00+00:00",
            "08:00 tomorrow in UTC+1"
        );
        assert_eq!(
            PauseCommand::for_menu(MenuId::Resume),
            Some(PauseCommand::Resume)
        );
        for other in [
            MenuId::PauseMenu,
            MenuId::Open,
            MenuId::Quit,
            MenuId::Event(1),
        ] {
            assert_eq!(PauseCommand::for_menu(other), None, "{other:?}");
        }
    }

    #[test]
    fn the_shown_state_round_trips_through_the_menu() {
        use crate::menu::{Entry, Recent, TrayMenu};
        let menu = |pause| TrayMenu {
            status_line: "Kite Desk: connected".into(),
            recent: Recent::default(),
            pause,
            autostart: false,
        };
        let paused = pause_state(&status("available", Some("2026-11-24T22:30:00Z")), &now());
        let labels: Vec<String> = menu(paused)
            .entries()
            .into_iter()
            .filter_map(|e| match e {
                Entry::Submenu { label, .. } | Entry::Item { label, .. } => Some(label),
                _ => None,
            })
            .collect();
        assert!(
            labels.contains(&"Notifications paused until 23:30".to_string()),
            "{labels:?}"
        );
    }
}
