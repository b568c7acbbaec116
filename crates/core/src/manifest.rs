//! `kite.json`: the Kite manifest schema (subscriptions, filters, enrichment,
//! scoring, queue, sink) plus Kite Desk's `sources` and `ingress` blocks.
//!
//! Errors name the JSON path and the problem (`sources[1].type: unknown
//! variant "gitlab"…`). `//` line comments are allowed, so the embedded
//! default can explain itself.

use serde::{Deserialize, Deserializer};

use crate::event::Importance;
use crate::glob::Glob;
use crate::providers::ProviderKind;
use crate::verify::{DEFAULT_TOLERANCE_SECS, Scheme};

/// The default configuration compiled into the binary: what `kitedesk serve`
/// uses when no `--manifest` is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("default-kite.json");

/// Largest body an ingress may be configured to accept: GitHub's own cap.
pub const MAX_BODY_LIMIT: usize = 25 * 1024 * 1024;
/// Default ingress body limit, as the Kite SDK and relay use.
pub const DEFAULT_MAX_BODY: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ManifestError {
    /// JSON path of the offending field, e.g. `scoring.rules[0].match.type`.
    pub path: String,
    pub problem: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Manifest {
    pub name: Option<String>,
    pub sources: Vec<SourceConfig>,
    pub subscriptions: Vec<Subscription>,
    pub filters: Filters,
    pub enrichment: Vec<Enrichment>,
    pub scoring: Scoring,
    pub queue: Option<Queue>,
    pub sink: Option<SinkConfig>,
    /// Kite Desk: more named forwarding sinks, `{"name": {sink block}}`.
    pub sinks: std::collections::BTreeMap<String, SinkConfig>,
    /// Kite Desk: which events go to which named sinks. A sink no route
    /// names gets every event.
    pub routes: Vec<Route>,
    /// Kite Desk: the delivery outbox's retry schedule and concurrency.
    pub outbox: OutboxConfig,
    pub ingress: Ingress,
    /// Relays the daemon streams from (Kite protocol links), beside the
    /// local ingress.
    pub relays: Vec<RelayConfig>,
}

/// One relay link: `{"name", "url", "team", "tokenEnv" | "tokenSecret",
/// "scopes", "pingInterval"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RelayConfig {
    pub name: String,
    /// `ws://…/ws`, `wss://…/ws`, or an `http(s)://` base (`/ws` is added).
    pub url: String,
    #[serde(alias = "team_id", alias = "teamId")]
    pub team: String,
    /// Environment variable holding the API token (default
    /// [`DEFAULT_RELAY_TOKEN_ENV`]).
    #[serde(default)]
    pub token_env: Option<String>,
    /// Name of the keychain secret holding the API token (e.g.
    /// `relay/acme`), instead of an environment variable.
    #[serde(default)]
    pub token_secret: Option<String>,
    /// Kite scopes (`*`, `source:NAME`, `type:NAME`); empty means `*`.
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub ping_interval: Option<std::time::Duration>,
}

/// Where the relay token comes from unless a link names another variable.
pub const DEFAULT_RELAY_TOKEN_ENV: &str = "KITEDESK_RELAY_TOKEN";

/// Where a relay link's API token comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayTokenFrom<'a> {
    /// This environment variable.
    Env(&'a str),
    /// The keychain secret of this name.
    Secret(&'a str),
}

impl RelayConfig {
    pub fn token_from(&self) -> RelayTokenFrom<'_> {
        match (&self.token_secret, &self.token_env) {
            (Some(name), _) => RelayTokenFrom::Secret(name),
            (None, Some(var)) => RelayTokenFrom::Env(var),
            (None, None) => RelayTokenFrom::Env(DEFAULT_RELAY_TOKEN_ENV),
        }
    }
}

/// The WebSocket URL for a relay address, as `kite login` derives it:
/// `https://` → `wss://`, `http://` → `ws://`, and `/ws` appended to an
/// http(s) base that lacks it. `None` for any other scheme.
pub fn relay_ws_url(url: &str) -> Option<String> {
    let url = url.trim().trim_end_matches('/');
    if url.starts_with("ws://") || url.starts_with("wss://") {
        return Some(url.to_string());
    }
    let ws = if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        return None;
    };
    Some(if ws.ends_with("/ws") {
        ws
    } else {
        format!("{ws}/ws")
    })
}

