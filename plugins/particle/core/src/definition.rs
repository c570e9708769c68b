//! The webhook definition: Particle's JSON, read and checked once into a
//! [`Webhook`] whose templates are parsed.
//!
//! Every field of Particle's reference is read with its meaning there; the
//! fields a Particle export carries that mean nothing here (`id`,
//! `created_at`, …) are ignored; any other field is an error that names it.
//! Each field is deserialized on its own so that an error always names it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::DefinitionError;
use crate::json::{JsonTemplate, parse_template};
use crate::request::Method;
use crate::template::Template;
use crate::url;
use crate::vars::{EVENT_JSON_VARIABLES, Needs};

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

/// The prefix of a Standard Webhooks signing secret.
const SECRET_PREFIX: &str = "whsec_";

/// A Particle-style webhook, checked, with its templates parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub(crate) name: Option<String>,
    pub(crate) event: String,
    pub(crate) device_id: Option<String>,
    pub(crate) disabled: bool,
    pub(crate) reject_unauthorized: bool,
    /// The decoded Standard Webhooks key; the host signs with it.
    pub(crate) secret: Option<Vec<u8>>,
    pub(crate) method: Method,
    pub(crate) url: Template,
    pub(crate) body: Body,
    pub(crate) query: Vec<Field>,
    pub(crate) headers: Vec<Field>,
    pub(crate) auth: Option<Auth>,
    pub(crate) no_defaults: bool,
    /// A string template is published as rendered; an object is rendered
    /// like `json` and published as compact JSON.
    pub(crate) response_template: Option<JsonTemplate>,
    pub(crate) response_topic: Option<Template>,
    pub(crate) error_response_topic: Option<Template>,
    pub(crate) unchunked: bool,
    pub(crate) data_url: bool,
    /// Which costly variables the templates use, so that events build only
    /// those.
    pub(crate) needs: Needs,
}

/// The body type of a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// None given: the default fields, as a form (POST, PUT) or in the
    /// query string (GET, DELETE).
    Default,
    /// `json`: an object whose keys and strings are templates, or a string
    /// template that must render JSON.
    Json(JsonTemplate),
    /// `form`: fields of a URL-encoded form.
    Form(Vec<Field>),
    /// `body`: a string template, sent as rendered.
    Text(Template),
}

/// One name/value pair of `form`, `query` or `headers`; both templates.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Field {
    /// Where it was defined (`headers.X-Sender`), for render errors.
    pub(crate) path: String,
    pub(crate) name: Template,
    pub(crate) value: Template,
}

/// `auth`: HTTP basic authentication, both parts templates.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Auth {
    pub(crate) username: Template,
    pub(crate) password: Template,
}

/// `auth` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    username: String,
    #[serde(default)]
    password: String,
}

