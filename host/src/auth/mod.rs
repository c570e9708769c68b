//! Outgoing auth done by the host (CONTRACT section 14): a webhook's `auth`
//! turns into the headers of each request — Basic, Bearer, an OAuth 2 or
//! Google access token the host fetches and caches, an AWS SigV4 or Azure
//! SAS signature — so that a plugin never holds the secret.
//!
//! An [`Authorizer`] belongs to one webhook. Signing is pure and
//! synchronous ([`Authorizer::headers`]); a token is fetched by the
//! pipeline, which treats its endpoint as a destination (SSRF guard,
//! throttle) and retries it like a delivery: [`Authorizer::token_request`]
//! says what to ask, [`Authorizer::accept`] reads the answer.

pub mod azure_sas;
pub mod clock;
pub mod jwt;
pub mod sigv4;
mod spec;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;

pub use spec::{AuthError, AuthSpec, mask, token_endpoint_of};

use crate::exchange::{Answer, HookRequest, HookResponse};

/// The longest a token is kept, whatever its `expires_in` says; also how
/// long one without `expires_in` is kept (a `401` refreshes it sooner).
const MAX_TOKEN_LIFE: Duration = Duration::from_secs(24 * 3600);

/// The longest access token accepted from a token endpoint.
const MAX_TOKEN_BYTES: usize = 16 << 10;

/// A cached access token.
#[derive(Debug)]
struct Token {
    /// `Bearer …`.
    authorization: Arc<str>,
    /// Three quarters of its `expires_in` after it was issued.
    refresh_at: Instant,
}

/// The auth of one webhook, with its cached token. Its `Debug` shows the
/// type only: the secrets and the token never reach a log.
pub struct Authorizer {
    spec: AuthSpec,
    token: Mutex<Option<Token>>,
    /// Held while a token is fetched, so that the events waiting for it
    /// make one request between them.
    fetching: tokio::sync::Mutex<()>,
}

/// Why a request cannot be authorized now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthorized {
    /// No token is cached: fetch one first.
    #[error("no access token yet")]
    NeedsToken,
    /// The token endpoint's answer is not a token.
    #[error("{0}")]
    BadToken(String),
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("type", &self.kind())
            .finish_non_exhaustive()
    }
}

