//! From the definition as written to a checked [`Webhook`]: each field's
//! rule (the event prefix, an http(s) URL, one body type, templates that
//! parse, a Standard Webhooks secret) and the templates parsed once.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::raw::{Raw, RawAuth, kind};
use super::{Auth, Body, Field, Webhook};
use crate::error::DefinitionError;
use crate::json::{JsonTemplate, parse_template};
use crate::request::Method;
use crate::template::Template;
use crate::url;
use crate::vars::{EVENT_JSON_VARIABLES, Needs};

/// The prefix of a Standard Webhooks signing secret.
const SECRET_PREFIX: &str = "whsec_";

impl Raw<'_> {
    /// Checks every field and parses every template, in the order of the
    /// fields of [`Webhook`] that need them.
    pub(super) fn build(self) -> Result<Webhook, DefinitionError> {
        let event = event(self.event)?;
        let url = self
            .url
            .ok_or_else(|| DefinitionError::new("url", "missing: the URL to send requests to"))?;
        let url = parse_url(&url)?;
        let method = method(self.request_type)?;
        let body = body(self.json, self.form, self.body.as_deref(), method)?;
        let auth = self.auth.map(auth).transpose()?;
        let response_template = self.response_template.map(response_template).transpose()?;
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

/// `event` (or `eventName`, the field it was given as): present and not
/// empty.
fn event(given: Option<(String, &'static str)>) -> Result<String, DefinitionError> {
    match given {
        None => Err(DefinitionError::new(
            "event",
            "missing: the prefix of the event names that trigger the webhook",
        )),
        Some((event, field)) if event.is_empty() => Err(DefinitionError::new(
            field,
            "empty: give at least one character (the webhook triggers on event names \
             that start with it)",
        )),
        Some((event, _)) => Ok(event),
    }
}

/// `requestType`: POST unless given.
fn method(request_type: Option<String>) -> Result<Method, DefinitionError> {
    match request_type {
        None => Ok(Method::Post),
        Some(name) => Method::parse(&name).ok_or_else(|| {
            DefinitionError::new(
                "requestType",
                format!("unknown request type `{name}`: use GET, POST, PUT or DELETE"),
            )
        }),
    }
}

/// `auth`: both parts templates.
fn auth(auth: RawAuth) -> Result<Auth, DefinitionError> {
    Ok(Auth {
        username: parse_template(&auth.username, "auth.username")?,
        password: parse_template(&auth.password, "auth.password")?,
    })
}

/// `responseTemplate`: a string or an object template.
fn response_template(value: &Value) -> Result<JsonTemplate, DefinitionError> {
    match value {
        Value::String(_) | Value::Object(_) => JsonTemplate::parse(value, "responseTemplate"),
        other => Err(DefinitionError::new(
            "responseTemplate",
            format!("expected a string or an object, found {}", kind(other)),
        )),
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
