//! The messages for the device once the request is done: the response (or
//! its rendered `responseTemplate`) on the response topic, or the error on
//! the error topic.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::definition::Webhook;
use crate::error::RenderError;
use crate::json::JsonTemplate;
use crate::template::{RenderLimit, Template, write_json};
use crate::url;
use crate::vars::{self, Event};

/// The content type of a data URL when the response names none.
const OCTET_STREAM: &str = "application/octet-stream";

/// The endpoint's answer, whatever its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// The HTTP status.
    pub status: u16,
    /// Its headers (for the content type of a data URL).
    pub headers: &'a [(String, String)],
    /// Its body, as cut by the host.
    pub body: &'a [u8],
}

/// What became of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The endpoint answered.
    Response(Response<'a>),
    /// No answer; the host's reason (refused, unreachable, timed out).
    Failed(&'a str),
}

/// Which family of device messages a reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// A response (`hook-response/…` by default).
    Response,
    /// An error (`hook-error/…` by default).
    Error,
}

/// One message for the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Response or error.
    pub kind: ReplyKind,
    /// The topic under `devices/{id}/`, without the chunk index the host
    /// adds.
    pub topic: String,
    /// The message.
    pub payload: Vec<u8>,
    /// Publish in one message rather than 512-byte chunks (`unchunked`).
    pub unchunked: bool,
}

impl Webhook {
    /// The device messages for `event` given what became of its request.
    pub fn replies(
        &self,
        event: &Event<'_>,
        outcome: &Outcome<'_>,
    ) -> Result<Vec<Reply>, RenderError> {
        let context = vars::context(event, self.needs);
        match outcome {
            Outcome::Failed(reason) => Ok(vec![self.error(event, &context, reason)?]),
            Outcome::Response(response) if !(200..300).contains(&response.status) => {
                let url = self.url.render(&context);
                let from = url::host(&url).unwrap_or(&url);
                let text = format!("error status {} from {from}", response.status);
                Ok(vec![self.error(event, &context, &text)?])
            }
            Outcome::Response(response) => {
                let mut payload = match &self.response_template {
                    None => response.body.to_vec(),
                    Some(template) => render_response(template, &context, response.body)
                        .map_err(|limit| RenderError::limit("responseTemplate", limit))?,
                };
                if payload.is_empty() {
                    // Particle publishes a hook-response only with content.
                    return Ok(Vec::new());
                }
                if self.data_url {
                    payload = data_url(response.headers, &payload).into_bytes();
                }
                let topic = topic(
                    self.response_topic.as_ref(),
                    "responseTopic",
                    "hook-response",
                    event,
                    &context,
                )?;
                Ok(vec![Reply {
                    kind: ReplyKind::Response,
                    topic,
                    payload,
                    unchunked: self.unchunked,
                }])
            }
        }
    }

    fn error(&self, event: &Event<'_>, context: &Value, text: &str) -> Result<Reply, RenderError> {
        Ok(Reply {
            kind: ReplyKind::Error,
            topic: topic(
                self.error_response_topic.as_ref(),
                "errorResponseTopic",
                "hook-error",
                event,
                context,
            )?,
            payload: text.as_bytes().to_vec(),
            unchunked: false,
        })
    }
}

/// Renders `responseTemplate` with the response's JSON on top of the event
/// variables: an object's fields are names, anything else is `.`; a body
/// that is not JSON is `.` as text.
fn render_response(
    template: &JsonTemplate,
    context: &Value,
    body: &[u8],
) -> Result<Vec<u8>, RenderLimit> {
    let response = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    let stack = [context, &response];
    Ok(match template {
        JsonTemplate::Text(text) => text.try_render_stack(&stack)?.into_bytes(),
        object => {
            let mut out = String::new();
            write_json(&mut out, &object.render(&stack)?);
            out.into_bytes()
        }
    })
}

/// `data:{content type};base64,{payload}`.
fn data_url(headers: &[(String, String)], payload: &[u8]) -> String {
    let content_type = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .map_or(OCTET_STREAM, |(_, value)| value.trim());
    format!("data:{content_type};base64,{}", STANDARD.encode(payload))
}

