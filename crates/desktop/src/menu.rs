//! The tray menu: its ids, declared once ([`MenuId`]), and its contents
//! ([`TrayMenu::entries`]) as plain data the Tauri shell turns into menu
//! items. Rebuilt whenever an event arrives or a setting changes.

use std::borrow::Cow;
use std::collections::VecDeque;

use kitedesk_core::Importance;
use kitedesk_daemon::api::EventSummary;

/// How many events the menu lists.
pub const RECENT: usize = 5;

/// Longest event label, in characters: menus do not wrap, and a payload's
/// summary can be as long as the sender likes.
const LABEL_MAX: usize = 60;

/// Every menu item's id. The string form is what the menu toolkit carries
/// and hands back on a click.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MenuId {
    /// The disabled first line: connection status.
    Status,
    /// Placeholder when the history is empty.
    NoEvents,
    /// One of the latest events (local history id): opens it in the window.
    Event(i64),
    PauseMenu,
    PauseHour,
    PauseTomorrow,
    Resume,
    Open,
    Autostart,
    Quit,
}

impl MenuId {
    const EVENT_PREFIX: &'static str = "event:";

    pub fn as_str(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::Status => "status",
            Self::NoEvents => "no-events",
            Self::Event(id) => return Cow::Owned(format!("{}{id}", Self::EVENT_PREFIX)),
            Self::PauseMenu => "pause",
            Self::PauseHour => "pause-1h",
            Self::PauseTomorrow => "pause-tomorrow",
            Self::Resume => "resume",
            Self::Open => "open",
            Self::Autostart => "autostart",
            Self::Quit => "quit",
        })
    }

    pub fn parse(s: &str) -> Option<Self> {
        if let Some(n) = s.strip_prefix(Self::EVENT_PREFIX) {
            return n.parse().ok().map(Self::Event);
        }
        Some(match s {
            "status" => Self::Status,
            "no-events" => Self::NoEvents,
            "pause" => Self::PauseMenu,
            "pause-1h" => Self::PauseHour,
            "pause-tomorrow" => Self::PauseTomorrow,
            "resume" => Self::Resume,
            "open" => Self::Open,
            "autostart" => Self::Autostart,
            "quit" => Self::Quit,
            _ => return None,
        })
    }
}

/// An event as the menu shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentEvent {
    pub id: i64,
    pub summary: String,
    pub source: String,
    pub importance: Importance,
}

impl From<&EventSummary> for RecentEvent {
    fn from(e: &EventSummary) -> Self {
        Self {
            id: e.id,
            summary: e.summary.clone(),
            source: e.source_name.clone(),
            importance: e.importance,
        }
    }
}

impl RecentEvent {
    /// `"[critical] summary — source"` (without the source when the summary
    /// already starts with it, as generic summaries do), cut to
    /// [`LABEL_MAX`] characters, with `&` doubled (the menu toolkit reads a
    /// single `&` as a mnemonic mark).
    pub fn label(&self) -> String {
        let marker = match self.importance {
            Importance::Critical => "[critical] ",
            Importance::High => "[high] ",
            Importance::Normal | Importance::Low => "",
        };
        let one_line: String = self
            .summary
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let summary = one_line.trim();
        let text = if summary.starts_with(&format!("{}:", self.source)) {
            format!("{marker}{summary}")
        } else {
            format!("{marker}{summary} — {}", self.source)
        };
        let text = if text.chars().count() > LABEL_MAX {
            let cut: String = text.chars().take(LABEL_MAX - 1).collect();
            format!("{}…", cut.trim_end())
        } else {
            text
        };
        text.replace('&', "&&")
    }
}

/// The latest [`RECENT`] events, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recent(VecDeque<RecentEvent>);

impl Recent {
    /// From a history page (newest first, as the API lists them).
    pub fn from_newest_first(events: impl IntoIterator<Item = RecentEvent>) -> Self {
        Self(events.into_iter().take(RECENT).collect())
    }

    /// A newly stored event. Events can be committed out of order by
    /// concurrent batches, so it goes where its id puts it; returns whether
    /// the list changed.
    pub fn insert(&mut self, e: RecentEvent) -> bool {
        if self.0.iter().any(|r| r.id == e.id) {
            return false;
        }
        let pos = self
            .0
            .iter()
            .position(|r| r.id < e.id)
            .unwrap_or(self.0.len());
        if pos >= RECENT {
            return false;
        }
        self.0.insert(pos, e);
        self.0.truncate(RECENT);
        true
    }

    pub fn iter(&self) -> impl Iterator<Item = &RecentEvent> {
        self.0.iter()
    }
}

/// Where notifications stand, for the pause submenu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pause {
    /// No notification server answers (or notifications are off): the
    /// submenu is disabled.
    Unavailable,
    Active,
    /// Paused until this (already formatted) time.
    PausedUntil(String),
}

/// One menu entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Item {
        id: MenuId,
        label: String,
        enabled: bool,
    },
    Check {
        id: MenuId,
        label: String,
        checked: bool,
    },
    Submenu {
        id: MenuId,
        label: String,
        items: Vec<Entry>,
    },
    Separator,
}

fn item(id: MenuId, label: impl Into<String>, enabled: bool) -> Entry {
    Entry::Item {
        id,
        label: label.into(),
        enabled,
    }
}

/// Everything the menu shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayMenu {
    pub status_line: String,
    pub recent: Recent,
    pub pause: Pause,
    pub autostart: bool,
}

