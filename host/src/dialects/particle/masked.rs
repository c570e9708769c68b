//! What the API shows of a Particle-style webhook: its definition with every
//! secret replaced by `***` (README "HTTP API", its paragraph "Secrets are
//! write-only"), and the way back — a definition sent to `PUT` that holds a
//! masked value exactly as it was read keeps the stored secret there, while its
//! URL goes to the same destination (README "HTTP API", its paragraph "A kept
//! secret follows its destination").
//!
//! Which field holds which shape of secret is decided here; what is a
//! secret within each shape, in [`crate::secrets`].

use serde_json::{Map, Value};

use crate::secrets::destination::Moved;
use crate::secrets::{self, MASK};

/// What the API shows of webhook `id`, made at `created_at`: its
/// definition between the two, secrets masked.
pub fn view(id: &str, created_at: &str, definition: &Map<String, Value>) -> Value {
    let mut view = Map::with_capacity(definition.len() + 2);
    view.insert("id".into(), Value::String(id.to_owned()));
    view.extend(definition.iter().map(|(k, v)| (k.clone(), v.clone())));
    view.insert("created_at".into(), Value::String(created_at.to_owned()));
    mask(&mut view);
    Value::Object(view)
}

/// `definition` (or a view of it) with its secrets masked: `auth`'s,
/// `secret`, credential-like `headers`, the URL's credentials, credential-
/// like `query` and `form` fields, and credential-like members of a `json`
/// (object, or string that is JSON) or a JSON `body`.
pub fn mask(definition: &mut Map<String, Value>) {
    for (field, value) in definition.iter_mut() {
        match field.as_str() {
            "secret" => mask_value(value),
            "auth" => crate::auth::mask(value),
            "url" => map_text(value, |t| secrets::url(t).into_owned()),
            "headers" => each_member(value, |name, v| {
                map_text(v, |t| secrets::header(name, t).into_owned())
            }),
            "query" | "form" => each_member(value, |name, v| {
                if secrets::is_secret_name(name) {
                    mask_value(v);
                }
            }),
            "json" | "body" => {
                secrets::json(value);
                map_text(value, |t| secrets::json_text(t).into_owned());
            }
            _ => {}
        }
    }
}

/// The definition a `PUT` stores: `incoming`, where each value equal to what
/// the read view of `stored` showed in place of a secret is the stored value
/// again — refused when such a secret would now go to another destination
/// (README "HTTP API": a kept secret follows its destination). A definition
/// without a textual `url` is left to the validation, which names that problem.
pub fn restore(
    incoming: &mut Map<String, Value>,
    stored: &Map<String, Value>,
) -> Result<(), Box<Moved>> {
    let mut view = stored.clone();
    mask(&mut view);
    let mut value = Value::Object(std::mem::take(incoming));
    let kept = secrets::restore(
        &mut value,
        &Value::Object(view),
        &Value::Object(stored.clone()),
    );
    if let Value::Object(map) = value {
        *incoming = map;
    }
    match (url_of(stored), url_of(incoming)) {
        (Some(old), Some(new)) => {
            super::super::auth::kept_for(kept, stored.get("auth"), incoming.get("auth"), old, new)
        }
        _ => Ok(()),
    }
}

fn url_of(definition: &Map<String, Value>) -> Option<&str> {
    definition.get("url").and_then(Value::as_str)
}

fn mask_value(value: &mut Value) {
    if !value.is_null() {
        *value = Value::String(MASK.to_owned());
    }
}

fn map_text(value: &mut Value, f: impl FnOnce(&str) -> String) {
    if let Value::String(text) = value {
        *text = f(text);
    }
}