/// The name the single Kite `sink` block gets in the outbox and the API.
pub const DEFAULT_SINK_NAME: &str = "sink";

/// Send the events a rule matches to some sinks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(rename = "match", default)]
    pub rule: MatchRule,
    /// Only events at or above this importance.
    pub importance: Option<Importance>,
    /// Names from `sinks` (or `"sink"` for the single `sink` block); one
    /// name may be given as `"sink": "name"`.
    #[serde(default, alias = "sink", deserialize_with = "one_or_many")]
    pub sinks: Vec<String>,
}

/// The outbox's retry schedule: `retry[i]` is the wait after the `i+1`-th
/// failed attempt; after the last one the delivery is dead-lettered.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct OutboxConfig {
    #[serde(deserialize_with = "durations_ms")]
    pub retry: Vec<std::time::Duration>,
    /// Largest fraction added to each delay (0..=1).
    pub jitter: f64,
    /// Deliveries in flight at once, over all sinks.
    pub concurrency: usize,
    /// Deliveries in flight at once to one sink, so a slow sink never takes
    /// every slot.
    pub per_sink_concurrency: usize,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            retry: [1, 4, 16, 64].map(std::time::Duration::from_secs).to_vec(),
            jitter: 0.2,
            concurrency: 16,
            per_sink_concurrency: 4,
        }
    }
}

/// Re-sign forwarded requests with a local secret (read from an environment
/// variable, never written in the manifest).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResignConfig {
    pub scheme: Scheme,
    pub secret_env: String,
}

/// A webhook source the local ingress accepts at `/hooks/{name}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ProviderKind,
    #[serde(default)]
    pub verify: VerifyConfig,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VerifyConfig {
    /// Environment variable(s) holding the signing secret, newest first; a
    /// second entry keeps a rotated-out secret valid during its grace window.
    #[serde(default, deserialize_with = "one_or_many")]
    pub secret_env: Vec<String>,
    /// Override the provider's signature scheme.
    pub scheme: Option<Scheme>,
    pub tolerance_secs: Option<i64>,
    /// Accept requests when no secret is available, marked unverified.
    #[serde(default)]
    pub allow_unsigned: bool,
}

impl VerifyConfig {
    pub fn tolerance(&self) -> i64 {
        self.tolerance_secs.unwrap_or(DEFAULT_TOLERANCE_SECS)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    pub source: Option<String>,
    #[serde(rename = "type")]
    pub ty: Option<String>,
}

/// A Kite match rule: every present field must match.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchRule {
    pub source: Option<Glob>,
    #[serde(rename = "type")]
    pub ty: Option<Glob>,
    pub actor: Option<Glob>,
    #[serde(rename = "ref")]
    pub git_ref: Option<Glob>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filters {
    pub drop: Vec<MatchRule>,
    pub keep_only: Vec<MatchRule>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrichment {
    #[serde(rename = "match", default)]
    pub rule: MatchRule,
    pub run: String,
    #[serde(default, deserialize_with = "opt_duration")]
    pub timeout: Option<std::time::Duration>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scoring {
    pub rules: Vec<ScoringRule>,
    pub dedup: Option<Dedup>,
    pub default_importance: Importance,
}

impl Default for Scoring {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            dedup: None,
            default_importance: Importance::Normal,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringRule {
    #[serde(rename = "match", default)]
    pub rule: MatchRule,
    #[serde(default)]
    pub paths: Vec<Glob>,
    pub importance: Importance,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dedup {
    #[serde(deserialize_with = "duration")]
    pub window: std::time::Duration,
    pub key: Vec<String>,
    #[serde(default)]
    pub strategy: DedupStrategy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DedupStrategy {
    KeepFirst,
    #[default]
    KeepLast,
}

/// History retention (the Kite manifest's `queue` block).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    #[serde(default, deserialize_with = "opt_duration")]
    pub retention: Option<std::time::Duration>,
    #[serde(default, deserialize_with = "opt_count")]
    pub max_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    Stdout {
        #[serde(default)]
        json: bool,
    },
    #[serde(alias = "http")]
    Proxy {
        target: String,
        /// Kite Desk: send the structured CloudEvent instead of the payload.
        #[serde(default)]
        envelope: bool,
        /// Kite Desk: re-sign with a local secret.
        #[serde(default)]
        resign: Option<ResignConfig>,
        /// Kite Desk: request timeout (`"500ms"`, `"10s"`); default 10 s.
        #[serde(default, deserialize_with = "opt_duration_ms")]
        timeout: Option<std::time::Duration>,
    },
    Socket {
        path: String,
    },
    Exec {
        command: String,
        importance: Option<Importance>,
        batch: Option<String>,
        /// Kite Desk: kill the command after this long; default 30 s.
        #[serde(default, deserialize_with = "opt_duration_ms")]
        timeout: Option<std::time::Duration>,
    },
    File {
        path: String,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Ingress {
    pub max_body_bytes: usize,
}

impl Default for Ingress {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY,
        }
    }
}

impl Manifest {
    /// Parse and validate. `//` line comments are allowed.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let text = std::str::from_utf8(bytes).map_err(|e| ManifestError {
            path: "(file)".into(),
            problem: format!("not UTF-8: {e}"),
        })?;
        let clean = strip_line_comments(text);
        let mut de = serde_json::Deserializer::from_str(&clean);
        let manifest: Manifest = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            ManifestError {
                // "." is the document itself; "" is a top-level key named ""
                // (or no key yet): both read best as the root.
                path: if path == "." || path.is_empty() {
                    "(root)".into()
                } else {
                    path
                },
                problem: e.into_inner().to_string(),
            }
        })?;
        manifest.validate()?;
        Ok(manifest)
    }

