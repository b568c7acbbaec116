//! The event model: a Kite-style CloudEvent with our extensions.

use chrono::{DateTime, SecondsFormat, Utc};
use cloudevents::event::{AttributesReader, ExtensionValue};
use cloudevents::{Data, EventBuilder, EventBuilderV10};
use serde::{Deserialize, Serialize};

use crate::headers::Headers;
use crate::payload::Payload;

/// CloudEvents extension names. Lowercase letters and digits only, as the
/// spec requires (the Kite docs' `kite-verified` is not a valid name).
pub mod ext {
    pub const SUMMARY: &str = "kitesummary";
    pub const SEQ: &str = "kiteseq";
    pub const ORIGINAL_HEADERS: &str = "kiteoriginalheaders";
    pub const VERIFIED: &str = "kiteverified";
    pub const VERIFY_REASON: &str = "kiteverifyreason";
    pub const IMPORTANCE: &str = "kiteimportance";
    pub const IMPORTANCE_REASON: &str = "kiteimportancereason";
    pub const SOURCE_NAME: &str = "kitesource";
}

/// Importance levels with the Kite docs' numbering (low=1 … critical=4).
/// Names are what cross the wire; numbers are what the store sorts on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Importance {
    Low = 1,
    #[default]
    Normal = 2,
    High = 3,
    Critical = 4,
}

impl Importance {
    pub const ALL: [Importance; 4] = [
        Importance::Low,
        Importance::Normal,
        Importance::High,
        Importance::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Importance::Low => "low",
            Importance::Normal => "normal",
            Importance::High => "high",
            Importance::Critical => "critical",
        }
    }

    pub fn rank(self) -> i64 {
        self as i64
    }

    pub fn from_rank(rank: i64) -> Option<Importance> {
        Importance::ALL.into_iter().find(|i| i.rank() == rank)
    }
}

impl std::fmt::Display for Importance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown importance {0:?}: expected low, normal, high or critical")]
pub struct UnknownImportance(pub String);

impl std::str::FromStr for Importance {
    type Err = UnknownImportance;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" | "1" => Ok(Importance::Low),
            "normal" | "2" => Ok(Importance::Normal),
            "high" | "3" => Ok(Importance::High),
            "critical" | "4" => Ok(Importance::Critical),
            _ => Err(UnknownImportance(s.to_string())),
        }
    }
}

/// How an accepted event was authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub verified: bool,
    /// Human-readable: "github signature valid (secret 1 of 2)",
    /// "unsigned source", "no secret configured".
    pub reason: String,
}

impl Verification {
    pub fn verified(reason: impl Into<String>) -> Self {
        Self {
            verified: true,
            reason: reason.into(),
        }
    }
    pub fn unverified(reason: impl Into<String>) -> Self {
        Self {
            verified: false,
            reason: reason.into(),
        }
    }
}

/// A normalized webhook event: the CloudEvent envelope plus what Kite Desk
/// knows about it. `data` is the original payload (its JSON text, parsed into
/// a tree on demand); the raw bytes stay with the caller (the store keeps
/// them for byte-exact forwarding).
#[derive(Debug, Clone, PartialEq)]
pub struct KiteEvent {
    pub id: String,
    /// CloudEvent `source` URI, e.g. `https://github.com/acme/api`.
    pub source: String,
    /// CloudEvent `type`, e.g. `com.github.push`.
    pub ty: String,
    pub time: DateTime<Utc>,
    /// The configured source name the event came in on (`github`, `myapp`).
    pub source_name: String,
    pub summary: String,
    pub data: Payload,
    pub seq: Option<u64>,
    pub original_headers: Headers,
    pub verification: Verification,
    pub importance: Importance,
    pub importance_reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("invalid CloudEvent: {0}")]
    Invalid(String),
    #[error("CloudEvent attribute {0:?} is missing or has the wrong type")]
    Attribute(&'static str),
}

