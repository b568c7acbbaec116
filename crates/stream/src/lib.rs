//! Kite Desk's Kite-protocol WebSocket client: one *link* to one relay
//! (ours, `kitedesk relay`, or a Kite relay).
//!
//! * [`Link::spawn`] starts a link task for a [`LinkConfig`] (URL, team,
//!   token, scopes, a stable client id, ping interval, backoff). It returns a
//!   [`LinkHandle`] and a channel of [`Incoming`] events.
//! * The consumer (the daemon's pipeline) takes each [`Incoming`], commits it
//!   to the history, and reports it with [`Committer::commit`]. The link acks
//!   a seq to the relay **only** after that report: this crate never writes
//!   to a store, and nothing is acked that is not durable. Redeliveries after
//!   a reconnect are the consumer's to dedup (the history keys events by
//!   `(source, id)`).
//! * The link sends a WebSocket ping every `ping_interval` and declares the
//!   connection dead when nothing at all arrived for twice that long
//!   (a suspended laptop, a changed network, a silently dropped NAT entry).
//!   It then reconnects with exponential backoff and jitter ([`Backoff`]).
//! * [`Status`] says how the link is doing: `connected`, `reconnecting`
//!   since T, `offline` (stopped, or refused: bad token, quota), or
//!   `cursor_expired` with the [`Gap`] of seqs the relay no longer had.
//!
//! The wire types are the `kite-protocol` crate's.

mod backoff;
mod link;
mod status;

pub use backoff::Backoff;
pub use link::{Committer, Incoming, Link, LinkConfig, LinkHandle, Token, event_frame};
pub use status::{Gap, State, Status};

/// Kite protocol version this client speaks.
pub const PROTOCOL_VERSION: u32 = 1;
