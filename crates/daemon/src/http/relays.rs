//! `/api/relays`: the relay links, configured (kite.json, flags; read-only)
//! and added at runtime through the API.
//!
//! An added link is kept in the store's `settings` table under
//! [`ADDED_KEY`] (name, URL, team, scopes; never the token) and started
//! again at the next daemon start, after the configured ones, which win on
//! a name clash. Its API token, when the request carries one, goes straight
//! to the keychain as `relay/<name>` (the secrets machinery): never to
//! SQLite, never echoed. A link whose secret is missing waits, `offline`,
//! and starts when the secret is set.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::Utc;
use kitedesk_core::event::format_time;
use serde::{Deserialize, Serialize};

use crate::api::{Api, ApiError};
use crate::links::{RelayLink, RelayToken, display_url};
use crate::secrets::{NewSecret, RotateSecret, SecretValue};

/// The `settings` key holding the links added through the API.
pub(crate) const ADDED_KEY: &str = "relays.added";

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/relays", get(list).post(add))
        .route("/relays/{name}", delete(remove))
}

/// A link added through the API, as stored (no token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AddedRelay {
    pub name: String,
    /// The WebSocket URL (`ws://…`, `wss://…`).
    pub url: String,
    pub team_id: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub added_at: String,
}

impl AddedRelay {
    fn secret_name(&self) -> String {
        format!("relay/{}", self.name)
    }

    fn link(&self) -> RelayLink {
        RelayLink {
            name: self.name.clone(),
            url: self.url.clone(),
            team_id: self.team_id.clone(),
            token: RelayToken::Keychain(self.secret_name()),
            scopes: self.scopes.clone(),
            ping_interval: None,
            backoff_initial: None,
        }
    }
}

/// `POST /api/relays`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRelay {
    name: String,
    url: String,
    team_id: String,
    #[serde(default)]
    scopes: Vec<String>,
    /// The relay API token; stored in the keychain as `relay/<name>`.
    /// Without it the link waits for that secret.
    #[serde(default)]
    token: Option<SecretValue>,
}

/// One link in `GET /api/relays`.
#[derive(Debug, Serialize)]
struct RelayView {
    name: String,
    url: String,
    team_id: String,
    scopes: Vec<String>,
    /// `config` (kite.json or flags; read-only) or `api` (added here).
    origin: &'static str,
    /// Where the token is: `keychain:relay/NAME` or `env`.
    token_from: String,
    removable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    added_at: Option<String>,
    /// The connection's state (`connected`, `offline`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct RelayList {
    relays: Vec<RelayView>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_relay", format!("{field}: {}", message.into()))
}

/// `ws://host[:port][/path]` or `wss://…` (http(s) bases are turned into
/// their `/ws` URL, as for configured links); no credentials, no spaces.
pub(crate) fn check_url(url: &str) -> Result<String, ApiError> {
    let lower = url.trim().to_ascii_lowercase();
    if !(lower.starts_with("ws://")
        || lower.starts_with("wss://")
        || lower.starts_with("http://")
        || lower.starts_with("https://"))
    {
        return Err(invalid(
            "url",
            "must be a ws:// or wss:// URL (or an http(s):// relay address)",
        ));
    }
    let ws = kitedesk_core::manifest::relay_ws_url(url.trim())
        .ok_or_else(|| invalid("url", "must be a ws:// or wss:// URL"))?;
    let (_, rest) = ws.split_once("://").unwrap_or(("", &ws));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.starts_with(':') {
        return Err(invalid("url", "has no host"));
    }
    if authority.contains('@') {
        return Err(invalid(
            "url",
            "must not carry credentials; send the token in the token field",
        ));
    }
    if ws.chars().any(|c| c.is_whitespace() || c.is_control()) || ws.len() > 2048 {
        return Err(invalid(
            "url",
            "has spaces or control characters, or is too long",
        ));
    }
    Ok(ws)
}

/// Kite scopes: `*`, `source:NAME`, `type:PATTERN` or `agent_to:ID`.
pub(crate) fn check_scopes(scopes: &[String]) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::with_capacity(scopes.len());
    for s in scopes {
        let s = s.trim();
        let ok = s == "*"
            || s.split_once(':').is_some_and(|(kind, value)| {
                matches!(kind, "source" | "type" | "agent_to")
                    && !value.is_empty()
                    && !value.chars().any(|c| c.is_whitespace() || c.is_control())
            });
        if !ok || s.len() > 256 {
            return Err(invalid(
                "scopes",
                format!(
                    "{s:?} is not a scope: expected *, source:NAME, type:PATTERN or agent_to:ID"
                ),
            ));
        }
        out.push(s.to_string());
    }
    Ok(out)
}