    pub fn embedded_default() -> Manifest {
        match Manifest::from_json(EMBEDDED_DEFAULT.as_bytes()) {
            Ok(m) => m,
            // A unit test parses the embedded file, so this cannot ship broken.
            Err(e) => unreachable!("embedded default kite.json is invalid: {e}"),
        }
    }

    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let err = |path: String, problem: String| Err(ManifestError { path, problem });
        for (i, s) in self.sources.iter().enumerate() {
            if !valid_slug(&s.name) {
                return err(
                    format!("sources[{i}].name"),
                    format!("{:?} must match ^[a-z0-9][a-z0-9-]{{0,63}}$", s.name),
                );
            }
            if self.sources[..i].iter().any(|o| o.name == s.name) {
                return err(
                    format!("sources[{i}].name"),
                    format!("duplicate source {:?}", s.name),
                );
            }
            if s.verify.secret_env.is_empty() && !s.verify.allow_unsigned {
                return err(
                    format!("sources[{i}].verify"),
                    "set secretEnv (the environment variable with the signing secret) or allowUnsigned: true".into(),
                );
            }
            if s.verify.tolerance_secs.is_some_and(|t| t <= 0) {
                return err(
                    format!("sources[{i}].verify.toleranceSecs"),
                    "must be positive".into(),
                );
            }
        }
        for (i, r) in self.relays.iter().enumerate() {
            if !valid_slug(&r.name) {
                return err(
                    format!("relays[{i}].name"),
                    format!("{:?} must match ^[a-z0-9][a-z0-9-]{{0,63}}$", r.name),
                );
            }
            if r.name == "local" || self.relays[..i].iter().any(|o| o.name == r.name) {
                return err(
                    format!("relays[{i}].name"),
                    format!(
                        "duplicate link name {:?} (\"local\" is the ingress)",
                        r.name
                    ),
                );
            }
            if relay_ws_url(&r.url).is_none() {
                return err(
                    format!("relays[{i}].url"),
                    format!(
                        "{:?} must start with ws://, wss://, http:// or https://",
                        r.url
                    ),
                );
            }
            if r.team.trim().is_empty() {
                return err(format!("relays[{i}].team"), "must not be empty".into());
            }
            if r.token_env.is_some() && r.token_secret.is_some() {
                return err(
                    format!("relays[{i}].tokenSecret"),
                    "give tokenEnv or tokenSecret, not both".into(),
                );
            }
            if r.token_secret.as_ref().is_some_and(|n| n.trim().is_empty()) {
                return err(
                    format!("relays[{i}].tokenSecret"),
                    "must not be empty".into(),
                );
            }
            if r.ping_interval.is_some_and(|d| d.is_zero()) {
                return err(
                    format!("relays[{i}].pingInterval"),
                    "must be positive".into(),
                );
            }
        }
        self.validate_sinks()?;
        if self.ingress.max_body_bytes == 0 || self.ingress.max_body_bytes > MAX_BODY_LIMIT {
            return err(
                "ingress.maxBodyBytes".into(),
                format!("must be between 1 and {MAX_BODY_LIMIT} (25 MB, GitHub's limit)"),
            );
        }
        Ok(())
    }
}

