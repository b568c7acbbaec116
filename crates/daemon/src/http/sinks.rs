//! `POST /api/sinks` and `DELETE /api/sinks/{name}`: HTTP sinks added at
//! runtime (the Settings page). `GET /api/sinks` (in `http::outbox`) lists
//! them beside the manifest's, with `origin: "api"` vs `"manifest"`.
//!
//! * Only HTTP (proxy) sinks: an exec sink runs a command, and an API that
//!   configures commands would be a remote-exec hole for anyone holding the
//!   token. Exec, file and socket sinks come from `kite.json` only.
//! * An added sink is a **forward target**: events reach it when forwarded
//!   (`POST /api/forward {target: {sink}}`, the event page, a filter). The
//!   automatic routing of new events stays the manifest's (`sink`, `routes`).
//! * Kept in the store's `settings` table under [`ADDED_KEY`] (name, URL,
//!   timeout, envelope, re-signing scheme and the *name* of its keychain
//!   secret) and loaded again at the next start. A re-signing secret is
//!   only ever a reference to the keychain (`resign.secret_name`, default
//!   `sink/<name>`); a `resign.secret` value in the request goes straight to
//!   the keychain under that name: never to SQLite, never echoed.
//! * A manifest sink of the same name wins (409 on add, 409 on delete).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use chrono::Utc;
use kitedesk_core::event::format_time;
use kitedesk_core::verify::{Scheme, Secret};
use kitedesk_sinks::{HttpSink, HttpSinkConfig, Resign, Sink};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::{Api, ApiError};
use crate::outbox::{AddedSink, FORWARD_SINK, SinkInfo};
use crate::secrets::SecretValue;

/// The `settings` key holding the sinks added through the API.
pub(crate) const ADDED_KEY: &str = "sinks.added";
/// Longest timeout an added sink may ask for.
const MAX_TIMEOUT_MS: u64 = 300_000;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/sinks", post(add))
        .route("/sinks/{name}", delete(remove))
}

/// A sink added through the API, as stored (no secret value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredSink {
    pub name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resign: Option<StoredResign>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub envelope: bool,
    pub added_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredResign {
    pub scheme: Scheme,
    /// The keychain secret's name.
    pub secret_name: String,
}

/// A checked `POST /api/sinks` body.
#[derive(Debug)]
struct NewSink {
    name: String,
    url: String,
    resign: Option<NewResign>,
    timeout_ms: Option<u64>,
    envelope: bool,
}

#[derive(Debug)]
struct NewResign {
    scheme: Scheme,
    secret_name: String,
    /// A value to store in the keychain under `secret_name` first.
    secret: Option<SecretValue>,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("invalid_sink", format!("{field}: {message}"))
}

const FIELDS: &str = "name, url, kind?, resign?, timeout_ms?, envelope?";

/// The checks `POST /api/sinks` applies to its body, for the fuzz target
/// (`fuzz/fuzz_targets/sink_settings.rs`): the sink's name when accepted.
pub fn check_new_sink(bytes: &[u8]) -> Result<String, ApiError> {
    parse(bytes).map(|s| s.name)
}

/// Read and check a body. Error messages name the field and never echo a
/// value from under `resign` (it may carry a secret).
fn parse(bytes: &[u8]) -> Result<NewSink, ApiError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!(
                "invalid JSON (line {}, column {}); expected {{{FIELDS}}}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let Value::Object(o) = v else {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("expected a JSON object {{{FIELDS}}}"),
        ));
    };
    for k in o.keys() {
        match k.as_str() {
            "name" | "url" | "kind" | "resign" | "timeout_ms" | "envelope" => {}
            "headers" => {
                return Err(invalid(
                    "headers",
                    "not supported: an HTTP sink sends the provider's original headers \
                     (and the new signature when it re-signs)",
                ));
            }
            "command" | "path" => {
                return Err(invalid(
                    k,
                    "exec, file and socket sinks come only from kite.json (an API that \
                     configures commands would be a remote-exec hole)",
                ));
            }
            other => {
                return Err(invalid(
                    &short(other),
                    format!("unknown field; expected {FIELDS}"),
                ));
            }
        }
    }
    let name = string(&o, "name")?
        .ok_or_else(|| invalid("name", "missing"))?
        .trim()
        .to_string();
    if !kitedesk_core::manifest::valid_slug(&name) {
        return Err(invalid(
            "name",
            format!("{:?} must match ^[a-z0-9][a-z0-9-]{{0,63}}$", short(&name)),
        ));
    }
    if name == FORWARD_SINK {
        return Err(invalid(
            "name",
            format!("{FORWARD_SINK:?} is reserved for forwards to a URL"),
        ));
    }
    match string(&o, "kind")?.as_deref() {
        None | Some("http") => {}
        Some("exec" | "file" | "socket" | "stdout") => {
            return Err(invalid(
                "kind",
                "only http sinks can be added here; exec, file and socket sinks come \
                 only from kite.json (an API that configures commands would be a \
                 remote-exec hole)",
            ));
        }
        Some(_) => return Err(invalid("kind", "expected \"http\"")),
    }
    let url = string(&o, "url")?
        .ok_or_else(|| invalid("url", "missing"))?
        .trim()
        .to_string();
    check_url(&url)?;
    let timeout_ms = match o.get("timeout_ms") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => Some(ms),
            _ => {
                return Err(invalid(
                    "timeout_ms",
                    format!("expected milliseconds, 1 to {MAX_TIMEOUT_MS}"),
                ));
            }
        },
    };
    let envelope = match o.get("envelope") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("envelope", "expected true or false")),
    };
    let resign = match o.get("resign") {
        None | Some(Value::Null) => None,
        Some(Value::Object(r)) => Some(parse_resign(r, &name)?),
        Some(_) => return Err(invalid("resign", "expected an object or null")),
    };
    Ok(NewSink {
        name,
        url,
        resign,
        timeout_ms,
        envelope,
    })
}

