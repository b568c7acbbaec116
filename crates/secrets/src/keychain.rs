//! The keychain trait and its two implementations.

use std::collections::HashMap;
use std::sync::Mutex;

use keyring::secret_service::SsCredential;

use crate::Secret;

/// The Secret Service `service` attribute of every Kite Desk item; the
/// `username` attribute is the secret's name. `secret-tool lookup service
/// kitedesk username webhook/github` finds one.
pub const SERVICE: &str = "kitedesk";

/// Why a keychain call failed. Messages name what is missing and never
/// contain a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeychainError {
    /// No Secret Service answers on the session bus (no bus, or a bus where
    /// nothing provides `org.freedesktop.secrets`).
    #[error("no Secret Service on the session bus ({bus}): {detail}")]
    NoService { bus: String, detail: String },
    /// The service answered but refused access (a locked collection whose
    /// unlock prompt was dismissed or cannot be shown).
    #[error(
        "the keychain is locked (unlock it, e.g. by logging in to the desktop session): {detail}"
    )]
    Locked { detail: String },
    /// The service did not answer in time.
    #[error("the keychain did not answer within {secs} s (is it waiting for an unlock prompt?)")]
    Timeout { secs: u64 },
    #[error("keychain entry {name:?} is not UTF-8 text")]
    BadEncoding { name: String },
    #[error(
        "{count} keychain items match {name:?} (service \"kitedesk\"); remove the duplicates with \
         secret-tool or Seahorse"
    )]
    Ambiguous { name: String, count: usize },
    #[error("the keychain refused {name:?}: {detail}")]
    Refused { name: String, detail: String },
}

impl KeychainError {
    /// The keychain as a whole cannot be used right now (as opposed to a
    /// problem with one entry).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            KeychainError::NoService { .. }
                | KeychainError::Locked { .. }
                | KeychainError::Timeout { .. }
        )
    }

    /// The "no Secret Service" error for this process's session bus.
    pub fn no_service(detail: impl Into<String>) -> Self {
        let bus = match std::env::var("DBUS_SESSION_BUS_ADDRESS") {
            Ok(a) if !a.is_empty() => format!("DBUS_SESSION_BUS_ADDRESS={a}"),
            _ => "DBUS_SESSION_BUS_ADDRESS is not set".to_string(),
        };
        KeychainError::NoService {
            bus,
            detail: detail.into(),
        }
    }
}

/// Where secret values live. Blocking: async callers use `spawn_blocking`.
pub trait Keychain: Send + Sync + std::fmt::Debug {
    /// `"secret-service"` or `"memory"`, for health reports.
    fn backend(&self) -> &'static str;
    /// Can the keychain be used right now? Reads a name that never exists.
    fn check(&self) -> Result<(), KeychainError>;
    /// The value stored under `name`, if any.
    fn get(&self, name: &str) -> Result<Option<Secret>, KeychainError>;
    /// Store `value` under `name`, replacing any value.
    fn set(&self, name: &str, value: &Secret) -> Result<(), KeychainError>;
    /// Remove `name`; `false` when there was nothing to remove.
    fn delete(&self, name: &str) -> Result<bool, KeychainError>;
}

/// The Secret Service (freedesktop.org) on the D-Bus session bus, through
/// the `keyring` crate: items in the default collection with attributes
/// `service` = [`SERVICE`] (or another service name, for tests) and
/// `username` = the secret's name.
#[derive(Debug, Clone)]
pub struct SecretServiceKeychain {
    service: String,
}

impl Default for SecretServiceKeychain {
    fn default() -> Self {
        Self::new(SERVICE)
    }
}

impl SecretServiceKeychain {
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
        }
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry, KeychainError> {
        let cred = SsCredential::new_with_target(None, &self.service, name)
            .map_err(|e| map_err(name, e))?;
        Ok(keyring::Entry::new_with_credential(Box::new(cred)))
    }
}

/// An account that is never written: reading it tells whether the service
/// answers (`NoEntry`) without touching any real item.
const PROBE_ACCOUNT: &str = "kitedesk-probe#never-set";

impl Keychain for SecretServiceKeychain {
    fn backend(&self) -> &'static str {
        "secret-service"
    }

    fn check(&self) -> Result<(), KeychainError> {
        self.get(PROBE_ACCOUNT).map(|_| ())
    }

    fn get(&self, name: &str) -> Result<Option<Secret>, KeychainError> {
        match self.entry(name)?.get_password() {
            Ok(v) => Ok(Some(Secret::new(v))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_err(name, e)),
        }
    }

    fn set(&self, name: &str, value: &Secret) -> Result<(), KeychainError> {
        self.entry(name)?
            .set_password(value.expose())
            .map_err(|e| map_err(name, e))
    }

    fn delete(&self, name: &str) -> Result<bool, KeychainError> {
        match self.entry(name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(map_err(name, e)),
        }
    }
}

