//! The messages of the WebSocket API (README "Live telemetry and commands: the
//! WebSocket API"): a client's message parsed once into a [`Request`], and the
//! frames the server sends, all `{"type", "payload", "request_id"?}`. Pure: no
//! socket here.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::commands::Update;
use crate::stream::StreamEvent;
use crate::topic::{DeviceId, RequestId};

/// Streams one subscription may name.
pub const MAX_STREAMS: usize = 64;

/// What a client asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Telemetry of one device, of some streams (`None`: all).
    Subscribe {
        /// The device.
        device: DeviceId,
        /// The event names wanted.
        streams: Option<HashSet<String>>,
    },
    /// Stop a subscription.
    Unsubscribe {
        /// As `subscribed` gave it.
        subscription_id: String,
    },
    /// Run a command on a device.
    Command {
        /// The device.
        device: DeviceId,
        /// The command text.
        command: String,
        /// Whether output should come as it is produced.
        stream_output: bool,
    },
}

/// A client's message: its `request_id` (echoed in every reply, errors
/// included) and what it asks, or why it cannot be understood.
#[derive(Debug)]
pub struct Incoming {
    /// The client's `request_id`, when it gave one.
    pub request_id: Option<String>,
    /// The request, or the message of the `error` frame.
    pub request: Result<Request, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscribe {
    device_id: DeviceId,
    streams: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnsubscribe {
    subscription_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    device_id: DeviceId,
    command: String,
    #[serde(default)]
    stream_output: bool,
}

/// Parses one text message.
pub fn parse(text: &str) -> Incoming {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(err) => {
            return Incoming {
                request_id: None,
                request: Err(format!("not JSON: {err}")),
            };
        }
    };
    let Value::Object(mut message) = value else {
        return Incoming {
            request_id: None,
            request: Err(
                "a message is a JSON object {\"type\", \"payload\", \"request_id\"?}".into(),
            ),
        };
    };
    let request_id = match message.remove("request_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id),
        Some(_) => {
            return Incoming {
                request_id: None,
                request: Err("request_id must be a string".into()),
            };
        }
    };
    let request = request(&mut message);
    Incoming {
        request_id,
        request,
    }
}

fn request(message: &mut serde_json::Map<String, Value>) -> Result<Request, String> {
    let kind = match message.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        Some(_) => return Err("type must be a string".into()),
        None => return Err("missing field `type`".into()),
    };
    let mut payload = || {
        message
            .remove("payload")
            .ok_or_else(|| format!("{kind}: missing field `payload`"))
    };
    let bad = |err: serde_json::Error| format!("{kind}: {err}");
    match kind.as_str() {
        "subscribe" => {
            let raw: RawSubscribe = serde_json::from_value(payload()?).map_err(bad)?;
            let streams = match raw.streams {
                Some(streams) if streams.len() > MAX_STREAMS => {
                    return Err(format!(
                        "subscribe: {} streams, at most {MAX_STREAMS}",
                        streams.len()
                    ));
                }
                other => other.map(|s| s.into_iter().collect()),
            };
            Ok(Request::Subscribe {
                device: raw.device_id,
                streams,
            })
        }
        "unsubscribe" => {
            let raw: RawUnsubscribe = serde_json::from_value(payload()?).map_err(bad)?;
            Ok(Request::Unsubscribe {
                subscription_id: raw.subscription_id,
            })
        }
        "command" => {
            let raw: RawCommand = serde_json::from_value(payload()?).map_err(bad)?;
            Ok(Request::Command {
                device: raw.device_id,
                command: raw.command,
                stream_output: raw.stream_output,
            })
        }
        other => Err(format!(
            "unknown type {other:?}: expected subscribe, unsubscribe or command"
        )),
    }
}

/// A command's request id from the client's `request_id`, which must then
/// be one MQTT topic level.
pub fn command_id(request_id: Option<&str>) -> Result<Option<RequestId>, String> {
    request_id
        .map(|id| RequestId::try_from(id).map_err(|e| e.to_string()))
        .transpose()
}

/// `{"type", "payload", "request_id"?}` as text.
pub fn frame(kind: &str, request_id: Option<&str>, payload: Value) -> String {
    let mut frame = json!({ "type": kind, "payload": payload });
    if let Some(id) = request_id {
        frame["request_id"] = Value::String(id.to_owned());
    }
    frame.to_string()
}

