//! What a secret is, in one place: the rule every read view, the delivery
//! log and the error messages use to show `***` instead of a credential.
//!
//! Secrets are write-only (README "HTTP API", its paragraph "Secrets are
//! write-only"): accepted on write, never shown again. A name is
//! credential-like when it contains one of [`SECRET_NAME_PARTS`],
//! case-insensitively; that one test decides for header names, query and form
//! fields and JSON object keys. A URL's user information (`user:pass@`) is a
//! credential wherever it appears. Each shape has its own pure function; they
//! work on text, so they also mask Particle templates
//! (`https://u:{{{PW}}}@host/?token={{T}}`) without parsing them.

pub mod destination;

use std::borrow::Cow;

use serde_json::Value;

/// What replaces a secret. `*` needs no percent-encoding in a form or a
/// query, so the mask reads the same there.
pub const MASK: &str = "***";

/// Parts of a name that make it credential-like (names are lowercased
/// before the test): `Authorization`, `X-Api-Key`, `access_token`,
/// `client_secret`, `password`, `passwd`, `Cookie`, `webhook-signature`…
pub const SECRET_NAME_PARTS: [&str; 8] = [
    "key",
    "token",
    "secret",
    "passw",
    "auth",
    "signature",
    "credential",
    "cookie",
];

/// Whether a header name, a query or form field or a JSON key is
/// credential-like.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|part| name.contains(part))
}

/// The value of header `name` as it may be shown. An `Authorization`
/// value keeps its scheme (`Basic ***`, `Bearer ***`): it helps debugging
/// and is no secret.
pub fn header<'a>(name: &str, value: &'a str) -> Cow<'a, str> {
    if !is_secret_name(name) {
        return Cow::Borrowed(value);
    }
    let keeps_scheme = name.eq_ignore_ascii_case("authorization")
        || name.eq_ignore_ascii_case("proxy-authorization");
    match value.split_once(' ') {
        Some((scheme, _))
            if keeps_scheme
                && !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            Cow::Owned(format!("{scheme} {MASK}"))
        }
        _ => Cow::Borrowed(MASK),
    }
}

/// The value of a query or form field `name` as it may be shown.
pub fn pair<'a>(name: &str, value: &'a str) -> &'a str {
    if is_secret_name(name) && !value.is_empty() {
        MASK
    } else {
        value
    }
}

/// An `application/x-www-form-urlencoded` text (a form body, a URL's
/// query) with the values of credential-like fields masked. Everything
/// else is kept byte for byte.
pub fn pairs(text: &str) -> Cow<'_, str> {
    let mut changed = false;
    let masked: Vec<Cow<'_, str>> = text
        .split('&')
        .map(|field| {
            let Some((name, value)) = field.split_once('=') else {
                return Cow::Borrowed(field);
            };
            let decoded: String = url::form_urlencoded::parse(name.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect();
            let shown = pair(&decoded, value);
            if shown == value {
                Cow::Borrowed(field)
            } else {
                changed = true;
                Cow::Owned(format!("{name}={shown}"))
            }
        })
        .collect();
    if changed {
        Cow::Owned(masked.join("&"))
    } else {
        Cow::Borrowed(text)
    }
}

/// A comma list of URLs as a config file writes it, each masked by
/// [`url`](fn@url).
pub fn url_list(urls: &[String]) -> String {
    urls.iter()
        .map(|u| url(u).into_owned())
        .collect::<Vec<_>>()
        .join(",")
}

/// A URL (or a URL template) with its credentials masked: the password of
/// `user:pass@` (a lone `token@` is taken as the credential itself) and
/// the values of credential-like query fields.
///
/// The text is masked as written (it may be a template). When the URL
/// parser still finds a credential in the result (it reads `https:\tu:p@h`
/// as `https://u:p@h`), the parsed URL is masked instead.
pub fn url(text: &str) -> Cow<'_, str> {
    let masked = text_url(text);
    match url::Url::parse(&masked) {
        Ok(mut parsed) if shows_credential(&parsed) => {
            let hidden = match parsed.password() {
                Some(_) => parsed.set_password(Some(MASK)),
                None => parsed.set_username(MASK),
            };
            match hidden {
                Ok(()) => Cow::Owned(text_url(parsed.as_str()).into_owned()),
                Err(()) => Cow::Borrowed(MASK),
            }
        }
        _ => masked,
    }
}

/// Whether `url` has a user name or password that is not the mask.
fn shows_credential(url: &url::Url) -> bool {
    match url.password() {
        Some(password) => password != MASK,
        None => !url.username().is_empty() && url.username() != MASK,
    }
}