fn parse_resign(r: &Map<String, Value>, name: &str) -> Result<NewResign, ApiError> {
    for k in r.keys() {
        if !matches!(k.as_str(), "scheme" | "secret_name" | "secret") {
            return Err(invalid(
                &format!("resign.{}", short(k)),
                "unknown field; expected scheme, secret_name?, secret?",
            ));
        }
    }
    let scheme = match r.get("scheme") {
        Some(Value::String(s)) => serde_json::from_value::<Scheme>(Value::String(s.clone()))
            .map_err(|_| {
                invalid(
                    "resign.scheme",
                    "expected github, stripe, kiket or standard-webhooks",
                )
            })?,
        None | Some(Value::Null) => return Err(invalid("resign.scheme", "missing")),
        Some(_) => {
            return Err(invalid(
                "resign.scheme",
                "expected github, stripe, kiket or standard-webhooks",
            ));
        }
    };
    let secret_name = match r.get("secret_name") {
        None | Some(Value::Null) => format!("sink/{name}"),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(_) => return Err(invalid("resign.secret_name", "expected a secret name")),
    };
    kitedesk_secrets::check_name(&secret_name).map_err(|e| invalid("resign.secret_name", e))?;
    if secret_name.starts_with("webhook/") {
        // Those verify incoming webhooks; sharing one would tie a
        // provider's secret to an outgoing target.
        return Err(invalid(
            "resign.secret_name",
            "names under webhook/ are incoming-webhook secrets; use another (default sink/<name>)",
        ));
    }
    let secret = match r.get("secret") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(SecretValue(Secret::new(s.clone()))),
        Some(_) => return Err(invalid("resign.secret", "expected a non-empty string")),
    };
    Ok(NewResign {
        scheme,
        secret_name,
        secret,
    })
}

/// A string field, absent or null as `None`.
fn string(o: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(field, "expected a string")),
    }
}

/// A name from the request, shortened for an error message.
fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

