//! `kitedesk-bench-gen`: fill a Kite Desk history with N events made from
//! the real payload corpus, the way the daemon would have stored them.
//!
//! ```text
//! kitedesk-bench-gen --data-dir DIR [--events 1000000] [--days 30]
//!                    [--batch 2000] [--fixtures crates/core/tests/fixtures]
//!                    [--words w1,w2,...] [--push FILE]
//!                    [--mix-bytes S] [--max-payload BYTES]
//! ```
//!
//! `--push FILE` stores N copies of one GitHub push body (e.g. the one
//! bench/ingest.sh sends, made by bench/tools/payload.py) instead of the
//! corpus: with `--batch 256` (the daemon writer's MAX_BATCH) that measures
//! the store's own insert rate for the ingest bench's payload, without HTTP.
//!
//! Every event goes through the daemon's pipeline (the same steps as
//! `kitedesk-daemon`'s `ingest::prepare`): the request is built and signed as
//! the provider sends it, verified, normalized with
//! `kitedesk_core::providers::normalize`, scored with the embedded default
//! manifest's scoring, and stored with `Store::insert_batch` (the daemon's
//! writer path, in bigger transactions). The fixtures are cycled; each event
//! gets a distinct id (GitHub/Paperclip: a delivery header; Stripe/Kiket: the
//! payload's own `id`, rewritten in the payload text) and a received time
//! spread evenly over the last `--days` days, so ids and times both grow.
//!
//! By default every fixture is used equally often (the "real mix": about
//! 10 KB of payload per event, 4.9 KB of history on disk). Two options make
//! a smaller history, for 10M events, out of the same whole payloads (none
//! is truncated or edited beyond its ids):
//! * `--mix-bytes S` weights the fixtures: in each cycle a fixture of `s`
//!   bytes appears `ceil(S / s)` times (at least once), so small payloads
//!   (Kiket, Paperclip, small Stripe objects) come up more often than the
//!   25 KB pull requests, and each fixture contributes at least S bytes a
//!   cycle. Appearances are interleaved round by round.
//! * `--max-payload BYTES` leaves out the fixtures larger than BYTES.
//!
//! `bench-gen.json` records the mix (`mix`: the options, the fixtures
//! used with their size and weight, the average payload bytes per event).
//!
//! Writes `DIR/history.db` and `DIR/bench-gen.json` (counts, the share of
//! events containing each `--words` word, a unique event id to search for).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use kitedesk_core::importance::{self, Facts};
use kitedesk_core::verify::{self, DEFAULT_TOLERANCE_SECS};
use kitedesk_core::{
    Headers, Inbound, KiteEvent, Manifest, ProviderKind, Scheme, Secret, Verification, providers,
};
use kitedesk_store::{Inserted, NewEvent, Store};

const GITHUB_SECRET: &str = "bench-github-secret";
const STRIPE_SECRET: &str = "whsec_bench_0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const KIKET_SECRET: &str = "kiket_wh_bench_5b1f0c9e7a2d";

