//! What is forwarded: one event with its original bytes and headers.

use bytes::Bytes;
use kitedesk_core::event::derive_source_name;
use kitedesk_core::{Headers, KiteEvent};

use crate::attempt::Failure;

/// One event to forward.
///
/// `payload` is the body exactly as the provider sent it (the store keeps it
/// as received): the HTTP sink forwards these bytes, not a re-serialization
/// of `event.data`, so a local app's own signature check still passes.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: KiteEvent,
    pub payload: Bytes,
    /// The provider's original request headers (credentials already removed
    /// by the ingress).
    pub headers: Headers,
    /// The relay team the event arrived through, when known.
    pub team_id: Option<String>,
}

impl Delivery {
    /// A delivery with the event's own original headers and the team id
    /// found in its `source` (`…/hooks/{team}/{source}`), if any.
    pub fn new(event: KiteEvent, payload: impl Into<Bytes>) -> Self {
        let team_id = team_id_from_source(&event.source).map(str::to_string);
        Self {
            headers: event.original_headers.clone(),
            event,
            payload: payload.into(),
            team_id,
        }
    }

    pub fn with_team_id(mut self, team_id: impl Into<String>) -> Self {
        self.team_id = Some(team_id.into());
        self
    }

    /// The source name derived from the event type as the Kite CLI does it
    /// (`com.github.push` → `github`, otherwise `unknown`): what
    /// `x-kite-source` and `KITE_SOURCE` carry, and what `kite.json` source
    /// globs match.
    pub fn source_name(&self) -> &str {
        derive_source_name(&self.event.ty)
    }

    /// The structured-mode CloudEvent JSON, on one line (no raw newline can
    /// appear: JSON escapes them inside strings).
    pub fn cloudevent_json(&self) -> Result<String, Failure> {
        let ce = self
            .event
            .to_cloudevent()
            .map_err(|e| Failure::Envelope(e.to_string()))?;
        serde_json::to_string(&ce).map_err(|e| Failure::Envelope(e.to_string()))
    }
}

/// The team id in a Kite relay source URI: the segment after `/hooks/` when
/// the path is `/hooks/{team}/{source}` (spec §2.4). Anything else has none.
pub fn team_id_from_source(source: &str) -> Option<&str> {
    // Only the path counts: drop the scheme and authority when present, and
    // any query or fragment.
    let after_scheme = source.split_once("://").map_or(source, |(_, rest)| rest);
    let path = match source.contains("://") {
        true => after_scheme.find('/').map_or("", |i| &after_scheme[i..]),
        false => after_scheme,
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    while let Some(seg) = segments.next() {
        if seg == "hooks" {
            let team = segments.next()?;
            let _source = segments.next()?;
            return Some(team);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_id_comes_only_from_a_hooks_team_source_path() {
        assert_eq!(
            team_id_from_source("https://getkite.sh/hooks/team_abc/github"),
            Some("team_abc")
        );
        assert_eq!(
            team_id_from_source("https://getkite.sh/hooks/team_abc/github?x=1"),
            Some("team_abc")
        );
        assert_eq!(
            team_id_from_source("https://getkite.sh/hooks/github"),
            None,
            "one segment after /hooks/ is a source, not a team"
        );
        assert_eq!(team_id_from_source("https://github.com/acme/api"), None);
        assert_eq!(
            team_id_from_source("https://hooks/team/src"),
            None,
            "a host named hooks is not a path segment"
        );
        assert_eq!(team_id_from_source("/hooks/t1/stripe"), Some("t1"));
    }
}
