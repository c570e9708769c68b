//! The built-in plugin that runs every Iottly-style webhook.
//!
//! The host checks the webhook once, when it is created, and configures
//! this plugin with what the request needs: the URL, the custom headers,
//! the channel and `payload_only`. Which devices and which event names
//! (the webhook's `type`) run it is the host's filter; the plugin keeps
//! only the events of its channel and shapes the body:
//! `{"msg": {"from", "event", "devicetimestamp", "payload"}}`, or the
//! payload alone, or with a channel its `webhook_payload`, as
//! `application/json` unless the webhook's headers name a Content-Type of
//! their own. Iottly webhooks
//! are one-way: nothing goes back to the device, and the
//! plugin is called once per event (`Answer::None`).

use std::collections::BTreeMap;

use edgehook_guest::{Answer, Event, Request, Result, Webhook, export};
use serde::Deserialize;
use serde_json::{Value, json};

/// The configuration the host derives from a checked webhook.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    payload_only: bool,
}

/// The plugin.
#[derive(Debug)]
pub struct Iottly;

impl Webhook for Iottly {
    fn on_event(event: Event) -> Result<Option<Request>> {
        let config: Config = edgehook_guest::config()?;
        // The event data as JSON, or as a JSON string when it is not JSON.
        let payload = serde_json::from_slice::<Value>(&event.data)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&event.data).into_owned()));
        if let Some(channel) = &config.channel
            && payload.get("webhook_channel").and_then(Value::as_str) != Some(channel)
        {
            return Ok(None);
        }
        let body = match (config.payload_only, &config.channel) {
            (true, Some(_)) => payload
                .get("webhook_payload")
                .cloned()
                .unwrap_or(Value::Null),
            (true, None) => payload,
            (false, _) => json!({ "msg": {
                "from": event.device_id,
                "event": event.name,
                "devicetimestamp": event.published_at,
                "payload": payload,
            }}),
        };
        // A Content-Type among the webhook's own headers wins.
        let own_type = config
            .headers
            .keys()
            .any(|name| name.eq_ignore_ascii_case("content-type"));
        let mut request = Request::post(config.url)
            .answer(Answer::None)
            .body(serde_json::to_vec(&body)?);
        if !own_type {
            request = request.header("Content-Type", "application/json");
        }
        for (name, value) in config.headers {
            request = request.header(name, value);
        }
        Ok(Some(request))
    }
}

export!(Iottly);

#[cfg(test)]
mod tests {
    use edgehook_guest::testing;

    use super::*;

    fn body(config: Value, data: &[u8]) -> Option<Value> {
        testing::set_config(config);
        Iottly::on_event(testing::event("dev-1", "temp", data))
            .unwrap()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
    }

    #[test]
    fn the_message_envelope_carries_the_event() {
        let got = body(json!({"url": "http://x.test/"}), b"hot").unwrap();
        assert_eq!(
            got,
            json!({"msg": {"from": "dev-1", "event": "temp",
                "devicetimestamp": "2026-01-01T00:00:00.000Z", "payload": "hot"}})
        );
    }

    #[test]
    fn a_content_type_of_the_webhook_replaces_the_default() {
        testing::set_config(json!({"url": "http://x.test/",
            "headers": {"Content-Type": "application/vnd.x+json"}}));
        let request = Iottly::on_event(testing::event("d", "e", b"1"))
            .unwrap()
            .unwrap();
        assert_eq!(
            request.headers,
            [(
                "Content-Type".to_owned(),
                "application/vnd.x+json".to_owned()
            )]
        );
    }

    #[test]
    fn a_channel_keeps_its_own_events_and_forwards_their_payload() {
        let config = json!({"url": "http://x.test/", "channel": "c1", "payload_only": true});
        let data = br#"{"webhook_channel": "c1", "webhook_payload": {"t": 1}}"#;
        assert_eq!(body(config.clone(), data), Some(json!({"t": 1})));
        let other = br#"{"webhook_channel": "c2", "webhook_payload": {"t": 1}}"#;
        assert_eq!(body(config.clone(), other), None);
        assert_eq!(body(config, b"plain"), None);
    }

    #[test]
    fn nothing_goes_back_to_the_device() {
        testing::set_config(json!({"url": "http://x.test/"}));
        let request = Iottly::on_event(testing::event("d", "e", b"1"))
            .unwrap()
            .unwrap();
        assert_eq!(request.answer, Answer::None);
    }
}