impl Api {
    /// The links added through the API, as stored.
    pub(crate) async fn added_relays(&self) -> Result<Vec<AddedRelay>, ApiError> {
        match self.store().setting(ADDED_KEY).await? {
            None => Ok(Vec::new()),
            Some(v) => serde_json::from_value(v).map_err(|e| ApiError::internal(&e)),
        }
    }

    /// The added links to start, without those a configured link shadows.
    pub(crate) async fn added_relay_links(&self) -> anyhow::Result<Vec<RelayLink>> {
        let added = self
            .added_relays()
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the added relay links: {}", e.message))?;
        Ok(added
            .iter()
            .filter(|a| {
                let shadowed = self.0.config.relays.iter().any(|c| c.name == a.name);
                if shadowed {
                    tracing::warn!(link = %a.name, "an added relay link has the name of a configured one; the configured one is used");
                }
                !shadowed
            })
            .map(AddedRelay::link)
            .collect())
    }

    async fn list_relays(&self) -> Result<RelayList, ApiError> {
        let conns = self.connections();
        let state = |name: &str| {
            conns
                .iter()
                .find(|c| c.kind == "relay" && c.name == name)
                .map(|c| (c.state.clone(), c.error.clone()))
        };
        let mut relays: Vec<RelayView> = self
            .0
            .config
            .relays
            .iter()
            .map(|l| {
                let (state, error) = state(&l.name).unzip();
                RelayView {
                    name: l.name.clone(),
                    url: display_url(&l.url),
                    team_id: l.team_id.clone(),
                    scopes: l.scopes.clone(),
                    origin: "config",
                    token_from: match &l.token {
                        RelayToken::Value(_) => "env".into(),
                        RelayToken::Keychain(n) => format!("keychain:{n}"),
                    },
                    removable: false,
                    added_at: None,
                    state,
                    error: error.flatten(),
                }
            })
            .collect();
        for a in self.added_relays().await? {
            if relays.iter().any(|r| r.name == a.name) {
                continue;
            }
            let (state, error) = state(&a.name).unzip();
            relays.push(RelayView {
                name: a.name.clone(),
                url: display_url(&a.url),
                team_id: a.team_id.clone(),
                scopes: a.scopes.clone(),
                origin: "api",
                token_from: format!("keychain:{}", a.secret_name()),
                removable: true,
                added_at: Some(a.added_at.clone()),
                state,
                error: error.flatten(),
            });
        }
        Ok(RelayList { relays })
    }

    async fn add_relay(&self, req: RelayRequest) -> Result<AddedRelay, ApiError> {
        let RelayRequest {
            name,
            url,
            team_id,
            scopes,
            token,
        } = req;
        let _one_at_a_time = self.0.links.editing.lock().await;
        if self.0.config.relays.iter().any(|c| c.name == name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "relay_configured",
                format!("a configured relay link is named {name:?} (kite.json or flags)"),
            ));
        }
        let mut added = self.added_relays().await?;
        if added.iter().any(|a| a.name == name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "relay_exists",
                format!("a relay link named {name:?} exists; remove it first"),
            ));
        }
        let relay = AddedRelay {
            name,
            url,
            team_id,
            scopes,
            added_at: format_time(Utc::now()),
        };
        if let Some(token) = token {
            self.store_relay_token(&relay.secret_name(), token).await?;
        }
        added.push(relay.clone());
        self.save_added(&added).await?;
        self.start_or_wait(relay.link())
            .await
            .map_err(|e| ApiError::internal(&format!("{e:#}")))?;
        tracing::info!(link = %relay.name, url = %display_url(&relay.url), "relay link added");
        Ok(relay)
    }

    /// Put the token in the keychain: a new secret, or a rotation (no grace)
    /// of an existing one.
    pub(crate) async fn store_relay_token(
        &self,
        secret: &str,
        token: SecretValue,
    ) -> Result<(), ApiError> {
        if self.store().secret(secret).await?.is_none() {
            self.create_secret(NewSecret {
                name: secret.to_string(),
                kind: None,
                source: None,
                value: token,
            })
            .await?;
            return Ok(());
        }
        match self
            .rotate_secret(
                secret,
                RotateSecret {
                    value: token,
                    grace_hours: None,
                    grace_secs: Some(0),
                },
            )
            .await
        {
            Err(e) if e.code == "secret_unchanged" => Ok(()),
            other => other.map(|_| ()),
        }
    }

    async fn save_added(&self, added: &[AddedRelay]) -> Result<(), ApiError> {
        let v = serde_json::to_value(added).map_err(|e| ApiError::internal(&e))?;
        Ok(self.store().put_setting(ADDED_KEY, &v).await?)
    }

    async fn remove_relay(&self, name: &str) -> Result<(), ApiError> {
        let _one_at_a_time = self.0.links.editing.lock().await;
        if self.0.config.relays.iter().any(|c| c.name == name) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "relay_configured",
                format!(
                    "the relay link {name:?} is configured (kite.json or flags); \
                     remove it there and restart the daemon"
                ),
            ));
        }
        let mut added = self.added_relays().await?;
        let Some(i) = added.iter().position(|a| a.name == name) else {
            return Err(ApiError::not_found(
                "relay_not_found",
                format!("no relay link named {name:?}"),
            ));
        };
        let relay = added.remove(i);
        self.save_added(&added).await?;
        self.stop_link(name).await;
        // Its cursor row goes too (so `/api/health` and a later link of the
        // same name start clean), and the live feed says it is gone.
        if let Err(e) = self.store().delete_link(name).await {
            tracing::warn!(link = %name, error = %e, "cannot forget the relay link's cursor");
        }
        self.bus()
            .publish(crate::bus::DaemonEvent::Connection(std::sync::Arc::new(
                crate::links::Connection::removed(name, &display_url(&relay.url)),
            )));
        // Forget its token too (it may never have been stored).
        match self.delete_secret(&relay.secret_name()).await {
            Err(e) if e.status != 404 => {
                tracing::warn!(link = %name, error = %e.message, "cannot delete the relay link's token");
            }
            _ => {}
        }
        tracing::info!(link = %name, "relay link removed");
        Ok(())
    }
}

