//! The ingress pipeline for one webhook: verify the raw bytes, normalize,
//! score. Pure decisions come from `kitedesk-core`; this module supplies
//! the clock, the minted id and the secrets.

use chrono::{DateTime, Utc};
use kitedesk_core::importance::{self, Facts};
use kitedesk_core::manifest::SourceConfig;
use kitedesk_core::providers::{self, Inbound};
use kitedesk_core::verify::{self, Secret};
use kitedesk_core::{Headers, KiteEvent, Manifest, Verification};
use kitedesk_store::NewEvent;

use crate::api::ApiError;

/// Signing secrets per source, read from the environment at start.
#[derive(Debug, Clone, Default)]
pub struct SourceSecrets(Vec<(String, Vec<Secret>)>);

impl SourceSecrets {
    pub fn from_env(config: &crate::config::DaemonConfig) -> Self {
        Self(
            config
                .manifest
                .sources
                .iter()
                .map(|s| {
                    let secrets = s
                        .verify
                        .secret_env
                        .iter()
                        .filter_map(|var| config.env_var(var))
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                        .map(Secret::new)
                        .collect();
                    (s.name.clone(), secrets)
                })
                .collect(),
        )
    }

    pub fn get(&self, source: &str) -> &[Secret] {
        self.0
            .iter()
            .find(|(n, _)| n == source)
            .map(|(_, s)| s.as_slice())
            .unwrap_or(&[])
    }
}

/// Turn one request into an event ready to store, or a client error.
pub fn prepare(
    manifest: &Manifest,
    source: &SourceConfig,
    secrets: &[Secret],
    headers: &Headers,
    body: &[u8],
    now: DateTime<Utc>,
    minted_id: &str,
) -> Result<NewEvent, ApiError> {
    let verification = if secrets.is_empty() {
        if !source.verify.allow_unsigned {
            return Err(ApiError::unavailable(
                "secret_missing",
                format!(
                    "source {:?} requires a signature but no secret is set \
                     (kitedesk secrets set webhook/{}, or environment variable {})",
                    source.name,
                    source.name,
                    source.verify.secret_env.join(" or ")
                ),
            ));
        }
        Verification::unverified("unsigned: no secret configured for this source")
    } else {
        let scheme = source.verify.scheme.unwrap_or(source.kind.default_scheme());
        match verify::verify(
            scheme,
            headers,
            body,
            secrets,
            now,
            source.verify.tolerance(),
        ) {
            Ok(v) => Verification::verified(v.describe(secrets.len())),
            Err(e) => return Err(ApiError::unauthorized(e.code(), e.to_string())),
        }
    };
    let inbound = Inbound {
        source_name: &source.name,
        headers,
        body,
        received: now,
        minted_id,
    };
    let n = providers::normalize(source.kind, &inbound)
        .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    let changed = if n.ty == "com.github.push" {
        providers::github_changed_files(&n.data)
    } else {
        Vec::new()
    };
    let score = importance::score(
        &manifest.scoring,
        &Facts {
            source_name: &source.name,
            ty: &n.ty,
            data: &n.data,
            changed_files: &changed,
        },
    );
    // The stored payload is the body as received, so forwarding replays the
    // exact bytes a signature was computed over. A structured CloudEvent's
    // payload is its `data`.
    let payload = if !providers::is_structured_cloudevent(headers) {
        // normalize() parsed the body as JSON, so it is valid UTF-8.
        String::from_utf8(body.to_vec())
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    } else {
        n.data.to_string()
    };
    Ok(NewEvent {
        payload,
        received: now,
        event: KiteEvent {
            id: n.id,
            source: n.source,
            ty: n.ty,
            time: n.time,
            source_name: source.name.clone(),
            summary: n.summary,
            data: n.data,
            seq: None,
            original_headers: headers.for_storage(),
            verification,
            importance: score.importance,
            importance_reason: score.reason,
        },
    })
}
