//! Iottly-style webhooks (README "Iottly-style webhooks (per project)"): per
//! project (a group of the registry), for the agent's own `iottly/` events or
//! for every other event, optionally one channel, with up to [`MAX_HEADERS`]
//! custom headers. Parsed and checked here once; the `iottly` plugin shapes the
//! requests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::delivery::SendOptions;
use crate::fleet::GroupId;
use crate::hooks::Filter;
use crate::webhooks::builtin::BuiltinPlugin;
use crate::webhooks::{Dialect, Running, WebhookError, checks};

/// Custom headers one webhook may have, as Iottly allows.
pub const MAX_HEADERS: usize = 5;

/// The event-name prefix of the Iottly agent's own messages.
const AGENT_PREFIX: &str = "iottly/";

/// Which messages a webhook takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageType {
    /// The agent's own: events named `iottly/…`.
    Iottly,
    /// Every other event.
    User,
}

/// A checked Iottly-style webhook, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// The project (group) whose devices run it.
    pub project_id: GroupId,
    /// For people.
    pub description: String,
    /// Where the requests go: http(s).
    pub url: String,
    /// Which messages.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// Only events whose data has this `webhook_channel`.
    pub channel: Option<String>,
    /// Send the payload alone (with a channel, its `webhook_payload`).
    pub payload_only: bool,
    /// Sent with every request.
    pub headers: BTreeMap<String, String>,
    /// The auth the host does for its requests (CONTRACT section 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Value>,
    /// Its own retry schedule (CONTRACT section 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Value>,
}

/// The body of `POST /v1/projects/{project_id}/webhooks`, or of a `PUT`
/// of one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    description: String,
    url: String,
    #[serde(rename = "type")]
    kind: String,
    channel: Option<String>,
    #[serde(default)]
    payload_only: bool,
    /// `None` when left out: none for a new webhook; for a `PUT`, the
    /// stored ones, as if sent back as a read shows them (so that a secret
    /// among them still follows the destination rule).
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    /// `None` when left out: none for a new webhook, the stored one for a
    /// `PUT`.
    #[serde(default)]
    auth: Option<Value>,
    /// `None` when left out: none for a new webhook, the stored one for a
    /// `PUT`.
    #[serde(default)]
    retry: Option<Value>,
}

/// Parses and checks a new webhook of `project`.
pub fn parse(project: GroupId, body: &[u8]) -> Result<Definition, WebhookError> {
    let (input, kind) = Input::read(body)?;
    Ok(input.definition(project, kind))
}

/// Parses and checks the body of `PUT
/// /v1/projects/{project_id}/webhooks/{id}`, the replacement of `old` in
/// its project: the fields of a `POST`; `headers`, `auth` and `retry` left
/// out are `old`'s, and a header, the URL or an auth secret sent back as a
/// read showed it (masked) keeps its stored value, unless the URL now goes
/// to another destination, where such a secret must be sent again.
pub fn parse_replacement(body: &[u8], old: &Definition) -> Result<Definition, WebhookError> {
    let (input, kind) = Input::read(body)?;
    Ok(input
        .keeping_secrets_of(old)?
        .definition(old.project_id.clone(), kind))
}

impl Input {
    /// The input of `body`, checked, with its message type.
    fn read(body: &[u8]) -> Result<(Self, MessageType), WebhookError> {
        let input: Self = serde_json::from_slice(body).map_err(|e| {
            WebhookError::Invalid(format!("the request body is not a webhook: {e}"))
        })?;
        let kind = match input.kind.as_str() {
            "iottly" => MessageType::Iottly,
            "user" => MessageType::User,
            other => {
                return Err(WebhookError::Field {
                    field: "type",
                    reason: format!("{other:?} is neither \"iottly\" nor \"user\""),
                });
            }
        };
        checks::text("description", &input.description)?;
        checks::http_url(&input.url)?;
        if let Some(channel) = &input.channel {
            checks::text("channel", channel)?;
        }
        if let Some(headers) = &input.headers {
            if headers.len() > MAX_HEADERS {
                return Err(WebhookError::Field {
                    field: "headers",
                    reason: format!(
                        "{} headers, more than the {MAX_HEADERS} a webhook may have",
                        headers.len()
                    ),
                });
            }
            checks::headers(headers)?;
        }
        super::auth::authorizer(input.auth.as_ref(), false)?;
        super::retry::schedule(input.retry.as_ref())?;
        Ok((input, kind))
    }

    /// This input as the replacement of `old` (see [`parse_replacement`]).
    fn keeping_secrets_of(mut self, old: &Definition) -> Result<Self, WebhookError> {
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
        Ok(self)
    }