struct Args {
    data_dir: PathBuf,
    events: u64,
    days: i64,
    batch: usize,
    fixtures: PathBuf,
    words: Vec<String>,
    push: Option<PathBuf>,
    mix_bytes: Option<usize>,
    max_payload: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut a = Args {
        data_dir: PathBuf::new(),
        events: 1_000_000,
        days: 30,
        batch: 2000,
        fixtures: root.join("crates/core/tests/fixtures"),
        words: Vec::new(),
        push: None,
        mix_bytes: None,
        max_payload: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--data-dir" => a.data_dir = PathBuf::from(val()?),
            "--events" => {
                a.events = val()?
                    .replace('_', "")
                    .parse()
                    .map_err(|e| format!("--events: {e}"))?
            }
            "--days" => a.days = val()?.parse().map_err(|e| format!("--days: {e}"))?,
            "--batch" => a.batch = val()?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--fixtures" => a.fixtures = PathBuf::from(val()?),
            "--words" => {
                a.words = val()?
                    .split(',')
                    .map(|w| w.trim().to_lowercase())
                    .filter(|w| !w.is_empty())
                    .collect()
            }
            "--push" => a.push = Some(PathBuf::from(val()?)),
            "--mix-bytes" => {
                a.mix_bytes = Some(val()?.parse().map_err(|e| format!("--mix-bytes: {e}"))?)
            }
            "--max-payload" => {
                a.max_payload = Some(val()?.parse().map_err(|e| format!("--max-payload: {e}"))?)
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.data_dir.as_os_str().is_empty() {
        return Err("--data-dir is required".into());
    }
    Ok(a)
}

/// One fixture, ready to be turned into requests.
struct Template {
    dir: &'static str,
    stem: String,
    kind: ProviderKind,
    source_name: &'static str,
    /// The body as the provider sends it (GitHub: minified; Stripe, Kiket,
    /// Paperclip: as committed).
    body: String,
    /// The payload's own `id` (Stripe, Kiket), rewritten per event.
    payload_id: Option<String>,
    event_name: Option<String>,
}

fn load_templates(fixtures: &Path) -> Result<Vec<Template>, String> {
    let dirs: [(&'static str, ProviderKind, &'static str); 4] = [
        ("github", ProviderKind::Github, "github"),
        ("stripe", ProviderKind::Stripe, "stripe"),
        ("kiket", ProviderKind::Kiket, "kiket"),
        ("paperclip", ProviderKind::Paperclip, "paperclip"),
    ];
    let mut out = Vec::new();
    for (dir, kind, source_name) in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures.join(dir))
            .map_err(|e| format!("{}: {e}", fixtures.join(dir).display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let raw =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let json: serde_json::Value =
                serde_json::from_str(&raw).map_err(|e| format!("{}: {e}", path.display()))?;
            let stem = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .trim_end_matches(".json")
                .to_string();
            let body = if kind == ProviderKind::Github {
                serde_json::to_string(&json).map_err(|e| e.to_string())?
            } else {
                raw
            };
            let payload_id = match kind {
                ProviderKind::Stripe | ProviderKind::Kiket => {
                    json.get("id").and_then(|v| v.as_str()).map(str::to_string)
                }
                _ => None,
            };
            let event_name = match kind {
                ProviderKind::Github => stem.split('.').next().map(str::to_string),
                _ => json
                    .get("event")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
            };
            out.push(Template {
                dir,
                stem,
                kind,
                source_name,
                body,
                payload_id,
                event_name,
            });
        }
    }
    if out.is_empty() {
        return Err(format!("no fixtures under {}", fixtures.display()));
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A UUID-shaped id, unique per (tag, n).
fn uuidish(tag: u32, n: u64) -> String {
    format!(
        "{tag:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (n >> 48) & 0xffff,
        (n >> 36) & 0xfff,
        (n >> 24) & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

/// The payload id with its tail replaced by the event number (same length
/// when the id is long enough), e.g. `evt_3PdfH2LkdIwHu7ix1Xy0aB9c` →
/// `evt_3PdfH2LkdIwHu7ix000f4240`.
fn vary_id(id: &str, n: u64) -> String {
    let tail = format!("{n:08x}");
    if id.len() > tail.len() + 4 && id.is_ascii() {
        format!("{}{tail}", &id[..id.len() - tail.len()])
    } else {
        format!("{id}{tail}")
    }
}

/// What the daemon's ingress would store for request `n` made from `t`.
fn make_event(
    t: &Template,
    n: u64,
    received: DateTime<Utc>,
    manifest: &Manifest,
) -> Result<NewEvent, String> {
    let body = match &t.payload_id {
        Some(id) => t
            .body
            .replace(&format!("\"{id}\""), &format!("\"{}\"", vary_id(id, n))),
        None => t.body.clone(),
    };
    let mut headers = Headers::new();
    headers.insert("Content-Type", "application/json");
    let mut secrets = Vec::new();
    let mut scheme = None;
    match t.kind {
        ProviderKind::Github => {
            headers.insert("User-Agent", "GitHub-Hookshot/a1b2c3d");
            headers.insert("X-GitHub-Event", t.event_name.clone().unwrap_or_default());
            headers.insert("X-GitHub-Delivery", uuidish(0x6a7e_0001, n));
            headers.insert("X-GitHub-Hook-ID", "292430182");
            scheme = Some((Scheme::Github, GITHUB_SECRET));
        }
        ProviderKind::Stripe => {
            headers.insert(
                "User-Agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            );
            scheme = Some((Scheme::Stripe, STRIPE_SECRET));
        }
        ProviderKind::Kiket => {
            if let Some(e) = &t.event_name {
                headers.insert("X-Kiket-Event", e.clone());
            }
            let mac = verify::hmac_sha256(KIKET_SECRET.as_bytes(), &[body.as_bytes()]);
            headers.insert("X-Kiket-Signature", format!("sha256={}", hex(&mac)));
            secrets.push(Secret::new(KIKET_SECRET));
        }
        ProviderKind::Paperclip => {
            if let Some(e) = &t.event_name {
                headers.insert("X-Paperclip-Event", e.clone());
            }
            headers.insert(
                "X-Paperclip-Delivery",
                format!("whd_{}", uuidish(0x9a9e_0001, n)),
            );
        }
        _ => {}
    }
    if let Some((s, secret)) = scheme {
        let secret = Secret::new(secret);
        let msg_id = format!("msg_{}", uuidish(0x3e55_0001, n));
        for (name, value) in verify::sign(s, &secret, body.as_bytes(), received, &msg_id) {
            headers.insert(name, value);
        }
        secrets.push(secret);
    }
    // verify → normalize → score, as kitedesk-daemon's ingest::prepare does.
    let verification = if secrets.is_empty() {
        Verification::unverified("unsigned: no secret configured for this source")
    } else {
        let v = verify::verify(
            t.kind.default_scheme(),
            &headers,
            body.as_bytes(),
            &secrets,
            received,
            DEFAULT_TOLERANCE_SECS,
        )
        .map_err(|e| format!("{}/{}: signature does not verify: {e}", t.dir, t.stem))?;
        Verification::verified(v.describe(secrets.len()))
    };
    let mint = || uuidish(0x0190_0000, n);
    let norm = providers::normalize(
        t.kind,
        &Inbound {
            source_name: t.source_name,
            headers: &headers,
            body: body.as_bytes(),
            received,
            mint_id: kitedesk_core::MintId(&mint),
        },
    )
    .map_err(|e| format!("{}/{}: {e}", t.dir, t.stem))?;
    let data = norm.data.doc();
    let changed = if norm.ty == "com.github.push" {
        providers::github_changed_files(&data)
    } else {
        Vec::new()
    };
    let score = importance::score(
        &manifest.scoring,
        &Facts {
            source_name: t.source_name,
            ty: &norm.ty,
            data: &data,
            changed_files: &changed,
        },
    );
    drop(data);
    Ok(NewEvent {
        payload: body,
        received,
        event: KiteEvent {
            id: norm.id,
            source: norm.source,
            ty: norm.ty,
            time: norm.time,
            source_name: t.source_name.to_string(),
            summary: norm.summary,
            data: norm.data,
            seq: None,
            original_headers: headers.for_storage(),
            verification,
            importance: score.importance,
            importance_reason: score.reason,
        },
    })
}

/// FTS5 unicode61 tokens, roughly: lowercase runs of alphanumerics.
fn tokens(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!(
                "usage: kitedesk-bench-gen --data-dir DIR [--events N] [--days D] [--batch B] [--fixtures DIR] [--words a,b] [--push FILE]"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let templates = match &args.push {
        None => load_templates(&args.fixtures)?,
        Some(path) => vec![Template {
            dir: "github",
            stem: "push".into(),
            kind: ProviderKind::Github,
            source_name: "github",
            body: std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
            payload_id: None,
            event_name: Some("push".into()),
        }],
    };
    let mut templates = templates;
    if let Some(max) = args.max_payload {
        templates.retain(|t| t.body.len() <= max);
        if templates.is_empty() {
            return Err(format!("no fixture is at most {max} bytes"));
        }
    }
    // The order events are made in: template indices, one cycle.
    let weights: Vec<usize> = templates
        .iter()
        .map(|t| match args.mix_bytes {
            Some(s) => s.div_ceil(t.body.len().max(1)).max(1),
            None => 1,
        })
        .collect();
    let rounds = weights.iter().copied().max().unwrap_or(1);
    let w = &weights;
    let cycle: Vec<usize> = (0..rounds)
        .flat_map(|r| (0..w.len()).filter(move |&i| w[i] > r))
        .collect();
    let manifest = Manifest::embedded_default();
    std::fs::create_dir_all(&args.data_dir).map_err(|e| e.to_string())?;
    let db = args.data_dir.join("history.db");
    if db.exists() {
        return Err(format!(
            "{} exists: generate into an empty data dir",
            db.display()
        ));
    }
    let total = args.events;
    let now = Utc::now();
    let start = now - Duration::days(args.days);
    let span_ms = (now - start).num_milliseconds();
    let c_len = cycle.len() as u64;
    // Events made from each template (the cycle repeated, then its start).
    let mut per_template = vec![0u64; templates.len()];
    for (k, &i) in cycle.iter().enumerate() {
        per_template[i] += total / c_len + u64::from((k as u64) < total % c_len);
    }
    let mix_avg = templates
        .iter()
        .zip(&per_template)
        .map(|(t, &n)| t.body.len() as f64 * n as f64)
        .sum::<f64>()
        / total.max(1) as f64;
    let mix = serde_json::json!({
        "mix_bytes": args.mix_bytes,
        "max_payload": args.max_payload,
        "cycle_len": c_len,
        "avg_template_bytes": mix_avg.round(),
        "fixtures": templates
            .iter()
            .zip(&weights)
            .map(|(t, w)| format!("{}/{} {}B x{w}", t.dir, t.stem, t.body.len()))
            .collect::<Vec<_>>(),
    });
    eprintln!(
        "gen: {total} events from {} fixtures ({} github, {} stripe, {} kiket, {} paperclip; cycle of {c_len}, {mix_avg:.0} B a payload on average) over {} days into {}",
        templates.len(),
        templates.iter().filter(|t| t.dir == "github").count(),
        templates.iter().filter(|t| t.dir == "stripe").count(),
        templates.iter().filter(|t| t.dir == "kiket").count(),
        templates.iter().filter(|t| t.dir == "paperclip").count(),
        args.days,
        db.display()
    );

    // A producer thread builds batches (verify/normalize/score); this thread
    // inserts them, so the two overlap on two cores.
    let (tx, rx) = mpsc::sync_channel::<Result<Vec<NewEvent>, String>>(4);
    let batch = args.batch.max(1) as u64;
    let producer = std::thread::spawn({
        let manifest = manifest.clone();
        move || {
            let mut n = 0u64;
            while n < total {
                let end = (n + batch).min(total);
                let mut v = Vec::with_capacity((end - n) as usize);
                for i in n..end {
                    let t = &templates[cycle[(i % c_len) as usize]];
                    let received =
                        start + Duration::milliseconds(i as i64 * span_ms / total as i64);
                    match make_event(t, i, received, &manifest) {
                        Ok(e) => v.push(e),
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return templates;
                        }
                    }
                }
                if tx.send(Ok(v)).is_err() {
                    break;
                }
                n = end;
            }
            templates
        }
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let began = Instant::now();
    let mut by_source: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_importance: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_template: HashMap<(String, String), u64> = HashMap::new();
    let (mut inserted, mut duplicates) = (0u64, 0u64);
    // Raw payload bytes of the stored events: the size budget's denominator.
    let mut payload_bytes = 0u64;
    let mut rare: Option<String> = None;
    let mut insert_secs = 0f64;
    rt.block_on(async {
        let store = Store::open(&db).await.map_err(|e| e.to_string())?;
        let mut next_report = 100_000;
        for batch in rx {
            let batch = batch?;
            for e in &batch {
                payload_bytes += e.payload.len() as u64;
                *by_source.entry(e.event.source_name.clone()).or_default() += 1;
                *by_importance
                    .entry(e.event.importance.as_str().to_string())
                    .or_default() += 1;
            }
            // A unique id to search for: the Stripe event nearest the middle.
            if rare.is_none() && inserted >= total / 2 {
                rare = batch
                    .iter()
                    .find(|e| e.event.source_name == "stripe")
                    .map(|e| e.event.id.clone());
            }
            let t0 = Instant::now();
            let res = store
                .insert_batch(&batch)
                .await
                .map_err(|e| e.to_string())?;
            insert_secs += t0.elapsed().as_secs_f64();
            for r in res {
                match r {
                    Inserted::New(_) => inserted += 1,
                    Inserted::Duplicate(_) => duplicates += 1,
                }
            }
            if inserted + duplicates >= next_report {
                let s = began.elapsed().as_secs_f64();
                eprintln!(
                    "gen: {} rows, {:.0} rows/s ({:.0} s)",
                    inserted + duplicates,
                    (inserted + duplicates) as f64 / s,
                    s
                );
                next_report += 100_000;
            }
            // Let the batch drop after counting (it holds parsed payloads).
            drop(batch);
        }
        store.close().await;
        Ok::<(), String>(())
    })?;
    let templates = producer
        .join()
        .map_err(|_| "the producer thread panicked")?;
    let secs = began.elapsed().as_secs_f64();
    for (t, &n) in templates.iter().zip(&per_template) {
        by_template.insert((t.dir.to_string(), t.stem.clone()), n);
    }
    if duplicates > 0 {
        return Err(format!(
            "{duplicates} events collided on (source, id): ids are not distinct"
        ));
    }

    // Share of events whose indexed text (the payload's values) contains
    // each word (by template: events differ from their template only by
    // ids).
    let mut df: HashMap<String, u64> = HashMap::new();
    for t in &templates {
        let n = by_template[&(t.dir.to_string(), t.stem.clone())];
        for tok in tokens(&kitedesk_core::search_text::search_text(&t.body)) {
            *df.entry(tok).or_default() += n;
        }
    }
    let words: BTreeMap<String, f64> = args
        .words
        .iter()
        .map(|w| {
            (
                w.clone(),
                df.get(w).copied().unwrap_or(0) as f64 / total as f64,
            )
        })
        .collect();
    let db_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let report = serde_json::json!({
        "events": inserted,
        "days": args.days,
        "batch": args.batch,
        "seconds": (secs * 10.0).round() / 10.0,
        "rows_per_sec": (inserted as f64 / secs).round(),
        "insert_batch_rows_per_sec": (inserted as f64 / insert_secs).round(),
        "db_bytes": db_bytes,
        "payload_bytes": payload_bytes,
        // Issue 6's budget: history size on disk per event <= 1.5x the raw
        // payload bytes (the file after a checkpoint, search index included).
        "db_bytes_per_payload_byte": (db_bytes as f64 / payload_bytes.max(1) as f64 * 1000.0).round() / 1000.0,
        "by_source": by_source,
        "by_importance": by_importance,
        "word_share": words,
        "rare_event_id": rare,
        "mix": mix,
        "generated_at": now.to_rfc3339(),
    });
    let out = args.data_dir.join("bench-gen.json");
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    );
    eprintln!("gen: wrote {} and {}", db.display(), out.display());
    Ok(())
}
