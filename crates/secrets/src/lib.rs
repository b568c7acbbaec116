//! Kite Desk's secret values: webhook signing secrets, relay and API tokens.
//!
//! Values live only in the OS keychain, behind the small [`Keychain`] trait:
//! [`SecretServiceKeychain`] talks to the Secret Service on the D-Bus session
//! bus (gnome-keyring, KeePassXC…) through the `keyring` crate;
//! [`MemoryKeychain`] is for unit tests. There is no plaintext fallback: when
//! no keychain is reachable, every call fails with a [`KeychainError`] that
//! says what is missing.
//!
//! The history database keeps only metadata ([`SecretKind`], times and a
//! short [`fingerprint`]); values are [`Secret`]s, whose `Debug`/`Display`
//! redact.
//!
//! The trait is blocking (the Secret Service client runs its own D-Bus round
//! trips); async callers run it on `spawn_blocking`.

mod keychain;
mod name;

pub use keychain::{Keychain, KeychainError, MemoryKeychain, SERVICE, SecretServiceKeychain};
pub use kitedesk_core::verify::Secret;
pub use name::{NameError, PREVIOUS_SUFFIX, SecretKind, check_name, previous_name};

use sha2::{Digest as _, Sha256};

/// The short fingerprint shown instead of a value: the first 8 hex digits of
/// the value's SHA-256. Enough to tell two values apart at a glance, far too
/// little to recover or brute-force-confirm a random secret.
pub fn fingerprint(value: &Secret) -> String {
    let digest = Sha256::digest(value.expose().as_bytes());
    hex::encode(&digest[..4])
}

/// The largest value accepted (tokens and HMAC keys are far smaller).
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// Why a value cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("the secret value is empty")]
    Empty,
    #[error("the secret value is {len} bytes; the limit is {MAX_VALUE_BYTES}")]
    TooLong { len: usize },
    #[error(
        "the secret value contains a control character (a pasted newline?); \
         values are single-line text"
    )]
    ControlCharacter,
}

/// Check a value before it goes to the keychain.
pub fn check_value(value: &Secret) -> Result<(), ValueError> {
    let v = value.expose();
    if v.is_empty() {
        return Err(ValueError::Empty);
    }
    if v.len() > MAX_VALUE_BYTES {
        return Err(ValueError::TooLong { len: v.len() });
    }
    if v.chars().any(char::is_control) {
        return Err(ValueError::ControlCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_eight_hex_of_sha256() {
        // sha256("abc") = ba7816bf8f01cfea…
        assert_eq!(fingerprint(&Secret::new("abc")), "ba7816bf");
        assert_ne!(
            fingerprint(&Secret::new("abd")),
            "ba7816bf",
            "different values give different fingerprints"
        );
    }

    #[test]
    fn values_are_checked() {
        assert_eq!(check_value(&Secret::new("")), Err(ValueError::Empty));
        assert_eq!(
            check_value(&Secret::new("a\nb")),
            Err(ValueError::ControlCharacter)
        );
        assert_eq!(
            check_value(&Secret::new("x".repeat(MAX_VALUE_BYTES + 1))),
            Err(ValueError::TooLong {
                len: MAX_VALUE_BYTES + 1
            })
        );
        assert_eq!(check_value(&Secret::new("whsec_abc= +/")), Ok(()));
    }

    #[test]
    fn secret_redacts() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }
}
