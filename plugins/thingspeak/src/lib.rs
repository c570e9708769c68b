//! Example plugin: posts device readings to a ThingSpeak channel, the way
//! Particle's first-webhook guide does, and tells the device the entry id.
//!
//! The event data is either a JSON object (`{"temp": 21.5, "hum": 40}`),
//! whose keys are mapped to channel fields by `config.fields`, or a plain
//! number, which goes to `field1`. ThingSpeak answers the new entry's id as
//! text, or `0` when it refused the update (e.g. too frequent).

use std::collections::BTreeMap;

use edgehook_guest::{Error, Event, Outcome, Reply, Request, Result, Webhook, export};
use serde::Deserialize;

/// The manifest's `[config]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The update endpoint.
    #[serde(default = "default_url")]
    url: String,
    /// The channel's write API key.
    api_key: String,
    /// JSON key of the event data → ThingSpeak field (`field1`..`field8`).
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

fn default_url() -> String {
    "https://api.thingspeak.com/update".to_owned()
}

/// The plugin.
#[derive(Debug)]
pub struct ThingSpeak;

impl Webhook for ThingSpeak {
    fn on_event(event: Event) -> Result<Option<Request>> {
        let config: Config = edgehook_guest::config()?;
        let mut form = vec![("api_key".to_owned(), config.api_key)];
        match serde_json::from_slice::<serde_json::Value>(&event.data) {
            Ok(serde_json::Value::Object(reading)) => {
                for (key, field) in &config.fields {
                    if let Some(value) = reading.get(key) {
                        form.push((field.clone(), plain(value)));
                    }
                }
            }
            Ok(number @ serde_json::Value::Number(_)) => {
                form.push(("field1".to_owned(), plain(&number)))
            }
            _ => {
                return Err(Error::new(format!(
                    "event data {:?} is neither a JSON object nor a number",
                    event.text()?
                )));
            }
        }
        if form.len() == 1 {
            return Err(Error::new("event data has none of the configured fields"));
        }
        // field1, field2, … in order, whatever the order of the mapping.
        form[1..].sort();
        Ok(Some(Request::post(config.url).form(form)))
    }

    fn on_response(_event: Event, outcome: Outcome) -> Result<Vec<Reply>> {
        Ok(vec![match outcome {
            Outcome::Response(r)
                if (200..300).contains(&r.status) && r.body.trim_ascii() != b"0" =>
            {
                Reply::response(r.body)
            }
            Outcome::Response(r) if (200..300).contains(&r.status) => Reply::error(
                "ThingSpeak refused the update (answered 0): too frequent, or a bad key",
            ),
            Outcome::Response(r) => {
                Reply::error(format!("error status {} from ThingSpeak", r.status))
            }
            Outcome::Failed(why) => Reply::error(why),
        }])
    }
}

/// A JSON value as a form value: strings without their quotes.
fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

export!(ThingSpeak);

#[cfg(test)]
mod tests {
    use edgehook_guest::{Response, testing};
    use serde_json::json;

    use super::*;

    fn configure() {
        testing::set_config(
            json!({ "api_key": "KEY", "fields": { "temp": "field1", "hum": "field2" } }),
        );
    }

    fn body(request: &Request) -> String {
        String::from_utf8(request.body.clone()).unwrap()
    }

    #[test]
    fn maps_json_readings_to_fields() {
        configure();
        let event = testing::event("dev-1", "temp", br#"{"temp": 21.5, "hum": 40, "other": 1}"#);
        let request = ThingSpeak::on_event(event).unwrap().unwrap();
        assert_eq!(request.url, "https://api.thingspeak.com/update");
        assert_eq!(body(&request), "api_key=KEY&field1=21.5&field2=40");
    }

    #[test]
    fn a_plain_number_goes_to_field1() {
        configure();
        let request = ThingSpeak::on_event(testing::event("d", "temp", b"19.25"))
            .unwrap()
            .unwrap();
        assert_eq!(body(&request), "api_key=KEY&field1=19.25");
    }

    #[test]
    fn data_that_is_not_a_reading_is_an_error() {
        configure();
        let err = ThingSpeak::on_event(testing::event("d", "temp", b"hot")).unwrap_err();
        assert!(err.to_string().contains("\"hot\""), "{err}");
        let err = ThingSpeak::on_event(testing::event("d", "temp", br#"{"x": 1}"#)).unwrap_err();
        assert!(
            err.to_string().contains("none of the configured fields"),
            "{err}"
        );
    }

    #[test]
    fn the_entry_id_goes_back_and_a_zero_is_an_error() {
        let response = |status, body: &[u8]| {
            Outcome::Response(Response {
                status,
                headers: vec![],
                body: body.to_vec(),
            })
        };
        let event = || testing::event("d", "temp", b"1");
        let ok = ThingSpeak::on_response(event(), response(200, b"4711")).unwrap();
        assert_eq!(ok, vec![Reply::response(b"4711".to_vec())]);
        let refused = ThingSpeak::on_response(event(), response(200, b"0")).unwrap();
        assert!(matches!(refused[0].kind, edgehook_guest::ReplyKind::Error));
        let failed = ThingSpeak::on_response(event(), response(500, b"")).unwrap();
        assert_eq!(
            failed,
            vec![Reply::error("error status 500 from ThingSpeak")]
        );
    }
}
