//! Device keys: the MQTT password of a device, 32 bytes from the operating
//! system's CSPRNG, shown once (on creation and rotation) and kept only as
//! its SHA-256.
//!
//! A slow password hash (argon2, bcrypt) protects low-entropy passwords
//! against guessing. A key of 256 random bits cannot be guessed, so a fast
//! hash keeps it just as safe at rest while a login costs microseconds,
//! not the tens of milliseconds of CPU a gateway would pay per connect
//! with argon2's defaults.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore as _;
use sha2::{Digest as _, Sha256};

/// A fresh device key. Its text is shown to the caller once; `Debug`
/// never shows it.
pub struct DeviceKey(String);

impl DeviceKey {
    /// A new key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the operating system's random source works");
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The key, to hand to the device's owner.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// What is stored in its place.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(self.0.as_bytes())
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey(***)")
    }
}

/// The SHA-256 of a device key, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// The hash of `password`.
    pub fn of(password: &[u8]) -> Self {
        Self(Sha256::digest(password).into())
    }

    /// Whether `password` is the key this is the hash of. Comparing hashes
    /// tells an attacker nothing about the key, whatever the timing.
    pub fn matches(&self, password: &[u8]) -> bool {
        *self == Self::of(password)
    }

    /// The stored form: hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the stored form.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_matches_its_hash_only() {
        let key = DeviceKey::generate();
        let other = DeviceKey::generate();
        assert_ne!(key.reveal(), other.reveal());
        assert_eq!(key.reveal().len(), 43);
        let hash = key.hash();
        assert!(hash.matches(key.reveal().as_bytes()));
        assert!(!hash.matches(other.reveal().as_bytes()));
        assert!(!hash.matches(b""));
        assert_eq!(KeyHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(KeyHash::from_hex("zz"), None);
        assert!(!format!("{key:?}").contains(key.reveal()));
    }
}
