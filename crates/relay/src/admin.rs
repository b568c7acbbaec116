//! Teams and tokens, managed on the data dir directly (the relay need not
//! run): `kitedesk relay teams …` / `tokens …` and tests call these.
//!
//! A token is 32 random bytes, hex, behind a kind prefix (`khk_` for hook
//! tokens as Kite's are, `kite_` for API keys). Only its sha256 is stored:
//! the value is shown once, when created.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::RngCore as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;

use crate::db::{self, OpenError, Pools};
use crate::scope;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Authenticates webhook senders (`/hooks/{team}/{source}/{token}`).
    Hook,
    /// Authenticates WebSocket clients (`connect.token`).
    Api,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Hook => "hook",
            TokenKind::Api => "api",
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Hook => "khk_",
            TokenKind::Api => "kite_",
        }
    }
}

impl std::str::FromStr for TokenKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "hook" => Ok(TokenKind::Hook),
            "api" => Ok(TokenKind::Api),
            _ => Err(format!("unknown token kind {s:?}: expected hook or api")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A token's metadata (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub team_id: String,
    pub kind: TokenKind,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("team name must be 1 to 100 characters without control characters")]
    InvalidName,
    #[error("no team {0:?} (see `kitedesk relay teams list`)")]
    UnknownTeam(String),
    #[error("no token {0:?} (see `kitedesk relay tokens list`)")]
    UnknownToken(String),
    #[error(transparent)]
    Scope(#[from] scope::ScopeError),
    #[error("relay database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored token {id} is unreadable: {problem}")]
    Corrupt { id: String, problem: String },
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

pub(crate) fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::UNIX_EPOCH)
}

async fn with_db<T>(
    data_dir: &Path,
    f: impl AsyncFnOnce(&Pools) -> Result<T, AdminError>,
) -> Result<T, AdminError> {
    let pools = db::open(data_dir).await?;
    let out = f(&pools).await;
    pools.write.close().await;
    pools.read.close().await;
    out
}

/// Create a team; its id goes in hook URLs and `connect.team_id`.
pub async fn create_team(data_dir: impl AsRef<Path>, name: &str) -> Result<Team, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AdminError::InvalidName);
    }
    let team = Team {
        id: format!("team_{}", random_hex(8)),
        name: name.to_string(),
        created_at: time(db::now_ms()),
    };
    with_db(data_dir.as_ref(), async |db| {
        sqlx::query("INSERT INTO teams (id, name, created_at) VALUES (?, ?, ?)")
            .bind(&team.id)
            .bind(&team.name)
            .bind(team.created_at.timestamp_millis())
            .execute(&db.write)
            .await?;
        Ok(())
    })
    .await?;
    Ok(team)
}

pub async fn list_teams(data_dir: impl AsRef<Path>) -> Result<Vec<Team>, AdminError> {
    with_db(data_dir.as_ref(), async |db| {
        let rows = sqlx::query("SELECT id, name, created_at FROM teams ORDER BY created_at, id")
            .fetch_all(&db.read)
            .await?;
        Ok(rows
            .iter()
            .map(|r| Team {
                id: r.get("id"),
                name: r.get("name"),
                created_at: time(r.get("created_at")),
            })
            .collect())
    })
    .await
}

/// Create a token and return its value (shown once; only its hash is
/// kept). Empty `scopes` means `["*"]`. For an API token the scopes bound
/// what its connections receive; for a hook token, the sources it may post
/// to (`source:NAME`).
pub async fn create_token(
    data_dir: impl AsRef<Path>,
    team_id: &str,
    kind: TokenKind,
    scopes: &[String],
) -> Result<String, AdminError> {
    create_token_info(data_dir, team_id, kind, scopes)
        .await
        .map(|(_, token)| token)
}

