//! `kitedesk send-test <source> [event]`: the "try it now" path. Posts a
//! realistic sample payload the way the provider would (headers, fresh
//! delivery id, signature with the configured secret) to a running daemon.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use kitedesk_core::verify::Secret;
use kitedesk_daemon::{config, samples};

use crate::Target;
use crate::client::Client;

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
    let sample = samples::find(source.kind, args.event.as_deref())?;
    let client = Client::locate(&args.target)?.with_context(|| {
        format!(
            "no daemon is running for {}; start one with `kitedesk serve`",
            args.target.data_dir().display()
        )
    })?;
    let secret = source
        .verify
        .secret_env
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .map(|s| Secret::new(s.trim()));
    let req = samples::request(
        sample,
        source,
        secret.as_ref(),
        chrono::Utc::now(),
        uuid::Uuid::now_v7(),
    )?;
    let (headers, raw, signed) = (req.headers, req.body, req.signed);
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