impl Manifest {
    /// Every forwarding sink by name: the single `sink` block (as
    /// [`DEFAULT_SINK_NAME`]) and then `sinks`. `stdout` is not one.
    pub fn forwarding_sinks(&self) -> Vec<(&str, &SinkConfig)> {
        let single = self
            .sink
            .as_ref()
            .filter(|s| !matches!(s, SinkConfig::Stdout { .. }))
            .map(|s| (DEFAULT_SINK_NAME, s));
        single
            .into_iter()
            .chain(self.sinks.iter().map(|(n, s)| (n.as_str(), s)))
            .collect()
    }

    fn validate_sinks(&self) -> Result<(), ManifestError> {
        let err = |path: String, problem: String| Err(ManifestError { path, problem });
        for (name, sink) in &self.sinks {
            if !valid_slug(name) {
                return err(
                    format!("sinks.{name}"),
                    format!("sink name {name:?} must match ^[a-z0-9][a-z0-9-]{{0,63}}$"),
                );
            }
            if name == DEFAULT_SINK_NAME && self.sink.is_some() {
                return err(
                    format!("sinks.{name}"),
                    format!("{name:?} is the name of the single `sink` block; pick another"),
                );
            }
            if matches!(sink, SinkConfig::Stdout { .. }) {
                return err(
                    format!("sinks.{name}.type"),
                    "stdout is not a forwarding sink; use it as the single `sink`".into(),
                );
            }
        }
        let names: Vec<&str> = self.forwarding_sinks().iter().map(|(n, _)| *n).collect();
        for (i, route) in self.routes.iter().enumerate() {
            if route.sinks.is_empty() {
                return err(
                    format!("routes[{i}].sinks"),
                    "name at least one sink".into(),
                );
            }
            for (j, s) in route.sinks.iter().enumerate() {
                if !names.contains(&s.as_str()) {
                    return err(
                        format!("routes[{i}].sinks[{j}]"),
                        format!("no sink named {s:?} (sinks: {})", names.join(", ")),
                    );
                }
            }
        }
        let o = &self.outbox;
        if !(0.0..=1.0).contains(&o.jitter) {
            return err("outbox.jitter".into(), "must be between 0 and 1".into());
        }
        if o.concurrency == 0 || o.per_sink_concurrency == 0 {
            return err(
                "outbox.concurrency".into(),
                "concurrency and perSinkConcurrency must be at least 1".into(),
            );
        }
        Ok(())
    }
}

/// The ingress source slug rule from the Kite relay.
pub fn valid_slug(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Remove `//` comments outside strings, keeping line numbers intact.
fn strip_line_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut escaped = false;
        let mut cut = line.len();
        let bytes = line.as_bytes();
        for (i, &c) in bytes.iter().enumerate() {
            if in_str {
                match c {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_str = false,
                    _ => {}
                }
            } else if c == b'"' {
                in_str = true;
            } else if c == b'/' && bytes.get(i + 1) == Some(&b'/') {
                cut = i;
                break;
            }
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

/// `"30s"`, `"5m"`, `"1h"`, `"7d"` → Duration.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}

/// Like [`parse_duration`], plus `<N>ms` for the outbox and sink timeouts.
pub fn parse_duration_ms(s: &str) -> Option<std::time::Duration> {
    match s.trim().strip_suffix("ms") {
        Some(n) => n.parse().ok().map(std::time::Duration::from_millis),
        None => parse_duration(s),
    }
}

fn duration_ms<'de, D: Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration_ms(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "invalid duration {s:?}: expected <N>ms, <N>s, <N>m, <N>h or <N>d"
        ))
    })
}

fn opt_duration_ms<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<std::time::Duration>, D::Error> {
    duration_ms(d).map(Some)
}

