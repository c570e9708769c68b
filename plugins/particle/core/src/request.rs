//! Building the HTTP request of one event, as the reference's "Default
//! data" table says: the default fields go into a form body (POST, PUT) or
//! the query string (GET, DELETE), beside the `json`, `form` or `query`
//! fields, unless `noDefaults`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::definition::{Body, Field, Webhook};
use crate::encode::encode_pairs;
use crate::error::RenderError;
use crate::json::JsonTemplate;
use crate::template::{Template, write_json};
use crate::url::append_query;
use crate::vars::{self, Event};

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// HTTP method of a webhook (`requestType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`: data in the query string.
    Get,
    /// `POST` (the default).
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`: data in the query string.
    Delete,
}

impl Method {
    /// `GET`, `POST`, `PUT` or `DELETE`, in any case.
    pub(crate) fn parse(name: &str) -> Option<Method> {
        [Method::Get, Method::Post, Method::Put, Method::Delete]
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name))
    }

    /// The method's name, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// Whether requests of this method carry a body.
    pub(crate) fn has_body(self) -> bool {
        matches!(self, Method::Post | Method::Put)
    }
}

/// The request to send for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The rendered URL, query string included.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body; empty for none.
    pub body: Vec<u8>,
}

/// The default fields, valued for one event.
struct Defaults {
    event: String,
    data: String,
    coreid: String,
    published_at: String,
}

impl Defaults {
    fn new(event: &Event<'_>) -> Self {
        Self {
            event: event.name.to_owned(),
            data: event.text(),
            coreid: event.device_id.to_owned(),
            published_at: event.published_at.to_owned(),
        }
    }

    /// In the order of the reference's example request, wherever they go.
    fn fields(&self) -> [(&'static str, &str); 4] {
        [
            ("event", &self.event),
            ("data", &self.data),
            ("published_at", &self.published_at),
            ("coreid", &self.coreid),
        ]
    }
}

/// Rendered name/value pairs.
type Pairs = Vec<(String, String)>;

fn render_pairs(fields: &[Field], stack: &[&Value]) -> Result<Pairs, RenderError> {
    fields
        .iter()
        .map(|f| {
            Ok((
                render(&f.name, stack, &f.path)?,
                render(&f.value, stack, &f.path)?,
            ))
        })
        .collect()
}

/// Renders the template of `field`, whole or not at all.
fn render(template: &Template, stack: &[&Value], field: &str) -> Result<String, RenderError> {
    template
        .try_render_stack(stack)
        .map_err(|limit| RenderError::limit(field, limit))
}

/// Encodes `pairs`, then the defaults whose names `pairs` do not have.
fn encode_with_defaults<'a>(
    pairs: &'a Pairs,
    defaults: Option<impl IntoIterator<Item = (&'a str, &'a str)>>,
) -> String {
    let mut out = String::new();
    let user = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let defaults = defaults
        .into_iter()
        .flatten()
        .filter(|(name, _)| !pairs.iter().any(|(k, _)| k == name));
    encode_pairs(&mut out, user.chain(defaults));
    out
}

impl Webhook {
    /// The request for `event`.
    pub fn request(&self, event: &Event<'_>) -> Result<Request, RenderError> {
        let context = vars::context(event, self.needs);
        let stack = [&context];
        let defaults = (!self.no_defaults).then(|| Defaults::new(event));
        let mut url = render(&self.url, &stack, "url")?;
        let query = render_pairs(&self.query, &stack)?;
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut body = Vec::new();

        if self.method.has_body() {
            append_query(&mut url, &encode_with_defaults(&query, None::<[_; 0]>));
            match &self.body {
                Body::Default => {
                    if let Some(defaults) = &defaults {
                        headers.push(("content-type".to_owned(), FORM.to_owned()));
                        body = encode_with_defaults(&Pairs::new(), Some(defaults.fields()))
                            .into_bytes();
                    }
                }
                Body::Form(fields) => {
                    headers.push(("content-type".to_owned(), FORM.to_owned()));
                    let pairs = render_pairs(fields, &stack)?;
                    body = encode_with_defaults(&pairs, defaults.as_ref().map(Defaults::fields))
                        .into_bytes();
                }
                Body::Json(template) => {
                    headers.push(("accept".to_owned(), JSON.to_owned()));
                    headers.push(("content-type".to_owned(), JSON.to_owned()));
                    body = json_body(template, &stack, defaults.as_ref())?.into_bytes();
                }
                Body::Text(template) => body = render(template, &stack, "body")?.into_bytes(),
            }
        } else {
            // GET and DELETE have no body (the definition refuses one).
            let defaults = defaults.as_ref().map(Defaults::fields);
            append_query(&mut url, &encode_with_defaults(&query, defaults));
        }

        if let Some(auth) = &self.auth {
            let credentials = format!(
                "{}:{}",
                render(&auth.username, &stack, "auth.username")?,
                render(&auth.password, &stack, "auth.password")?
            );
            headers.push((
                "authorization".to_owned(),
                format!("Basic {}", STANDARD.encode(credentials)),
            ));
        }
        for field in &self.headers {
            let name = render(&field.name, &stack, &field.path)?;
            let value = render(&field.value, &stack, &field.path)?;
            check_header(&field.path, &name, &value)?;
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
            headers.push((name, value));
        }

        Ok(Request {
            method: self.method,
            url,
            headers,
            body,
        })
    }
}

/// The `json` body: rendered, parsed if it was a string, the defaults
/// merged in under the user's keys, serialized compactly.
fn json_body(
    template: &JsonTemplate,
    stack: &[&Value],
    defaults: Option<&Defaults>,
) -> Result<String, RenderError> {
    let mut value = match template {
        JsonTemplate::Text(text) => {
            let rendered = render(text, stack, "json")?;
            serde_json::from_str(&rendered).map_err(|e| {
                RenderError::new("json", format!("json template rendered invalid JSON: {e}"))
            })?
        }
        other => other
            .render(stack)
            .map_err(|limit| RenderError::limit("json", limit))?,
    };
    if let (Value::Object(map), Some(defaults)) = (&mut value, defaults) {
        for (name, text) in defaults.fields() {
            map.entry(name)
                .or_insert_with(|| Value::String(text.to_owned()));
        }
    }
    let mut out = String::new();
    write_json(&mut out, &value);
    Ok(out)
}

/// A rendered header must be a valid header: a token for a name, no line
/// breaks in the value.
fn check_header(field: &str, name: &str, value: &str) -> Result<(), RenderError> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(RenderError::new(
            field,
            format!("rendered header name {name:?} is not a valid HTTP header name"),
        ));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(RenderError::new(
            field,
            // Not the value itself: it may be a credential.
            "the rendered value contains a line break",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
