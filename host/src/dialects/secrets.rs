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