/// [`url`](fn@url) on text that may be a template, its authority found by
/// [`authority_span`].
fn text_url(text: &str) -> Cow<'_, str> {
    let span = authority_span(text);
    let authority_start = span.start;
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..authority_start]);
    let authority = &text[span.clone()];
    let mut changed = false;
    match authority.rfind('@') {
        Some(at) if authority_start > 0 => {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, password)) if password != MASK => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                    changed = true;
                }
                None if !userinfo.is_empty() && userinfo != MASK => {
                    out.push_str(MASK);
                    changed = true;
                }
                _ => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        _ => out.push_str(authority),
    }
    let after = &text[span.end..];
    let (before_fragment, fragment) = after.split_at(after.find('#').unwrap_or(after.len()));
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let masked = pairs(query);
            changed |= matches!(masked, Cow::Owned(_));
            out.push_str(&masked);
        }
        None => out.push_str(before_fragment),
    }
    out.push_str(fragment);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// Where the authority (`user:pass@host:port`) of a URL or URL template
/// lies in `text`: it starts after `scheme://`, or after `scheme:` and any
/// slashes or backslashes for the schemes the URL parser treats so (`http`,
/// `https`, `ws`, `wss`, `ftp`), and ends at the next `/`, `?` or `#` (or
/// backslash, for those schemes). Without a scheme it starts at 0.
fn authority_span(text: &str) -> std::ops::Range<usize> {
    let (start, special) = match text.split_once(':') {
        Some((scheme, after)) if is_special_scheme(scheme) => (
            text.len() - after.trim_start_matches(['/', '\\']).len(),
            true,
        ),
        _ => (text.find("://").map_or(0, |i| i + 3), false),
    };
    let rest = &text[start..];
    // A backslash ends the authority of a special URL, as a slash does.
    let len = match special {
        true => rest.find(['/', '\\', '?', '#']),
        false => rest.find(['/', '?', '#']),
    }
    .unwrap_or(rest.len());
    start..start + len
}

fn is_special_scheme(scheme: &str) -> bool {
    ["http", "https", "ws", "wss", "ftp"]
        .iter()
        .any(|special| scheme.eq_ignore_ascii_case(special))
}

/// Masks, in place and at any depth, the members of JSON objects whose key
/// is credential-like (a `null` stays `null`: there is nothing to hide);
/// whether anything changed.
pub fn json(value: &mut Value) -> bool {
    match value {
        Value::Object(members) => {
            let mut changed = false;
            for (key, member) in members.iter_mut() {
                if is_secret_name(key) {
                    if !member.is_null() && member.as_str() != Some(MASK) {
                        *member = Value::String(MASK.to_owned());
                        changed = true;
                    }
                } else {
                    changed |= json(member);
                }
            }
            changed
        }
        Value::Array(items) => items.iter_mut().fold(false, |changed, v| json(v) | changed),
        _ => false,
    }
}

/// A text that may be JSON, with [`json`] applied when it is. Text that is
/// not JSON, or has nothing to mask, is kept as it is.
pub fn json_text(text: &str) -> Cow<'_, str> {
    match serde_json::from_str::<Value>(text) {
        Ok(mut value) => {
            if json(&mut value) {
                Cow::Owned(value.to_string())
            } else {
                Cow::Borrowed(text)
            }
        }
        Err(_) => Cow::Borrowed(text),
    }
}

/// Puts the stored secrets back into `incoming`, a value written by a
/// client that read `view` (the masked form of `stored`): wherever
/// `incoming` holds exactly what the view showed in place of a secret
/// (`***`, `Basic ***`, `https://u:***@host`), the stored value is kept. A
/// client can so send back what it read, changed elsewhere, without
/// knowing the secrets. Returns where secrets were kept (`auth.password`,
/// `headers.X-Api-Key`), for [`destination::kept_for`].
pub fn restore(incoming: &mut Value, view: &Value, stored: &Value) -> Vec<String> {
    let mut kept = Vec::new();
    restore_at(incoming, view, stored, &mut String::new(), &mut kept);
    kept
}

/// [`restore`] at `path`, member by member, so that `kept` names the
/// secrets themselves rather than the objects holding them.
fn restore_at(
    incoming: &mut Value,
    view: &Value,
    stored: &Value,
    path: &mut String,
    kept: &mut Vec<String>,
) {
    match (incoming, view, stored) {
        (Value::Object(incoming), Value::Object(view), Value::Object(stored)) => {
            for (key, value) in incoming.iter_mut() {
                if let (Some(v), Some(s)) = (view.get(key), stored.get(key)) {
                    let len = descend(path, key);
                    restore_at(value, v, s, path, kept);
                    path.truncate(len);
                }
            }
        }
        (Value::Array(incoming), Value::Array(view), Value::Array(stored))
            if incoming.len() == view.len() && view.len() == stored.len() =>
        {
            for (i, ((value, v), s)) in incoming.iter_mut().zip(view).zip(stored).enumerate() {
                let len = descend(path, &i.to_string());
                restore_at(value, v, s, path, kept);
                path.truncate(len);
            }
        }
        (incoming, view, stored) => {
            if incoming == view && view != stored {
                stored.clone_into(incoming);
                kept.push(path.clone());
            }
        }
    }
}

