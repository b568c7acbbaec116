//! The built-in sample webhooks ("send a test event"): one realistic payload
//! per provider event, sent the way the provider would (headers, a fresh
//! delivery id, a signature with the source's secret when one is set).
//!
//! Used by `POST /api/test-events/{source}` (the UI's first-run page) and by
//! `kitedesk send-test`, so both send exactly the same requests.

use chrono::{DateTime, Utc};
use kitedesk_core::ProviderKind;
use kitedesk_core::manifest::SourceConfig;
use kitedesk_core::verify::{self, Secret};

use crate::api::{Api, ApiError, IngestOutcome};

/// One sample: the provider, the event name and the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub kind: ProviderKind,
    pub event: &'static str,
    pub payload: &'static str,
}

/// The catalog; the first sample per provider is its default.
pub const SAMPLES: &[Sample] = &[
    Sample {
        kind: ProviderKind::Github,
        event: "push",
        payload: include_str!("../samples/github-push.json"),
    },
    Sample {
        kind: ProviderKind::Github,
        event: "workflow_run",
        payload: include_str!("../samples/github-workflow_run.json"),
    },
    Sample {
        kind: ProviderKind::Github,
        event: "ping",
        payload: include_str!("../samples/github-ping.json"),
    },
    Sample {
        kind: ProviderKind::Stripe,
        event: "payment_intent.payment_failed",
        payload: include_str!("../samples/stripe-payment_intent.payment_failed.json"),
    },
    Sample {
        kind: ProviderKind::Stripe,
        event: "payment_intent.succeeded",
        payload: include_str!("../samples/stripe-payment_intent.succeeded.json"),
    },
    Sample {
        kind: ProviderKind::Kiket,
        event: "workflow.sla_status",
        payload: include_str!("../samples/kiket-workflow.sla_status.json"),
    },
    Sample {
        kind: ProviderKind::Kiket,
        event: "workflow.approval.requested",
        payload: include_str!("../samples/kiket-workflow.approval.requested.json"),
    },
    Sample {
        kind: ProviderKind::Paperclip,
        event: "issue.assigned",
        payload: include_str!("../samples/paperclip-issue.assigned.json"),
    },
    Sample {
        kind: ProviderKind::Generic,
        event: "event",
        payload: include_str!("../samples/demo.json"),
    },
    Sample {
        kind: ProviderKind::StandardWebhooks,
        event: "event",
        payload: include_str!("../samples/demo.json"),
    },
];