/// An absolute http(s) URL, without credentials (the URL is listed by
/// `GET /api/sinks`).
fn check_url(url: &str) -> Result<(), ApiError> {
    if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "url",
            "has spaces or control characters, or is too long",
        ));
    }
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    else {
        return Err(invalid("url", "must be an http:// or https:// URL"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(invalid("url", "must not carry credentials"));
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err(invalid("url", "has no host"));
    }
    // The sink's own check (the URL parser it sends with).
    HttpSink::new(HttpSinkConfig::new(url))
        .map(drop)
        .map_err(|e| invalid("url", e))
}

impl StoredSink {
    fn info(&self, error: Option<String>) -> SinkInfo {
        SinkInfo {
            name: self.name.clone(),
            kind: "http".into(),
            target: self.url.clone(),
            origin: "api".into(),
            resign_scheme: self.resign.as_ref().map(|r| r.scheme),
            secret_name: self.resign.as_ref().map(|r| r.secret_name.clone()),
            timeout_ms: self.timeout_ms,
            envelope: Some(self.envelope),
            added_at: Some(self.added_at.clone()),
            error,
        }
    }

    fn build(&self, secret: Option<Secret>) -> Result<Sink, String> {
        let mut c = HttpSinkConfig::new(self.url.clone());
        c.envelope = self.envelope;
        if let Some(ms) = self.timeout_ms {
            c.timeout = Duration::from_millis(ms);
        }
        c.resign = match (&self.resign, secret) {
            (None, _) => None,
            (Some(r), Some(secret)) => Some(Resign {
                scheme: r.scheme,
                secret,
            }),
            (Some(r), None) => {
                return Err(format!(
                    "its re-signing secret {:?} is not in the keychain",
                    r.secret_name
                ));
            }
        };
        HttpSink::new(c).map(Sink::Http).map_err(|e| e.to_string())
    }
}

impl Api {
    async fn stored_sinks(&self) -> Result<Vec<StoredSink>, ApiError> {
        match self.store().setting(ADDED_KEY).await? {
            None => Ok(Vec::new()),
            Some(v) => serde_json::from_value(v).map_err(|e| ApiError::internal(&e)),
        }
    }

    async fn save_sinks(&self, sinks: &[StoredSink]) -> Result<(), ApiError> {
        let v = serde_json::to_value(sinks).map_err(|e| ApiError::internal(&e))?;
        Ok(self.store().put_setting(ADDED_KEY, &v).await?)
    }

    /// Build an added sink, reading its re-signing secret from the keychain;
    /// a sink that cannot be built is kept, unusable, with the reason.
    async fn load_sink(&self, s: &StoredSink) -> AddedSink {
        let secret = match &s.resign {
            None => Ok(None),
            Some(r) => match self.read_secret(&r.secret_name).await {
                Ok(found) => Ok(found),
                Err(e) => Err(format!(
                    "cannot read its re-signing secret {:?}: {}",
                    r.secret_name, e.message
                )),
            },
        };
        let built = secret.and_then(|secret| s.build(secret));
        match built {
            Ok(sink) => AddedSink {
                info: s.info(None),
                sink: Some(sink),
            },
            Err(why) => AddedSink {
                info: s.info(Some(why)),
                sink: None,
            },
        }
    }

    /// Load the sinks added through the API (daemon start). Never fails the
    /// start: a sink that cannot be built is listed with its error.
    pub(crate) async fn load_added_sinks(&self) -> anyhow::Result<()> {
        let stored = self
            .stored_sinks()
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the added sinks: {}", e.message))?;
        for s in stored {
            if self.0.outbox.is_manifest_sink(&s.name) {
                tracing::warn!(sink = %s.name, "an added sink has the name of a kite.json sink; the kite.json one is used");
                continue;
            }
            let added = self.load_sink(&s).await;
            if let Some(e) = &added.info.error {
                tracing::error!(sink = %s.name, "added sink unusable: {e}");
            }
            self.0.outbox.put_added(added);
        }
        Ok(())
    }

    /// Rebuild an added sink that re-signs, with its secret as the keychain
    /// has it now (rotated or set since). No-op for other sinks.
    pub(crate) async fn refresh_added_sink(&self, name: &str) -> Result<(), ApiError> {
        let resigns = self
            .0
            .outbox
            .added()
            .iter()
            .any(|a| a.info.name == name && a.info.secret_name.is_some());
        if !resigns {
            return Ok(());
        }
        let stored = self.stored_sinks().await?;
        if let Some(s) = stored.iter().find(|s| s.name == name) {
            let added = self.load_sink(s).await;
            self.0.outbox.put_added(added);
        }
        Ok(())
    }

    async fn add_sink(&self, req: NewSink) -> Result<SinkInfo, ApiError> {
        let _one_at_a_time = self.0.outbox.editing().lock().await;
        if self.0.outbox.is_manifest_sink(&req.name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "sink_configured",
                format!("kite.json configures a sink named {:?}", req.name),
            ));
        }
        let mut stored = self.stored_sinks().await?;
        if stored.iter().any(|s| s.name == req.name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "sink_exists",
                format!("a sink named {:?} exists; remove it first", req.name),
            ));
        }
        let sink = StoredSink {
            name: req.name,
            url: req.url,
            resign: req.resign.as_ref().map(|r| StoredResign {
                scheme: r.scheme,
                secret_name: r.secret_name.clone(),
            }),
            timeout_ms: req.timeout_ms,
            envelope: req.envelope,
            added_at: format_time(Utc::now()),
        };
        if let Some(r) = req.resign {
            if let Some(value) = r.secret {
                self.store_relay_token(&r.secret_name, value).await?;
            }
            if self.read_secret(&r.secret_name).await?.is_none() {
                return Err(invalid(
                    "resign.secret_name",
                    format!(
                        "the keychain has no secret {:?}; add it under Secrets or give resign.secret",
                        r.secret_name
                    ),
                ));
            }
        }
        let added = self.load_sink(&sink).await;
        if let Some(e) = added.info.error {
            return Err(invalid("url", e));
        }
        stored.push(sink.clone());
        self.save_sinks(&stored).await?;
        let info = added.info.clone();
        self.0.outbox.put_added(added);
        tracing::info!(sink = %sink.name, target = %sink.url, "sink added");
        Ok(info)
    }

    async fn remove_sink(&self, name: &str) -> Result<(), ApiError> {
        let _one_at_a_time = self.0.outbox.editing().lock().await;
        if self.0.outbox.is_manifest_sink(name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "sink_configured",
                format!(
                    "the sink {name:?} comes from kite.json (read-only here); \
                     remove it there and restart the daemon"
                ),
            ));
        }
        let mut stored = self.stored_sinks().await?;
        let Some(i) = stored.iter().position(|s| s.name == name) else {
            return Err(ApiError::not_found(
                "sink_not_found",
                format!("no sink named {name:?}"),
            ));
        };
        let gone = stored.remove(i);
        self.save_sinks(&stored).await?;
        self.0.outbox.remove_added(name);
        // Its own secret (the default name) goes with it; a shared one stays.
        if let Some(r) = &gone.resign
            && r.secret_name == format!("sink/{name}")
        {
            match self.delete_secret(&r.secret_name).await {
                Err(e) if e.status != 404 => {
                    tracing::warn!(sink = %name, error = %e.message, "cannot delete the sink's secret");
                }
                _ => {}
            }
        }
        tracing::info!(sink = %name, "sink removed");
        Ok(())
    }
}

