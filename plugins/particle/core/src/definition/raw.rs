//! The definition as written: each field read and type-checked on its own,
//! so that an error always names it, aliases reconciled, nothing validated.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::DefinitionError;

/// The fields of a definition, in Particle's spelling.
const FIELDS: &[&str] = &[
    "name",
    "event",
    "eventName",
    "url",
    "requestType",
    "json",
    "form",
    "body",
    "query",
    "headers",
    "auth",
    "noDefaults",
    "responseTemplate",
    "responseTopic",
    "errorResponseTopic",
    "unchunked",
    "dataUrlResponseEvent",
    "rejectUnauthorized",
    "deviceID",
    "deviceid",
    "disabled",
    "secret",
];

/// Fields of a Particle export that describe the hook's life on Particle's
/// cloud, not what it does: accepted and ignored.
const IGNORED: &[&str] = &[
    "id",
    "created_at",
    "mydevices",
    "integration_type",
    "access_token",
    "product_id",
    "productIdOrSlug",
    "counter",
    "logs",
    "errors",
];

/// `auth` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub(super) username: String,
    #[serde(default)]
    pub(super) password: String,
}

/// The definition as written, each field type-checked, nothing validated.
#[derive(Debug, Default)]
pub(super) struct Raw<'a> {
    pub(super) name: Option<String>,
    pub(super) event: Option<(String, &'static str)>,
    pub(super) url: Option<String>,
    pub(super) request_type: Option<String>,
    pub(super) json: Option<&'a Value>,
    pub(super) form: Option<&'a Map<String, Value>>,
    pub(super) body: Option<String>,
    pub(super) query: Option<&'a Map<String, Value>>,
    pub(super) headers: Option<&'a Map<String, Value>>,
    pub(super) auth: Option<RawAuth>,
    pub(super) no_defaults: bool,
    pub(super) response_template: Option<&'a Value>,
    pub(super) response_topic: Option<String>,
    pub(super) error_response_topic: Option<String>,
    pub(super) unchunked: bool,
    pub(super) data_url: bool,
    pub(super) reject_unauthorized: Option<bool>,
    pub(super) device_id: Option<(String, &'static str)>,
    pub(super) disabled: bool,
    pub(super) secret: Option<String>,
}

/// `value` deserialized as a `T`, or serde's message naming `field`.
fn typed<T: DeserializeOwned>(field: &str, value: &Value) -> Result<T, DefinitionError> {
    T::deserialize(value).map_err(|e| DefinitionError::new(field, e.to_string()))
}

/// `value` as an object, or an error naming `field`.
fn object<'a>(field: &str, value: &'a Value) -> Result<&'a Map<String, Value>, DefinitionError> {
    value.as_object().ok_or_else(|| {
        DefinitionError::new(field, format!("expected an object, found {}", kind(value)))
    })
}

/// What `value` is, for error messages.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Sets a field that has an alias, refusing two different values.
fn set_alias(
    slot: &mut Option<(String, &'static str)>,
    field: &'static str,
    value: String,
) -> Result<(), DefinitionError> {
    match slot {
        Some((earlier, alias)) if *earlier != value => Err(DefinitionError::new(
            field,
            format!("`{alias}` and `{field}` are the same setting with different values: keep one"),
        )),
        _ => {
            *slot = Some((value, field));
            Ok(())
        }
    }
}

impl<'a> Raw<'a> {
    /// Reads each field of the definition, refusing unknown ones.
    pub(super) fn read(fields: &'a Map<String, Value>) -> Result<Self, DefinitionError> {
        let mut raw = Raw::default();
        for (key, value) in fields {
            // Exports write unset fields as null: null is unset.
            if value.is_null() {
                continue;
            }
            let key = key.as_str();
            match key {
                "name" => raw.name = Some(typed(key, value)?),
                "event" => set_alias(&mut raw.event, "event", typed(key, value)?)?,
                "eventName" => set_alias(&mut raw.event, "eventName", typed(key, value)?)?,
                "url" => raw.url = Some(typed(key, value)?),
                "requestType" => raw.request_type = Some(typed(key, value)?),
                "json" => raw.json = Some(value),
                "form" => raw.form = Some(object(key, value)?),
                "body" => raw.body = Some(typed(key, value)?),
                "query" => raw.query = Some(object(key, value)?),
                "headers" => raw.headers = Some(object(key, value)?),
                "auth" => raw.auth = Some(typed(key, value)?),
                "noDefaults" => raw.no_defaults = typed(key, value)?,
                "responseTemplate" => raw.response_template = Some(value),
                "responseTopic" => raw.response_topic = Some(typed(key, value)?),
                "errorResponseTopic" => raw.error_response_topic = Some(typed(key, value)?),
                "unchunked" => raw.unchunked = typed(key, value)?,
                "dataUrlResponseEvent" => raw.data_url = typed(key, value)?,
                "rejectUnauthorized" => raw.reject_unauthorized = Some(typed(key, value)?),
                "deviceID" => set_alias(&mut raw.device_id, "deviceID", typed(key, value)?)?,
                "deviceid" => set_alias(&mut raw.device_id, "deviceid", typed(key, value)?)?,
                "disabled" => raw.disabled = typed(key, value)?,
                "secret" => raw.secret = Some(typed(key, value)?),
                ignored if IGNORED.contains(&ignored) => {}
                unknown => {
                    return Err(DefinitionError::new(
                        unknown,
                        format!("unknown field; known fields are {}", FIELDS.join(", ")),
                    ));
                }
            }
        }
        Ok(raw)
    }
}
