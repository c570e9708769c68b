//! The variables a template sees for one event: the `PARTICLE_*` (and older
//! `SPARK_*`) variables on top of the event's own JSON fields.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use crate::template::write_json_string;

/// A device event, borrowed from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// Unique id of the event (`PARTICLE_EVENT_ID`).
    pub id: &'a str,
    /// The publishing device (`PARTICLE_DEVICE_ID`, `coreid`).
    pub device_id: &'a str,
    /// The event name (`PARTICLE_EVENT_NAME`, `event`).
    pub name: &'a str,
    /// The payload as published (`PARTICLE_EVENT_VALUE`, `data`).
    pub data: &'a [u8],
    /// When the host received it, RFC 3339 (`PARTICLE_PUBLISHED_AT`).
    pub published_at: &'a str,
    /// The device's group (`PRODUCT_ID`); none for a device in no group.
    pub product_id: Option<&'a str>,
}

impl Event<'_> {
    /// The data as text; invalid UTF-8 is replaced, as node.js does.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(self.data).into_owned()
    }
}

/// Which costly variables the templates of a webhook use, found once when
/// the definition is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Needs {
    /// `PARTICLE_EVENT_JSON` or `PARTICLE_EVENT_BASE64` appear somewhere.
    pub(crate) event_json: bool,
}

/// Names of the variables that hold the whole event.
pub(crate) const EVENT_JSON_VARIABLES: [&str; 2] = ["PARTICLE_EVENT_JSON", "PARTICLE_EVENT_BASE64"];

/// The context of `event`: its JSON fields if its data is a JSON object
/// (custom variables), with the predefined variables on top (they win a
/// clash).
pub(crate) fn context(event: &Event<'_>, needs: Needs) -> Value {
    let mut vars = custom_variables(event.data);
    let value = event.text();
    let mut set = |name: &str, text: &str| {
        vars.insert(name.to_owned(), Value::String(text.to_owned()));
    };
    set("PARTICLE_DEVICE_ID", event.device_id);
    set("PARTICLE_EVENT_NAME", event.name);
    set("PARTICLE_EVENT_VALUE", &value);
    set("PARTICLE_PUBLISHED_AT", event.published_at);
    set("PARTICLE_EVENT_ID", event.id);
    set("SPARK_CORE_ID", event.device_id);
    set("SPARK_EVENT_NAME", event.name);
    set("SPARK_EVENT_VALUE", &value);
    set("SPARK_PUBLISHED_AT", event.published_at);
    if needs.event_json {
        let json = event_json(event, &value);
        set("PARTICLE_EVENT_BASE64", &STANDARD.encode(&json));
        set("PARTICLE_EVENT_JSON", &json);
    }
    // The device's group; for a device in none the variable exists and
    // renders empty.
    vars.insert(
        "PRODUCT_ID".to_owned(),
        event
            .product_id
            .map_or(Value::Null, |group| Value::String(group.to_owned())),
    );
    Value::Object(vars)
}

/// The fields of the data if it is a JSON object, else none.
fn custom_variables(data: &[u8]) -> Map<String, Value> {
    // Only an object can give variables: skip parsing anything else.
    if data.trim_ascii_start().first() != Some(&b'{') {
        return Map::new();
    }
    match serde_json::from_slice(data) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    }
}

/// The event as Particle's event stream shows it, in its field order.
fn event_json(event: &Event<'_>, value: &str) -> String {
    let mut json = String::with_capacity(96 + value.len());
    json.push_str("{\"name\":");
    write_json_string(&mut json, event.name);
    json.push_str(",\"data\":");
    write_json_string(&mut json, value);
    json.push_str(",\"ttl\":60,\"published_at\":");
    write_json_string(&mut json, event.published_at);
    json.push_str(",\"coreid\":");
    write_json_string(&mut json, event.device_id);
    json.push('}');
    json
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const EVENT: Event<'static> = Event {
        id: "ev-1",
        device_id: "3f002b000000000000000000",
        name: "test",
        data: br#"{ "room": "kitchen", "temp": 20, "PARTICLE_EVENT_NAME": "spoof" }"#,
        published_at: "2017-02-01T21:08:05.763Z",
        product_id: None,
    };

    #[test]
    fn predefined_variables_sit_on_top_of_custom_ones() {
        let ctx = context(&EVENT, Needs::default());
        assert_eq!(ctx["room"], "kitchen");
        assert_eq!(ctx["temp"], 20);
        assert_eq!(ctx["PARTICLE_EVENT_NAME"], "test");
        assert_eq!(ctx["SPARK_EVENT_NAME"], "test");
        assert_eq!(ctx["PARTICLE_DEVICE_ID"], EVENT.device_id);
        assert_eq!(ctx["SPARK_CORE_ID"], EVENT.device_id);
        assert_eq!(ctx["PARTICLE_EVENT_ID"], "ev-1");
        assert_eq!(ctx["PARTICLE_PUBLISHED_AT"], EVENT.published_at);
        assert_eq!(ctx["SPARK_PUBLISHED_AT"], EVENT.published_at);
        assert_eq!(
            ctx["PARTICLE_EVENT_VALUE"],
            String::from_utf8_lossy(EVENT.data).as_ref()
        );
        assert_eq!(ctx["PRODUCT_ID"], json!(null));
        let in_group = Event {
            product_id: Some("boilers"),
            ..EVENT
        };
        assert_eq!(
            context(&in_group, Needs::default())["PRODUCT_ID"],
            "boilers"
        );
        assert!(
            ctx.get("PARTICLE_EVENT_JSON").is_none(),
            "only built when used"
        );
    }

    #[test]
    fn the_whole_event_as_json_and_base64() {
        let event = Event {
            data: b"20.5 \"C\"",
            ..EVENT
        };
        let ctx = context(&event, Needs { event_json: true });
        let json = r#"{"name":"test","data":"20.5 \"C\"","ttl":60,"published_at":"2017-02-01T21:08:05.763Z","coreid":"3f002b000000000000000000"}"#;
        assert_eq!(ctx["PARTICLE_EVENT_JSON"], json);
        assert_eq!(ctx["PARTICLE_EVENT_BASE64"], STANDARD.encode(json));
        assert!(ctx.get("room").is_none());
    }

    #[test]
    fn data_that_is_not_an_object_gives_no_custom_variables() {
        for data in [&b"[1,2]"[..], b"42", b"{broken", b"\xff\xfe"] {
            let ctx = context(&Event { data, ..EVENT }, Needs::default());
            assert_eq!(ctx.as_object().map(|m| m.len()), Some(10), "{data:?}");
        }
        let ctx = context(
            &Event {
                data: b"\xffok",
                ..EVENT
            },
            Needs::default(),
        );
        assert_eq!(ctx["PARTICLE_EVENT_VALUE"], "\u{fffd}ok");
    }
}