/// The definition as written, each field type-checked, nothing validated.
#[derive(Debug, Default)]
struct Raw<'a> {
    name: Option<String>,
    event: Option<(String, &'static str)>,
    url: Option<String>,
    request_type: Option<String>,
    json: Option<&'a Value>,
    form: Option<&'a Map<String, Value>>,
    body: Option<String>,
    query: Option<&'a Map<String, Value>>,
    headers: Option<&'a Map<String, Value>>,
    auth: Option<RawAuth>,
    no_defaults: bool,
    response_template: Option<&'a Value>,
    response_topic: Option<String>,
    error_response_topic: Option<String>,
    unchunked: bool,
    data_url: bool,
    reject_unauthorized: Option<bool>,
    device_id: Option<(String, &'static str)>,
    disabled: bool,
    secret: Option<String>,
}

impl Webhook {
    /// Reads a definition from its JSON value.
    pub fn from_json(value: &Value) -> Result<Webhook, DefinitionError> {
        let Value::Object(fields) = value else {
            return Err(DefinitionError::new(
                "",
                format!("a webhook definition is a JSON object, not {}", kind(value)),
            ));
        };
        Raw::read(fields)?.build()
    }

    /// Reads a definition from JSON text.
    pub fn from_slice(bytes: &[u8]) -> Result<Webhook, DefinitionError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| DefinitionError::new("", format!("not valid JSON: {e}")))?;
        Self::from_json(&value)
    }

    /// `name`: a description for listings.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// `event`: the case-sensitive prefix of the event names that trigger
    /// the webhook (at least one character).
    pub fn event(&self) -> &str {
        &self.event
    }

    /// `deviceID`: the only device whose events trigger the webhook.
    pub fn device_id(&self) -> Option<&str> {
        self.device_id.as_deref()
    }

    /// `disabled`: the webhook triggers on nothing.
    pub fn disabled(&self) -> bool {
        self.disabled
    }

    /// `rejectUnauthorized`: whether HTTPS certificates are verified
    /// (default true).
    pub fn reject_unauthorized(&self) -> bool {
        self.reject_unauthorized
    }

    /// The URL template as written.
    pub fn url(&self) -> &str {
        self.url.source()
    }

    /// `secret`: the decoded Standard Webhooks signing key, if any.
    pub fn secret(&self) -> Option<&[u8]> {
        self.secret.as_deref()
    }
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

fn kind(value: &Value) -> &'static str {
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
    fn read(fields: &'a Map<String, Value>) -> Result<Self, DefinitionError> {
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

    fn build(self) -> Result<Webhook, DefinitionError> {
        let event = match self.event {
            None => {
                return Err(DefinitionError::new(
                    "event",
                    "missing: the prefix of the event names that trigger the webhook",
                ));
            }
            Some((event, field)) if event.is_empty() => {
                return Err(DefinitionError::new(
                    field,
                    "empty: give at least one character (the webhook triggers on event names \
                     that start with it)",
                ));
            }
            Some((event, _)) => event,
        };
        let url = self
            .url
            .ok_or_else(|| DefinitionError::new("url", "missing: the URL to send requests to"))?;
        let url = parse_url(&url)?;
        let method = match self.request_type {
            None => Method::Post,
            Some(name) => Method::parse(&name).ok_or_else(|| {
                DefinitionError::new(
                    "requestType",
                    format!("unknown request type `{name}`: use GET, POST, PUT or DELETE"),
                )
            })?,
        };
        let body = body(self.json, self.form, self.body.as_deref(), method)?;
        let auth = self
            .auth
            .map(|auth| {
                Ok::<_, DefinitionError>(Auth {
                    username: parse_template(&auth.username, "auth.username")?,
                    password: parse_template(&auth.password, "auth.password")?,
                })
            })
            .transpose()?;
        let response_template = self
            .response_template
            .map(|value| match value {
                Value::String(_) | Value::Object(_) => {
                    JsonTemplate::parse(value, "responseTemplate")
                }
                other => Err(DefinitionError::new(
                    "responseTemplate",
                    format!("expected a string or an object, found {}", kind(other)),
                )),
            })
            .transpose()?;
        let topic = |source: Option<String>, field: &str| {
            source.map(|s| parse_template(&s, field)).transpose()
        };
        let mut webhook = Webhook {
            name: self.name,
            event,
            device_id: self.device_id.map(|(id, _)| id).filter(|id| !id.is_empty()),
            disabled: self.disabled,
            reject_unauthorized: self.reject_unauthorized.unwrap_or(true),
            secret: self.secret.as_deref().map(secret).transpose()?,
            method,
            url,
            body,
            query: fields("query", self.query)?,
            headers: fields("headers", self.headers)?,
            auth,
            no_defaults: self.no_defaults,
            response_template,
            response_topic: topic(self.response_topic, "responseTopic")?,
            error_response_topic: topic(self.error_response_topic, "errorResponseTopic")?,
            unchunked: self.unchunked,
            data_url: self.data_url,
            needs: Needs::default(),
        };
        webhook.needs = Needs {
            event_json: EVENT_JSON_VARIABLES
                .iter()
                .any(|name| webhook.mentions(name)),
        };
        Ok(webhook)
    }
}