async fn add(State(api): State<Api>, bytes: Bytes) -> Result<Response, ApiError> {
    let info = api.add_sink(parse(&bytes)?).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

async fn remove(State(api): State<Api>, Path(name): Path<String>) -> Result<Response, ApiError> {
    api.remove_sink(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> ApiError {
        parse(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn bodies_are_checked_field_by_field() {
        let ok = parse(
            br#"{"name":"ci","url":"https://ci.example/hook","timeout_ms":2500,
                "resign":{"scheme":"standard-webhooks"}}"#,
        )
        .unwrap();
        assert_eq!(ok.name, "ci");
        assert_eq!(ok.timeout_ms, Some(2500));
        let r = ok.resign.unwrap();
        assert_eq!(r.scheme, Scheme::StandardWebhooks);
        assert_eq!(r.secret_name, "sink/ci");
        for (body, field) in [
            (r#"{"url":"http://x"}"#, "name:"),
            (r#"{"name":"Bad Name","url":"http://x"}"#, "name:"),
            (r#"{"name":"forward","url":"http://x"}"#, "name:"),
            (r#"{"name":"a","url":"ftp://x"}"#, "url:"),
            (r#"{"name":"a","url":"http://u:p@x/"}"#, "url:"),
            (r#"{"name":"a","url":3}"#, "url:"),
            (
                r#"{"name":"a","url":"http://x","timeout_ms":0}"#,
                "timeout_ms:",
            ),
            (
                r#"{"name":"a","url":"http://x","timeout_ms":"5"}"#,
                "timeout_ms:",
            ),
            (r#"{"name":"a","url":"http://x","kind":"exec"}"#, "kind:"),
            (r#"{"name":"a","command":"rm -rf /"}"#, "command:"),
            (
                r#"{"name":"a","url":"http://x","headers":{"a":"b"}}"#,
                "headers:",
            ),
            (
                r#"{"name":"a","url":"http://x","resign":{"scheme":"md5"}}"#,
                "resign.scheme:",
            ),
            (
                r#"{"name":"a","url":"http://x","resign":{}}"#,
                "resign.scheme:",
            ),
            (
                r#"{"name":"a","url":"http://x","resign":{"scheme":"github","secret_name":"webhook/github"}}"#,
                "resign.secret_name:",
            ),
            (
                r#"{"name":"a","url":"http://x","resign":{"scheme":"github","key":"x"}}"#,
                "resign.key:",
            ),
            (r#"{"name":"a","url":"http://x","colour":"red"}"#, "colour:"),
        ] {
            let e = err(body);
            assert_eq!(e.code, "invalid_sink", "{body}");
            assert!(e.message.starts_with(field), "{body}: {}", e.message);
        }
        assert_eq!(err("[1]").code, "invalid_body");
        assert_eq!(err("{").code, "invalid_body");
    }

    #[test]
    fn a_secret_in_a_bad_body_is_not_echoed() {
        let e = err(r#"{"name":"a","url":"http://x","resign":{"scheme":"github","secret":7}}"#);
        assert!(e.message.starts_with("resign.secret:"), "{}", e.message);
        let e =
            err(r#"{"name":"a","url":"http://x","resign":{"scheme":"nope","secret":"hunter2"}"#);
        assert!(!e.message.contains("hunter2"), "{}", e.message);
        let e =
            err(r#"{"name":"a","url":"http://x","resign":{"scheme":"nope","secret":"hunter2"}}"#);
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }
}
