//! Azure shared access signatures (Microsoft's "Control access to IoT Hub
//! with shared access signatures", its "Security token structure"): HMAC-
//! SHA256, under the decoded key, of the URL-encoded resource URI, a
//! newline and the expiry in Unix seconds.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Sha256;

/// What `encodeURIComponent` leaves alone, as Microsoft's samples encode.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The `Authorization` value: `SharedAccessSignature sr=…&sig=…&se=…`,
/// and `&skn=…` with a policy's key.
pub fn token(resource_uri: &str, key_name: Option<&str>, key: &[u8], expiry: u64) -> String {
    let resource = utf8_percent_encode(resource_uri, COMPONENT).to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(resource.as_bytes());
    mac.update(b"\n");
    mac.update(expiry.to_string().as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    let mut token = format!(
        "SharedAccessSignature sr={resource}&sig={}&se={expiry}",
        utf8_percent_encode(&signature, COMPONENT)
    );
    if let Some(name) = key_name {
        token.push_str("&skn=");
        token.extend(utf8_percent_encode(name, COMPONENT));
    }
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed with the Python sample of Microsoft's page
    /// (`generate_sas_token`), with the time fixed.
    #[test]
    fn matches_microsoft_s_sample() {
        let key = STANDARD
            .decode("bXlzZWNyZXRrZXlteXNlY3JldGtleW15c2VjcmV0a2V5MTI=")
            .unwrap();
        assert_eq!(
            token(
                "myhub.azure-devices.net/devices/dev1",
                None,
                &key,
                1_700_000_000
            ),
            SAMPLE
        );
        assert!(
            token("h/devices/d", Some("iothubowner"), &key, 1).ends_with("&se=1&skn=iothubowner")
        );
    }

    const SAMPLE: &str = include_str!("azure_sas_sample.txt");
}