/// The rendered topic, or `{default}/{event name}`; checked, since the host
/// publishes it.
fn topic(
    template: Option<&Template>,
    field: &str,
    default: &str,
    event: &Event<'_>,
    context: &Value,
) -> Result<String, RenderError> {
    let Some(template) = template else {
        return Ok(format!("{default}/{}", event.name));
    };
    let topic = template
        .try_render_stack(&[context])
        .map_err(|limit| RenderError::limit(field, limit))?;
    let problem = if topic.is_empty() {
        Some("it is empty")
    } else if topic.contains(['+', '#', '\0']) {
        Some("MQTT topics cannot contain `+`, `#` or NUL")
    } else if topic.starts_with("events/") {
        Some("replies cannot go under `events/`, where device events are")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(RenderError::new(
            field,
            format!("rendered topic {topic:?} cannot be used: {problem}"),
        )),
        None => Ok(topic),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const EVENT: Event<'static> = Event {
        id: "ev-1",
        device_id: "dev-1",
        name: "weather/get",
        data: br#"{"city": "Oslo"}"#,
        published_at: "2026-01-01T00:00:00.000Z",
        product_id: None,
    };

    fn hook(extra: Value) -> Webhook {
        let mut definition =
            json!({"event": "weather", "url": "https://u:p@api.example.com:8443/{{city}}?x=1"});
        if let (Some(map), Value::Object(extra)) = (definition.as_object_mut(), extra) {
            map.extend(extra);
        }
        Webhook::from_json(&definition).unwrap()
    }

    fn ok(body: &[u8]) -> Outcome<'_> {
        Outcome::Response(Response {
            status: 200,
            headers: &[],
            body,
        })
    }

    #[test]
    fn a_2xx_body_goes_back_verbatim_on_hook_response() {
        let replies = hook(json!({})).replies(&EVENT, &ok(b"sunny")).unwrap();
        assert_eq!(
            replies,
            [Reply {
                kind: ReplyKind::Response,
                topic: "hook-response/weather/get".into(),
                payload: b"sunny".to_vec(),
                unchunked: false,
            }]
        );
    }

    #[test]
    fn an_empty_payload_sends_nothing() {
        assert!(
            hook(json!({}))
                .replies(&EVENT, &ok(b""))
                .unwrap()
                .is_empty()
        );
        let templated = hook(json!({"responseTemplate": "{{missing}}"}));
        assert!(templated.replies(&EVENT, &ok(b"{}")).unwrap().is_empty());
    }

    #[test]
    fn response_template_sees_the_response_over_the_event() {
        let hook = hook(
            json!({"responseTemplate": "{{city}}: {{temp}} {{PARTICLE_DEVICE_ID}}", "unchunked": true}),
        );
        let replies = hook.replies(&EVENT, &ok(br#"{"temp": 3.50}"#)).unwrap();
        assert_eq!(replies[0].payload, b"Oslo: 3.5 dev-1");
        assert!(replies[0].unchunked);
        let hook = super::Webhook {
            response_template: JsonTemplate::parse(&json!("[{{#.}}{{.}};{{/.}}]"), "t").ok(),
            ..hook
        };
        let replies = hook.replies(&EVENT, &ok(b"[1, 2.0]")).unwrap();
        assert_eq!(replies[0].payload, b"[1;2;]");
        let replies = hook.replies(&EVENT, &ok(b"not json")).unwrap();
        assert_eq!(replies[0].payload, b"[not json;]");
    }

    #[test]
    fn an_object_response_template_publishes_compact_json() {
        let hook = hook(json!({"responseTemplate": {"t": "{{{temp}}}", "n": 1}}));
        let replies = hook.replies(&EVENT, &ok(br#"{"temp": "<3>"}"#)).unwrap();
        assert_eq!(replies[0].payload, br#"{"n":1,"t":"<3>"}"#);
    }

    #[test]
    fn data_urls_carry_the_content_type() {
        let hook = hook(json!({"dataUrlResponseEvent": true}));
        let headers = [("Content-Type".to_owned(), "image/png".to_owned())];
        let outcome = Outcome::Response(Response {
            status: 201,
            headers: &headers,
            body: &[0xa7, 0x22, 0x98],
        });
        let replies = hook.replies(&EVENT, &outcome).unwrap();
        assert_eq!(replies[0].payload, b"data:image/png;base64,pyKY");
        let replies = hook.replies(&EVENT, &ok(&[0xa7, 0x22, 0x98])).unwrap();
        assert_eq!(
            replies[0].payload,
            b"data:application/octet-stream;base64,pyKY"
        );
    }

    #[test]
    fn other_statuses_and_failures_go_to_hook_error() {
        let hook = hook(json!({}));
        for status in [101, 302, 404, 500] {
            let outcome = Outcome::Response(Response {
                status,
                headers: &[],
                body: b"nope",
            });
            let replies = hook.replies(&EVENT, &outcome).unwrap();
            assert_eq!(replies.len(), 1);
            assert_eq!(replies[0].kind, ReplyKind::Error);
            assert_eq!(replies[0].topic, "hook-error/weather/get");
            assert_eq!(
                replies[0].payload,
                format!("error status {status} from api.example.com").into_bytes()
            );
        }
        let replies = hook
            .replies(&EVENT, &Outcome::Failed("request timed out"))
            .unwrap();
        assert_eq!(replies[0].payload, b"request timed out");
        assert_eq!(replies[0].kind, ReplyKind::Error);
    }

    #[test]
    fn topics_are_templates_and_are_checked() {
        let hook = hook(json!({
            "responseTopic": "{{PARTICLE_DEVICE_ID}}/hook-response/{{city}}",
            "errorResponseTopic": "save_failed_for_{{PARTICLE_DEVICE_ID}}"
        }));
        assert_eq!(
            hook.replies(&EVENT, &ok(b"x")).unwrap()[0].topic,
            "dev-1/hook-response/Oslo"
        );
        let failed = hook.replies(&EVENT, &Outcome::Failed("x")).unwrap();
        assert_eq!(failed[0].topic, "save_failed_for_dev-1");

        for bad in ["{{missing}}", "events/{{city}}", "a/+/b"] {
            let err = super::Webhook {
                response_topic: Template::parse(bad).ok(),
                ..hook.clone()
            }
            .replies(&EVENT, &ok(b"x"))
            .unwrap_err();
            assert_eq!(err.field(), "responseTopic", "{bad}");
        }
    }
}
