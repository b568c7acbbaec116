//! `kitedesk send-test <source> [event]`: the "try it now" path. Posts a
//! realistic sample payload the way the provider would (headers, fresh
//! delivery id, signature with the configured secret) to a running daemon.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use kitedesk_core::ProviderKind;
use kitedesk_core::verify::{self, Secret};
use kitedesk_daemon::config;

use crate::Target;
use crate::client::Client;

/// (provider, event, sample payload); the first per provider is its default.
const SAMPLES: &[(ProviderKind, &str, &str)] = &[
    (
        ProviderKind::Github,
        "push",
        include_str!("../samples/github-push.json"),
    ),
    (
        ProviderKind::Github,
        "workflow_run",
        include_str!("../samples/github-workflow_run.json"),
    ),
    (
        ProviderKind::Github,
        "ping",
        include_str!("../samples/github-ping.json"),
    ),
    (
        ProviderKind::Stripe,
        "payment_intent.payment_failed",
        include_str!("../samples/stripe-payment_intent.payment_failed.json"),
    ),
    (
        ProviderKind::Stripe,
        "payment_intent.succeeded",
        include_str!("../samples/stripe-payment_intent.succeeded.json"),
    ),
    (
        ProviderKind::Kiket,
        "workflow.sla_status",
        include_str!("../samples/kiket-workflow.sla_status.json"),
    ),
    (
        ProviderKind::Kiket,
        "workflow.approval.requested",
        include_str!("../samples/kiket-workflow.approval.requested.json"),
    ),
    (
        ProviderKind::Paperclip,
        "issue.assigned",
        include_str!("../samples/paperclip-issue.assigned.json"),
    ),
    (
        ProviderKind::Generic,
        "event",
        include_str!("../samples/demo.json"),
    ),
    (
        ProviderKind::StandardWebhooks,
        "event",
        include_str!("../samples/demo.json"),
    ),
];

#[derive(Debug, Args)]
pub struct SendTestArgs {
    /// The source to post to (a manifest source name: github, stripe, kiket, paperclip, demo…).
    source: String,
    /// Which sample event (default: the provider's most telling one).
    event: Option<String>,
    /// The manifest the daemon runs with (to find the source and its secret).
    #[arg(long, env = "KITEDESK_MANIFEST")]
    manifest: Option<PathBuf>,
    #[command(flatten)]
    target: Target,
}

pub async fn run(args: SendTestArgs) -> anyhow::Result<()> {
    let manifest = config::load_manifest(args.manifest.as_deref())?;
    let source = manifest.source(&args.source).with_context(|| {
        format!(
            "no source {:?} in the manifest (sources: {})",
            args.source,
            manifest
                .sources
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let kind = source.kind;
    let available: Vec<&str> = SAMPLES
        .iter()
        .filter(|s| s.0 == kind)
        .map(|s| s.1)
        .collect();
    let sample = match &args.event {
        None => SAMPLES.iter().find(|s| s.0 == kind),
        Some(ev) => SAMPLES.iter().find(|s| s.0 == kind && s.1 == ev),
    }
    .with_context(|| {
        format!(
            "no sample {:?} for {} (samples: {})",
            args.event.as_deref().unwrap_or(""),
            kind.as_str(),
            available.join(", ")
        )
    })?;

    let client = Client::locate(&args.target)?.with_context(|| {
        format!(
            "no daemon is running for {}; start one with `kitedesk serve`",
            args.target.data_dir().display()
        )
    })?;
    let now = chrono::Utc::now();
    let delivery = uuid::Uuid::now_v7();
    let mut body: serde_json::Value = serde_json::from_str(sample.2).context("sample payload")?;
    let mut headers: Vec<(String, String)> =
        vec![("Content-Type".into(), "application/json".into())];
    match kind {
        ProviderKind::Github => {
            headers.push(("X-GitHub-Event".into(), sample.1.into()));
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
            headers.push(("X-Kiket-Event".into(), sample.1.into()));
        }
        ProviderKind::Paperclip => {
            headers.push(("x-paperclip-event".into(), sample.1.into()));
            headers.push(("x-paperclip-delivery".into(), delivery.to_string()));
        }
        ProviderKind::Generic | ProviderKind::StandardWebhooks => {}
    }
    let raw = serde_json::to_vec(&body)?;
    let secret = source
        .verify
        .secret_env
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()));
    let signed = match &secret {
        Some(s) => {
            let scheme = source.verify.scheme.unwrap_or(kind.default_scheme());
            for (k, v) in verify::sign(
                scheme,
                &Secret::new(s.trim()),
                &raw,
                now,
                &delivery.to_string(),
            ) {
                headers.push((k.to_string(), v));
            }
            true
        }
        None => false,
    };
    let url = format!("{}/hooks/{}", client.base, source.name);
    let mut req = client.http().post(&url).body(raw);
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let answer: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "{url} answered {}: {} — {}",
            status.as_u16(),
            answer["code"].as_str().unwrap_or("error"),
            answer["message"].as_str().unwrap_or("")
        );
    }
    println!(
        "{} #{} [{}] {}",
        answer["status"].as_str().unwrap_or("?"),
        answer["id"],
        answer["importance"].as_str().unwrap_or("?"),
        answer["summary"].as_str().unwrap_or("")
    );
    if !signed {
        eprintln!(
            "note: sent unsigned; set {} to sign test events",
            source
                .verify
                .secret_env
                .first()
                .map(String::as_str)
                .unwrap_or("a secret for this source")
        );
    }
    Ok(())
}