impl Webhook {
    /// Whether any template of the webhook looks `name` up.
    fn mentions(&self, name: &str) -> bool {
        let in_fields = |fields: &[Field]| {
            fields
                .iter()
                .any(|f| f.name.mentions(name) || f.value.mentions(name))
        };
        let body = match &self.body {
            Body::Default => false,
            Body::Json(json) => json.mentions(name),
            Body::Form(fields) => in_fields(fields),
            Body::Text(template) => template.mentions(name),
        };
        body || self.url.mentions(name)
            || in_fields(&self.query)
            || in_fields(&self.headers)
            || self
                .auth
                .as_ref()
                .is_some_and(|a| a.username.mentions(name) || a.password.mentions(name))
            || self
                .response_template
                .as_ref()
                .is_some_and(|t| t.mentions(name))
            || [&self.response_topic, &self.error_response_topic]
                .into_iter()
                .flatten()
                .any(|t| t.mentions(name))
    }
}

/// The URL template: a fixed URL must be absolute http(s); a template must
/// at least start with its scheme.
fn parse_url(source: &str) -> Result<Template, DefinitionError> {
    let url = parse_template(source, "url")?;
    if url.is_literal() {
        if !url::is_absolute_http(source) {
            return Err(DefinitionError::new(
                "url",
                "not an absolute http:// or https:// URL",
            ));
        }
    } else if !url::has_http_scheme(url.literal_prefix()) {
        return Err(DefinitionError::new(
            "url",
            "must start with http:// or https:// (templates may fill in the rest)",
        ));
    }
    Ok(url)
}

