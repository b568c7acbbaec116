//! Query-string parsing for the API, with errors naming the parameter.

use chrono::{DateTime, Utc};
use kitedesk_core::Importance;
use kitedesk_store::EventQuery;

use crate::api::ApiError;

fn bad(param: &str, problem: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("invalid_query", format!("parameter {param}: {problem}"))
}

/// RFC 3339, or Unix milliseconds.
pub(crate) fn parse_time(param: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(ms) = v.parse::<i64>() {
        return DateTime::from_timestamp_millis(ms).ok_or_else(|| bad(param, "time out of range"));
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            bad(
                param,
                format!("{v:?} is not an RFC 3339 time or Unix milliseconds"),
            )
        })
}

/// Filters shared by `/api/events` and `/api/stream`.
pub fn event_query(params: &[(String, String)]) -> Result<EventQuery, ApiError> {
    let mut q = EventQuery::default();
    for (k, v) in params {
        let v = v.trim();
        match k.as_str() {
            "source" => q.sources.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            ),
            "type" => q.type_glob = Some(v.to_string()).filter(|s| !s.is_empty()),
            "min_importance" | "importance" => {
                q.min_importance = Some(v.parse::<Importance>().map_err(|e| bad(k, e))?)
            }
            "since" | "from" => q.since = Some(parse_time(k, v)?),
            "until" | "to" => q.until = Some(parse_time(k, v)?),
            "verified" => {
                q.verified = Some(match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad(k, "expected true or false")),
                })
            }
            "q" => q.q = Some(v.to_string()).filter(|s| !s.is_empty()),
            "cursor" | "before" => {
                q.before = Some(
                    v.parse()
                        .map_err(|_| bad(k, "expected a cursor from next_cursor"))?,
                )
            }
            "limit" => {
                let n: u32 = v.parse().map_err(|_| bad(k, "expected a number"))?;
                if n == 0 || n > kitedesk_store::MAX_LIMIT {
                    return Err(bad(
                        k,
                        format!("must be between 1 and {}", kitedesk_store::MAX_LIMIT),
                    ));
                }
                q.limit = Some(n);
            }
            "after" => {} // used by /api/stream only
            other => return Err(bad(other, "unknown parameter")),
        }
    }
    if let Some(g) = &q.type_glob {
        kitedesk_core::glob::Glob::new(g).map_err(|e| bad("type", e))?;
    }
    Ok(q)
}

/// The parameters of `GET /api/volume`.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeParams {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub bucket_secs: Option<i64>,
}

/// Parse `GET /api/volume`'s query parameters.
pub fn volume_params(params: &[(String, String)]) -> Result<VolumeParams, ApiError> {
    let mut v = VolumeParams {
        from: None,
        to: None,
        bucket_secs: None,
    };
    for (k, val) in params {
        match k.as_str() {
            "from" | "since" => v.from = Some(parse_time(k, val)?),
            "to" | "until" => v.to = Some(parse_time(k, val)?),
            "bucket" | "bucket_secs" => {
                v.bucket_secs = Some(val.parse().map_err(|_| bad(k, "expected seconds"))?)
            }
            other => return Err(bad(other, "unknown parameter")),
        }
    }
    Ok(v)
}