/// Map a `keyring` error to ours. `NoStorageAccess` is a locked keychain;
/// `PlatformFailure` is (nearly always) no Secret Service on the bus.
/// `BadEncoding`'s bytes (a value) are dropped here.
fn map_err(name: &str, e: keyring::Error) -> KeychainError {
    match e {
        keyring::Error::PlatformFailure(inner) => KeychainError::no_service(inner.to_string()),
        keyring::Error::NoStorageAccess(inner) => KeychainError::Locked {
            detail: inner.to_string(),
        },
        keyring::Error::BadEncoding(_) => KeychainError::BadEncoding {
            name: name.to_string(),
        },
        keyring::Error::Ambiguous(items) => KeychainError::Ambiguous {
            name: name.to_string(),
            count: items.len(),
        },
        keyring::Error::TooLong(attr, limit) => KeychainError::Refused {
            name: name.to_string(),
            detail: format!("attribute {attr} is longer than {limit}"),
        },
        keyring::Error::Invalid(attr, reason) => KeychainError::Refused {
            name: name.to_string(),
            detail: format!("attribute {attr} is invalid: {reason}"),
        },
        // `keyring::Error` is non-exhaustive; name the variant, never a value.
        other => KeychainError::Refused {
            name: name.to_string(),
            detail: match other {
                keyring::Error::NoEntry => "no such entry".to_string(),
                _ => "unexpected keychain error".to_string(),
            },
        },
    }
}

/// An in-memory keychain for unit tests. [`MemoryKeychain::set_unavailable`]
/// makes every call fail as a missing Secret Service would.
#[derive(Debug, Default)]
pub struct MemoryKeychain {
    values: Mutex<HashMap<String, Secret>>,
    unavailable: Mutex<Option<KeychainError>>,
}

impl MemoryKeychain {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, fail every call with `err` (`None` restores service).
    pub fn set_unavailable(&self, err: Option<KeychainError>) {
        *lock(&self.unavailable) = err;
    }

    /// Names currently stored (including `#previous` entries), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.values).keys().cloned().collect();
        v.sort();
        v
    }

    fn available(&self) -> Result<(), KeychainError> {
        match &*lock(&self.unavailable) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

/// A poisoned lock only means another test thread panicked; the map is
/// still consistent (every operation is a single insert/remove).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Keychain for MemoryKeychain {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn check(&self) -> Result<(), KeychainError> {
        self.available()
    }

    fn get(&self, name: &str) -> Result<Option<Secret>, KeychainError> {
        self.available()?;
        Ok(lock(&self.values).get(name).cloned())
    }

    fn set(&self, name: &str, value: &Secret) -> Result<(), KeychainError> {
        self.available()?;
        lock(&self.values).insert(name.to_string(), value.clone());
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<bool, KeychainError> {
        self.available()?;
        Ok(lock(&self.values).remove(name).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_round_trip() {
        let k = MemoryKeychain::new();
        assert_eq!(k.get("a").ok(), Some(None));
        k.set("a", &Secret::new("v1")).ok();
        assert_eq!(
            k.get("a").ok().flatten().map(|s| s.expose().to_string()),
            Some("v1".into())
        );
        k.set("a", &Secret::new("v2")).ok();
        assert_eq!(
            k.get("a").ok().flatten().map(|s| s.expose().to_string()),
            Some("v2".into())
        );
        assert_eq!(k.delete("a").ok(), Some(true));
        assert_eq!(
            k.delete("a").ok(),
            Some(false),
            "a second delete finds nothing"
        );
    }

    #[test]
    fn memory_unavailable_fails_every_call() {
        let k = MemoryKeychain::new();
        k.set_unavailable(Some(KeychainError::no_service("test")));
        assert!(k.check().is_err_and(|e| e.is_unavailable()));
        assert!(k.get("a").is_err());
        assert!(k.set("a", &Secret::new("v")).is_err());
        assert!(k.names().is_empty(), "nothing written while unavailable");
    }

    #[test]
    fn messages_name_what_is_missing() {
        let e = KeychainError::no_service("org.freedesktop.DBus.Error.ServiceUnknown");
        let msg = e.to_string();
        assert!(
            msg.starts_with("no Secret Service on the session bus (DBUS_SESSION_BUS_ADDRESS"),
            "{msg}"
        );
        let locked = map_err(
            "x",
            keyring::Error::NoStorageAccess("prompt dismissed".into()),
        );
        assert!(
            locked.to_string().starts_with("the keychain is locked"),
            "{locked}"
        );
        let bad = map_err("x", keyring::Error::BadEncoding(b"hunter2".to_vec()));
        assert!(
            !bad.to_string().contains("hunter2"),
            "bytes of a value never reach a message"
        );
    }
}
