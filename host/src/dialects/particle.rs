//! Particle-style webhooks (README "Particle-style webhooks"): the
//! definition is Particle's own JSON, checked by the particle plugin's
//! parser (the one that renders it), created and replaced through
//! `/v1/webhooks` or read from the webhooks directory.

mod masked;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::delivery::SendOptions;
use crate::hooks::Filter;
use crate::topic::DeviceId;
use crate::webhooks::builtin::BuiltinPlugin;
use crate::webhooks::{Dialect, Running, WebhookError};

/// A Particle webhook definition as given, without the `id`, `created_at`
/// and `dialect` a client may send back from a view: the host gives those.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Map<String, Value>", into = "Map<String, Value>")]
pub struct Definition(Map<String, Value>);

impl From<Map<String, Value>> for Definition {
    fn from(mut map: Map<String, Value>) -> Self {
        for given in ["id", "created_at", "dialect"] {
            map.remove(given);
        }
        Self(map)
    }
}

impl From<Definition> for Map<String, Value> {
    fn from(definition: Definition) -> Self {
        definition.0
    }
}

impl Definition {
    /// The definition of a request body.
    pub fn parse(body: &[u8]) -> Result<Self, WebhookError> {
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => Ok(map.into()),
            Ok(_) => Err(WebhookError::Invalid(
                "a webhook definition is a JSON object".to_owned(),
            )),
            Err(e) => Err(WebhookError::Invalid(format!(
                "the request body is not valid JSON: {e}"
            ))),
        }
    }

    /// This definition as the replacement of `old`: a value sent exactly
    /// as the view showed it in place of a secret (`***`, `Bearer ***`,
    /// `https://u:***@host/`) keeps the stored secret, so a client can send
    /// back what it read — unless the URL now goes to another scheme, host
    /// or port: then the secret must be sent again.
    pub fn keeping_secrets_of(mut self, old: &Self) -> Result<Self, WebhookError> {
        masked::restore(&mut self.0, &old.0)?;
        Ok(self)
    }

    /// What the particle plugin renders, and what the host does itself,
    /// which the plugin never sees: the `auth` (one with a `type`) and the
    /// `retry` schedule.
    fn split(&self) -> (Value, HostPart) {
        let mut plugin_part = self.0.clone();
        let auth = match plugin_part.get("auth") {
            Some(auth) if super::auth::is_typed(auth) => plugin_part.remove("auth"),
            _ => None,
        };
        let retry = plugin_part.remove("retry");
        (Value::Object(plugin_part), HostPart { auth, retry })
    }
}

/// The parts of a Particle definition the host does itself.
struct HostPart {
    auth: Option<Value>,
    retry: Option<Value>,
}

/// The Particle dialect.
#[derive(Debug)]
pub struct Particle;

impl Dialect for Particle {
    const KIND: BuiltinPlugin = BuiltinPlugin::Particle;
    const ONE_WAY: bool = false;
    type Definition = Definition;

    /// Checks the definition with the particle plugin's own parser, and
    /// derives how the host runs it.
    fn running(definition: &Definition) -> Result<Running, WebhookError> {
        let (plugin_part, host) = definition.split();
        let webhook = edgehook_particle::Webhook::from_json(&plugin_part)
            .map_err(|e| WebhookError::Invalid(e.to_string()))?;
        let devices = webhook
            .device_id()
            .map(|d| {
                DeviceId::try_from(d)
                    .map(|d| vec![d])
                    .map_err(|e| WebhookError::Invalid(format!("`deviceID`: {e}")))
            })
            .transpose()?;
        Ok(Running {
            filter: Filter {
                event: webhook.event().to_owned(),
                devices,
                ..Filter::default()
            },
            send: SendOptions {
                insecure_tls: !webhook.reject_unauthorized(),
                signing_key: webhook.secret().map(Arc::from),
                auth: super::auth::authorizer(host.auth.as_ref(), true)?,
                retry: super::retry::schedule(host.retry.as_ref())?,
            },
            disabled: webhook.disabled(),
        })
    }

    fn config(definition: &Definition) -> Value {
        definition.split().0
    }

    fn view(id: &str, created_at: &str, definition: &Definition) -> Value {
        masked::view(id, created_at, &definition.0)
    }
}
