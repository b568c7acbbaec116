//! What a link reports about itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The connection state, as the API's `Connection.state` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Connected,
    /// Trying to (re)connect; `since` is when the link was lost.
    Reconnecting,
    /// Stopped, or refused by the relay (bad token, quota): the link retries
    /// slowly, but needs attention.
    Offline,
    /// Connected, but the relay had dropped events this client never got
    /// (its cursor fell out of retention): see [`Status::gap`].
    CursorExpired,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Connected => "connected",
            State::Reconnecting => "reconnecting",
            State::Offline => "offline",
            State::CursorExpired => "cursor_expired",
        }
    }
}

/// Seqs the relay no longer had when this client asked for them (both ends
/// included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub from: u64,
    pub to: u64,
}

/// A link's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub state: State,
    /// When `state` last changed.
    pub since: DateTime<Utc>,
    /// The last seq the consumer committed (and the link acked or will ack).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// Events missed because the cursor expired (kept once seen, so the gap
    /// stays visible after the link moves on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap: Option<Gap>,
    /// Why the link is not connected, or the relay's last complaint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Status {
    pub fn new(state: State) -> Self {
        Self {
            state,
            since: Utc::now(),
            last_seq: None,
            gap: None,
            error: None,
        }
    }
}
