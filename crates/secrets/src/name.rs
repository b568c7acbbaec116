//! Secret names and kinds.
//!
//! A name is the keychain account: lowercase path segments such as
//! `webhook/github` or `relay/acme`. The webhook secret for source `S` is
//! named `webhook/S`. `#` is reserved: `<name>#previous` holds a rotated-out
//! value during its grace window.

use serde::{Deserialize, Serialize};

/// Appended to a name for the previous value during a rotation's grace window.
pub const PREVIOUS_SUFFIX: &str = "#previous";

/// The keychain account of `name`'s previous value.
pub fn previous_name(name: &str) -> String {
    format!("{name}{PREVIOUS_SUFFIX}")
}

/// What a secret is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// A webhook signing secret for one source (`webhook/<source>`).
    Webhook,
    /// A token for a Kite relay.
    RelayToken,
    /// A token for some other API.
    ApiToken,
}

impl SecretKind {
    pub const ALL: [SecretKind; 3] = [
        SecretKind::Webhook,
        SecretKind::RelayToken,
        SecretKind::ApiToken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Webhook => "webhook",
            SecretKind::RelayToken => "relay_token",
            SecretKind::ApiToken => "api_token",
        }
    }

    pub fn parse(s: &str) -> Option<SecretKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind a name suggests: `webhook/…` → webhook, `relay/…` → relay
    /// token, anything else → API token.
    pub fn for_name(name: &str) -> SecretKind {
        if name.starts_with("webhook/") {
            SecretKind::Webhook
        } else if name.starts_with("relay/") {
            SecretKind::RelayToken
        } else {
            SecretKind::ApiToken
        }
    }
}

impl std::fmt::Display for SecretKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the secret name is empty")]
    Empty,
    #[error("the secret name is {len} characters; the limit is {MAX_NAME_LEN}")]
    TooLong { len: usize },
    #[error(
        "secret name {name:?}: segment {segment} must start with a lowercase letter or digit \
         and contain only a-z, 0-9, '.', '_' and '-' (segments are separated by '/')"
    )]
    BadSegment { name: String, segment: usize },
}

/// Longest accepted name (well below keychain attribute limits).
pub const MAX_NAME_LEN: usize = 128;

/// Check a secret name. Names are keychain accounts and URL path parts, so
/// they are kept to a small, unambiguous alphabet.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong { len: name.len() });
    }
    for (i, seg) in name.split('/').enumerate() {
        let b = seg.as_bytes();
        let ok = b
            .first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && b.iter().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
            });
        if !ok {
            return Err(NameError::BadSegment {
                name: name.to_string(),
                segment: i + 1,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["webhook/github", "relay/acme-prod", "openai", "a/b/c.d_e"] {
            assert_eq!(check_name(good), Ok(()), "{good} is a valid name");
        }
        for bad in [
            "",
            "Webhook/x",
            "webhook/",
            "/x",
            "a//b",
            "x#previous",
            "a b",
            "-x",
            "ü",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(
            check_name(&"a".repeat(MAX_NAME_LEN + 1)),
            Err(NameError::TooLong {
                len: MAX_NAME_LEN + 1
            })
        );
    }

    #[test]
    fn previous_names_are_never_valid_names() {
        // So no user secret can collide with a rotated-out value.
        assert!(check_name(&previous_name("webhook/github")).is_err());
    }

    #[test]
    fn kinds_round_trip() {
        for k in SecretKind::ALL {
            assert_eq!(SecretKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_value(k).ok(),
                Some(serde_json::Value::String(k.as_str().into()))
            );
        }
        assert_eq!(SecretKind::for_name("webhook/x"), SecretKind::Webhook);
        assert_eq!(SecretKind::for_name("relay/x"), SecretKind::RelayToken);
        assert_eq!(SecretKind::for_name("openai"), SecretKind::ApiToken);
    }
}