/// The body type: at most one of `json`, `form` and `body`, and none for
/// GET and DELETE.
fn body(
    json: Option<&Value>,
    form: Option<&Map<String, Value>>,
    text: Option<&str>,
    method: Method,
) -> Result<Body, DefinitionError> {
    let given: Vec<&str> = [
        ("json", json.is_some()),
        ("form", form.is_some()),
        ("body", text.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    if let [first, second, ..] = given[..] {
        return Err(DefinitionError::new(
            first,
            format!("`{first}` and `{second}` cannot both be set: choose one body type"),
        ));
    }
    if let (Some(field), false) = (given.first(), method.has_body()) {
        return Err(DefinitionError::new(
            *field,
            format!(
                "a {method} request has no body: use `query` to send data with {method}",
                method = method.as_str()
            ),
        ));
    }
    Ok(match (json, form, text) {
        (Some(json @ (Value::Object(_) | Value::String(_))), _, _) => {
            Body::Json(JsonTemplate::parse(json, "json")?)
        }
        (Some(other), _, _) => {
            return Err(DefinitionError::new(
                "json",
                format!("expected an object or a string, found {}", kind(other)),
            ));
        }
        (_, Some(form), _) => Body::Form(fields("form", Some(form))?),
        (_, _, Some(text)) => Body::Text(parse_template(text, "body")?),
        (None, None, None) => Body::Default,
    })
}

/// The pairs of `form`, `query` or `headers`: names and string values are
/// templates; numbers and booleans stand for their text.
fn fields(field: &str, map: Option<&Map<String, Value>>) -> Result<Vec<Field>, DefinitionError> {
    let Some(map) = map else {
        return Ok(Vec::new());
    };
    map.iter()
        .map(|(name, value)| {
            let path = format!("{field}.{name}");
            let value = match value {
                Value::String(s) => parse_template(s, &path)?,
                Value::Number(_) | Value::Bool(_) => parse_template(&value.to_string(), &path)?,
                other => {
                    return Err(DefinitionError::new(
                        path,
                        format!(
                            "expected a string, number or boolean, found {}",
                            kind(other)
                        ),
                    ));
                }
            };
            Ok(Field {
                name: parse_template(name, &path)?,
                value,
                path,
            })
        })
        .collect()
}

/// The key of a `whsec_…` secret.
fn secret(text: &str) -> Result<Vec<u8>, DefinitionError> {
    let encoded = text.strip_prefix(SECRET_PREFIX).ok_or_else(|| {
        DefinitionError::new(
            "secret",
            "must be `whsec_` followed by the base64 key (a Standard Webhooks secret)",
        )
    })?;
    let key = STANDARD.decode(encoded).map_err(|e| {
        DefinitionError::new(
            "secret",
            format!("the key after `whsec_` is not base64: {e}"),
        )
    })?;
    if key.is_empty() {
        return Err(DefinitionError::new(
            "secret",
            "the key after `whsec_` is empty",
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn error(definition: Value) -> DefinitionError {
        Webhook::from_json(&definition).expect_err("definition should be refused")
    }

    const URL: &str = "https://example.com/in";

    #[test]
    fn minimal_definition_gets_the_defaults() {
        let hook = Webhook::from_json(&json!({"event": "temp", "url": URL})).unwrap();
        assert_eq!(hook.event(), "temp");
        assert_eq!(hook.url(), URL);
        assert_eq!(hook.method, Method::Post);
        assert_eq!(hook.body, Body::Default);
        assert!(hook.reject_unauthorized());
        assert!(!hook.disabled());
        assert_eq!(hook.name(), None);
        assert_eq!(hook.device_id(), None);
        assert_eq!(hook.secret(), None);
        assert!(!hook.needs.event_json);
    }

    #[test]
    fn every_field_is_read() {
        let hook = Webhook::from_json(&json!({
            "name": "Trigger alert", "eventName": "temp", "url": "https://{{host}}/x",
            "requestType": "put", "json": {"a": "{{{PARTICLE_EVENT_JSON}}}"},
            "query": {"q": 1}, "headers": {"X-A": true}, "auth": {"username": "u"},
            "noDefaults": true, "responseTemplate": {"a": "{{b}}"}, "responseTopic": "r",
            "errorResponseTopic": "e", "unchunked": true, "dataUrlResponseEvent": true,
            "rejectUnauthorized": false, "deviceid": "3f00", "disabled": true,
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "id": "x", "created_at": "y", "mydevices": true, "integration_type": "Webhook",
            "access_token": null, "product_id": 1, "productIdOrSlug": "p", "counter": 3,
            "logs": [], "errors": [],
        }))
        .unwrap();
        assert_eq!(hook.name(), Some("Trigger alert"));
        assert_eq!(hook.method, Method::Put);
        assert_eq!(hook.device_id(), Some("3f00"));
        assert!(hook.disabled() && !hook.reject_unauthorized() && hook.unchunked);
        assert!(hook.no_defaults && hook.data_url);
        assert!(hook.needs.event_json);
        assert_eq!(hook.secret().map(<[u8]>::len), Some(24));
        assert_eq!(hook.query[0].value.source(), "1");
        assert_eq!(hook.headers[0].value.source(), "true");
        assert_eq!(hook.auth.as_ref().map(|a| a.password.source()), Some(""));
    }

    #[test]
    fn syntax_errors_and_non_objects() {
        let err = Webhook::from_slice(b"{\"event\": ").unwrap_err();
        assert_eq!(err.field, "");
        assert!(err.reason.starts_with("not valid JSON"), "{err}");
        assert_eq!(error(json!([1])).field, "");
    }

    #[test]
    fn errors_name_their_field() {
        let cases = [
            (json!({"url": URL}), "event", "missing"),
            (json!({"event": "", "url": URL}), "event", "empty"),
            (json!({"eventName": "", "url": URL}), "eventName", "empty"),
            (
                json!({"event": "a", "eventName": "b", "url": URL}),
                "eventName",
                "same setting",
            ),
            (json!({"event": "t"}), "url", "missing"),
            (
                json!({"event": "t", "url": "example.com"}),
                "url",
                "absolute",
            ),
            (
                json!({"event": "t", "url": "{{u}}/x"}),
                "url",
                "must start with http",
            ),
            (
                json!({"event": "t", "url": "http://{{u"}),
                "url",
                "unclosed tag",
            ),
            (
                json!({"event": "t", "url": URL, "requestType": "PATCH"}),
                "requestType",
                "GET, POST, PUT or DELETE",
            ),
            (
                json!({"event": "t", "url": URL, "json": {}, "form": {}}),
                "json",
                "`json` and `form` cannot both be set",
            ),
            (
                json!({"event": "t", "url": URL, "form": {}, "body": ""}),
                "form",
                "`form` and `body` cannot both be set",
            ),
            (
                json!({"event": "t", "url": URL, "json": 5}),
                "json",
                "object or a string",
            ),
            (
                json!({"event": "t", "url": URL, "requestType": "GET", "json": {}}),
                "json",
                "use `query`",
            ),
            (
                json!({"event": "t", "url": URL, "requestType": "delete", "body": "x"}),
                "body",
                "DELETE request has no body",
            ),
            (
                json!({"event": "t", "url": URL, "json": {"coordinates": {"lat": "{{#lat}}"}}}),
                "json.coordinates.lat",
                "unclosed section",
            ),
            (
                json!({"event": "t", "url": URL, "headers": {"X-Sender": "{{/x}}"}}),
                "headers.X-Sender",
                "never opened",
            ),
            (
                json!({"event": "t", "url": URL, "query": {"q": ["a"]}}),
                "query.q",
                "string, number or boolean",
            ),
            (
                json!({"event": "t", "url": URL, "form": "a=b"}),
                "form",
                "expected an object",
            ),
            (
                json!({"event": "t", "url": URL, "noDefaults": "yes"}),
                "noDefaults",
                "invalid type",
            ),
            (
                json!({"event": 5, "url": URL}),
                "event",
                "invalid type: integer `5`, expected a string",
            ),
            (
                json!({"event": "t", "url": URL, "auth": {"user": "u"}}),
                "auth",
                "unknown field `user`",
            ),
            (
                json!({"event": "t", "url": URL, "colour": "red"}),
                "colour",
                "unknown field; known fields are name, event,",
            ),
            (
                json!({"event": "t", "url": URL, "secret": "abc"}),
                "secret",
                "whsec_",
            ),
            (
                json!({"event": "t", "url": URL, "secret": "whsec_!!"}),
                "secret",
                "not base64",
            ),
            (
                json!({"event": "t", "url": URL, "responseTemplate": 1}),
                "responseTemplate",
                "string or an object",
            ),
            (
                json!({"event": "t", "url": URL, "responseTopic": "{{> p}}"}),
                "responseTopic",
                "partials (`{{> p}}`) are not supported in webhooks",
            ),
            (
                json!({"event": "t", "url": "https://h/{{>path}}"}),
                "url",
                "partials (`{{>path}}`) are not supported in webhooks",
            ),
            (
                json!({"event": "t", "url": URL, "body": "a\n  {{> x}}\n"}),
                "body",
                "partials (`{{> x}}`) are not supported in webhooks at line 2, column 3",
            ),
            (
                json!({"event": "t", "url": URL, "headers": {"X": "{{=<% %>=}}<%> x%>"}}),
                "headers.X",
                "partials (`<%> x%>`) are not supported in webhooks",
            ),
        ];
        for (definition, field, reason) in cases {
            let err = error(definition.clone());
            assert_eq!(err.field, field, "{definition} -> {err}");
            assert!(err.reason.contains(reason), "{definition} -> {err}");
        }
    }

    #[test]
    fn null_fields_are_unset_and_empty_device_ids_are_none() {
        let hook = Webhook::from_json(&json!({
            "event": "t", "url": URL, "json": null, "deviceID": "", "headers": null
        }))
        .unwrap();
        assert_eq!(hook.body, Body::Default);
        assert_eq!(hook.device_id(), None);
    }
}