/// Why no sample could be built.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("no sample {event:?} for {kind} (samples: {available})")]
    NoSample {
        kind: &'static str,
        event: String,
        available: String,
    },
    #[error("the built-in sample {kind}/{event} is not valid JSON")]
    BadSample {
        kind: &'static str,
        event: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// The sample for `kind`: `event`, or the provider's default.
pub fn find(kind: ProviderKind, event: Option<&str>) -> Result<&'static Sample, SampleError> {
    SAMPLES
        .iter()
        .find(|s| s.kind == kind && event.is_none_or(|e| e == s.event))
        .ok_or_else(|| SampleError::NoSample {
            kind: kind.as_str(),
            event: event.unwrap_or_default().to_string(),
            available: SAMPLES
                .iter()
                .filter(|s| s.kind == kind)
                .map(|s| s.event)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// A ready-to-send request.
#[derive(Debug, Clone)]
pub struct TestRequest {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether a signature header was added.
    pub signed: bool,
}

/// Build the request the provider would send for `sample` to `source`:
/// fresh ids and timestamps where the provider sets them, signed with
/// `secret` (the source's current secret) when given.
pub fn request(
    sample: &Sample,
    source: &SourceConfig,
    secret: Option<&Secret>,
    now: DateTime<Utc>,
    delivery: uuid::Uuid,
) -> Result<TestRequest, SampleError> {
    let mut body: serde_json::Value =
        serde_json::from_str(sample.payload).map_err(|e| SampleError::BadSample {
            kind: sample.kind.as_str(),
            event: sample.event,
            source: e,
        })?;
    let mut headers: Vec<(String, String)> =
        vec![("Content-Type".into(), "application/json".into())];
    match sample.kind {
        ProviderKind::Github => {
            headers.push(("X-GitHub-Event".into(), sample.event.into()));
            headers.push(("X-GitHub-Delivery".into(), delivery.to_string()));
            headers.push((
                "User-Agent".into(),
                "GitHub-Hookshot/kitedesk-send-test".into(),
            ));
        }
        ProviderKind::Stripe => {
            body["id"] = format!("evt_test_{}", delivery.simple()).into();
            body["created"] = now.timestamp().into();
            headers.push((
                "User-Agent".into(),
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)".into(),
            ));
        }
        ProviderKind::Kiket => {
            body["id"] = delivery.to_string().into();
            body["timestamp"] = now.to_rfc3339().into();
            headers.push(("X-Kiket-Event".into(), sample.event.into()));
        }
        ProviderKind::Paperclip => {
            headers.push(("x-paperclip-event".into(), sample.event.into()));
            headers.push(("x-paperclip-delivery".into(), delivery.to_string()));
        }
        ProviderKind::Generic | ProviderKind::StandardWebhooks => {}
    }
    // Serializing a Value we just parsed cannot fail.
    let body = body.to_string().into_bytes();
    let signed = match secret {
        Some(s) => {
            let scheme = source.verify.scheme.unwrap_or(sample.kind.default_scheme());
            for (k, v) in verify::sign(scheme, s, &body, now, &delivery.to_string()) {
                headers.push((k.to_string(), v));
            }
            true
        }
        None => false,
    };
    Ok(TestRequest {
        headers,
        body,
        signed,
    })
}

impl Api {
    /// Send the built-in sample for `source_name` (`event`, or the
    /// provider's default) through the ingress pipeline, signed with the
    /// source's current secret, exactly as a real webhook would arrive.
    pub async fn send_test_event(
        &self,
        source_name: &str,
        event: Option<&str>,
    ) -> Result<IngestOutcome, ApiError> {
        let source = self.0.config.manifest.source(source_name).ok_or_else(|| {
            ApiError::not_found(
                "unknown_source",
                format!("no source named {source_name:?} is configured"),
            )
        })?;
        let sample = find(source.kind, event).map_err(|e| match e {
            e @ SampleError::NoSample { .. } => {
                ApiError::not_found("unknown_sample", e.to_string())
            }
            e => ApiError::internal(&e),
        })?;
        // Signed with the secret the ingress will verify with (keychain or
        // environment), so the sample takes the real path.
        let now = Utc::now();
        let secrets = self.webhook_secrets(source_name, now)?;
        let req = request(
            sample,
            source,
            secrets.as_slice().first(),
            now,
            uuid::Uuid::now_v7(),
        )
        .map_err(|e| ApiError::internal(&e))?;
        drop(secrets);
        let headers: kitedesk_core::Headers = req.headers.into_iter().collect();
        self.ingest(source_name, &headers, &req.body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_is_json_and_every_provider_has_one() {
        for s in SAMPLES {
            serde_json::from_str::<serde_json::Value>(s.payload)
                .unwrap_or_else(|e| panic!("{}/{}: {e}", s.kind.as_str(), s.event));
        }
        for kind in [
            ProviderKind::Github,
            ProviderKind::Stripe,
            ProviderKind::Paperclip,
            ProviderKind::Kiket,
            ProviderKind::StandardWebhooks,
            ProviderKind::Generic,
        ] {
            assert!(
                find(kind, None).is_ok(),
                "{} needs a default sample for the first-run page",
                kind.as_str()
            );
        }
        assert!(
            matches!(
                find(ProviderKind::Github, Some("nope")),
                Err(SampleError::NoSample { .. })
            ),
            "an unknown event names the available ones"
        );
    }
}
