//! Kite Desk's pure core: the event model and everything decided about an
//! event without I/O or a clock.
//!
//! * [`event`]: [`KiteEvent`], a CloudEvent v1.0 with Kite's extensions
//!   (`kitesummary`, `kiteseq`, `kiteoriginalheaders`) and ours
//!   (`kiteverified`, `kiteimportance`, …), round-tripping through the
//!   official `cloudevents-sdk` types.
//! * [`providers`]: adapters for GitHub, Stripe, Paperclip, Kiket, Standard
//!   Webhooks and generic sources, with one-line summaries.
//! * [`verify`]: signature schemes checked on raw bytes in constant time.
//! * [`importance`]: built-in defaults and `kite.json` scoring rules.
//! * [`ingest`]: one request → one event (verify, normalize, score), shared
//!   by the daemon's ingress and the relay's.
//! * [`payload`]: an event's JSON payload as text, read through a borrowed
//!   [`Doc`] or parsed on demand into a `serde_json::Value`.
//! * [`manifest`]: the `kite.json` types, with errors naming the JSON path.
//!
//! Time is always passed in; ids that must be minted are passed in too.

pub mod event;
pub mod glob;
pub mod headers;
pub mod importance;
pub mod ingest;
pub mod manifest;
pub mod payload;
pub mod providers;
pub mod search_text;
pub mod static_path;
pub mod stored_text;
pub mod verify;

pub use event::{Importance, KiteEvent, Verification};
pub use headers::Headers;
pub use manifest::Manifest;
pub use payload::{Doc, Payload};
pub use providers::{Inbound, MintId, NormalizeError, Normalized, ProviderKind};
pub use verify::{Scheme, Secret, VerifyError};