/// A `POST /api/relays` body, parsed and checked ([`parse_new_relay`]).
#[derive(Debug)]
pub struct RelayRequest {
    /// A slug, not `local`.
    pub name: String,
    /// The WebSocket URL ([`check_url`]'s).
    pub url: String,
    pub team_id: String,
    pub scopes: Vec<String>,
    token: Option<SecretValue>,
}

impl RelayRequest {
    /// Whether the body carried a token (for the keychain).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }
}

/// Parse and check a `POST /api/relays` body: everything but clashes with
/// existing links. Errors are 400 `invalid_body` (never echoing the body,
/// which may carry a token) or `invalid_relay` naming the field.
pub fn parse_new_relay(bytes: &[u8]) -> Result<RelayRequest, ApiError> {
    let req = body(bytes)?;
    let name = req.name.trim().to_string();
    if !kitedesk_core::manifest::valid_slug(&name) {
        return Err(invalid(
            "name",
            format!("{name:?} must match ^[a-z0-9][a-z0-9-]{{0,63}}$"),
        ));
    }
    if name == "local" {
        return Err(invalid("name", "\"local\" is the local ingress"));
    }
    let url = check_url(&req.url)?;
    let team_id = req.team_id.trim().to_string();
    if team_id.is_empty()
        || team_id.len() > 256
        || team_id.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid("team_id", "must be a non-empty id without spaces"));
    }
    let scopes = check_scopes(&req.scopes)?;
    Ok(RelayRequest {
        name,
        url,
        team_id,
        scopes,
        token: req.token,
    })
}

/// Parse a JSON body without echoing any of it (it may carry a token).
fn body(bytes: &[u8]) -> Result<NewRelay, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!(
                "invalid request body (line {}, column {}); expected \
                 {{name, url, team_id, scopes?: [string], token?: string}}",
                e.line(),
                e.column()
            ),
        )
    })
}

async fn list(State(api): State<Api>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(api.list_relays().await?))
}

async fn add(State(api): State<Api>, bytes: Bytes) -> Result<Response, ApiError> {
    let relay = api.add_relay(parse_new_relay(&bytes)?).await?;
    let view = api
        .list_relays()
        .await?
        .relays
        .into_iter()
        .find(|r| r.name == relay.name);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn remove(State(api): State<Api>, Path(name): Path<String>) -> Result<Response, ApiError> {
    api.remove_relay(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_scopes_are_checked() {
        assert_eq!(
            check_url("ws://127.0.0.1:7700/ws").unwrap(),
            "ws://127.0.0.1:7700/ws"
        );
        assert_eq!(
            check_url("https://relay.example").unwrap(),
            "wss://relay.example/ws"
        );
        for bad in [
            "ftp://x",
            "relay.example",
            "ws://",
            "ws://:80/ws",
            "ws://u:p@h/ws",
            "ws://h/a b",
        ] {
            let e = check_url(bad).unwrap_err();
            assert_eq!(e.code, "invalid_relay", "{bad}");
            assert!(e.message.starts_with("url:"), "{bad}: {}", e.message);
        }
        assert_eq!(
            check_scopes(&[" source:github ".into(), "*".into(), "type:com.*".into()]).unwrap(),
            ["source:github", "*", "type:com.*"]
        );
        for bad in ["", "github", "source:", "colour:red", "type:a b"] {
            let e = check_scopes(&[bad.into()]).unwrap_err();
            assert!(e.message.starts_with("scopes:"), "{bad}: {}", e.message);
        }
    }
}