impl TrayMenu {
    pub fn entries(&self) -> Vec<Entry> {
        let mut out = vec![item(MenuId::Status, self.status_line.clone(), false)];
        out.push(Entry::Separator);
        if self.recent.0.is_empty() {
            out.push(item(MenuId::NoEvents, "No events yet", false));
        }
        out.extend(
            self.recent
                .iter()
                .map(|e| item(MenuId::Event(e.id), e.label(), true)),
        );
        out.push(Entry::Separator);
        out.push(match &self.pause {
            Pause::Unavailable => item(
                MenuId::PauseMenu,
                "Pause notifications (unavailable)",
                false,
            ),
            Pause::Active => Entry::Submenu {
                id: MenuId::PauseMenu,
                label: "Pause notifications".into(),
                items: vec![
                    item(MenuId::PauseHour, "For 1 hour", true),
                    item(MenuId::PauseTomorrow, "Until tomorrow", true),
                ],
            },
            Pause::PausedUntil(until) => Entry::Submenu {
                id: MenuId::PauseMenu,
                label: format!("Notifications paused until {until}"),
                items: vec![
                    item(MenuId::Resume, "Resume notifications", true),
                    item(MenuId::PauseHour, "Pause for 1 hour from now", true),
                    item(MenuId::PauseTomorrow, "Pause until tomorrow", true),
                ],
            },
        });
        out.push(item(MenuId::Open, "Open Kite Desk", true));
        out.push(Entry::Check {
            id: MenuId::Autostart,
            label: "Start at login".into(),
            checked: self.autostart,
        });
        out.push(Entry::Separator);
        out.push(item(MenuId::Quit, "Quit", true));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64, summary: &str, importance: Importance) -> RecentEvent {
        RecentEvent {
            id,
            summary: summary.into(),
            source: "github".into(),
            importance,
        }
    }

    #[test]
    fn ids_round_trip() {
        for id in [
            MenuId::Status,
            MenuId::NoEvents,
            MenuId::Event(42),
            MenuId::Event(-1),
            MenuId::PauseMenu,
            MenuId::PauseHour,
            MenuId::PauseTomorrow,
            MenuId::Resume,
            MenuId::Open,
            MenuId::Autostart,
            MenuId::Quit,
        ] {
            assert_eq!(MenuId::parse(&id.as_str()), Some(id), "{id:?}");
        }
        assert_eq!(MenuId::parse("event:x"), None);
        assert_eq!(MenuId::parse("nope"), None);
    }

    #[test]
    fn recent_keeps_the_newest_five_by_id() {
        let mut r = Recent::default();
        for id in 1..=7 {
            assert!(r.insert(ev(id, "s", Importance::Normal)));
        }
        assert_eq!(r.iter().map(|e| e.id).collect::<Vec<_>>(), [7, 6, 5, 4, 3]);
        assert!(!r.insert(ev(7, "s", Importance::Normal)), "duplicate");
        assert!(
            !r.insert(ev(2, "s", Importance::Normal)),
            "older than all five"
        );
        // A batch committed out of order still lands in id order.
        let mut r =
            Recent::from_newest_first([ev(10, "a", Importance::Low), ev(8, "b", Importance::Low)]);
        assert!(r.insert(ev(9, "c", Importance::Low)));
        assert_eq!(r.iter().map(|e| e.id).collect::<Vec<_>>(), [10, 9, 8]);
    }

    #[test]
    fn labels_are_one_short_line_without_mnemonics() {
        let l = ev(1, "Payment failed\nfor A&B", Importance::Critical).label();
        assert_eq!(l, "[critical] Payment failed for A&&B — github");
        let long = ev(2, &"x".repeat(200), Importance::Normal).label();
        assert_eq!(long.chars().count(), LABEL_MAX, "{long}");
        assert!(long.ends_with('…'));
        let generic = RecentEvent {
            source: "demo".into(),
            ..ev(3, "demo: deploy done", Importance::Low)
        };
        assert_eq!(
            generic.label(),
            "demo: deploy done",
            "the source is not repeated"
        );
    }

    #[test]
    fn menu_lists_events_and_the_fixed_items() {
        let m = TrayMenu {
            status_line: "Kite Desk: connected".into(),
            recent: Recent::from_newest_first([ev(3, "push to main", Importance::Normal)]),
            pause: Pause::Active,
            autostart: true,
        };
        let e = m.entries();
        assert!(e.contains(&item(MenuId::Event(3), "push to main — github", true)));
        assert!(!e.iter().any(|x| matches!(
            x,
            Entry::Item {
                id: MenuId::NoEvents,
                ..
            }
        )));
        assert!(e.contains(&Entry::Check {
            id: MenuId::Autostart,
            label: "Start at login".into(),
            checked: true
        }));
        assert_eq!(
            e.last(),
            Some(&item(MenuId::Quit, "Quit", true)),
            "Quit is last"
        );
        let empty = TrayMenu {
            recent: Recent::default(),
            pause: Pause::PausedUntil("09:00".into()),
            ..m
        };
        let e = empty.entries();
        assert!(e.contains(&item(MenuId::NoEvents, "No events yet", false)));
        let Some(Entry::Submenu { items, .. }) =
            e.iter().find(|x| matches!(x, Entry::Submenu { .. }))
        else {
            panic!("paused: the pause submenu is there: {e:?}");
        };
        assert!(items.contains(&item(MenuId::Resume, "Resume notifications", true)));
    }
}
