//! The `auth` of a webhook definition or a plugin manifest (CONTRACT
//! section 14): what the host signs or authenticates a webhook's requests
//! with, checked once when the definition arrives.
//!
//! The JSON is stored as given (so that a read shows it, masked, in the
//! shape it was written); [`AuthSpec::parse`] reads it, and [`mask`] is
//! the one place that knows which of its members are secrets.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::secrets::MASK;

/// How long an Azure SAS token lives when `lifetime` is not given.
pub const DEFAULT_SAS_LIFETIME: Duration = Duration::from_secs(3600);

/// The longest `lifetime` a SAS token may have: a year, like the portal's.
const MAX_SAS_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// The members of an `auth` (and of a Google key within it) that are
/// secrets: masked in every read, write-only.
const SECRET_MEMBERS: [&str; 7] = [
    "password",
    "token",
    "client_secret",
    "secret_access_key",
    "session_token",
    "private_key",
    "private_key_id",
];

/// Why an `auth` is unusable; the message names the member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// A checked `auth`.
#[derive(Debug, Clone)]
pub enum AuthSpec {
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// The user.
        username: String,
        /// The password.
        password: String,
    },
    /// `Authorization: Bearer token`.
    Bearer {
        /// The token.
        token: String,
    },
    /// A token from an OAuth 2 token endpoint, client credentials grant.
    OAuth2(OAuth2),
    /// AWS Signature Version 4.
    AwsSigV4(super::sigv4::Credentials),
    /// An Azure shared access signature.
    AzureSas(AzureSas),
    /// A Google access token for a service account.
    Google(Google),
}

/// `oauth2-client-credentials`.
#[derive(Debug, Clone)]
pub struct OAuth2 {
    /// The token endpoint: a destination of its own.
    pub token_url: url::Url,
    /// The client.
    pub client_id: String,
    /// Its secret, sent with HTTP Basic (RFC 6749 section 2.3.1).
    pub client_secret: String,
    /// The scope asked for.
    pub scope: Option<String>,
    /// The audience asked for (Auth0, Okta).
    pub audience: Option<String>,
}

/// `azure-sas`.
#[derive(Debug, Clone)]
pub struct AzureSas {
    /// What the token grants access to, e.g. `myhub.azure-devices.net/devices/d1`.
    pub resource_uri: String,
    /// The shared access policy (`skn`), when the key is a policy's.
    pub key_name: Option<String>,
    /// The key, decoded from its base64.
    pub key: Vec<u8>,
    /// How long each token lives.
    pub lifetime: Duration,
}

/// `google-service-account`.
#[derive(Debug, Clone)]
pub struct Google {
    /// The service account (`client_email`).
    pub client_email: String,
    /// Its key's id (`private_key_id`), the JWT's `kid` when given.
    pub key_id: Option<String>,
    /// Its private key, PKCS#8 DER.
    pub private_key: Vec<u8>,
    /// The token endpoint (`token_uri`): a destination of its own.
    pub token_uri: url::Url,
    /// The scopes asked for, space-separated.
    pub scope: String,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
enum Raw {
    Basic {
        username: String,
        password: String,
    },
    Bearer {
        token: String,
    },
    #[serde(rename = "oauth2-client-credentials")]
    OAuth2 {
        token_url: String,
        client_id: String,
        client_secret: String,
        #[serde(default)]
        scope: Option<String>,
        #[serde(default)]
        audience: Option<String>,
    },
    #[serde(rename = "aws-sigv4")]
    AwsSigV4 {
        region: String,
        service: String,
        access_key_id: String,
        secret_access_key: String,
        #[serde(default)]
        session_token: Option<String>,
    },
    AzureSas {
        resource_uri: String,
        #[serde(default)]
        key_name: Option<String>,
        key: String,
        #[serde(default, with = "humantime_serde")]
        lifetime: Option<Duration>,
    },
    GoogleServiceAccount {
        key: GoogleKey,
        scope: String,
    },
}

/// The members of a service account's JSON key the host uses; the others
/// (`project_id`, `auth_uri`, …) are ignored.
#[derive(Deserialize)]
struct GoogleKey {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    token_uri: String,
}

impl AuthSpec {
    /// Reads and checks an `auth`. One without `type` is Particle's
    /// `{"username", "password"}`: `None`, for a Particle webhook, whose
    /// plugin renders it itself (its members are templates).
    pub fn parse(value: &Value) -> Result<Option<Self>, AuthError> {
        let Value::Object(members) = value else {
            return Err(AuthError("must be an object".into()));
        };
        if !members.contains_key("type") {
            return Ok(None);
        }
        Self::typed(value).map(Some)
    }

