//! The ingress pipeline for one webhook: verify the raw bytes, normalize,
//! score. Pure decisions come from `kitedesk_core::ingest`; this module
//! supplies the clock, the id minting and the secrets.

use chrono::{DateTime, Utc};
use kitedesk_core::ingest::{self, IngestError};
use kitedesk_core::manifest::SourceConfig;
use kitedesk_core::verify::Secret;
use kitedesk_core::{Headers, Manifest, MintId};
use kitedesk_store::NewEvent;

use crate::api::ApiError;

pub use kitedesk_core::ingest::SourceSecrets;

/// Signing secrets per source, read from the daemon's environment at start.
pub fn secrets_from_env(config: &crate::config::DaemonConfig) -> SourceSecrets {
    SourceSecrets::from_env(&config.manifest.sources, |var| config.env_var(var))
}

/// Turn one request into an event ready to store, or a client error. The
/// decisions are `kitedesk_core::ingest::prepare`, shared with the relay.
pub fn prepare(
    manifest: &Manifest,
    source: &SourceConfig,
    secrets: &[Secret],
    headers: &Headers,
    body: &[u8],
    now: DateTime<Utc>,
    mint_id: MintId<'_>,
) -> Result<NewEvent, ApiError> {
    match ingest::prepare(
        &manifest.scoring,
        source,
        secrets,
        headers,
        body,
        now,
        mint_id,
    ) {
        Ok(p) => Ok(NewEvent {
            payload: p.payload,
            received: now,
            event: p.event,
        }),
        Err(e @ IngestError::SecretMissing { .. }) => Err(ApiError::unavailable(
            e.code(),
            format!(
                "{e}; set one with `kitedesk secrets set webhook/{}`",
                source.name
            ),
        )),
        Err(e @ IngestError::Verify(_)) => Err(ApiError::unauthorized(e.code(), e.to_string())),
        Err(e @ IngestError::Normalize(_)) => Err(ApiError::bad_request(e.code(), e.to_string())),
    }
}
