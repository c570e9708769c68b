//! The `auth` member that every dialect's definitions may have (CONTRACT
//! section 14): checked into the webhook's [`Authorizer`], masked in every
//! read, and kept on a `PUT` that sends it back masked — while its secrets
//! go to the same destination: the token endpoint for a token-based auth,
//! the webhook's URL for the others.

use std::sync::Arc;

use serde_json::Value;

use crate::auth::{AuthSpec, Authorizer, mask, token_endpoint_of};
use crate::secrets::destination::{self, Moved};
use crate::webhooks::WebhookError;

/// The authorizer of a definition's `auth`. `particle`: one without `type`
/// is the particle plugin's to render (`None` here).
pub fn authorizer(
    auth: Option<&Value>,
    particle: bool,
) -> Result<Option<Arc<Authorizer>>, WebhookError> {
    let Some(auth) = auth else {
        return Ok(None);
    };
    let spec = if particle {
        AuthSpec::parse(auth)
    } else {
        AuthSpec::parse_host(auth).map(Some)
    }
    .map_err(|e| WebhookError::Field {
        field: "auth",
        reason: e.0,
    })?;
    Ok(spec.map(|spec| Arc::new(Authorizer::new(spec))))
}

/// Whether `auth` is the host's to do (it has a `type`), rather than the
/// particle plugin's.
pub fn is_typed(auth: &Value) -> bool {
    auth.get("type").is_some()
}

/// `auth` as a read shows it.
pub fn view(auth: &Value) -> Value {
    let mut view = auth.clone();
    mask(&mut view);
    view
}

/// Puts the stored secrets of `old` back where `incoming` sends them as a
/// read showed them; refused when they would go to another destination
/// (`old_url`, `new_url`: the webhook's).
pub fn keep_secrets(
    incoming: &mut Value,
    old: &Value,
    old_url: &str,
    new_url: &str,
) -> Result<(), Box<Moved>> {
    let kept: Vec<String> = crate::secrets::restore(incoming, &view(old), old)
        .into_iter()
        .map(|path| format!("auth.{path}"))
        .collect();
    kept_for(kept, Some(old), Some(incoming), old_url, new_url)
}

/// Whether the secrets `kept` (paths in a definition; `auth.…` for its
/// auth's) still go where they went: those of an auth with a token
/// endpoint to that endpoint, the others with the webhook's URL.
pub fn kept_for(
    kept: Vec<String>,
    old_auth: Option<&Value>,
    new_auth: Option<&Value>,
    old_url: &str,
    new_url: &str,
) -> Result<(), Box<Moved>> {
    let old_endpoint = old_auth.and_then(token_endpoint_of);
    let (to_endpoint, with_url): (Vec<String>, Vec<String>) = kept
        .into_iter()
        .partition(|path| path.starts_with("auth.") && old_endpoint.is_some());
    if let Some(from) = old_endpoint {
        let to = new_auth.and_then(token_endpoint_of).unwrap_or(new_url);
        destination::kept_for(to_endpoint, from, to)?;
    }
    destination::kept_for(with_url, old_url, new_url)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn oauth2(token_url: &str, secret: &str) -> Value {
        json!({"type": "oauth2-client-credentials", "token_url": token_url,
               "client_id": "c", "client_secret": secret})
    }

    #[test]
    fn a_masked_secret_sent_back_keeps_the_stored_one() {
        let old = oauth2("https://id.example.com/token", "s3cret");
        let mut incoming = view(&old);
        assert_eq!(incoming["client_secret"], "***");
        keep_secrets(&mut incoming, &old, "https://a.test/", "https://b.test/").unwrap();
        assert_eq!(
            incoming, old,
            "the webhook's URL is not where the secret goes"
        );
    }

    #[test]
    fn a_kept_secret_follows_its_token_endpoint() {
        let old = oauth2("https://id.example.com/token", "s3cret");
        let mut incoming = oauth2("https://evil.example.net/token", "***");
        let moved =
            keep_secrets(&mut incoming, &old, "https://a.test/", "https://a.test/").unwrap_err();
        assert!(moved.to_string().contains("auth.client_secret"), "{moved}");
    }

    #[test]
    fn a_signing_secret_follows_the_webhook_url() {
        let old = json!({"type": "basic", "username": "u", "password": "p"});
        let mut incoming = view(&old);
        assert!(keep_secrets(&mut incoming, &old, "https://a.test/", "https://b.test/").is_err());
        let mut incoming = view(&old);
        keep_secrets(&mut incoming, &old, "https://a.test/x", "https://a.test/y").unwrap();
        assert_eq!(incoming["password"], "p");
    }

    #[test]
    fn a_particle_auth_without_type_stays_with_the_plugin() {
        let particle = json!({"username": "{{PARTICLE_DEVICE_ID}}", "password": "p"});
        assert!(authorizer(Some(&particle), true).unwrap().is_none());
        let host = authorizer(Some(&particle), false).unwrap().unwrap();
        assert_eq!(host.kind(), "basic");
        let err = authorizer(Some(&json!({"type": "bearer"})), false).unwrap_err();
        assert!(err.to_string().starts_with("`auth`"), "{err}");
    }
}
