//! Mainflux-style webhooks (README "Mainflux-style webhooks (per thing)"): each
//! belongs to one thing (a device of the registry) and carries that thing's
//! group as `group_id`. Parsed and checked here once; the `mainflux` plugin
//! sends the event's data as it is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::delivery::SendOptions;
use crate::fleet::GroupId;
use crate::hooks::Filter;
use crate::topic::DeviceId;
use crate::webhooks::builtin::BuiltinPlugin;
use crate::webhooks::{Dialect, Running, WebhookError, checks};

/// Webhooks one `POST` may create.
pub const MAX_BATCH: usize = 100;
/// Custom headers one webhook may have.
pub const MAX_HEADERS: usize = 32;
/// Largest `metadata` taken, in bytes of JSON.
pub const MAX_METADATA_BYTES: usize = 16 << 10;

/// A checked Mainflux-style webhook, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// The thing whose events run it.
    pub thing_id: DeviceId,
    /// The thing's group when the webhook was created.
    pub group_id: Option<GroupId>,
    /// For people.
    pub name: String,
    /// Where the requests go: http(s).
    pub url: String,
    /// Sent with every request.
    pub headers: BTreeMap<String, String>,
    /// The user's own attributes.
    pub metadata: Map<String, Value>,
    /// The auth the host does for its requests (CONTRACT section 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Value>,
    /// Its own retry schedule (CONTRACT section 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Value>,
}

/// One webhook of a `POST` body, or the body of a `PUT`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    name: String,
    url: String,
    /// `None` when left out: none for a new webhook; for a `PUT`, the
    /// stored ones, as if sent back as a read shows them (so that a secret
    /// among them still follows the destination rule).
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    /// `None` when left out: none for a new webhook, the stored one for a
    /// `PUT`.
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    /// `None` when left out: none for a new webhook, the stored one for a
    /// `PUT`.
    #[serde(default)]
    auth: Option<Value>,
    /// `None` when left out: none for a new webhook, the stored one for a
    /// `PUT`.
    #[serde(default)]
    retry: Option<Value>,
}

/// Parses the body of `POST /things/{thing_id}/webhooks`: a JSON array.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Input>, WebhookError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Invalid(format!("the request body is not valid JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(WebhookError::Invalid(
            "the request body is a JSON array of webhooks".to_owned(),
        ));
    };
    if items.len() > MAX_BATCH {
        return Err(WebhookError::Invalid(format!(
            "{} webhooks at once, more than the {MAX_BATCH} one request may create",
            items.len()
        )));
    }
    items
        .into_iter()
        .map(|item| {
            let input: Input = serde_json::from_value(item)
                .map_err(|e| WebhookError::Invalid(format!("a webhook of the array: {e}")))?;
            input.check()
        })
        .collect()
}

/// Parses the body of `PUT /webhooks/{id}`.
pub fn parse_one(body: &[u8]) -> Result<Input, WebhookError> {
    let input: Input = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Invalid(format!("the request body is not a webhook: {e}")))?;
    input.check()
}

impl Input {
    fn check(self) -> Result<Self, WebhookError> {
        checks::text("name", &self.name)?;
        checks::http_url(&self.url)?;
        if let Some(headers) = &self.headers {
            if headers.len() > MAX_HEADERS {
                return Err(WebhookError::Field {
                    field: "headers",
                    reason: format!("more than {MAX_HEADERS}"),
                });
            }
            checks::headers(headers)?;
        }
        if let Some(metadata) = &self.metadata
            && Value::Object(metadata.clone()).to_string().len() > MAX_METADATA_BYTES
        {
            return Err(WebhookError::Field {
                field: "metadata",
                reason: format!("larger than {MAX_METADATA_BYTES} bytes"),
            });
        }
        super::auth::authorizer(self.auth.as_ref(), false)?;
        super::retry::schedule(self.retry.as_ref())?;
        Ok(self)
    }

    /// This input as the replacement of `old`: `headers` and `metadata`
    /// left out are `old`'s, and the secrets of `old` are kept where the
    /// headers or URL are sent back as a read showed them (headers left out
    /// count as sent back so); refused when its URL goes to another
    /// destination than `old`'s, where such a secret must be sent again.
    pub fn keeping_secrets_of(mut self, old: &Definition) -> Result<Self, WebhookError> {
        super::secrets::replace_destination(
            super::secrets::Sent {
                url: &mut self.url,
                headers: &mut self.headers,
                auth: &mut self.auth,
                retry: &mut self.retry,
            },
            super::secrets::Stored {
                url: &old.url,
                headers: &old.headers,
                auth: old.auth.as_ref(),
                retry: old.retry.as_ref(),
            },
        )?;
        self.metadata.get_or_insert_with(|| old.metadata.clone());
        Ok(self)
    }