    /// The webhook of `project` this makes.
    fn definition(self, project: GroupId, kind: MessageType) -> Definition {
        Definition {
            project_id: project,
            description: self.description,
            url: self.url,
            kind,
            channel: self.channel,
            payload_only: self.payload_only,
            headers: self.headers.unwrap_or_default(),
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
        "project_id": d.project_id.as_str(),
        "description": d.description,
        "url": crate::secrets::url(&d.url),
        "type": d.kind,
        "channel": d.channel,
        "payload_only": d.payload_only,
        "headers": super::secrets::masked_headers(&d.headers),
    });
    if let Some(auth) = &d.auth {
        view["auth"] = super::auth::view(auth);
    }
    if let Some(retry) = &d.retry {
        view["retry"] = retry.clone();
    }
    view
}

/// The Iottly dialect.
#[derive(Debug)]
pub struct Iottly;

impl Dialect for Iottly {
    const KIND: BuiltinPlugin = BuiltinPlugin::Iottly;
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
    let (event, except) = match d.kind {
        MessageType::Iottly => (AGENT_PREFIX, None),
        MessageType::User => ("", Some(AGENT_PREFIX.to_owned())),
    };
    Filter {
        event: event.to_owned(),
        except,
        devices: None,
        group: Some(d.project_id.clone()),
    }
}

/// The plugin's configuration for `d`.
fn config(d: &Definition) -> Value {
    json!({
        "url": d.url,
        "headers": d.headers,
        "channel": d.channel,
        "payload_only": d.payload_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> GroupId {
        GroupId::try_from("p1").unwrap()
    }

    #[test]
    fn refusals_name_the_field() {
        let err = |body: &str| parse(project(), body.as_bytes()).unwrap_err().to_string();
        assert!(err(r#"{"url": "http://x.test", "type": "both"}"#).starts_with("`type`"));
        assert!(err(r#"{"url": "ftp://x.test", "type": "user"}"#).starts_with("`url`"));
        let six = r#"{"url": "http://x.test", "type": "user", "headers":
            {"a": "1", "b": "1", "c": "1", "d": "1", "e": "1", "f": "1"}}"#;
        assert!(err(six).starts_with("`headers`"));
        assert!(err(r#"{"url": "http://x.test", "type": "user", "extra": 1}"#).contains("extra"));
    }

    #[test]
    fn a_put_keeps_the_masked_secrets_for_the_same_destination() {
        let old = parse(
            project(),
            br#"{"description": "a", "url": "https://h.test/a", "type": "user",
                 "headers": {"X-Api-Key": "KEY", "X-Other": "two"}, "retry": {"schedule": ["1s"]}}"#,
        )
        .unwrap();
        let put = |body: &str| parse_replacement(body.as_bytes(), &old);

        let sent_back = put(
            r#"{"description": "b", "url": "https://h.test/b", "type": "iottly",
                "headers": {"X-Api-Key": "***", "X-Other": "three"}}"#,
        )
        .unwrap();
        assert_eq!(sent_back.headers["X-Api-Key"], "KEY");
        assert_eq!(sent_back.headers["X-Other"], "three");
        assert_eq!(
            (sent_back.kind, sent_back.project_id.as_str()),
            (MessageType::Iottly, "p1")
        );
        assert_eq!(sent_back.retry, old.retry, "left out: kept");
        let left_out = put(r#"{"url": "https://h.test/c", "type": "user"}"#).unwrap();
        assert_eq!(left_out.headers, old.headers);

        let moved = put(r#"{"url": "https://other.test/", "type": "user"}"#).unwrap_err();
        assert!(
            moved
                .to_string()
                .starts_with("`headers.X-Api-Key`: send the secret again"),
            "{moved}"
        );
        let bad = put(r#"{"url": "https://h.test/", "type": "both"}"#).unwrap_err();
        assert!(bad.to_string().starts_with("`type`"), "{bad}");
    }

    #[test]
    fn the_type_decides_the_event_names() {
        let device = crate::topic::DeviceId::try_from("d").unwrap();
        let user = parse(project(), br#"{"url": "http://x.test", "type": "user"}"#).unwrap();
        let agent = parse(project(), br#"{"url": "http://x.test", "type": "iottly"}"#).unwrap();
        let (user, agent) = (filter(&user), filter(&agent));
        let p = project();
        assert!(user.matches(&device, Some(&p), "temp"));
        assert!(!user.matches(&device, Some(&p), "iottly/status"));
        assert!(agent.matches(&device, Some(&p), "iottly/status"));
        assert!(!agent.matches(&device, Some(&p), "temp"));
        assert!(
            !user.matches(&device, None, "temp"),
            "a device of no project"
        );
    }
}
