//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): the
//! `webhook-signature` header that lets a receiver check, with any Standard
//! Webhooks library, that a request came from us and was not changed.
//!
//! Pure: the caller brings the key, the message id, the time and the body.
//! The key is the decoded part of a `whsec_…` secret; decoding it belongs
//! to where the secret is read (the webhook's definition).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

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
        // The secret `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`, decoded.
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
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
}
