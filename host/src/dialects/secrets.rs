//! The secrets of the Iottly and Mainflux dialects' headers and URLs: how
//! a read masks them, and what a `PUT` keeps of them.

/// A dialect's headers as a read shows them: credential-like values masked
/// by the one rule of [`crate::secrets`].
pub fn masked_headers(headers: &std::collections::BTreeMap<String, String>) -> serde_json::Value {
    headers
        .iter()
        .map(|(name, value)| (name.clone(), crate::secrets::header(name, value).into()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// What a `PUT` keeps of the stored secrets: a header or URL sent back exactly
/// as a read showed it (masked) keeps its stored value, while the URL goes to
/// the same destination (README "HTTP API": a kept secret follows its
/// destination).
pub fn keep_secrets(
    headers: &mut std::collections::BTreeMap<String, String>,
    url: &mut String,
    old_headers: &std::collections::BTreeMap<String, String>,
    old_url: &str,
) -> Result<(), Box<crate::secrets::destination::Moved>> {
    let mut kept = Vec::new();
    for (name, value) in headers.iter_mut() {
        if let Some(old) = old_headers.get(name)
            && old != value
            && crate::secrets::header(name, old) == value.as_str()
        {
            value.clone_from(old);
            kept.push(format!("headers.{name}"));
        }
    }
    if old_url != url && crate::secrets::url(old_url) == url.as_str() {
        url.clear();
        url.push_str(old_url);
        kept.push("url".to_owned());
    }
    crate::secrets::destination::kept_for(kept, old_url, url)
}

/// What a replacement sends of its destination: the URL, and the headers,
/// `auth` and `retry`, each `None` when left out.
pub struct Sent<'a> {
    /// The URL.
    pub url: &'a mut String,
    /// The headers.
    pub headers: &'a mut Option<std::collections::BTreeMap<String, String>>,
    /// The auth the host does.
    pub auth: &'a mut Option<serde_json::Value>,
    /// The webhook's own retry schedule.
    pub retry: &'a mut Option<serde_json::Value>,
}

/// What the stored webhook has of its destination.
pub struct Stored<'a> {
    /// The URL.
    pub url: &'a str,
    /// The headers.
    pub headers: &'a std::collections::BTreeMap<String, String>,
    /// The auth the host does.
    pub auth: Option<&'a serde_json::Value>,
    /// The webhook's own retry schedule.
    pub retry: Option<&'a serde_json::Value>,
}

/// A replacement (an Iottly or Mainflux `PUT`) of `old` by `new`: headers,
/// `auth` and `retry` left out are `old`'s (as a read shows them, so that
/// their secrets follow the destination rule), and a secret sent back as a
/// read showed it keeps its stored value while the URL goes to the same
/// destination ([`keep_secrets`], `auth::keep_secrets`).
pub fn replace_destination(
    new: Sent<'_>,
    old: Stored<'_>,
) -> Result<(), crate::webhooks::WebhookError> {
    let mut headers = new.headers.take().unwrap_or_else(|| {
        old.headers
            .iter()
            .map(|(name, value)| (name.clone(), crate::secrets::header(name, value).into()))
            .collect()
    });
    let new_url = new.url.clone();
    keep_secrets(&mut headers, new.url, old.headers, old.url)?;
    *new.headers = Some(headers);
    if let Some(old_auth) = old.auth {
        let auth = new.auth.get_or_insert_with(|| super::auth::view(old_auth));
        super::auth::keep_secrets(auth, old_auth, old.url, &new_url)?;
    }
    if new.retry.is_none() {
        *new.retry = old.retry.cloned();
    }
    Ok(())
}