fn each_member(value: &mut Value, mut f: impl FnMut(&str, &mut Value)) {
    if let Value::Object(members) = value {
        for (name, member) in members.iter_mut() {
            f(name, member);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("a JSON object"),
        }
    }

    fn stored() -> Map<String, Value> {
        object(json!({
            "event": "t",
            "url": "https://u:pw@example.com/in?api_key=K1&x={{x}}",
            "auth": {"username": "u", "password": "hunter2"},
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "headers": {"X-Api-Key": "K2", "Authorization": "Bearer B1", "Accept": "a"},
            "query": {"token": "T1", "n": "1"},
            "json": {"temp": "{{t}}", "device": {"token": "T2"}},
            "body": "{\"password\": \"P1\"}",
        }))
    }

    #[test]
    fn every_secret_reads_as_the_mask() {
        let mut view = stored();
        mask(&mut view);
        assert_eq!(
            Value::Object(view.clone()),
            json!({
                "event": "t",
                "url": "https://u:***@example.com/in?api_key=***&x={{x}}",
                "auth": {"username": "u", "password": "***"},
                "secret": "***",
                "headers": {"X-Api-Key": "***", "Authorization": "Bearer ***", "Accept": "a"},
                "query": {"token": "***", "n": "1"},
                "json": {"temp": "{{t}}", "device": {"token": "***"}},
                "body": "{\"password\":\"***\"}",
            })
        );
    }

    #[test]
    fn the_view_sent_back_is_the_stored_definition() {
        let mut view = stored();
        mask(&mut view);
        restore(&mut view, &stored()).unwrap();
        assert_eq!(view, stored());

        let mut changed = stored();
        mask(&mut changed);
        changed["secret"] = json!("whsec_bmV3");
        changed["event"] = json!("u");
        restore(&mut changed, &stored()).unwrap();
        assert_eq!(
            changed["secret"], "whsec_bmV3",
            "a new secret replaces the old"
        );
        assert_eq!(changed["auth"]["password"], "hunter2");
        assert_eq!(changed["event"], "u");
    }

    #[test]
    fn a_secret_sent_back_masked_stays_only_with_its_destination() {
        let mut moved = stored();
        mask(&mut moved);
        moved["url"] = json!("https://u:pw@example.com/other");
        restore(&mut moved, &stored()).unwrap();
        assert_eq!(
            moved["auth"]["password"], "hunter2",
            "another path, same host"
        );

        let mut moved = stored();
        mask(&mut moved);
        moved["url"] = json!("https://example.org/in");
        let err = restore(&mut moved, &stored()).unwrap_err();
        for field in [
            "auth.password",
            "secret",
            "headers.X-Api-Key",
            "query.token",
        ] {
            assert!(err.fields.iter().any(|f| f == field), "{field}: {err}");
        }
        assert!(err.to_string().contains("send the secret again"), "{err}");

        let mut resent = stored();
        resent["url"] = json!("https://example.org/in");
        restore(&mut resent, &stored()).unwrap();
        assert_eq!(
            resent["auth"]["password"], "hunter2",
            "sent again, not kept"
        );
    }

    /// The secrets of a token-based `auth` go to its token endpoint: they
    /// stay with it whatever the URL does, and not when it moves.
    #[test]
    fn a_kept_auth_secret_follows_its_token_endpoint() {
        let with_oauth2 = |url: &str, token_url: &str, secret: &str| {
            object(json!({"event": "t", "url": url, "auth": {
                "type": "oauth2-client-credentials", "token_url": token_url,
                "client_id": "c", "client_secret": secret}}))
        };
        let stored = with_oauth2("https://a.example.com/", "https://id.example.com/t", "s3");
        let mut moved_url =
            with_oauth2("https://b.example.com/", "https://id.example.com/t", "***");
        restore(&mut moved_url, &stored).unwrap();
        assert_eq!(moved_url["auth"]["client_secret"], "s3");
        let mut moved_token = with_oauth2(
            "https://a.example.com/",
            "https://evil.example.net/t",
            "***",
        );
        let refused = restore(&mut moved_token, &stored).unwrap_err();
        assert_eq!(refused.fields, ["auth.client_secret"]);
    }
}