/// A CloudEvent's attributes and data, for [`KiteEvent::from_cloudevent_parts`].
#[derive(Debug, Clone)]
pub struct CloudEventParts {
    pub id: String,
    pub source: String,
    pub ty: String,
    pub time: DateTime<Utc>,
    pub data: Payload,
}

impl KiteEvent {
    /// Build the CloudEvents-SDK event, so the JSON we emit is the JSON the
    /// official SDKs produce and parse.
    pub fn to_cloudevent(&self) -> Result<cloudevents::Event, EnvelopeError> {
        let mut b = EventBuilderV10::new()
            .id(self.id.clone())
            .source(self.source.clone())
            .ty(self.ty.clone())
            .time(self.time)
            .data("application/json", Data::Json(self.data.value().clone()))
            .extension(ext::SUMMARY, self.summary.clone())
            .extension(ext::SOURCE_NAME, self.source_name.clone())
            .extension(ext::VERIFIED, self.verification.verified)
            .extension(ext::VERIFY_REASON, self.verification.reason.clone())
            .extension(ext::IMPORTANCE, self.importance.as_str())
            .extension(ext::IMPORTANCE_REASON, self.importance_reason.clone());
        if let Some(seq) = self.seq {
            // The SDK's integers are i64; a larger seq goes out as the numeric
            // string kite-protocol readers also accept, never wrapped negative.
            b = match i64::try_from(seq) {
                Ok(n) => b.extension(ext::SEQ, n),
                Err(_) => b.extension(ext::SEQ, seq.to_string()),
            };
        }
        if !self.original_headers.is_empty() {
            // kite-protocol defines this extension as a *string* holding a JSON object.
            // A JSON object holds each name once: fold repeated headers
            // rather than let the last one overwrite the others.
            let map: serde_json::Map<String, serde_json::Value> = self
                .original_headers
                .folded()
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
                .collect();
            b = b.extension(
                ext::ORIGINAL_HEADERS,
                serde_json::Value::Object(map).to_string(),
            );
        }
        b.build().map_err(|e| EnvelopeError::Invalid(e.to_string()))
    }

    /// Structured-mode CloudEvent JSON.
    pub fn to_json(&self) -> Result<serde_json::Value, EnvelopeError> {
        let ce = self.to_cloudevent()?;
        serde_json::to_value(&ce).map_err(|e| EnvelopeError::Invalid(e.to_string()))
    }