/// Appends `step` to the dotted `path`; the length to truncate back to.
fn descend(path: &mut String, step: &str) -> usize {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(step);
    len
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn credential_like_names() {
        for name in [
            "Authorization",
            "X-Api-Key",
            "api_key",
            "ACCESS_TOKEN",
            "client_secret",
            "Password",
            "passwd",
            "X-Auth",
            "Set-Cookie",
            "webhook-signature",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["Content-Type", "User-Agent", "webhook-id", "temp", "value"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn headers_keep_only_an_authorization_scheme() {
        assert_eq!(header("Authorization", "Basic dXNlcjpwdw=="), "Basic ***");
        assert_eq!(header("authorization", "Bearer abc.def"), "Bearer ***");
        assert_eq!(header("Authorization", "opaque"), "***");
        assert_eq!(header("X-Api-Key", "k1 k2"), "***");
        assert_eq!(header("X-Token", "{{{T}}}"), "***");
        assert_eq!(header("Content-Type", "text/plain"), "text/plain");
    }

    #[test]
    fn pairs_mask_credential_fields_and_keep_the_rest_as_written() {
        assert_eq!(pair("api_key", "K1"), MASK);
        assert_eq!(pair("api_key", ""), "");
        assert_eq!(pair("x", "1"), "1");
        assert_eq!(pairs("token=T1&data=21.5"), "token=***&data=21.5");
        assert_eq!(pairs("a%20key=K&b=%20"), "a%20key=***&b=%20");
        assert!(matches!(pairs("a=1&b&c=2"), Cow::Borrowed("a=1&b&c=2")));
    }

    #[test]
    fn urls_lose_passwords_and_credential_query_values() {
        assert_eq!(
            url("https://user:pw@example.com/in?api_key=K1&x=1#f"),
            "https://user:***@example.com/in?api_key=***&x=1#f"
        );
        assert_eq!(
            url("mqtt://user:hunter2@127.0.0.1:1"),
            "mqtt://user:***@127.0.0.1:1"
        );
        assert_eq!(url("https://tok@host/x"), "https://***@host/x");
        assert_eq!(
            url("https://u:{{{PW}}}@h/{{room}}?token={{T}}&v={{V}}"),
            "https://u:***@h/{{room}}?token=***&v={{V}}"
        );
        assert_eq!(url("https://host/p@q?a=1"), "https://host/p@q?a=1");
        assert_eq!(url("not a url"), "not a url");
        // What the URL parser reads as credentials, whatever the slashes.
        for lenient in [
            "https:/'user:pw@example.com/in",
            "https:'user:pw@example.com/in",
            "HTTPS:\\\\'user:pw@example.com/in",
        ] {
            let masked = url(lenient);
            assert!(!masked.contains("pw"), "{lenient} → {masked}");
            assert!(masked.contains(":***@"), "{lenient} → {masked}");
        }
        let template = url("https:/u:pw@{{host}}/in");
        assert_eq!(template, "https:/u:***@{{host}}/in");
        assert_eq!(
            url("http://h\\@x/"),
            "http://h\\@x/",
            "the @ is in the path"
        );
        // Tabs and newlines are dropped by the parser, wherever they are.
        let tabbed = url("https:\t//\nuser:pw@example.com/");
        assert_eq!(tabbed, "https://user:***@example.com/");
        let masked = url("https://u:***@h/?key=***");
        assert!(matches!(masked, Cow::Borrowed(_)), "masking is idempotent");
    }

    #[test]
    fn json_members_are_masked_at_any_depth() {
        let mut value = json!({
            "temp": 21,
            "token": "T1",
            "nested": [{"apiKey": {"a": 1}, "ok": "yes", "password": null}],
        });
        assert!(json(&mut value));
        assert_eq!(
            value,
            json!({
                "temp": 21,
                "token": "***",
                "nested": [{"apiKey": "***", "ok": "yes", "password": null}],
            })
        );
        assert!(!json(&mut value), "masking twice changes nothing");
        assert_eq!(json_text(r#"{"secret":"s"}"#), r#"{"secret":"***"}"#);
        assert_eq!(json_text("not json {"), "not json {");
        assert_eq!(json_text(r#"{ "a": 1 }"#), r#"{ "a": 1 }"#);
    }

    #[test]
    fn a_value_sent_back_as_read_keeps_the_stored_secret() {
        let stored = json!({
            "url": "https://u:pw@h/",
            "auth": {"username": "u", "password": "hunter2"},
            "headers": {"X-Api-Key": "K1", "Accept": "a"},
        });
        let view = json!({
            "url": "https://u:***@h/",
            "auth": {"username": "u", "password": "***"},
            "headers": {"X-Api-Key": "***", "Accept": "a"},
        });
        let mut incoming = json!({
            "url": "https://u:***@h/",
            "auth": {"username": "v", "password": "***"},
            "headers": {"X-Api-Key": "K2", "Accept": "b"},
            "event": "new",
        });
        assert_eq!(
            restore(&mut incoming, &view, &stored),
            ["auth.password", "url"]
        );
        assert_eq!(
            incoming,
            json!({
                "url": "https://u:pw@h/",
                "auth": {"username": "v", "password": "hunter2"},
                "headers": {"X-Api-Key": "K2", "Accept": "b"},
                "event": "new",
            })
        );
    }
}
