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

/// The body of `POST /v1/projects/{project_id}/webhooks`.
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
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    auth: Option<Value>,
    #[serde(default)]
    retry: Option<Value>,
}

/// Parses and checks a new webhook of `project`.
pub fn parse(project: GroupId, body: &[u8]) -> Result<Definition, WebhookError> {
    let input: Input = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Invalid(format!("the request body is not a webhook: {e}")))?;
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
    if input.headers.len() > MAX_HEADERS {
        return Err(WebhookError::Field {
            field: "headers",
            reason: format!(
                "{} headers, more than the {MAX_HEADERS} a webhook may have",
                input.headers.len()
            ),
        });
    }
    checks::headers(&input.headers)?;
    super::auth::authorizer(input.auth.as_ref(), false)?;
    super::retry::schedule(input.retry.as_ref())?;
    Ok(Definition {
        project_id: project,
        description: input.description,
        url: input.url,
        kind,
        channel: input.channel,
        payload_only: input.payload_only,
        headers: input.headers,
        auth: input.auth,
        retry: input.retry,
    })
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