    /// Read a CloudEvent (ours, or one from a Kite relay or an SDK). Missing
    /// Kite Desk extensions get neutral defaults; `kite-verified` style
    /// hyphenated names are accepted as the Kite docs show them.
    pub fn from_cloudevent(ce: &cloudevents::Event) -> Result<Self, EnvelopeError> {
        let ext_str = |name: &str| match ce.extension(name) {
            Some(ExtensionValue::String(s)) => Some(s.clone()),
            Some(ExtensionValue::Boolean(b)) => Some(b.to_string()),
            Some(ExtensionValue::Integer(i)) => Some(i.to_string()),
            None => None,
        };
        let data = Payload::from_value(match ce.data() {
            Some(Data::Json(v)) => v.clone(),
            Some(Data::String(s)) => {
                serde_json::from_str(s).unwrap_or_else(|_| serde_json::Value::String(s.clone()))
            }
            Some(Data::Binary(b)) => serde_json::from_slice(b).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(b).into_owned())
            }),
            None => serde_json::Value::Null,
        });
        Ok(KiteEvent::from_cloudevent_parts(
            CloudEventParts {
                id: ce.id().to_string(),
                source: ce.source().to_string(),
                ty: ce.ty().to_string(),
                time: ce.time().copied().unwrap_or(DateTime::UNIX_EPOCH),
                data,
            },
            ext_str,
        ))
    }

    /// A [`KiteEvent`] from a CloudEvent's attributes and data, with Kite
    /// Desk's extensions read through `ext_str` (as text). Behind
    /// [`KiteEvent::from_cloudevent`] and the relay link's fast reading of
    /// plain JSON CloudEvents, so both read extensions the same way.
    pub fn from_cloudevent_parts(
        parts: CloudEventParts,
        ext_str: impl Fn(&str) -> Option<String>,
    ) -> KiteEvent {
        let CloudEventParts {
            id,
            source,
            ty,
            time,
            data,
        } = parts;
        let verified = ext_str(ext::VERIFIED)
            .or_else(|| ext_str("kite-verified"))
            .map(|v| v == "true");
        let original_headers = ext_str(ext::ORIGINAL_HEADERS)
            .and_then(|s| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&s).ok()
            })
            .map(|m| {
                m.into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        KiteEvent {
            id,
            source,
            source_name: ext_str(ext::SOURCE_NAME)
                .or_else(|| ext_str("kite-source"))
                .unwrap_or_else(|| derive_source_name(&ty).to_string()),
            summary: ext_str(ext::SUMMARY).unwrap_or_else(|| ty.clone()),
            ty,
            time,
            data,
            seq: ext_str(ext::SEQ).and_then(|s| s.parse().ok()),
            original_headers,
            verification: match verified {
                Some(true) => Verification::verified(
                    ext_str(ext::VERIFY_REASON).unwrap_or_else(|| "verified upstream".into()),
                ),
                Some(false) => Verification::unverified(
                    ext_str(ext::VERIFY_REASON).unwrap_or_else(|| "unverified upstream".into()),
                ),
                None => Verification::unverified("no verification result from upstream"),
            },
            importance: ext_str(ext::IMPORTANCE)
                .and_then(|s| s.parse().ok())
                .unwrap_or_default(),
            importance_reason: ext_str(ext::IMPORTANCE_REASON).unwrap_or_default(),
        }
    }
}

/// The Kite CLI's `derive_source_from_event_type`: strip `com.`, take the
/// first segment; anything else is `unknown`.
pub fn derive_source_name(ty: &str) -> &str {
    match ty.strip_prefix("com.") {
        Some(rest) => match rest.split('.').next() {
            Some(s) if !s.is_empty() => s,
            _ => "unknown",
        },
        None => "unknown",
    }
}

/// RFC 3339 with milliseconds and `Z`, the form every API response uses.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> KiteEvent {
        KiteEvent {
            id: "d1".into(),
            source: "https://github.com/acme/api".into(),
            ty: "com.github.push".into(),
            time: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            source_name: "github".into(),
            summary: "alice pushed 1 commit to main in acme/api".into(),
            data: serde_json::json!({"ref": "refs/heads/main", "n": [1, 2]}).into(),
            seq: Some(42),
            original_headers: [("X-GitHub-Event", "push")].into_iter().collect(),
            verification: Verification::verified("github signature valid"),
            importance: Importance::High,
            importance_reason: "rule 1".into(),
        }
    }

    #[test]
    fn cloudevent_json_round_trips_through_the_sdk() {
        let ev = sample();
        let json = ev.to_json().unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["kiteseq"], 42);
        assert_eq!(json["kiteverified"], true);
        assert!(
            json["kiteoriginalheaders"].is_string(),
            "kite-protocol types this extension as a JSON string"
        );
        let parsed: cloudevents::Event = serde_json::from_value(json).unwrap();
        let back = KiteEvent::from_cloudevent(&parsed).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn importance_orders_and_parses() {
        assert!(Importance::Critical > Importance::High);
        assert_eq!("HIGH".parse::<Importance>().unwrap(), Importance::High);
        assert!("urgent".parse::<Importance>().is_err());
        assert_eq!(Importance::from_rank(4), Some(Importance::Critical));
    }

    #[test]
    fn source_name_derivation_matches_kite_cli() {
        assert_eq!(derive_source_name("com.github.push"), "github");
        assert_eq!(
            derive_source_name("com.stripe.payment_intent.succeeded"),
            "stripe"
        );
        assert_eq!(derive_source_name("github.push"), "unknown");
        assert_eq!(derive_source_name("com."), "unknown");
    }
}
