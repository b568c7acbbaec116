//! Secrets: the service functions behind `/api/secrets`, and the webhook
//! secrets the local ingress verifies with.
//!
//! Values live in the OS keychain ([`kitedesk_secrets::Keychain`]); the
//! history database keeps metadata only. A rotated-out value stays in the
//! keychain as `<name>#previous` until its grace window ends.
//!
//! The ingress must not make a D-Bus round trip per request, so
//! [`SecretsState`] caches the webhook secrets (`webhook/<source>`) in
//! memory as redacting [`Secret`]s, loaded at start and replaced on every
//! set, rotate and delete. A source with a keychain secret never falls back
//! to its environment variable: if the keychain cannot be read, its webhooks
//! get 503 until it can.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use kitedesk_core::event::format_time;
use kitedesk_secrets::{
    Keychain, KeychainError, Secret, SecretKind, SecretServiceKeychain, check_name, check_value,
    fingerprint, previous_name,
};
use kitedesk_store::SecretRecord;
use serde::{Deserialize, Serialize};

use crate::api::{Api, ApiError};
use crate::config::DaemonConfig;
use crate::ingest::SourceSecrets;

/// A keychain call that takes longer is abandoned (a locked keychain may
/// wait for an unlock prompt nobody answers).
const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The default grace window of a rotation (the "default 24 h").
pub const DEFAULT_GRACE_HOURS: u32 = 24;
/// Longest grace window accepted.
const MAX_GRACE_SECS: u64 = 30 * 24 * 3600;
/// Secrets older than this are reported in health unless
/// `KITEDESK_SECRET_MAX_AGE_DAYS` says otherwise.
pub const DEFAULT_MAX_AGE_DAYS: u32 = 90;
/// `last_used` is written at most this often per secret.
const LAST_USED_EVERY_MS: i64 = 60_000;
/// A health probe result is reused this long (the UI polls health).
const PROBE_TTL: Duration = Duration::from_secs(10);
/// How often expired grace windows are cleaned up and unreadable webhook
/// secrets are retried.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Secret metadata as the API shows it. Never a value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SecretMeta {
    pub name: String,
    pub kind: SecretKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    /// First 8 hex digits of the value's SHA-256.
    pub fingerprint: String,
    /// The previous value verifies until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_valid_until: Option<String>,
    /// Days since the current value was set.
    pub age_days: i64,
}

impl SecretMeta {
    fn from_record(r: &SecretRecord, now: DateTime<Utc>) -> Self {
        Self {
            name: r.name.clone(),
            kind: SecretKind::parse(&r.kind).unwrap_or(SecretKind::ApiToken),
            source: r.source.clone(),
            created_at: format_time(r.created),
            rotated_at: r.rotated.map(format_time),
            last_used_at: r.last_used.map(format_time),
            fingerprint: r.fingerprint.clone(),
            previous_valid_until: r
                .previous_valid_until
                .filter(|_| r.previous_valid_at(now))
                .map(format_time),
            age_days: (now - r.value_since()).num_days(),
        }
    }
}

/// `GET /api/secrets`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SecretsList {
    pub secrets: Vec<SecretMeta>,
    pub health: SecretsHealth,
}

/// The keychain's state and what needs attention.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SecretsHealth {
    /// `secret-service`, `unavailable` (or `memory` in tests).
    pub backend: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Sources that require a signature but have no secret (keychain or
    /// environment).
    pub missing: Vec<String>,
    /// Secrets whose value is older than `max_age_days`.
    pub old: Vec<String>,
    pub max_age_days: u32,
}

/// A value in a request body. Deserializes from a JSON string; `Debug`
/// redacts.
#[derive(Debug, Clone)]
pub struct SecretValue(pub Secret);

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretValue(Secret::new(s)))
    }
}

/// `POST /api/secrets`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSecret {
    pub name: String,
    /// Default: from the name (`webhook/…`, `relay/…`, else `api_token`).
    #[serde(default)]
    pub kind: Option<SecretKind>,
    /// For webhook secrets, default: the part after `webhook/`.
    #[serde(default)]
    pub source: Option<String>,
    pub value: SecretValue,
}

