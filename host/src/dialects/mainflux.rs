//! Mainflux-style webhooks (CONTRACT section 8): each belongs to one thing
//! (a device of the registry) and carries that thing's group as
//! `group_id`. Parsed and checked here once; the `mainflux` plugin sends
//! the event's data as it is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::book::{self, Dialect, DialectError};
use crate::fleet::GroupId;
use crate::plugins::Filter;
use crate::topic::DeviceId;
use crate::webhooks::builtin::Kind;

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
}

/// One webhook of a `POST` body, or the body of a `PUT`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    name: String,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    metadata: Map<String, Value>,
}

/// Parses the body of `POST /things/{thing_id}/webhooks`: a JSON array.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Input>, DialectError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| DialectError::Body(format!("the request body is not valid JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(DialectError::Body(
            "the request body is a JSON array of webhooks".to_owned(),
        ));
    };
    if items.len() > MAX_BATCH {
        return Err(DialectError::Body(format!(
            "{} webhooks at once, more than the {MAX_BATCH} one request may create",
            items.len()
        )));
    }
    items
        .into_iter()
        .map(|item| {
            let input: Input = serde_json::from_value(item)
                .map_err(|e| DialectError::Body(format!("a webhook of the array: {e}")))?;
            input.check()
        })
        .collect()
}

/// Parses the body of `PUT /webhooks/{id}`.
pub fn parse_one(body: &[u8]) -> Result<Input, DialectError> {
    let input: Input = serde_json::from_slice(body)
        .map_err(|e| DialectError::Body(format!("the request body is not a webhook: {e}")))?;
    input.check()
}

impl Input {
    fn check(self) -> Result<Self, DialectError> {
        book::text("name", &self.name)?;
        book::http_url(&self.url)?;
        if self.headers.len() > MAX_HEADERS {
            return Err(DialectError::Invalid {
                field: "headers",
                reason: format!("more than {MAX_HEADERS}"),
            });
        }
        book::headers(&self.headers)?;
        if Value::Object(self.metadata.clone()).to_string().len() > MAX_METADATA_BYTES {
            return Err(DialectError::Invalid {
                field: "metadata",
                reason: format!("larger than {MAX_METADATA_BYTES} bytes"),
            });
        }
        Ok(self)
    }

    /// This input, with the secrets of `old` kept where it sends them back
    /// as a read showed them; refused when its URL goes to another
    /// destination than `old`'s, where such a secret must be sent again.
    pub fn keeping_secrets_of(mut self, old: &Definition) -> Result<Self, DialectError> {
        super::keep_secrets(&mut self.headers, &mut self.url, &old.headers, &old.url)?;
        Ok(self)
    }

    /// The webhook of `thing` (in `group`) this makes.
    pub fn definition(self, thing: DeviceId, group: Option<GroupId>) -> Definition {
        Definition {
            thing_id: thing,
            group_id: group,
            name: self.name,
            url: self.url,
            headers: self.headers,
            metadata: self.metadata,
        }
    }
}

/// What the API shows of webhook `id`. Every read goes through here, so
/// that secrets in headers are masked in one place.
pub fn view(id: &str, d: &Definition) -> Value {
    json!({
        "id": id,
        "thing_id": d.thing_id.as_str(),
        "group_id": d.group_id.as_ref().map(GroupId::as_str),
        "name": d.name,
        "url": crate::secrets::url(&d.url),
        "headers": super::masked_headers(&d.headers),
        "metadata": d.metadata,
    })
}

/// The Mainflux dialect.
#[derive(Debug)]
pub struct Mainflux;

impl Dialect for Mainflux {
    const KIND: Kind = Kind::Mainflux;
    type Definition = Definition;

    fn filter(d: &Definition) -> Filter {
        Filter {
            devices: Some(vec![d.thing_id.clone()]),
            ..Filter::default()
        }
    }

    fn config(d: &Definition) -> Value {
        json!({ "url": d.url, "headers": d.headers })
    }
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
}
