//! Kite protocol v1 frames as the relay reads and writes them, with the
//! `kite-protocol` crate's types ([`ClientMessage`], [`ServerMessage`]).
//!
//! [`parse_client_frame`] is the one parser of untrusted WebSocket input
//! (fuzzed in `fuzz/`); [`event_frame`] writes an `event` frame around an
//! already-serialized CloudEvent without re-parsing it, byte-compatible with
//! serializing `ServerMessage::Event` (a test checks that).

pub use kite_protocol::{
    ClientMessage, ERR_AUTH_FAILED, ERR_INVALID_MESSAGE, ERR_QUOTA_BLOCKED, ERR_RATE_LIMITED,
    ERR_SLOW_CONSUMER, ServerMessage,
};

/// `provider` in `quota_snapshot` and `billing_block` frames.
pub const PROVIDER: &str = "kitedesk";

/// The protocol version this relay speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Why a client frame was refused (each is answered with 4002).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge { len: usize, limit: usize },
    #[error("binary frames are not part of the Kite protocol; send JSON text")]
    Binary,
    #[error("frame is not JSON: {0}")]
    NotJson(String),
    #[error("not a Kite client message: {0}")]
    Invalid(String),
}

/// Parse one text frame from a client.
pub fn parse_client_frame(text: &str, max_len: usize) -> Result<ClientMessage, FrameError> {
    if text.len() > max_len {
        return Err(FrameError::TooLarge {
            len: text.len(),
            limit: max_len,
        });
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| FrameError::NotJson(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| FrameError::Invalid(e.to_string()))
}

/// `{"type":"event","seq":N,"event":<json>}`: the field order serde uses
/// for `ServerMessage::Event`.
pub fn event_frame(seq: u64, event_json: &str) -> String {
    let mut s = String::with_capacity(event_json.len() + 40);
    s.push_str("{\"type\":\"event\",\"seq\":");
    s.push_str(&seq.to_string());
    s.push_str(",\"event\":");
    s.push_str(event_json);
    s.push('}');
    s
}

/// A server frame as JSON text.
pub fn server_frame(msg: &ServerMessage) -> String {
    // Serializing these enums (strings, numbers, JSON values) cannot fail.
    serde_json::to_string(msg).unwrap_or_else(|e| {
        format!(
            "{{\"type\":\"error\",\"code\":{ERR_INVALID_MESSAGE},\"message\":\"cannot encode frame: {e}\"}}"
        )
    })
}

pub fn error_frame(code: u32, message: impl Into<String>) -> String {
    server_frame(&ServerMessage::Error {
        code,
        message: message.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reports_each_problem() {
        assert!(matches!(
            parse_client_frame(r#"{"type":"ack","seq":3}"#, 100),
            Ok(ClientMessage::Ack { seq: 3 })
        ));
        assert!(matches!(
            parse_client_frame("not json", 100),
            Err(FrameError::NotJson(_))
        ));
        assert!(matches!(
            parse_client_frame(r#"{"type":"hello"}"#, 100),
            Err(FrameError::Invalid(_))
        ));
        assert!(matches!(
            parse_client_frame(&"x".repeat(101), 100),
            Err(FrameError::TooLarge {
                len: 101,
                limit: 100
            })
        ));
    }
}