/// `POST /api/secrets/{name}/rotate`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    pub value: SecretValue,
    /// How long the previous value keeps verifying (default 24; 0 = not at all).
    #[serde(default)]
    pub grace_hours: Option<u32>,
    /// The same in seconds; wins over `grace_hours` (short windows for tests
    /// and scripted rotations).
    #[serde(default)]
    pub grace_secs: Option<u64>,
}

/// `POST /api/secrets/{name}/reveal`: the only answer that holds a value.
#[derive(Clone, Serialize, Deserialize)]
pub struct Revealed {
    pub value: String,
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Revealed(***)")
    }
}

/// One source's webhook secret from the keychain, as the ingress uses it.
#[derive(Debug)]
pub(crate) struct Cached {
    name: String,
    state: CachedState,
    /// Unix ms of the last `last_used` write.
    last_marked_ms: AtomicI64,
}

#[derive(Debug)]
pub(crate) enum CachedState {
    Ready {
        current: Arc<[Secret]>,
        /// Current first, then the previous value.
        with_previous: Arc<[Secret]>,
        previous_until: Option<DateTime<Utc>>,
    },
    /// Metadata says the secret exists but its value cannot be read now.
    Unreadable(String),
}

/// The secrets a webhook for one source is verified with.
#[derive(Debug)]
pub(crate) enum WebhookSecrets<'a> {
    Keychain {
        secrets: Arc<[Secret]>,
        cached: Arc<Cached>,
    },
    Env(&'a [Secret]),
}

impl WebhookSecrets<'_> {
    pub(crate) fn as_slice(&self) -> &[Secret] {
        match self {
            WebhookSecrets::Keychain { secrets, .. } => secrets,
            WebhookSecrets::Env(s) => s,
        }
    }
}

