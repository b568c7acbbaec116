//! Shared test plumbing: fixtures on disk, the headers each provider sends,
//! and the ingest pipeline as the daemon runs it (verify → normalize →
//! score → `KiteEvent`).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use kitedesk_core::importance::{self, Facts};
use kitedesk_core::verify::{self, DEFAULT_TOLERANCE_SECS};
use kitedesk_core::{
    Headers, Inbound, KiteEvent, Manifest, NormalizeError, ProviderKind, Scheme, Secret,
    Verification, providers,
};

/// The secret GitHub's own docs use for their known-answer example.
pub const GITHUB_SECRET: &str = "It's a Secret to Everybody";
pub const STRIPE_SECRET: &str = "whsec_test_0a1b2c3d4e5f60718293a4b5c6d7e8f9";
pub const KIKET_SECRET: &str = "kiket_wh_5b1f0c9e7a2d4e68";
/// The Standard Webhooks spec's example secret.
pub const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn read_fixture(rel: &str) -> Vec<u8> {
    let path = fixtures_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `pull_request.closed-merged.derived.json` → `pull_request.closed-merged.derived`.
pub fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("fixture file names are UTF-8");
    name.strip_suffix(".json").unwrap_or(name).to_string()
}

/// Which provider a fixture directory holds, and the source name it is
/// configured under.
pub fn provider_of(dir: &str) -> (ProviderKind, &'static str) {
    match dir {
        "github" => (ProviderKind::Github, "github"),
        "stripe" => (ProviderKind::Stripe, "stripe"),
        "paperclip" => (ProviderKind::Paperclip, "paperclip"),
        "kiket" => (ProviderKind::Kiket, "kiket"),
        "standard-webhooks" => (ProviderKind::StandardWebhooks, "billing-app"),
        "generic" => (ProviderKind::Generic, "demo"),
        other => panic!("no provider for fixture directory {other:?}"),
    }
}

/// One request as it reaches the local ingress: what the provider sent plus
/// the hook token the Kite relay (or a local tunnel) adds.
#[derive(Debug)]
pub struct Request {
    pub kind: ProviderKind,
    pub source_name: &'static str,
    pub headers: Headers,
    pub body: Vec<u8>,
    /// The secrets configured for the source, newest first.
    pub secrets: Vec<Secret>,
    /// Header values that change on every delivery (delivery ids,
    /// timestamps, signatures over them), for snapshot redaction.
    pub volatile: Vec<(String, String)>,
}

/// Build the request `dir/<file>` would arrive as, signed as the provider
/// signs it at `now`.
pub fn request_for(dir: &str, path: &Path, now: DateTime<Utc>) -> Request {
    let (kind, source_name) = provider_of(dir);
    let body = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_slice(&body).expect("fixtures are JSON");
    let stem = stem(path);
    let mut headers = Headers::new();
    let mut volatile = Vec::new();
    let mut secrets = Vec::new();
    let is_cloudevent = stem.ends_with(".ce");
    headers.insert(
        "Content-Type",
        if is_cloudevent {
            "application/cloudevents+json; charset=utf-8"
        } else {
            "application/json"
        },
    );
    // What the relay or a tunnel adds in front of us; must never be stored.
    headers.insert("Authorization", "Bearer khk_test_hook_token");
    // (scheme, secret) to sign with once the provider's own headers are set.
    let mut sign_with = None;
    match kind {
        ProviderKind::Github => {
            let event = stem.split('.').next().expect("split yields one item");
            let delivery = uuid::Uuid::new_v4().to_string();
            headers.insert("User-Agent", "GitHub-Hookshot/a1b2c3d");
            headers.insert("X-GitHub-Event", event);
            headers.insert("X-GitHub-Delivery", delivery.clone());
            headers.insert("X-GitHub-Hook-ID", "292430182");
            volatile.push(("X-GitHub-Delivery".into(), delivery));
            sign_with = Some((Scheme::Github, GITHUB_SECRET));
        }
        ProviderKind::Stripe => {
            headers.insert(
                "User-Agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            );
            sign_with = Some((Scheme::Stripe, STRIPE_SECRET));
        }
        ProviderKind::Kiket => {
            let event = json["event"]
                .as_str()
                .expect("kiket fixtures name their event");
            headers.insert("X-Kiket-Event", event);
            // Kiket documents the `sha256=<hex>` form; sign() emits bare hex,
            // so sign by hand here and let the signature tests cover both.
            let mac = verify::hmac_sha256(KIKET_SECRET.as_bytes(), &[&body]);
            headers.insert("X-Kiket-Signature", format!("sha256={}", hex::encode(mac)));
            secrets.push(Secret::new(KIKET_SECRET));
        }
        ProviderKind::Paperclip => {
            if let Some(event) = json["event"].as_str() {
                headers.insert("X-Paperclip-Event", event);
            }
        }
        ProviderKind::StandardWebhooks => {
            sign_with = Some((Scheme::StandardWebhooks, STANDARD_SECRET));
        }
        ProviderKind::Generic => {}
    }
    if let Some((scheme, secret)) = sign_with {
        let secret = Secret::new(secret);
        let msg_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        for (name, value) in verify::sign(scheme, &secret, &body, now, &msg_id) {
            // Signatures over a timestamp or a message id change per delivery.
            if scheme != Scheme::Github {
                volatile.push((name.to_string(), value.clone()));
            }
            headers.insert(name, value);
        }
        secrets.push(secret);
    }
    Request {
        kind,
        source_name,
        headers,
        body,
        secrets,
        volatile,
    }
}

/// What the daemon would produce for `req`, received at `received` with
/// `minted_id` ready for sources that supply no id.
pub fn ingest(
    req: &Request,
    received: DateTime<Utc>,
    minted_id: &str,
) -> Result<KiteEvent, NormalizeError> {
    let verification = if req.secrets.is_empty() {
        Verification::unverified("no secret configured")
    } else {
        match verify::verify(
            req.kind.default_scheme(),
            &req.headers,
            &req.body,
            &req.secrets,
            received,
            DEFAULT_TOLERANCE_SECS,
        ) {
            Ok(v) => Verification::verified(v.describe(req.secrets.len())),
            Err(e) => Verification::unverified(e.to_string()),
        }
    };
    let n = providers::normalize(
        req.kind,
        &Inbound {
            source_name: req.source_name,
            headers: &req.headers,
            body: &req.body,
            received,
            mint_id: kitedesk_core::MintId(&|| minted_id.to_string()),
        },
    )?;
    let data = n.data.doc();
    let changed = providers::github_changed_files(&data);
    let scoring = Manifest::embedded_default().scoring;
    let score = importance::score(
        &scoring,
        &Facts {
            source_name: req.source_name,
            ty: &n.ty,
            data: &data,
            changed_files: &changed,
        },
    );
    drop(data);
    Ok(KiteEvent {
        id: n.id,
        source: n.source,
        ty: n.ty,
        time: n.time,
        source_name: req.source_name.to_string(),
        summary: n.summary,
        data: n.data,
        seq: None,
        original_headers: req.headers.for_storage(),
        verification,
        importance: score.importance,
        importance_reason: score.reason,
    })
}