    /// Reads and checks an `auth` where the host does all of it: one
    /// without `type` is `basic`.
    pub fn parse_host(value: &Value) -> Result<Self, AuthError> {
        match value {
            Value::Object(members) if !members.contains_key("type") => {
                let mut typed = members.clone();
                typed.insert("type".into(), "basic".into());
                Self::typed(&Value::Object(typed))
            }
            _ => Self::typed(value),
        }
    }

    fn typed(value: &Value) -> Result<Self, AuthError> {
        let raw = Raw::deserialize(value).map_err(|e| AuthError(e.to_string()))?;
        let spec = match raw {
            Raw::Basic { username, password } => {
                if username.contains(':') {
                    return Err(AuthError("`username` may not contain `:`".into()));
                }
                Self::Basic { username, password }
            }
            Raw::Bearer { token } => {
                header_safe("token", &token)?;
                Self::Bearer { token }
            }
            Raw::OAuth2 {
                token_url,
                client_id,
                client_secret,
                scope,
                audience,
            } => {
                let token_url = http_url("token_url", &token_url)?;
                Self::OAuth2(OAuth2 {
                    token_url,
                    client_id,
                    client_secret,
                    scope,
                    audience,
                })
            }
            Raw::AwsSigV4 {
                region,
                service,
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                for (name, text) in [
                    ("region", &region),
                    ("service", &service),
                    ("access_key_id", &access_key_id),
                ] {
                    scope_part(name, text)?;
                }
                if let Some(token) = &session_token {
                    header_safe("session_token", token)?;
                }
                Self::AwsSigV4(super::sigv4::Credentials {
                    region,
                    service,
                    access_key_id,
                    secret_access_key,
                    session_token,
                })
            }
            Raw::AzureSas {
                resource_uri,
                key_name,
                key,
                lifetime,
            } => {
                use base64::Engine as _;
                let key = base64::engine::general_purpose::STANDARD
                    .decode(key.trim())
                    .map_err(|e| AuthError(format!("`key` is not base64: {e}")))?;
                let lifetime = lifetime.unwrap_or(DEFAULT_SAS_LIFETIME);
                if lifetime < Duration::from_secs(60) || lifetime > MAX_SAS_LIFETIME {
                    return Err(AuthError(
                        "`lifetime` must be between 1 minute and 365 days".into(),
                    ));
                }
                if resource_uri.is_empty() {
                    return Err(AuthError("`resource_uri` may not be empty".into()));
                }
                Self::AzureSas(AzureSas {
                    resource_uri,
                    key_name,
                    key,
                    lifetime,
                })
            }
            Raw::GoogleServiceAccount { key, scope } => {
                let token_uri = http_url("key.token_uri", &key.token_uri)?;
                let private_key = super::jwt::pkcs8_der(&key.private_key)
                    .map_err(|e| AuthError(format!("`key.private_key`: {e}")))?;
                Self::Google(Google {
                    client_email: key.client_email,
                    key_id: key.private_key_id,
                    private_key,
                    token_uri,
                    scope,
                })
            }
        };
        Ok(spec)
    }

    /// Its `type`, as a read may show it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Basic { .. } => "basic",
            Self::Bearer { .. } => "bearer",
            Self::OAuth2(_) => "oauth2-client-credentials",
            Self::AwsSigV4(_) => "aws-sigv4",
            Self::AzureSas(_) => "azure-sas",
            Self::Google(_) => "google-service-account",
        }
    }

    /// The token endpoint it asks, if it asks one: a destination of the
    /// webhook like its URL.
    pub fn token_endpoint(&self) -> Option<&url::Url> {
        match self {
            Self::OAuth2(o) => Some(&o.token_url),
            Self::Google(g) => Some(&g.token_uri),
            _ => None,
        }
    }
}

/// An `auth` (or a view of one) with its secrets masked: the members named
/// in [`SECRET_MEMBERS`], an Azure `key` and a Google key's secrets.
pub fn mask(auth: &mut Value) {
    let Value::Object(members) = auth else {
        return;
    };
    for (name, value) in members.iter_mut() {
        let secret =
            SECRET_MEMBERS.contains(&name.as_str()) || (name == "key" && value.is_string());
        if secret && !value.is_null() {
            *value = Value::String(MASK.to_owned());
        } else if name == "key" {
            mask(value);
        }
    }
}

