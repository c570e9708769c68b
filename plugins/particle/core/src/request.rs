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
mod tests {
    use serde_json::json;

    use super::*;

    const EVENT: Event<'static> = Event {
        id: "ev-1",
        device_id: "dev-1",
        name: "temp",
        data: br#"{"t": 21.5, "who": "a b"}"#,
        published_at: "2026-01-01T00:00:00.000Z",
        product_id: None,
    };

    fn request(definition: Value) -> Request {
        Webhook::from_json(&definition)
            .unwrap()
            .request(&EVENT)
            .unwrap()
    }

    fn body(request: &Request) -> &str {
        std::str::from_utf8(&request.body).unwrap()
    }

    const DEFAULT_FORM: &str = "event=temp&data=%7B%22t%22%3A%2021.5%2C%20%22who%22%3A%20%22a%20b%22%7D&published_at=2026-01-01T00%3A00%3A00.000Z&coreid=dev-1";

    #[test]
    fn no_body_type_posts_the_defaults_as_a_form() {
        let r = request(json!({"event": "t", "url": "https://x.test/in"}));
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.url, "https://x.test/in");
        assert_eq!(r.headers, [("content-type".into(), FORM.into())]);
        assert_eq!(body(&r), DEFAULT_FORM);
    }

    #[test]
    fn a_template_over_the_render_limits_is_an_error_not_a_cut_body() {
        let nested = format!("{}x{}", "{{#a}}".repeat(8), "{{/a}}".repeat(8));
        let event = Event {
            data: br#"{"a": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}"#,
            ..EVENT
        };
        for (field, definition) in [
            (
                "body",
                json!({"event": "t", "url": "https://x.test/in", "body": nested}),
            ),
            (
                "json",
                json!({"event": "t", "url": "https://x.test/in", "json": {"k": nested}}),
            ),
            (
                "query.q",
                json!({"event": "t", "url": "https://x.test/in", "query": {"q": nested}}),
            ),
        ] {
            let err = Webhook::from_json(&definition)
                .unwrap()
                .request(&event)
                .unwrap_err();
            assert_eq!(err.field(), field);
            assert!(err.reason().contains("renders too much"), "{err}");
        }
    }

    #[test]
    fn no_defaults_and_no_body_type_sends_nothing() {
        let r = request(json!({"event": "t", "url": "https://x.test/in", "noDefaults": true}));
        assert!(r.headers.is_empty() && r.body.is_empty());
    }

    #[test]
    fn get_and_delete_put_the_defaults_in_the_query_after_the_users() {
        for method in ["GET", "delete"] {
            let r = request(json!({
                "event": "t", "url": "https://x.test/in?k=1", "requestType": method,
                "query": {"t": "{{t}}", "data": "mine"}
            }));
            assert_eq!(
                r.url,
                "https://x.test/in?k=1&data=mine&t=21.5&event=temp&published_at=2026-01-01T00%3A00%3A00.000Z&coreid=dev-1"
            );
            assert!(r.body.is_empty() && r.headers.is_empty());
        }
    }

    #[test]
    fn post_with_query_keeps_the_default_form() {
        let r = request(json!({"event": "t", "url": "https://x.test/in", "query": {"a": "b"}}));
        assert_eq!(r.url, "https://x.test/in?a=b");
        assert_eq!(body(&r), DEFAULT_FORM);
    }

    #[test]
    fn form_fields_then_the_defaults_the_user_did_not_set() {
        let r = request(json!({
            "event": "t", "url": "https://x.test/in", "requestType": "PUT",
            "form": {"z": "{{who}}", "event": "mine", "a": 1}
        }));
        assert_eq!(r.method, Method::Put);
        assert_eq!(
            body(&r),
            "a=1&event=mine&z=a%20b&data=%7B%22t%22%3A%2021.5%2C%20%22who%22%3A%20%22a%20b%22%7D&published_at=2026-01-01T00%3A00%3A00.000Z&coreid=dev-1"
        );
    }

    #[test]
    fn json_object_with_defaults_merged_under_the_users_keys() {
        let r = request(json!({
            "event": "t", "url": "https://x.test/in",
            "json": {"temp": "{{t}}", "n": 1.0, "data": "{{{who}}}"}
        }));
        assert_eq!(
            r.headers,
            [
                ("accept".into(), JSON.into()),
                ("content-type".into(), JSON.into())
            ]
        );
        assert_eq!(
            body(&r),
            r#"{"coreid":"dev-1","data":"a b","event":"temp","n":1,"published_at":"2026-01-01T00:00:00.000Z","temp":"21.5"}"#
        );
    }

    #[test]
    fn json_string_renders_then_parses() {
        let r = request(json!({
            "event": "t", "url": "https://x.test/in", "noDefaults": true,
            "json": "{\"t\": {{t}}, \"list\": [{{t}}]}"
        }));
        assert_eq!(body(&r), r#"{"list":[21.5],"t":21.5}"#);
        let r = request(json!({
            "event": "t", "url": "https://x.test/in", "json": "[{{t}}]"
        }));
        assert_eq!(body(&r), "[21.5]", "defaults only merge into objects");
        let err = Webhook::from_json(&json!({
            "event": "t", "url": "https://x.test/in", "json": "{\"t\": {{missing}} }"
        }))
        .unwrap()
        .request(&EVENT)
        .unwrap_err();
        assert_eq!(err.field(), "json");
        assert!(
            err.reason()
                .starts_with("json template rendered invalid JSON: "),
            "{err}"
        );
    }

    #[test]
    fn custom_body_as_rendered_without_content_type() {
        let r = request(json!({
            "event": "t", "url": "https://x.test/in", "body": "t={{t}} <{{who}}>"
        }));
        assert_eq!(body(&r), "t=21.5 <a b>");
        assert!(r.headers.is_empty());
    }

    #[test]
    fn headers_replace_defaults_of_the_same_name_and_auth_is_basic() {
        let r = request(json!({
            "event": "t", "url": "https://x.test/in", "json": {},
            "headers": {"Content-Type": "application/vnd+json", "X-{{PARTICLE_EVENT_NAME}}": "{{who}}"},
            "auth": {"username": "{{PARTICLE_DEVICE_ID}}", "password": "p:w"}
        }));
        assert_eq!(
            r.headers,
            [
                ("accept".into(), JSON.into()),
                (
                    "authorization".into(),
                    format!("Basic {}", STANDARD.encode("dev-1:p:w"))
                ),
                ("Content-Type".into(), "application/vnd+json".into()),
                ("X-temp".into(), "a b".into()),
            ]
        );
    }

    #[test]
    fn bad_rendered_headers_are_errors() {
        let hook = |headers: Value| {
            Webhook::from_json(&json!({"event": "t", "url": "https://x.test/", "headers": headers}))
                .unwrap()
                .request(&EVENT)
        };
        let err = hook(json!({"X {{who}}": "v"})).unwrap_err();
        assert_eq!(err.field(), "headers.X {{who}}");
        let err = Webhook::from_json(&json!({
            "event": "t",
            "url": "https://x.test/",
            "headers": {"X-Api-Key": "key-sekrit-{{{v}}}"},
        }))
        .unwrap()
        .request(&Event {
            data: br#"{"v": "a\r\nInjected: 1"}"#,
            ..EVENT
        })
        .unwrap_err();
        assert_eq!(err.field(), "headers.X-Api-Key");
        assert!(err.reason().contains("line break"), "{err}");
        assert!(
            !err.to_string().contains("sekrit"),
            "the value is no part of {err}"
        );
        assert!(hook(json!({"X-Ok": "{{who}}"})).is_ok());
    }

    #[test]
    fn url_renders_raw_as_written() {
        let r = request(
            json!({"event": "t", "url": "https://x.test/{{{who}}}/{{t}}", "noDefaults": true}),
        );
        assert_eq!(r.url, "https://x.test/a b/21.5");
    }
}