/// [`create_token`], also returning the new token's metadata (its id).
pub async fn create_token_info(
    data_dir: impl AsRef<Path>,
    team_id: &str,
    kind: TokenKind,
    scopes: &[String],
) -> Result<(TokenInfo, String), AdminError> {
    let scopes: Vec<String> = if scopes.is_empty() {
        vec!["*".to_string()]
    } else {
        scopes.iter().map(|s| s.trim().to_string()).collect()
    };
    scope::parse_all(&scopes)?;
    let token = format!("{}{}", kind.prefix(), random_hex(32));
    let info = TokenInfo {
        id: format!("tok_{}", random_hex(6)),
        team_id: team_id.to_string(),
        kind,
        prefix: token.chars().take(kind.prefix().len() + 6).collect(),
        scopes,
        created_at: time(db::now_ms()),
        revoked_at: None,
    };
    with_db(data_dir.as_ref(), async |db| {
        let team: Option<String> = sqlx::query_scalar("SELECT id FROM teams WHERE id = ?")
            .bind(team_id)
            .fetch_optional(&db.read)
            .await?;
        if team.is_none() {
            return Err(AdminError::UnknownTeam(team_id.to_string()));
        }
        sqlx::query(
            "INSERT INTO tokens (id, team_id, kind, hash, prefix, scopes, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&info.id)
        .bind(&info.team_id)
        .bind(kind.as_str())
        .bind(hash_token(&token))
        .bind(&info.prefix)
        .bind(serde_json::to_string(&info.scopes).unwrap_or_else(|_| "[\"*\"]".into()))
        .bind(info.created_at.timestamp_millis())
        .execute(&db.write)
        .await?;
        Ok(())
    })
    .await?;
    Ok((info, token))
}

fn token_row(r: &sqlx::sqlite::SqliteRow) -> Result<TokenInfo, AdminError> {
    let id: String = r.get("id");
    let corrupt = |problem: String| AdminError::Corrupt {
        id: id.clone(),
        problem,
    };
    let kind: String = r.get("kind");
    let scopes: String = r.get("scopes");
    Ok(TokenInfo {
        kind: kind.parse().map_err(corrupt)?,
        scopes: serde_json::from_str(&scopes).map_err(|e| corrupt(e.to_string()))?,
        team_id: r.get("team_id"),
        prefix: r.get("prefix"),
        created_at: time(r.get("created_at")),
        revoked_at: r.get::<Option<i64>, _>("revoked_at").map(time),
        id,
    })
}

/// Tokens (metadata only), optionally of one team.
pub async fn list_tokens(
    data_dir: impl AsRef<Path>,
    team_id: Option<&str>,
) -> Result<Vec<TokenInfo>, AdminError> {
    with_db(data_dir.as_ref(), async |db| {
        let rows = sqlx::query(
            "SELECT id, team_id, kind, prefix, scopes, created_at, revoked_at FROM tokens
             WHERE ?1 IS NULL OR team_id = ?1 ORDER BY created_at, id",
        )
        .bind(team_id)
        .fetch_all(&db.read)
        .await?;
        rows.iter().map(token_row).collect()
    })
    .await
}

/// Revoke a token by id. A running relay stops accepting it within its
/// `token_cache_ttl`.
pub async fn revoke_token(data_dir: impl AsRef<Path>, id: &str) -> Result<(), AdminError> {
    with_db(data_dir.as_ref(), async |db| {
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
                .bind(db::now_ms())
                .bind(id)
                .execute(&db.write)
                .await?;
        if done.rows_affected() == 0 {
            return Err(AdminError::UnknownToken(id.to_string()));
        }
        Ok(())
    })
    .await
}

/// The default relay data dir: `$XDG_DATA_HOME/kitedesk/relay`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("kitedesk")
        .join("relay")
}

/// Token lookups for a running relay, cached briefly: the ingress checks a
/// token on every webhook.
#[derive(Debug)]
pub(crate) struct TokenCache {
    pools: Pools,
    ttl: Duration,
    /// sha256 of a token → when it was looked up, and what was found.
    cache: Mutex<HashMap<Vec<u8>, Cached>>,
}

type Cached = (Instant, Option<TokenInfo>);

/// Cached entries at most; a flood of random tokens cannot grow it further.
const CACHE_MAX: usize = 10_000;

impl TokenCache {
    pub(crate) fn new(pools: Pools, ttl: Duration) -> Self {
        Self {
            pools,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The live (not revoked) token with this value, if any.
    pub(crate) async fn lookup(&self, token: &str) -> Result<Option<TokenInfo>, AdminError> {
        let hash = hash_token(token);
        if !self.ttl.is_zero()
            && let Ok(cache) = self.cache.lock()
            && let Some((at, info)) = cache.get(&hash)
            && at.elapsed() < self.ttl
        {
            return Ok(info.clone());
        }
        let row = sqlx::query(
            "SELECT id, team_id, kind, prefix, scopes, created_at, revoked_at FROM tokens
             WHERE hash = ? AND revoked_at IS NULL",
        )
        .bind(&hash)
        .fetch_optional(&self.pools.read)
        .await?;
        let info = row.as_ref().map(token_row).transpose()?;
        if !self.ttl.is_zero()
            && let Ok(mut cache) = self.cache.lock()
        {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(hash, (Instant::now(), info.clone()));
        }
        Ok(info)
    }
}