/// Where an `auth` sends its secrets besides the webhook's URL: its token
/// endpoint, as written (`None` when it has none).
pub fn token_endpoint_of(auth: &Value) -> Option<&str> {
    auth.get("token_url")
        .or_else(|| auth.get("key").and_then(|k| k.get("token_uri")))
        .and_then(Value::as_str)
}

fn http_url(name: &str, text: &str) -> Result<url::Url, AuthError> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
        _ => Err(AuthError(format!("`{name}` must be an http(s) URL"))),
    }
}

/// A value the host puts in a header as is.
fn header_safe(name: &str, value: &str) -> Result<(), AuthError> {
    if value.is_empty() || http::HeaderValue::from_str(value).is_err() {
        Err(AuthError(format!(
            "`{name}` must be non-empty visible ASCII"
        )))
    } else {
        Ok(())
    }
}

/// A part of SigV4's credential scope: no `/`, no spaces.
fn scope_part(name: &str, value: &str) -> Result<(), AuthError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        Err(AuthError(format!(
            "`{name}` must be non-empty, without spaces or `/`"
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn without_a_type_it_is_particle_s_own() {
        assert!(
            AuthSpec::parse(&json!({"username": "u", "password": "p"}))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn each_type_is_read() {
        let specs = [
            json!({"type": "basic", "username": "u", "password": "p"}),
            json!({"type": "bearer", "token": "t"}),
            json!({"type": "oauth2-client-credentials", "token_url": "https://id.example.com/token",
                   "client_id": "c", "client_secret": "s", "scope": "a b"}),
            json!({"type": "aws-sigv4", "region": "eu-west-1", "service": "lambda",
                   "access_key_id": "AKID", "secret_access_key": "s"}),
            json!({"type": "azure-sas", "resource_uri": "h.azure-devices.net/devices/d",
                   "key": "a2V5", "lifetime": "2h"}),
        ];
        let kinds: Vec<_> = specs
            .iter()
            .map(|s| AuthSpec::parse(s).unwrap().unwrap().kind())
            .collect();
        assert_eq!(
            kinds,
            [
                "basic",
                "bearer",
                "oauth2-client-credentials",
                "aws-sigv4",
                "azure-sas"
            ]
        );
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (json!({"type": "bearer"}), "token"),
            (
                json!({"type": "basic", "username": "u", "password": "p", "x": 1}),
                "x",
            ),
            (json!({"type": "kerberos"}), "kerberos"),
            (
                json!({"type": "azure-sas", "resource_uri": "r", "key": "%%"}),
                "base64",
            ),
            (
                json!({"type": "azure-sas", "resource_uri": "r", "key": "a2V5", "lifetime": "1s"}),
                "lifetime",
            ),
            (
                json!({"type": "oauth2-client-credentials", "token_url": "ftp://h/t",
                    "client_id": "c", "client_secret": "s"}),
                "token_url",
            ),
            (
                json!({"type": "aws-sigv4", "region": "eu/1", "service": "s",
                    "access_key_id": "a", "secret_access_key": "s"}),
                "region",
            ),
            (
                json!({"type": "google-service-account", "scope": "s", "key": {
                    "client_email": "e", "private_key": "not a key",
                    "token_uri": "https://oauth2.googleapis.com/token"}}),
                "private_key",
            ),
        ];
        for (spec, named) in cases {
            let err = AuthSpec::parse(&spec).unwrap_err().to_string();
            assert!(err.contains(named), "{spec}: {err}");
        }
    }

    #[test]
    fn every_secret_is_masked_and_nothing_else() {
        let mut auth = json!({"type": "aws-sigv4", "region": "r", "service": "s",
            "access_key_id": "AKID", "secret_access_key": "sk", "session_token": "st"});
        mask(&mut auth);
        assert_eq!(
            auth,
            json!({"type": "aws-sigv4", "region": "r", "service": "s",
                "access_key_id": "AKID", "secret_access_key": MASK, "session_token": MASK})
        );
        let mut google = json!({"type": "google-service-account", "scope": "s", "key": {
            "client_email": "e", "private_key": "pk", "private_key_id": "id",
            "token_uri": "https://t/"}});
        mask(&mut google);
        assert_eq!(google["key"]["private_key"], MASK);
        assert_eq!(google["key"]["private_key_id"], MASK);
        assert_eq!(google["key"]["client_email"], "e");
        let mut azure = json!({"type": "azure-sas", "resource_uri": "r", "key": "k"});
        mask(&mut azure);
        assert_eq!(azure["key"], MASK);
        let mut particle = json!({"username": "u", "password": "p"});
        mask(&mut particle);
        assert_eq!(particle, json!({"username": "u", "password": MASK}));
    }
}