/// Keychain handle, webhook-secret cache and environment secrets.
#[derive(Debug)]
pub(crate) struct SecretsState {
    keychain: Arc<dyn Keychain>,
    env: SourceSecrets,
    /// By source name.
    cache: RwLock<HashMap<String, Arc<Cached>>>,
    max_age_days: u32,
    /// Set, rotate, delete and the sweep run one at a time: each is several
    /// keychain and database steps.
    mutate: tokio::sync::Mutex<()>,
    probe: Mutex<Option<(Instant, Option<KeychainError>)>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SecretsState {
    pub(crate) fn new(config: &DaemonConfig) -> Self {
        let max_age_days = match config.env_var("KITEDESK_SECRET_MAX_AGE_DAYS") {
            None => DEFAULT_MAX_AGE_DAYS,
            Some(v) => v.trim().parse().unwrap_or_else(|_| {
                tracing::warn!(
                    value = %v,
                    "KITEDESK_SECRET_MAX_AGE_DAYS is not a number of days; using {DEFAULT_MAX_AGE_DAYS}"
                );
                DEFAULT_MAX_AGE_DAYS
            }),
        };
        Self {
            keychain: config
                .keychain
                .clone()
                .unwrap_or_else(|| Arc::new(SecretServiceKeychain::default())),
            env: crate::ingest::secrets_from_env(config),
            cache: RwLock::new(HashMap::new()),
            max_age_days,
            mutate: tokio::sync::Mutex::new(()),
            probe: Mutex::new(None),
        }
    }

    /// Does `source` have a signing secret (keychain or environment)?
    pub(crate) fn has_secret(&self, source: &str) -> bool {
        read(&self.cache).contains_key(source) || !self.env.get(source).is_empty()
    }

    /// Run a keychain call off the async runtime, with a deadline.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Keychain) -> Result<T, KeychainError> + Send + 'static,
    ) -> Result<T, KeychainError> {
        let kc = self.keychain.clone();
        let res = match tokio::time::timeout(
            KEYCHAIN_TIMEOUT,
            tokio::task::spawn_blocking(move || f(&*kc)),
        )
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(KeychainError::Refused {
                name: String::new(),
                detail: format!("the keychain call failed: {join}"),
            }),
            Err(_) => Err(KeychainError::Timeout {
                secs: KEYCHAIN_TIMEOUT.as_secs(),
            }),
        };
        match &res {
            Err(e) if e.is_unavailable() => self.remember_probe(Some(e.clone())),
            Ok(_) => self.remember_probe(None),
            Err(_) => {}
        }
        res
    }

    fn remember_probe(&self, err: Option<KeychainError>) {
        *self
            .probe
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), err));
    }

    /// Is the keychain usable? Probes at most every [`PROBE_TTL`].
    async fn availability(&self) -> Option<KeychainError> {
        let cached = self
            .probe
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some((at, err)) = cached
            && at.elapsed() < PROBE_TTL
        {
            return err;
        }
        self.call(|k| k.check()).await.err()
    }

    fn put_cache(&self, source: &str, name: &str, state: CachedState) {
        write(&self.cache).insert(
            source.to_string(),
            Arc::new(Cached {
                name: name.to_string(),
                state,
                last_marked_ms: AtomicI64::new(0),
            }),
        );
    }

    fn ready(current: Secret, previous: Option<(Secret, DateTime<Utc>)>) -> CachedState {
        let (with_previous, previous_until) = match previous {
            Some((p, until)) => (vec![current.clone(), p], Some(until)),
            None => (vec![current.clone()], None),
        };
        CachedState::Ready {
            current: vec![current].into(),
            with_previous: with_previous.into(),
            previous_until,
        }
    }

    /// Read one webhook secret (and its previous value in its window) from
    /// the keychain into the cache.
    async fn load_one(&self, rec: &SecretRecord, now: DateTime<Utc>) {
        let Some(source) = rec.source.clone() else {
            return;
        };
        let name = rec.name.clone();
        let want_previous = rec
            .previous_valid_until
            .filter(|_| rec.previous_valid_at(now));
        let n = name.clone();
        let res = self
            .call(move |k| {
                let current = k.get(&n)?;
                let previous = match want_previous {
                    Some(_) => k.get(&previous_name(&n))?,
                    None => None,
                };
                Ok((current, previous))
            })
            .await;
        let state = match res {
            Ok((Some(current), previous)) => Self::ready(
                current,
                previous.and_then(|p| want_previous.map(|until| (p, until))),
            ),
            Ok((None, _)) => {
                tracing::warn!(secret = %name, "the keychain has no entry for this recorded secret; its webhooks get 503 until it is set again");
                CachedState::Unreadable(format!(
                    "the keychain has no entry for secret {name:?}; set it again with `kitedesk secrets rotate {name}`"
                ))
            }
            Err(e) => {
                tracing::warn!(secret = %name, error = %e, "cannot read a webhook secret from the keychain; its webhooks get 503 until it can");
                CachedState::Unreadable(format!(
                    "the signing secret {name:?} is in the keychain, which cannot be read: {e}"
                ))
            }
        };
        self.put_cache(&source, &name, state);
    }
}

