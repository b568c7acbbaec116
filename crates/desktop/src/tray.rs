//! What the tray icon shows.
//!
//! The icon has one image per [`TrayStatus`]: the worst connection state,
//! unless a critical event arrived that nobody has looked at yet, which
//! wins (it is the reason to look at the tray at all). The tooltip says
//! both.

/// A connection's state as the daemon reports it in `GET /api/health`
/// (`connections[].state`, see CONTRACTS.md "Connections").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConnectionState {
    // Ordered best to worst: the tray shows the maximum.
    Connected,
    Reconnecting,
    /// The relay no longer has our cursor: events may be missing until the
    /// user acts, so it is shown like offline.
    CursorExpired,
    Offline,
}

impl ConnectionState {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "connected" => Self::Connected,
            "reconnecting" => Self::Reconnecting,
            "cursor_expired" => Self::CursorExpired,
            "offline" => Self::Offline,
            _ => return None,
        })
    }
}

/// One connection, as much of it as the tray needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub name: String,
    pub state: ConnectionState,
}

/// The connections listed in a health document (`{"connections": [...]}`).
/// A health document without the list (a daemon that only has its local
/// ingress) means "connected"; entries with an unknown state are skipped
/// rather than guessed.
pub fn connections_from_health(health: &serde_json::Value) -> Vec<Connection> {
    health
        .get("connections")
        .and_then(|c| c.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|c| {
                    Some(Connection {
                        name: c.get("name")?.as_str()?.to_string(),
                        state: ConnectionState::parse(c.get("state")?.as_str()?)?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The four tray images (`icons/tray-<name>.png`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayStatus {
    Connected,
    Reconnecting,
    Offline,
    UnseenCritical,
}

impl TrayStatus {
    pub fn from_parts(connections: &[Connection], unseen_critical: u32) -> Self {
        if unseen_critical > 0 {
            return Self::UnseenCritical;
        }
        match worst(connections) {
            ConnectionState::Connected => Self::Connected,
            ConnectionState::Reconnecting => Self::Reconnecting,
            ConnectionState::CursorExpired | ConnectionState::Offline => Self::Offline,
        }
    }

    /// The icon's file stem under `icons/`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Reconnecting => "reconnecting",
            Self::Offline => "offline",
            Self::UnseenCritical => "unseen-critical",
        }
    }
}

fn worst(connections: &[Connection]) -> ConnectionState {
    connections
        .iter()
        .map(|c| c.state)
        .max()
        .unwrap_or(ConnectionState::Connected)
}

/// The tooltip (and the menu's status line): the connection summary, and
/// the unseen critical count when there is one.
pub fn status_line(connections: &[Connection], unseen_critical: u32) -> String {
    let not_ok: Vec<String> = connections
        .iter()
        .filter(|c| c.state != ConnectionState::Connected)
        .map(|c| {
            let s = match c.state {
                ConnectionState::Connected => "connected",
                ConnectionState::Reconnecting => "reconnecting",
                ConnectionState::CursorExpired => "cursor expired",
                ConnectionState::Offline => "offline",
            };
            format!("{} {s}", c.name)
        })
        .collect();
    let conn = if not_ok.is_empty() {
        "connected".to_string()
    } else {
        not_ok.join(", ")
    };
    match unseen_critical {
        0 => format!("Kite Desk: {conn}"),
        1 => format!("Kite Desk: {conn}; 1 unseen critical event"),
        n => format!("Kite Desk: {conn}; {n} unseen critical events"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn conns(states: &[&str]) -> Vec<Connection> {
        let health = serde_json::json!({
            "status": "ok",
            "connections": states.iter().enumerate().map(|(i, s)| serde_json::json!({
                "name": format!("c{i}"), "kind": "relay", "url": "ws://x", "state": s, "since": "2026-01-01T00:00:00Z"
            })).collect::<Vec<_>>()
        });
        connections_from_health(&health)
    }

    #[rstest]
    #[case::no_relays(&[], 0, TrayStatus::Connected)]
    #[case::all_up(&["connected", "connected"], 0, TrayStatus::Connected)]
    #[case::one_reconnecting(&["connected", "reconnecting"], 0, TrayStatus::Reconnecting)]
    #[case::offline_beats_reconnecting(&["reconnecting", "offline"], 0, TrayStatus::Offline)]
    #[case::cursor_expired_is_offline(&["cursor_expired"], 0, TrayStatus::Offline)]
    #[case::critical_beats_offline(&["offline"], 2, TrayStatus::UnseenCritical)]
    #[case::critical_when_connected(&["connected"], 1, TrayStatus::UnseenCritical)]
    fn status(#[case] states: &[&str], #[case] unseen: u32, #[case] want: TrayStatus) {
        assert_eq!(TrayStatus::from_parts(&conns(states), unseen), want);
    }

    #[test]
    fn unknown_states_and_missing_list_are_not_guessed() {
        assert!(connections_from_health(&serde_json::json!({"status": "ok"})).is_empty());
        let c = conns(&["connected", "exploded"]);
        assert_eq!(c.len(), 1, "the unknown state is skipped: {c:?}");
    }

    #[test]
    fn status_line_names_what_is_wrong() {
        assert_eq!(
            status_line(&conns(&["connected"]), 0),
            "Kite Desk: connected"
        );
        assert_eq!(
            status_line(&conns(&["connected", "offline"]), 3),
            "Kite Desk: c1 offline; 3 unseen critical events"
        );
    }
}