    /// The webhook of `thing` (in `group`) this makes.
    pub fn definition(self, thing: DeviceId, group: Option<GroupId>) -> Definition {
        Definition {
            thing_id: thing,
            group_id: group,
            name: self.name,
            url: self.url,
            headers: self.headers.unwrap_or_default(),
            metadata: self.metadata.unwrap_or_default(),
            auth: self.auth,
            retry: self.retry,
        }
    }
}

/// What the API shows of webhook `id`. Every read goes through here, so
/// that secrets in headers are masked in one place.
pub fn view(id: &str, d: &Definition) -> Value {
    let mut view = json!({
        "id": id,
        "thing_id": d.thing_id.as_str(),
        "group_id": d.group_id.as_ref().map(GroupId::as_str),
        "name": d.name,
        "url": crate::secrets::url(&d.url),
        "headers": super::secrets::masked_headers(&d.headers),
        "metadata": d.metadata,
    });
    if let Some(auth) = &d.auth {
        view["auth"] = super::auth::view(auth);
    }
    if let Some(retry) = &d.retry {
        view["retry"] = retry.clone();
    }
    view
}

/// The Mainflux dialect.
#[derive(Debug)]
pub struct Mainflux;

impl Dialect for Mainflux {
    const KIND: BuiltinPlugin = BuiltinPlugin::Mainflux;
    const ONE_WAY: bool = true;
    type Definition = Definition;

    fn running(d: &Definition) -> Result<Running, WebhookError> {
        Ok(Running {
            filter: filter(d),
            send: SendOptions {
                auth: super::auth::authorizer(d.auth.as_ref(), false)?,
                retry: super::retry::schedule(d.retry.as_ref())?,
                ..SendOptions::default()
            },
            ..Running::default()
        })
    }

    fn config(d: &Definition) -> Value {
        config(d)
    }

    fn view(id: &str, _created_at: &str, d: &Definition) -> Value {
        view(id, d)
    }
}

/// The events that run `d`.
fn filter(d: &Definition) -> Filter {
    Filter {
        devices: Some(vec![d.thing_id.clone()]),
        ..Filter::default()
    }
}

/// The plugin's configuration for `d`.
fn config(d: &Definition) -> Value {
    json!({ "url": d.url, "headers": d.headers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_an_array_of_http_webhooks() {
        let err = |body: &str| parse_batch(body.as_bytes()).unwrap_err().to_string();
        assert!(err(r#"{"name": "a", "url": "http://x.test"}"#).contains("array"));
        assert!(err(r#"[{"name": "a", "url": "mqtt://x.test"}]"#).starts_with("`url`"));
        assert_eq!(
            parse_batch(br#"[{"name": "a", "url": "http://x.test"}]"#)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_put_that_leaves_out_headers_and_metadata_keeps_them_for_the_same_destination() {
        let old = parse_batch(
            br#"[{"name": "a", "url": "https://h.test/a",
                 "headers": {"X-Api-Key": "KEY", "X-Other": "two"}, "metadata": {"m": 1}}]"#,
        )
        .unwrap()
        .remove(0)
        .definition(DeviceId::try_from("t1").unwrap(), None);
        let put = |body: &str| parse_one(body.as_bytes()).unwrap().keeping_secrets_of(&old);

        let kept = put(r#"{"name": "b", "url": "https://h.test/b"}"#)
            .unwrap()
            .definition(old.thing_id.clone(), None);
        assert_eq!(kept.headers, old.headers);
        assert_eq!(kept.metadata, old.metadata);

        let moved = put(r#"{"name": "b", "url": "https://other.test/"}"#).unwrap_err();
        assert!(
            moved
                .to_string()
                .starts_with("`headers.X-Api-Key`: send the secret again"),
            "{moved}"
        );

        let cleared =
            put(r#"{"name": "b", "url": "https://other.test/", "headers": {}, "metadata": {}}"#)
                .unwrap()
                .definition(old.thing_id.clone(), None);
        assert!(cleared.headers.is_empty() && cleared.metadata.is_empty());
    }
}