fn durations_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<std::time::Duration>, D::Error> {
    struct Wrapped(std::time::Duration);
    impl<'de> Deserialize<'de> for Wrapped {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            duration_ms(d).map(Wrapped)
        }
    }
    Ok(Vec::<Wrapped>::deserialize(d)?
        .into_iter()
        .map(|w| w.0)
        .collect())
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "invalid duration {s:?}: expected <N>s, <N>m, <N>h or <N>d"
        ))
    })
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<std::time::Duration>, D::Error> {
    duration(d).map(Some)
}

fn opt_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        N(u64),
        S(String),
    }
    match Count::deserialize(d)? {
        Count::N(n) => Ok(Some(n)),
        Count::S(s) => s.replace('_', "").parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!(
                "invalid count {s:?}: expected a number like \"1_000\""
            ))
        }),
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses() {
        let m = Manifest::from_json(EMBEDDED_DEFAULT.as_bytes()).unwrap();
        for name in ["github", "stripe", "paperclip", "kiket"] {
            assert!(m.source(name).is_some(), "default declares {name}");
        }
    }

    #[test]
    fn kite_docs_full_example_parses() {
        let m = Manifest::from_json(
            br#"{
              "name": "my-agent",
              "subscriptions": [{"source": "github", "type": "com.github.push"}],
              "sink": {"type": "exec", "command": "./handle.sh", "importance": "high"},
              "filters": {"drop": [{"actor": "*\\[bot\\]"}], "keep_only": []},
              "enrichment": [{"match": {"source": "github"}, "run": "./files.sh", "timeout": "10s"}],
              "scoring": {"rules": [{"match": {"ref": "refs/heads/main"}, "paths": ["deploy/**"], "importance": "critical", "reason": "prod deploy"}],
                          "dedup": {"window": "5m", "key": ["source", "type"], "strategy": "keep_last"},
                          "default_importance": "normal"},
              "queue": {"retention": "7d", "max_size": "1_500"}
            }"#,
        )
        .unwrap();
        assert_eq!(m.queue.unwrap().max_size, Some(1500));
        assert_eq!(m.scoring.rules[0].importance, Importance::Critical);
    }

    #[test]
    fn errors_name_the_field_path() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"sources": [{"name": "gh", "type": "gitlab", "verify": {"allowUnsigned": true}}]}"#,
                "sources[0].type",
            ),
            (
                r#"{"scoring": {"rules": [{"match": {"type": "com.[x"}, "importance": "high"}]}}"#,
                "scoring.rules[0].match.type",
            ),
            (
                r#"{"scoring": {"default_importance": "urgent"}}"#,
                "scoring.default_importance",
            ),
            (r#"{"queue": {"retention": "7 days"}}"#, "queue.retention"),
            (
                r#"{"sources": [{"name": "Bad Name", "type": "generic", "verify": {"allowUnsigned": true}}]}"#,
                "sources[0].name",
            ),
            (
                r#"{"sources": [{"name": "app", "type": "generic"}]}"#,
                "sources[0].verify",
            ),
            (
                r#"{"sources": [{"name": "app", "type": "generic", "verify": {"secretEnvv": "X"}}]}"#,
                "sources[0].verify.secretEnvv",
            ),
            (
                r#"{"ingress": {"maxBodyBytes": 999999999}}"#,
                "ingress.maxBodyBytes",
            ),
            (r#"{"sink": {"type": "carrier-pigeon"}}"#, "sink"),
        ];
        for (json, path) in cases {
            let e = Manifest::from_json(json.as_bytes()).unwrap_err();
            assert!(
                e.path.starts_with(path),
                "want path {path}, got {e} for {json}"
            );
        }
    }

    #[test]
    fn relays_parse_and_validate() {
        let m = Manifest::from_json(
            br#"{"relays": [{"name": "work", "url": "https://relay.example", "team": "t1", "scopes": ["source:github"]},
                            {"name": "home", "url": "ws://127.0.0.1:7700/ws", "team_id": "t2", "tokenEnv": "HOME_TOKEN", "pingInterval": "5s"},
                            {"name": "kc", "url": "ws://127.0.0.1:7700/ws", "team": "t3", "tokenSecret": "relay/kc"}]}"#,
        )
        .unwrap();
        assert_eq!(
            m.relays[0].token_from(),
            RelayTokenFrom::Env(DEFAULT_RELAY_TOKEN_ENV)
        );
        assert_eq!(m.relays[1].token_from(), RelayTokenFrom::Env("HOME_TOKEN"));
        assert_eq!(m.relays[2].token_from(), RelayTokenFrom::Secret("relay/kc"));
        assert_eq!(m.relays[1].team, "t2");
        assert_eq!(
            relay_ws_url(&m.relays[0].url).unwrap(),
            "wss://relay.example/ws"
        );
        assert_eq!(relay_ws_url("http://h:1/ws/").unwrap(), "ws://h:1/ws");
        assert_eq!(relay_ws_url("ftp://h"), None);
        for (json, path) in [
            (
                r#"{"relays": [{"name": "a", "url": "ftp://x", "team": "t"}]}"#,
                "relays[0].url",
            ),
            (
                r#"{"relays": [{"name": "local", "url": "ws://x", "team": "t"}]}"#,
                "relays[0].name",
            ),
            (
                r#"{"relays": [{"name": "a", "url": "ws://x", "team": " "}]}"#,
                "relays[0].team",
            ),
            (
                r#"{"relays": [{"name": "a", "url": "ws://x"}]}"#,
                "relays[0]",
            ),
            (
                r#"{"relays": [{"name": "a", "url": "ws://x", "team": "t", "tokenEnv": "A", "tokenSecret": "relay/a"}]}"#,
                "relays[0].tokenSecret",
            ),
            (
                r#"{"relays": [{"name": "a", "url": "ws://x", "team": "t", "tokenSecret": " "}]}"#,
                "relays[0].tokenSecret",
            ),
        ] {
            let e = Manifest::from_json(json.as_bytes()).unwrap_err();
            assert!(e.path.starts_with(path), "want {path}, got {e}");
        }
    }

    #[test]
    fn named_sinks_routes_and_outbox_parse_and_validate() {
        let m = Manifest::from_json(
            br#"{
              "sink": {"type": "proxy", "target": "http://127.0.0.1:3000/hooks", "timeout": "500ms",
                       "resign": {"scheme": "github", "secretEnv": "LOCAL_GH"}},
              "sinks": {"audit": {"type": "file", "path": "/tmp/a.ndjson"},
                        "alert": {"type": "exec", "command": "notify.sh", "timeout": "2s"},
                        "app": {"type": "http", "target": "http://127.0.0.1:4000/"}},
              "routes": [{"match": {"type": "com.stripe.*"}, "importance": "high", "sinks": ["alert"]}],
              "outbox": {"retry": ["50ms", "1s"], "jitter": 0, "concurrency": 2, "perSinkConcurrency": 1}
            }"#,
        )
        .unwrap();
        let names: Vec<&str> = m.forwarding_sinks().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["sink", "alert", "app", "audit"],
            "the single sink first"
        );
        match &m.sink {
            Some(SinkConfig::Proxy {
                timeout, resign, ..
            }) => {
                assert_eq!(*timeout, Some(std::time::Duration::from_millis(500)));
                assert_eq!(resign.as_ref().unwrap().secret_env, "LOCAL_GH");
            }
            other => panic!("want a proxy sink, got {other:?}"),
        }
        assert_eq!(
            m.outbox.retry,
            [50, 1000].map(std::time::Duration::from_millis)
        );
        assert_eq!(m.routes[0].importance, Some(Importance::High));

        for (json, path) in [
            (r#"{"routes": [{"sinks": ["nope"]}]}"#, "routes[0].sinks[0]"),
            (
                r#"{"sinks": {"Bad": {"type": "file", "path": "x"}}}"#,
                "sinks.Bad",
            ),
            (r#"{"sinks": {"o": {"type": "stdout"}}}"#, "sinks.o.type"),
            (r#"{"outbox": {"retry": ["1 sec"]}}"#, "outbox.retry"),
            (r#"{"outbox": {"jitter": 2}}"#, "outbox.jitter"),
            (
                r#"{"sinks": {"a": {"type": "proxy", "target": "x", "secret": "s"}}}"#,
                "sinks.a",
            ),
        ] {
            let e = Manifest::from_json(json.as_bytes()).unwrap_err();
            assert!(
                e.path.starts_with(path),
                "want path {path}, got {e} for {json}"
            );
        }
    }

    #[test]
    fn comments_are_stripped_outside_strings() {
        let m = Manifest::from_json(b"{ // a comment\n \"name\": \"a//b\" // trailing\n}").unwrap();
        assert_eq!(m.name.as_deref(), Some("a//b"));
    }
}
