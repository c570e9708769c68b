//! The JWT grant of a Google service account (RFC 7523, Google's "Using
//! OAuth 2.0 for Server to Server Applications"): an RS256 JWT signed with
//! the account's key, by the same `ring` signer rustls uses for TLS.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls::SignatureScheme;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;

/// How long a grant is valid: Google's maximum.
const GRANT_LIFETIME_SECS: u64 = 3600;

/// Why a key cannot sign.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// Not a PEM `PRIVATE KEY` (PKCS#8), as Google's JSON keys hold.
    #[error("not a PEM \"PRIVATE KEY\" (PKCS#8): {0}")]
    Pem(String),
    /// A PKCS#8 key that is not an RSA key `ring` can sign with.
    #[error("not an RSA key that can sign RS256: {0}")]
    Key(String),
}

/// The DER of a PEM PKCS#8 private key, checked to sign RS256.
pub fn pkcs8_der(pem: &str) -> Result<Vec<u8>, JwtError> {
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| JwtError::Pem(e.to_string()))?;
    let der = der.secret_pkcs8_der().to_vec();
    signer(&der)?;
    Ok(der)
}

/// The RS256 signer of a PKCS#8 RSA key.
fn signer(der: &[u8]) -> Result<Box<dyn rustls::sign::Signer>, JwtError> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.to_vec()));
    let key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| JwtError::Key(e.to_string()))?;
    key.choose_scheme(&[SignatureScheme::RSA_PKCS1_SHA256])
        .ok_or_else(|| JwtError::Key("it does not sign RSA PKCS#1 SHA-256".into()))
}

/// What a grant asserts.
#[derive(Debug, Clone, Copy)]
pub struct Claims<'a> {
    /// The service account.
    pub issuer: &'a str,
    /// The scopes, space-separated.
    pub scope: &'a str,
    /// The token endpoint.
    pub audience: &'a str,
    /// The key's id, the header's `kid`.
    pub key_id: Option<&'a str>,
    /// Unix seconds.
    pub issued_at: u64,
}

/// The signed JWT `header.claims.signature`, valid for an hour from
/// `issued_at`.
pub fn grant(der: &[u8], claims: Claims<'_>) -> Result<String, JwtError> {
    let header = match claims.key_id {
        Some(kid) => json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
        None => json!({"alg": "RS256", "typ": "JWT"}),
    };
    let body = json!({
        "iss": claims.issuer,
        "scope": claims.scope,
        "aud": claims.audience,
        "iat": claims.issued_at,
        "exp": claims.issued_at + GRANT_LIFETIME_SECS,
    });
    let mut jwt = URL_SAFE_NO_PAD.encode(header.to_string());
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(body.to_string()));
    let signature = signer(der)?
        .sign(jwt.as_bytes())
        .map_err(|e| JwtError::Key(e.to_string()))?;
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(jwt)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 2048-bit RSA key made for these tests only (`openssl genpkey
    /// -algorithm RSA`), and its public half.
    pub(crate) const TEST_KEY: &str = include_str!("test_rsa_key.pem");
    const TEST_PUBLIC_KEY: &str = include_str!("test_rsa_key.pub.pem");

    #[test]
    fn a_grant_verifies_with_the_public_key() {
        let der = pkcs8_der(TEST_KEY).unwrap();
        let jwt = grant(
            &der,
            Claims {
                issuer: "sa@p.iam.gserviceaccount.com",
                scope: "https://www.googleapis.com/auth/pubsub",
                audience: "https://oauth2.googleapis.com/token",
                key_id: Some("k1"),
                issued_at: 1_700_000_000,
            },
        )
        .unwrap();
        let (signed, signature) = jwt.rsplit_once('.').unwrap();
        let (header, body) = signed.split_once('.').unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}));
        let body: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        assert_eq!(body["exp"], 1_700_003_600);
        let public =
            rustls::pki_types::SubjectPublicKeyInfoDer::from_pem_slice(TEST_PUBLIC_KEY.as_bytes())
                .unwrap();
        let spki = public.as_ref();
        // The SubjectPublicKeyInfo's BIT STRING holds the RSAPublicKey
        // that ring verifies with: the last DER element.
        let rsa_public = &spki[spki.len() - 270..];
        let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        let (_, verifiers) = algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == SignatureScheme::RSA_PKCS1_SHA256)
            .unwrap();
        verifiers[0]
            .verify_signature(
                rsa_public,
                signed.as_bytes(),
                &URL_SAFE_NO_PAD.decode(signature).unwrap(),
            )
            .expect("the signature verifies");
    }

    #[test]
    fn a_key_that_is_not_pkcs8_rsa_is_refused() {
        assert!(matches!(pkcs8_der("hello"), Err(JwtError::Pem(_))));
    }
}