/// An `error` frame.
pub fn error(request_id: Option<&str>, message: &str) -> String {
    frame("error", request_id, json!({ "message": message }))
}

/// The frame of a command's update.
pub fn update(update: Update) -> String {
    match update {
        Update::Output(id, chunk) => frame("command_output", Some(id.as_str()), chunk),
        Update::Done(id, done) => frame("command_done", Some(id.as_str()), done),
        Update::Failed(id, message) => error(Some(id.as_str()), &message),
    }
}

/// An event's data as a JSON value: itself when it is JSON, else a string.
pub fn value(event: &StreamEvent) -> Value {
    serde_json::from_slice(&event.data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&event.data).into_owned()))
}

/// A `telemetry` frame of `event` for subscription `subscription_id`.
pub fn telemetry(subscription_id: &str, event: &StreamEvent, value: &Value) -> String {
    frame(
        "telemetry",
        None,
        json!({
            "subscription_id": subscription_id,
            "device_id": event.device,
            "stream": event.name,
            "ts": event.published_at,
            "value": value,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> (Option<String>, String) {
        let incoming = parse(text);
        (incoming.request_id, incoming.request.unwrap_err())
    }

    #[test]
    fn parses_the_three_requests() {
        let sub = parse(
            r#"{"type":"subscribe","request_id":"s1","payload":{"device_id":"d1","streams":["cpu","temp"]}}"#,
        );
        assert_eq!(sub.request_id.as_deref(), Some("s1"));
        let Ok(Request::Subscribe { device, streams }) = sub.request else {
            panic!("{:?}", sub.request)
        };
        assert_eq!(device.as_str(), "d1");
        assert_eq!(streams.unwrap().len(), 2);
        let all = parse(r#"{"type":"subscribe","payload":{"device_id":"d1"}}"#);
        assert!(matches!(
            all.request,
            Ok(Request::Subscribe { streams: None, .. })
        ));
        assert_eq!(
            parse(r#"{"type":"unsubscribe","payload":{"subscription_id":"sub_1"}}"#).request,
            Ok(Request::Unsubscribe {
                subscription_id: "sub_1".into()
            })
        );
        assert!(matches!(
            parse(r#"{"type":"command","payload":{"device_id":"d1","command":"uptime"}}"#).request,
            Ok(Request::Command {
                stream_output: false,
                ..
            })
        ));
    }

    #[test]
    fn refusals_say_what_is_wrong_and_keep_the_request_id() {
        assert!(refusal("{nope").1.starts_with("not JSON"));
        assert!(refusal("[1]").1.contains("JSON object"));
        let (id, message) = refusal(r#"{"type":"dance","request_id":"r9","payload":{}}"#);
        assert_eq!(id.as_deref(), Some("r9"));
        assert!(message.contains("unknown type \"dance\""), "{message}");
        let (id, message) = refusal(r#"{"type":"subscribe","request_id":"r1","payload":{}}"#);
        assert_eq!(id.as_deref(), Some("r1"));
        assert!(message.contains("missing field `device_id`"), "{message}");
        assert!(refusal(r#"{"payload":{}}"#).1.contains("`type`"));
        assert!(refusal(r#"{"type":"unsubscribe"}"#).1.contains("`payload`"));
        let bad_device = refusal(r#"{"type":"subscribe","payload":{"device_id":"a/b"}}"#).1;
        assert!(bad_device.contains("device id"), "{bad_device}");
        let many = serde_json::json!({"type": "subscribe", "payload": {"device_id": "d", "streams": vec!["s"; MAX_STREAMS + 1]}});
        assert!(refusal(&many.to_string()).1.contains("at most"));
        assert!(command_id(Some("a/b")).is_err());
    }

    #[test]
    fn frames_echo_the_request_id_only_when_given() {
        let with: Value = serde_json::from_str(&error(Some("r1"), "bad")).unwrap();
        assert_eq!(
            with,
            json!({"type": "error", "request_id": "r1", "payload": {"message": "bad"}})
        );
        let without: Value = serde_json::from_str(&frame("unsubscribed", None, json!({}))).unwrap();
        assert!(without.get("request_id").is_none());
    }
}
