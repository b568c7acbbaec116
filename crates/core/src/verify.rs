//! Webhook signature verification on the raw body, in constant time.
//!
//! Every scheme returns *why* a check failed ([`VerifyError`]) without ever
//! revealing the expected signature.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::headers::Headers;

type HmacSha256 = Hmac<Sha256>;

/// Default timestamp tolerance for Stripe and Standard Webhooks, as both
/// providers' own libraries use.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// A signing secret. `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret value. Call sites are few and deliberate (signing, reveal).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Signature schemes we verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// `X-Hub-Signature-256: sha256=<hex>` over the body.
    Github,
    /// `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]` over `"{t}.{body}"`.
    Stripe,
    /// `X-Kiket-Signature: [sha256=]<hex>` over the body.
    Kiket,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64> …`
    /// over `"{id}.{timestamp}.{body}"` with a `whsec_` base64 secret.
    StandardWebhooks,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Github => "github",
            Scheme::Stripe => "stripe",
            Scheme::Kiket => "kiket",
            Scheme::StandardWebhooks => "standard-webhooks",
        }
    }

    /// The header a sender puts its signature in, for "missing header" checks.
    pub fn signature_header(self) -> &'static str {
        match self {
            Scheme::Github => "X-Hub-Signature-256",
            Scheme::Stripe => "Stripe-Signature",
            Scheme::Kiket => "X-Kiket-Signature",
            Scheme::StandardWebhooks => "webhook-signature",
        }
    }
}

/// Why a signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed {header} header: {problem}")]
    MalformedHeader {
        header: &'static str,
        problem: &'static str,
    },
    #[error("timestamp is {age_secs}s old, more than the {tolerance_secs}s tolerance")]
    StaleTimestamp { age_secs: i64, tolerance_secs: i64 },
    #[error("timestamp is {ahead_secs}s in the future, more than the {tolerance_secs}s tolerance")]
    FutureTimestamp {
        ahead_secs: i64,
        tolerance_secs: i64,
    },
    #[error("no signature matches any configured secret")]
    NoMatchingSignature,
    #[error("no signing secret is configured for this source")]
    NoSecret,
    #[error("secret {index} is not a valid whsec_ base64 secret")]
    InvalidSecret { index: usize },
}

impl VerifyError {
    /// A stable machine code for the HTTP boundary.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader(_) => "signature_missing",
            VerifyError::MalformedHeader { .. } => "signature_malformed",
            VerifyError::StaleTimestamp { .. } => "signature_stale",
            VerifyError::FutureTimestamp { .. } => "signature_future",
            VerifyError::NoMatchingSignature => "signature_mismatch",
            VerifyError::NoSecret => "secret_missing",
            VerifyError::InvalidSecret { .. } => "secret_invalid",
        }
    }
}

/// Which secret matched (0 = newest). Index > 0 means a rotated-out secret
/// inside its grace window was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub scheme: Scheme,
    pub secret_index: usize,
}

impl Verified {
    pub fn describe(&self, secret_count: usize) -> String {
        if secret_count > 1 {
            format!(
                "{} signature valid (secret {} of {})",
                self.scheme.as_str(),
                self.secret_index + 1,
                secret_count
            )
        } else {
            format!("{} signature valid", self.scheme.as_str())
        }
    }
}

/// Verify `body` against `headers` with any of `secrets` (newest first).
/// `now` is passed in: the core never reads the clock.
pub fn verify(
    scheme: Scheme,
    headers: &Headers,
    body: &[u8],
    secrets: &[Secret],
    now: DateTime<Utc>,
    tolerance_secs: i64,
) -> Result<Verified, VerifyError> {
    if secrets.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    let secret_index = match scheme {
        Scheme::Github => {
            let h = scheme.signature_header();
            let value = headers.get(h).ok_or(VerifyError::MissingHeader(h))?;
            let hex_sig =
                value
                    .trim()
                    .strip_prefix("sha256=")
                    .ok_or(VerifyError::MalformedHeader {
                        header: h,
                        problem: "expected sha256=<hex>",
                    })?;
            let sig = hex::decode(hex_sig).map_err(|_| VerifyError::MalformedHeader {
                header: h,
                problem: "signature is not hex",
            })?;
            match_any(secrets, |s| hmac_eq(s.expose().as_bytes(), &[body], &sig))?
        }
        Scheme::Kiket => {
            let h = scheme.signature_header();
            let value = headers.get(h).ok_or(VerifyError::MissingHeader(h))?;
            let value = value.trim();
            let hex_sig = value.strip_prefix("sha256=").unwrap_or(value);
            let sig = hex::decode(hex_sig).map_err(|_| VerifyError::MalformedHeader {
                header: h,
                problem: "signature is not hex",
            })?;
            match_any(secrets, |s| hmac_eq(s.expose().as_bytes(), &[body], &sig))?
        }
        Scheme::Stripe => {
            let h = scheme.signature_header();
            let value = headers.get(h).ok_or(VerifyError::MissingHeader(h))?;
            let parsed = parse_stripe_header(value)?;
            check_timestamp(parsed.timestamp, now, tolerance_secs)?;
            let ts = parsed.timestamp.to_string();
            match_any(secrets, |s| {
                parsed
                    .v1
                    .iter()
                    .any(|sig| hmac_eq(s.expose().as_bytes(), &[ts.as_bytes(), b".", body], sig))
            })?
        }
        Scheme::StandardWebhooks => {
            let id = headers
                .get("webhook-id")
                .ok_or(VerifyError::MissingHeader("webhook-id"))?;
            let ts_raw = headers
                .get("webhook-timestamp")
                .ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
            let sigs_raw = headers
                .get("webhook-signature")
                .ok_or(VerifyError::MissingHeader("webhook-signature"))?;
            let ts: i64 = ts_raw
                .trim()
                .parse()
                .map_err(|_| VerifyError::MalformedHeader {
                    header: "webhook-timestamp",
                    problem: "not a unix timestamp",
                })?;
            check_timestamp(ts, now, tolerance_secs)?;
            let sigs = parse_standard_signatures(sigs_raw)?;
            let keys = secrets
                .iter()
                .enumerate()
                .map(|(index, s)| decode_whsec(s).ok_or(VerifyError::InvalidSecret { index }))
                .collect::<Result<Vec<_>, _>>()?;
            let ts = ts.to_string();
            let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
            keys.iter()
                .position(|k| sigs.iter().any(|sig| hmac_eq(k, &parts, sig)))
                .ok_or(VerifyError::NoMatchingSignature)?
        }
    };
    Ok(Verified {
        scheme,
        secret_index,
    })
}

fn match_any(secrets: &[Secret], f: impl Fn(&Secret) -> bool) -> Result<usize, VerifyError> {
    // Check every secret (no early exit) so timing does not tell which
    // position in the rotation list matched.
    let mut found = None;
    for (i, s) in secrets.iter().enumerate() {
        if f(s) && found.is_none() {
            found = Some(i);
        }
    }
    found.ok_or(VerifyError::NoMatchingSignature)
}

fn hmac_eq(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    let computed = hmac_sha256(key, parts);
    computed.as_slice().ct_eq(expected).into()
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        unreachable!("HMAC-SHA256 accepts any key length")
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn check_timestamp(ts: i64, now: DateTime<Utc>, tolerance_secs: i64) -> Result<(), VerifyError> {
    // The timestamp is attacker-controlled: `t=-9223372036854775808` must
    // not overflow (a panic wherever overflow checks are on, as in tests).
    let diff = now.timestamp().saturating_sub(ts);
    if diff > tolerance_secs {
        return Err(VerifyError::StaleTimestamp {
            age_secs: diff,
            tolerance_secs,
        });
    }
    let ahead = diff.saturating_neg();
    if ahead > tolerance_secs {
        return Err(VerifyError::FutureTimestamp {
            ahead_secs: ahead,
            tolerance_secs,
        });
    }
    Ok(())
}

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeSignatureHeader {
    pub timestamp: i64,
    pub v1: Vec<Vec<u8>>,
}

/// Parse `t=…,v1=…,v1=…,v0=…`. Unknown schemes (`v0`) are ignored as
/// Stripe's libraries do; at least one `v1` is required.
pub fn parse_stripe_header(value: &str) -> Result<StripeSignatureHeader, VerifyError> {
    const H: &str = "Stripe-Signature";
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for part in value.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            return Err(VerifyError::MalformedHeader {
                header: H,
                problem: "expected comma-separated key=value pairs",
            });
        };
        match k {
            "t" => {
                timestamp = Some(v.parse::<i64>().map_err(|_| VerifyError::MalformedHeader {
                    header: H,
                    problem: "t is not a unix timestamp",
                })?)
            }
            "v1" => v1.push(hex::decode(v).map_err(|_| VerifyError::MalformedHeader {
                header: H,
                problem: "v1 is not hex",
            })?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::MalformedHeader {
        header: H,
        problem: "no t= timestamp",
    })?;
    if v1.is_empty() {
        return Err(VerifyError::MalformedHeader {
            header: H,
            problem: "no v1= signature",
        });
    }
    Ok(StripeSignatureHeader { timestamp, v1 })
}

/// Parse a Standard Webhooks `webhook-signature`: space-delimited
/// `v1,<base64>` entries; other versions are ignored.
pub fn parse_standard_signatures(value: &str) -> Result<Vec<Vec<u8>>, VerifyError> {
    const H: &str = "webhook-signature";
    let mut out = Vec::new();
    for entry in value.split_whitespace() {
        let Some((version, sig)) = entry.split_once(',') else {
            return Err(VerifyError::MalformedHeader {
                header: H,
                problem: "expected v1,<base64> entries",
            });
        };
        if version == "v1" {
            out.push(B64.decode(sig).map_err(|_| VerifyError::MalformedHeader {
                header: H,
                problem: "signature is not base64",
            })?);
        }
    }
    if out.is_empty() {
        return Err(VerifyError::MalformedHeader {
            header: H,
            problem: "no v1 signature",
        });
    }
    Ok(out)
}

/// Standard Webhooks secrets are `whsec_<base64>`; a bare base64 string is
/// accepted too, as the reference libraries do.
fn decode_whsec(secret: &Secret) -> Option<Vec<u8>> {
    let raw = secret.expose();
    B64.decode(raw.strip_prefix("whsec_").unwrap_or(raw)).ok()
}

/// Produce the headers a sender would set, for `send-test`, re-signing sinks
/// and tests. Returns (header name, value) pairs.
pub fn sign(
    scheme: Scheme,
    secret: &Secret,
    body: &[u8],
    now: DateTime<Utc>,
    msg_id: &str,
) -> Vec<(&'static str, String)> {
    let ts = now.timestamp().to_string();
    match scheme {
        Scheme::Github => vec![(
            "X-Hub-Signature-256",
            format!(
                "sha256={}",
                hex::encode(hmac_sha256(secret.expose().as_bytes(), &[body]))
            ),
        )],
        Scheme::Kiket => vec![(
            "X-Kiket-Signature",
            hex::encode(hmac_sha256(secret.expose().as_bytes(), &[body])),
        )],
        Scheme::Stripe => vec![(
            "Stripe-Signature",
            format!(
                "t={ts},v1={}",
                hex::encode(hmac_sha256(
                    secret.expose().as_bytes(),
                    &[ts.as_bytes(), b".", body]
                ))
            ),
        )],
        Scheme::StandardWebhooks => {
            let key = decode_whsec(secret).unwrap_or_else(|| secret.expose().as_bytes().to_vec());
            let sig = hmac_sha256(&key, &[msg_id.as_bytes(), b".", ts.as_bytes(), b".", body]);
            vec![
                ("webhook-id", msg_id.to_string()),
                ("webhook-timestamp", ts),
                ("webhook-signature", format!("v1,{}", B64.encode(sig))),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }

    #[test]
    fn each_scheme_verifies_what_it_signs() {
        for scheme in [
            Scheme::Github,
            Scheme::Kiket,
            Scheme::Stripe,
            Scheme::StandardWebhooks,
        ] {
            let secret = Secret::new("whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM=");
            let body = br#"{"a":1}"#;
            let headers: Headers = sign(scheme, &secret, body, now(), "msg_1")
                .into_iter()
                .collect();
            let ok = verify(
                scheme,
                &headers,
                body,
                std::slice::from_ref(&secret),
                now(),
                300,
            );
            assert_eq!(ok.map(|v| v.secret_index), Ok(0), "{scheme:?}");
            let bad = verify(scheme, &headers, br#"{"a":2}"#, &[secret], now(), 300);
            assert_eq!(
                bad,
                Err(VerifyError::NoMatchingSignature),
                "{scheme:?} tampered body"
            );
        }
    }
}
