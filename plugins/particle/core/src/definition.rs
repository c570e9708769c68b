//! The webhook definition: Particle's JSON, read and checked once into a
//! [`Webhook`] whose templates are parsed.
//!
//! Every field of Particle's reference is read with its meaning there; the
//! fields a Particle export carries that mean nothing here (`id`,
//! `created_at`, …) are ignored; any other field is an error that names it.
//! Each field is deserialized on its own so that an error always names it.
//!
//! `raw` reads the fields as written; `checked` applies each field's rule
//! and parses the templates.

use serde_json::Value;

use crate::error::DefinitionError;
use crate::json::JsonTemplate;
use crate::request::Method;
use crate::template::Template;
use crate::vars::Needs;
use raw::{Raw, kind};

mod checked;
mod raw;
#[cfg(test)]
mod tests;

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
