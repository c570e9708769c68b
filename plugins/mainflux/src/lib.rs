//! The built-in plugin that runs every Mainflux-style webhook.
//!
//! The host checks the webhook once and configures this plugin with its URL
//! and headers; which thing's events run it is the host's filter. The
//! request is a `POST` of the event's data bytes unchanged, as
//! `application/json` when they parse as JSON and as
//! `application/octet-stream` otherwise, unless the webhook's headers name
//! a Content-Type of their own. Mainflux webhooks are one-way:
//! nothing goes back to the device, and the
//! plugin is called once per event (`Answer::None`).

use std::collections::BTreeMap;

use edgehook_guest::{Answer, Event, Request, Result, Webhook, export};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// The configuration the host derives from a checked webhook.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The plugin.
#[derive(Debug)]
pub struct Mainflux;

impl Webhook for Mainflux {
    fn on_event(event: Event) -> Result<Option<Request>> {
        let config: Config = edgehook_guest::config()?;
        let content_type = if serde_json::from_slice::<IgnoredAny>(&event.data).is_ok() {
            "application/json"
        } else {
            "application/octet-stream"
        };
        // A Content-Type among the webhook's own headers wins.
        let own_type = config
            .headers
            .keys()
            .any(|name| name.eq_ignore_ascii_case("content-type"));
        let mut request = Request::post(config.url).answer(Answer::None);
        if !own_type {
            request = request.header("Content-Type", content_type);
        }
        for (name, value) in config.headers {
            request = request.header(name, value);
        }
        Ok(Some(request.body(event.data)))
    }
}

export!(Mainflux);

#[cfg(test)]
mod tests {
    use edgehook_guest::testing;

    use super::*;

    fn content_type(data: &[u8]) -> String {
        testing::set_config(serde_json::json!({"url": "http://x.test/"}));
        let request = Mainflux::on_event(testing::event("d", "e", data))
            .unwrap()
            .unwrap();
        assert_eq!(request.body, data, "the data goes unchanged");
        request
            .headers
            .into_iter()
            .find(|(n, _)| n == "Content-Type")
            .unwrap()
            .1
    }

    #[test]
    fn a_content_type_of_the_webhook_replaces_the_guess() {
        testing::set_config(serde_json::json!({"url": "http://x.test/",
            "headers": {"content-type": "text/csv"}}));
        let request = Mainflux::on_event(testing::event("d", "e", b"1,2"))
            .unwrap()
            .unwrap();
        assert_eq!(
            request.headers,
            [("content-type".to_owned(), "text/csv".to_owned())]
        );
    }

    #[test]
    fn json_data_goes_as_json_and_anything_else_as_bytes() {
        assert_eq!(content_type(br#"{"t": 1}"#), "application/json");
        assert_eq!(content_type(b"\x00\xffraw"), "application/octet-stream");
    }

    #[test]
    fn nothing_goes_back_to_the_device() {
        testing::set_config(serde_json::json!({"url": "http://x.test/"}));
        let request = Mainflux::on_event(testing::event("d", "e", b"1"))
            .unwrap()
            .unwrap();
        assert_eq!(request.answer, Answer::None);
    }
}