impl Authorizer {
    /// The authorizer of `spec`.
    pub fn new(spec: AuthSpec) -> Self {
        Self {
            spec,
            token: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Its `type`.
    pub fn kind(&self) -> &'static str {
        self.spec.kind()
    }

    /// Whether its requests depend on the clock (a signature, a token's
    /// expiry): they wait for [`clock::is_set`].
    pub fn needs_clock(&self) -> bool {
        !matches!(self.spec, AuthSpec::Basic { .. } | AuthSpec::Bearer { .. })
    }

    /// Whether it uses an access token: a `401` asks for a new one.
    pub fn uses_token(&self) -> bool {
        self.spec.token_endpoint().is_some()
    }

    /// Where it gets its access tokens, if it uses them.
    pub fn token_endpoint(&self) -> Option<&url::Url> {
        self.spec.token_endpoint()
    }

    /// The headers `request` is sent with, taking the place of any of the
    /// same name the plugin set: computed at `now` for signatures.
    pub fn headers(
        &self,
        request: &HookRequest,
        now: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, Unauthorized> {
        Ok(match &self.spec {
            AuthSpec::Basic { username, password } => vec![(
                "authorization",
                format!(
                    "Basic {}",
                    STANDARD.encode(format!("{username}:{password}"))
                ),
            )],
            AuthSpec::Bearer { token } => vec![("authorization", format!("Bearer {token}"))],
            AuthSpec::OAuth2(_) | AuthSpec::Google(_) => {
                vec![(
                    "authorization",
                    self.cached().ok_or(Unauthorized::NeedsToken)?.to_string(),
                )]
            }
            AuthSpec::AwsSigV4(creds) => sigv4::sign(
                creds,
                request.method.as_str(),
                &request.url,
                &request.headers,
                &request.body,
                now,
            ),
            AuthSpec::AzureSas(sas) => {
                let expiry = unix(now) + sas.lifetime.as_secs();
                vec![(
                    "authorization",
                    azure_sas::token(&sas.resource_uri, sas.key_name.as_deref(), &sas.key, expiry),
                )]
            }
        })
    }

    /// The token, if one is cached and not due for refresh.
    fn cached(&self) -> Option<Arc<str>> {
        let token = self.token.lock().unwrap_or_else(PoisonError::into_inner);
        token
            .as_ref()
            .filter(|t| Instant::now() < t.refresh_at)
            .map(|t| t.authorization.clone())
    }

    /// Waits for any fetch under way; the guard makes the caller the one
    /// that fetches, if a token is still needed then.
    pub async fn fetch_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.fetching.lock().await
    }

    /// Whether a token must be fetched before a request can be sent.
    pub fn needs_token(&self) -> bool {
        self.uses_token() && self.cached().is_none()
    }

    /// The request for a new token, made at `now`: the client credentials
    /// grant with HTTP Basic client authentication (RFC 6749 sections
    /// 4.4 and 2.3.1), or Google's JWT grant.
    pub fn token_request(&self, now: SystemTime) -> Result<Option<HookRequest>, AuthError> {
        let (url, body, basic) = match &self.spec {
            AuthSpec::OAuth2(o) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "client_credentials");
                if let Some(scope) = &o.scope {
                    form.append_pair("scope", scope);
                }
                if let Some(audience) = &o.audience {
                    form.append_pair("audience", audience);
                }
                let client = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let basic = STANDARD.encode(format!(
                    "{}:{}",
                    client(&o.client_id),
                    client(&o.client_secret)
                ));
                (o.token_url.clone(), form.finish(), Some(basic))
            }
            AuthSpec::Google(g) => {
                let assertion = jwt::grant(
                    &g.private_key,
                    jwt::Claims {
                        issuer: &g.client_email,
                        scope: &g.scope,
                        audience: g.token_uri.as_str(),
                        key_id: g.key_id.as_deref(),
                        issued_at: unix(now),
                    },
                )
                .map_err(|e| AuthError(e.to_string()))?;
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
                    .append_pair("assertion", &assertion)
                    .finish();
                (g.token_uri.clone(), body, None)
            }
            _ => return Ok(None),
        };
        let mut headers = vec![
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("accept".to_owned(), "application/json".to_owned()),
        ];
        if let Some(basic) = basic {
            headers.push(("authorization".to_owned(), format!("Basic {basic}")));
        }
        Ok(Some(HookRequest {
            method: http::Method::POST,
            url,
            headers,
            body: Bytes::from(body),
            answer: Answer::None,
        }))
    }

    /// Reads the token endpoint's answer and caches the token; why not,
    /// in words for the hook-error, when it is not one.
    pub fn accept(&self, response: &HookResponse) -> Result<(), Unauthorized> {
        if !(200..300).contains(&response.status) {
            let body = String::from_utf8_lossy(&response.body);
            let body: String = body.chars().take(200).collect();
            return Err(Unauthorized::BadToken(format!(
                "status {}: {body}",
                response.status
            )));
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            access_token: String,
            #[serde(default)]
            expires_in: Option<serde_json::Value>,
        }
        let answer: Answer = serde_json::from_slice(&response.body)
            .map_err(|e| Unauthorized::BadToken(format!("the answer is not a token: {e}")))?;
        let token = answer.access_token;
        if token.is_empty()
            || token.len() > MAX_TOKEN_BYTES
            || http::HeaderValue::from_str(&token).is_err()
        {
            return Err(Unauthorized::BadToken(
                "the access token is empty, too long or not header-safe".into(),
            ));
        }
        let life = answer
            .expires_in
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .map_or(MAX_TOKEN_LIFE, |secs| {
                Duration::from_secs(secs.saturating_mul(3) / 4).min(MAX_TOKEN_LIFE)
            });
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = Some(Token {
            authorization: format!("Bearer {token}").into(),
            refresh_at: Instant::now() + life,
        });
        Ok(())
    }

    /// Drops the cached token (the destination answered `401`), unless
    /// it is no longer `sent`: another request replaced it already.
    pub fn forget(&self, sent: &str) {
        let mut token = self.token.lock().unwrap_or_else(PoisonError::into_inner);
        if token.as_ref().is_some_and(|t| &*t.authorization == sent) {
            *token = None;
        }
    }
}

/// Unix seconds.
fn unix(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn debug_shows_the_type_and_no_secret() {
        let spec = json!({"type": "basic", "username": "u", "password": "hunter2"});
        let auth = Authorizer::new(AuthSpec::parse(&spec).unwrap().unwrap());
        let shown = format!("{auth:?}");
        assert_eq!(shown, r#"Authorizer { type: "basic", .. }"#);
    }

    #[test]
    fn a_token_is_kept_until_three_quarters_of_its_life_and_forgotten_on_a_401() {
        let spec = json!({"type": "oauth2-client-credentials",
            "token_url": "https://id.example.com/token", "client_id": "c", "client_secret": "s"});
        let auth = Authorizer::new(AuthSpec::parse(&spec).unwrap().unwrap());
        assert!(auth.needs_token());
        let answer = |body: &'static str| HookResponse {
            status: 200,
            headers: Vec::new(),
            body: Bytes::from_static(body.as_bytes()),
        };
        auth.accept(&answer(r#"{"access_token": "t1", "expires_in": 3600}"#))
            .unwrap();
        let request = auth.token_request(SystemTime::now()).unwrap().unwrap();
        let headers = auth.headers(&request, SystemTime::now()).unwrap();
        assert_eq!(headers, [("authorization", "Bearer t1".to_owned())]);
        auth.forget("Bearer stale");
        assert!(
            !auth.needs_token(),
            "only the token that was refused is dropped"
        );
        auth.forget("Bearer t1");
        assert!(auth.needs_token());
        auth.accept(&answer(r#"{"access_token": "t2", "expires_in": 0}"#))
            .unwrap();
        assert!(
            auth.needs_token(),
            "a token at the end of its life is fetched again"
        );
        let refused = auth.accept(&answer(r#"{"error": "invalid_client"}"#));
        assert!(matches!(refused, Err(Unauthorized::BadToken(_))));
    }
}