fn keychain_error(e: KeychainError) -> ApiError {
    tracing::warn!(error = %e, "keychain call failed");
    if e.is_unavailable() {
        ApiError::unavailable("keychain_unavailable", e.to_string())
    } else {
        ApiError::new(StatusCode::BAD_GATEWAY, "keychain_error", e.to_string())
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found("secret_not_found", format!("no secret named {name:?}"))
}

impl Api {
    fn secrets(&self) -> &SecretsState {
        &self.0.secrets
    }

    /// The secrets to verify a webhook for `source` with: the keychain's
    /// `webhook/<source>` (and its previous value inside its grace window)
    /// when one is recorded, the environment otherwise.
    pub(crate) fn webhook_secrets(
        &self,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<WebhookSecrets<'_>, ApiError> {
        let s = self.secrets();
        let Some(cached) = read(&s.cache).get(source).cloned() else {
            return Ok(WebhookSecrets::Env(s.env.get(source)));
        };
        match &cached.state {
            CachedState::Ready {
                current,
                with_previous,
                previous_until,
            } => {
                let secrets = match previous_until {
                    Some(until) if now < *until => with_previous.clone(),
                    _ => current.clone(),
                };
                Ok(WebhookSecrets::Keychain { secrets, cached })
            }
            CachedState::Unreadable(why) => {
                Err(ApiError::unavailable("keychain_unavailable", why.clone()))
            }
        }
    }

    /// A webhook verified with a keychain secret: note when, at most once a
    /// minute per secret.
    pub(crate) fn note_webhook_verified(&self, used: &WebhookSecrets<'_>, now: DateTime<Utc>) {
        let WebhookSecrets::Keychain { cached, .. } = used else {
            return;
        };
        let now_ms = now.timestamp_millis();
        let last = cached.last_marked_ms.load(Ordering::Relaxed);
        if now_ms - last < LAST_USED_EVERY_MS
            || cached
                .last_marked_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = self.0.store.clone();
        let name = cached.name.clone();
        tokio::spawn(async move {
            if let Err(e) = store.secret_used(&name, now).await {
                tracing::warn!(secret = %name, error = %e, "cannot record secret use");
            }
        });
    }

    /// Fill the webhook-secret cache from the keychain and start the sweep.
    /// Never fails: an unreadable keychain is reported per source.
    pub(crate) async fn load_secrets(&self) -> anyhow::Result<()> {
        let now = Utc::now();
        let records = self.0.store.secrets().await?;
        for rec in records.iter().filter(|r| r.kind == "webhook") {
            self.secrets().load_one(rec, now).await;
        }
        for s in &self.0.config.manifest.sources {
            if !self.secrets().has_secret(&s.name) && !s.verify.allow_unsigned {
                tracing::warn!(
                    source = %s.name,
                    env = %s.verify.secret_env.join(", "),
                    "source requires a signature but has no secret (kitedesk secrets set webhook/{}); its webhooks will get 503",
                    s.name
                );
            }
        }
        let api = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = api.sweep_secrets(Utc::now()).await {
                    tracing::warn!(code = e.code, "secret sweep failed: {}", e.message);
                }
            }
        });
        Ok(())
    }

    /// Drop previous values whose grace window ended; retry webhook
    /// secrets that could not be read.
    pub async fn sweep_secrets(&self, now: DateTime<Utc>) -> Result<(), ApiError> {
        let s = self.secrets();
        let _guard = s.mutate.lock().await;
        for rec in self.0.store.secrets().await? {
            if rec.previous_valid_until.is_some() && !rec.previous_valid_at(now) {
                let prev = previous_name(&rec.name);
                s.call(move |k| k.delete(&prev))
                    .await
                    .map_err(keychain_error)?;
                self.0.store.clear_previous_secret(&rec.name).await?;
                tracing::info!(secret = %rec.name, "grace window ended; previous value removed from the keychain");
            }
            let unreadable = rec.source.as_ref().is_some_and(|src| {
                read(&s.cache)
                    .get(src)
                    .is_some_and(|c| matches!(c.state, CachedState::Unreadable(_)))
            });
            if rec.kind == "webhook" && unreadable {
                s.load_one(&rec, now).await;
            }
        }
        Ok(())
    }

    /// The keychain's state and what needs attention.
    pub async fn secrets_health(&self) -> Result<SecretsHealth, ApiError> {
        let s = self.secrets();
        let err = s.availability().await;
        let now = Utc::now();
        let max_age = chrono::Duration::days(i64::from(s.max_age_days));
        let old = self
            .0
            .store
            .secrets()
            .await?
            .into_iter()
            .filter(|r| now - r.value_since() >= max_age)
            .map(|r| r.name)
            .collect();
        Ok(SecretsHealth {
            backend: match &err {
                None => s.keychain.backend().to_string(),
                Some(_) => "unavailable".to_string(),
            },
            error: err.map(|e| e.to_string()),
            missing: self
                .0
                .config
                .manifest
                .sources
                .iter()
                .filter(|src| !src.verify.allow_unsigned && !s.has_secret(&src.name))
                .map(|src| src.name.clone())
                .collect(),
            old,
            max_age_days: s.max_age_days,
        })
    }

    /// Metadata of every secret, and health. 503 without a keychain.
    pub async fn list_secrets(&self) -> Result<SecretsList, ApiError> {
        let health = self.secrets_health().await?;
        if let Some(e) = &health.error {
            return Err(ApiError::unavailable("keychain_unavailable", e.clone()));
        }
        let now = Utc::now();
        let secrets = self
            .0
            .store
            .secrets()
            .await?
            .iter()
            .map(|r| SecretMeta::from_record(r, now))
            .collect();
        Ok(SecretsList { secrets, health })
    }

    /// Store a new secret in the keychain and record its metadata.
    pub async fn create_secret(&self, req: NewSecret) -> Result<SecretMeta, ApiError> {
        check_name(&req.name).map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))?;
        let value = req.value.0;
        check_value(&value).map_err(|e| ApiError::bad_request("invalid_value", e.to_string()))?;
        let kind = req.kind.unwrap_or(SecretKind::for_name(&req.name));
        let source = match (kind, req.source) {
            (SecretKind::Webhook, source) => {
                let source = source.or_else(|| req.name.strip_prefix("webhook/").map(String::from));
                match source {
                    Some(src)
                        if kitedesk_core::manifest::valid_slug(&src)
                            && req.name == format!("webhook/{src}") =>
                    {
                        Some(src)
                    }
                    _ => {
                        return Err(ApiError::bad_request(
                            "invalid_name",
                            "a webhook secret is named webhook/<source>, e.g. webhook/github",
                        ));
                    }
                }
            }
            (_, _) if req.name.starts_with("webhook/") => {
                return Err(ApiError::bad_request(
                    "invalid_name",
                    "names under webhook/ are webhook signing secrets (kind webhook)",
                ));
            }
            (_, source) => source,
        };
        let s = self.secrets();
        let _guard = s.mutate.lock().await;
        if self.0.store.secret(&req.name).await?.is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "secret_exists",
                format!(
                    "a secret named {:?} exists; rotate it to change its value",
                    req.name
                ),
            ));
        }
        let now = Utc::now();
        let rec = SecretRecord {
            name: req.name.clone(),
            kind: kind.as_str().to_string(),
            source: source.clone(),
            created: now,
            rotated: None,
            last_used: None,
            fingerprint: fingerprint(&value),
            previous_fingerprint: None,
            previous_valid_until: None,
        };
        let (name, v) = (req.name.clone(), value.clone());
        s.call(move |k| {
            // A leftover previous value from an earlier secret of this name
            // must not verify anything.
            k.delete(&previous_name(&name))?;
            k.set(&name, &v)
        })
        .await
        .map_err(keychain_error)?;
        if let Err(e) = self.0.store.insert_secret(&rec).await {
            let name = req.name.clone();
            let _ = s.call(move |k| k.delete(&name)).await;
            return Err(e.into());
        }
        if let (SecretKind::Webhook, Some(src)) = (kind, &source) {
            s.put_cache(src, &req.name, SecretsState::ready(value, None));
        }
        tracing::info!(secret = %rec.name, kind = %kind, fingerprint = %rec.fingerprint, "secret stored in the keychain");
        drop(_guard);
        // A relay link may have waited for this token.
        self.secret_changed(&rec.name).await;
        Ok(SecretMeta::from_record(&rec, now))
    }

    /// Replace a secret's value; the old one keeps verifying for the grace
    /// window.
    pub async fn rotate_secret(
        &self,
        name: &str,
        req: RotateSecret,
    ) -> Result<SecretMeta, ApiError> {
        let value = req.value.0;
        check_value(&value).map_err(|e| ApiError::bad_request("invalid_value", e.to_string()))?;
        let grace_secs = req
            .grace_secs
            .unwrap_or_else(|| u64::from(req.grace_hours.unwrap_or(DEFAULT_GRACE_HOURS)) * 3600);
        if grace_secs > MAX_GRACE_SECS {
            return Err(ApiError::bad_request(
                "invalid_grace",
                "the grace window is at most 30 days (720 hours)",
            ));
        }
        let s = self.secrets();
        let _guard = s.mutate.lock().await;
        let rec = self
            .0
            .store
            .secret(name)
            .await?
            .ok_or_else(|| not_found(name))?;
        let now = Utc::now();
        let until = (grace_secs > 0).then(|| now + chrono::Duration::seconds(grace_secs as i64));
        let (n, v) = (name.to_string(), value.clone());
        let current = s
            .call(move |k| {
                let current = k.get(&n)?;
                if current.as_ref() == Some(&v) {
                    return Ok(None);
                }
                let prev = previous_name(&n);
                match (&current, until) {
                    (Some(c), Some(_)) => k.set(&prev, c)?,
                    _ => {
                        k.delete(&prev)?;
                    }
                }
                k.set(&n, &v)?;
                Ok(Some(current))
            })
            .await
            .map_err(keychain_error)?;
        let Some(current) = current else {
            return Err(ApiError::bad_request(
                "secret_unchanged",
                "the new value is the current value",
            ));
        };
        if current.is_none() {
            tracing::warn!(secret = %name, "the keychain had no current value; rotating without a previous one");
        }
        let until = until.filter(|_| current.is_some());
        let fp = fingerprint(&value);
        if let Err(e) = self.0.store.rotate_secret(name, &fp, now, until).await {
            // Put the old value back so keychain and metadata agree.
            if let Some(old) = current {
                let n = name.to_string();
                let _ = s.call(move |k| k.set(&n, &old)).await;
            }
            return Err(e.into());
        }
        if let (true, Some(src)) = (rec.kind == "webhook", &rec.source) {
            let previous = current.zip(until);
            s.put_cache(src, name, SecretsState::ready(value, previous));
        }
        tracing::info!(secret = %name, fingerprint = %fp, grace_secs = if until.is_some() { grace_secs } else { 0 }, "secret rotated");
        drop(_guard);
        self.secret_changed(name).await;
        let rec = self
            .0
            .store
            .secret(name)
            .await?
            .ok_or_else(|| not_found(name))?;
        Ok(SecretMeta::from_record(&rec, now))
    }

    /// The value of a secret (an explicit request from the user).
    pub async fn reveal_secret(&self, name: &str) -> Result<Revealed, ApiError> {
        self.0
            .store
            .secret(name)
            .await?
            .ok_or_else(|| not_found(name))?;
        let n = name.to_string();
        let value = self
            .secrets()
            .call(move |k| k.get(&n))
            .await
            .map_err(keychain_error)?
            .ok_or_else(|| {
                ApiError::not_found(
                    "keychain_entry_missing",
                    format!(
                        "secret {name:?} is recorded but the keychain has no value for it; set one with rotate"
                    ),
                )
            })?;
        tracing::info!(secret = %name, "secret revealed");
        Ok(Revealed {
            value: value.expose().to_string(),
        })
    }

    /// A secret's value for in-process consumers (e.g. a relay token for the
    /// stream client), as a redacting [`Secret`]. `None`: no such secret.
    pub async fn read_secret(&self, name: &str) -> Result<Option<Secret>, ApiError> {
        if self.0.store.secret(name).await?.is_none() {
            return Ok(None);
        }
        let n = name.to_string();
        self.secrets()
            .call(move |k| k.get(&n))
            .await
            .map_err(keychain_error)
    }

    /// Remove a secret (and any previous value) from the keychain and its
    /// metadata.
    pub async fn delete_secret(&self, name: &str) -> Result<(), ApiError> {
        let s = self.secrets();
        let _guard = s.mutate.lock().await;
        let rec = self
            .0
            .store
            .secret(name)
            .await?
            .ok_or_else(|| not_found(name))?;
        let n = name.to_string();
        s.call(move |k| {
            k.delete(&previous_name(&n))?;
            k.delete(&n)
        })
        .await
        .map_err(keychain_error)?;
        self.0.store.delete_secret(name).await?;
        if let Some(src) = &rec.source {
            let mut cache = write(&s.cache);
            if cache.get(src).is_some_and(|c| c.name == name) {
                cache.remove(src);
            }
        }
        tracing::info!(secret = %name, "secret deleted from the keychain");
        Ok(())
    }
}
