//! `GET/PUT /api/settings/retention`: how long the history keeps events.
//!
//! The setting (store `settings` table, key [`RETENTION_KEY`]) wins over
//! the manifest's `queue` block; the hourly retention task reads it on each
//! run, and a `PUT` applies it at once, so no restart is needed.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::api::{Api, ApiError};

/// The `settings` key of the retention set through the API.
pub(crate) const RETENTION_KEY: &str = "retention";
/// 100 years.
const MAX_AGE_DAYS: u32 = 36_500;
const MAX_EVENTS: u64 = 1_000_000_000;

pub(crate) fn routes() -> Router<Api> {
    Router::new().route("/settings/retention", get(get_retention).put(put_retention))
}

/// A retention policy; `null` means no limit of that kind.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    #[serde(default)]
    pub max_age_days: Option<u32>,
    #[serde(default)]
    pub max_events: Option<u64>,
}

impl Retention {
    fn check(&self) -> Result<(), ApiError> {
        if self
            .max_age_days
            .is_some_and(|d| d == 0 || d > MAX_AGE_DAYS)
        {
            return Err(ApiError::bad_request(
                "invalid_retention",
                format!("max_age_days: must be between 1 and {MAX_AGE_DAYS}, or null for no limit"),
            ));
        }
        if self.max_events.is_some_and(|n| n == 0 || n > MAX_EVENTS) {
            return Err(ApiError::bad_request(
                "invalid_retention",
                format!("max_events: must be between 1 and {MAX_EVENTS}, or null for no limit"),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Serialize)]
struct RetentionView {
    #[serde(flatten)]
    effective: Retention,
    /// `settings` (set here) or `manifest` (the `queue` block, or none).
    origin: &'static str,
    /// What the manifest says (used again after `PUT` of `{"reset": true}`).
    manifest: Retention,
    /// Events removed by applying it (on `PUT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutRetention {
    #[serde(default)]
    max_age_days: Option<u32>,
    #[serde(default)]
    max_events: Option<u64>,
    /// Forget the setting and use the manifest's again.
    #[serde(default)]
    reset: bool,
}

impl Api {
    fn manifest_retention(&self) -> Retention {
        let q = self.0.config.manifest.queue.as_ref();
        Retention {
            max_age_days: q
                .and_then(|q| q.retention)
                .map(|d| u32::try_from(d.as_secs().div_ceil(86_400)).unwrap_or(MAX_AGE_DAYS)),
            max_events: q.and_then(|q| q.max_size),
        }
    }

    async fn stored_retention(&self) -> Result<Option<Retention>, ApiError> {
        match self.store().setting(RETENTION_KEY).await? {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| ApiError::internal(&e)),
        }
    }

    /// The retention in force: the API setting, else the manifest's.
    /// `(max age, max events)` for [`Api::apply_retention`].
    pub(crate) async fn retention_policy(
        &self,
    ) -> Result<(Option<chrono::Duration>, Option<u64>), ApiError> {
        if let Some(r) = self.stored_retention().await? {
            return Ok((
                r.max_age_days.map(|d| chrono::Duration::days(i64::from(d))),
                r.max_events,
            ));
        }
        let q = self.0.config.manifest.queue.as_ref();
        Ok((
            q.and_then(|q| q.retention)
                .and_then(|d| chrono::Duration::from_std(d).ok()),
            q.and_then(|q| q.max_size),
        ))
    }

    async fn retention_view(&self, deleted: Option<u64>) -> Result<RetentionView, ApiError> {
        let manifest = self.manifest_retention();
        Ok(match self.stored_retention().await? {
            Some(r) => RetentionView {
                effective: r,
                origin: "settings",
                manifest,
                deleted,
            },
            None => RetentionView {
                effective: manifest,
                origin: "manifest",
                manifest,
                deleted,
            },
        })
    }
}

/// What a `PUT /api/settings/retention` body asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetentionUpdate {
    /// `{"reset": true}`: forget the setting, use the manifest's again.
    Reset,
    /// A checked policy.
    Set(Retention),
}

/// Parse and check a `PUT /api/settings/retention` body. Errors are 400
/// `invalid_body` or `invalid_retention` naming the field.
pub fn parse_retention_update(bytes: &[u8]) -> Result<RetentionUpdate, ApiError> {
    let req: PutRetention = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!("{e}; expected {{max_age_days: 1..={MAX_AGE_DAYS} | null, max_events: 1..={MAX_EVENTS} | null}} or {{reset: true}}"),
        )
    })?;
    if req.reset {
        return Ok(RetentionUpdate::Reset);
    }
    let r = Retention {
        max_age_days: req.max_age_days,
        max_events: req.max_events,
    };
    r.check()?;
    Ok(RetentionUpdate::Set(r))
}

async fn get_retention(State(api): State<Api>) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(api.retention_view(None).await?))
}

async fn put_retention(
    State(api): State<Api>,
    bytes: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    match parse_retention_update(&bytes)? {
        RetentionUpdate::Reset => {
            api.store()
                .put_setting(RETENTION_KEY, &serde_json::Value::Null)
                .await?;
        }
        RetentionUpdate::Set(r) => {
            let v = serde_json::to_value(r).map_err(|e| ApiError::internal(&e))?;
            api.store().put_setting(RETENTION_KEY, &v).await?;
        }
    }
    let deleted = api.apply_retention().await?;
    Ok(Json(api.retention_view(Some(deleted)).await?))
}
