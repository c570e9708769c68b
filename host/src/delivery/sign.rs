//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): the
//! `webhook-signature` header that lets a receiver check, with any Standard
//! Webhooks library, that a request came from us and was not changed.
//!
//! Pure: the caller brings the key, the message id, the time and the body.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a Standard Webhooks secret; the rest is the key in base64.
pub const SECRET_PREFIX: &str = "whsec_";

/// Why a signing secret is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret does not start with `whsec_`.
    #[error("a signing secret starts with \"{SECRET_PREFIX}\"")]
    Prefix,
    /// The part after the prefix is not base64.
    #[error("the signing secret after \"{SECRET_PREFIX}\" is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The key is empty.
    #[error("the signing secret holds no key")]
    Empty,
}

/// The key of a secret `whsec_<base64>`: the decoded bytes.
pub fn decode_secret(secret: &str) -> Result<Arc<[u8]>, SecretError> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or(SecretError::Prefix)?;
    let key = STANDARD.decode(encoded)?;
    if key.is_empty() {
        return Err(SecretError::Empty);
    }
    Ok(key.into())
}

/// The `webhook-signature` value: `v1,` and the base64 HMAC-SHA256, under
/// `key`, of `{id}.{timestamp}.{body}`.
pub fn signature(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vector of the Standard Webhooks libraries.
    #[test]
    fn the_reference_vector_signs_as_the_specification_says() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn any_change_changes_the_signature() {
        let key = [7u8; 24];
        let base = signature(&key, "id", 1, b"body");
        assert_ne!(signature(&key, "id", 2, b"body"), base);
        assert_ne!(signature(&key, "id2", 1, b"body"), base);
        assert_ne!(signature(&key, "id", 1, b"body!"), base);
        assert_ne!(signature(&[8u8; 24], "id", 1, b"body"), base);
    }

    #[test]
    fn a_bad_secret_says_why() {
        assert_eq!(
            decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SecretError::Prefix)
        );
        assert!(matches!(
            decode_secret("whsec_not base64!"),
            Err(SecretError::Base64(_))
        ));
        assert_eq!(decode_secret("whsec_"), Err(SecretError::Empty));
    }
}
