//! The names every host agrees on: the streams, their subjects, the
//! consumer, the buckets and the header that carries an MQTT topic, and a
//! device id turned into one subject token.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// The stream of device events.
pub const EVENTS_STREAM: &str = "EDGEHOOK_EVENTS";
/// Its subjects: one per device ([`device_subject`]), so that the stream
/// keeps each device's share.
pub const EVENTS_SUBJECTS: &str = "edgehook.events.*";
/// The stream of what hosts send devices.
pub const TO_DEVICES_STREAM: &str = "EDGEHOOK_TO_DEVICES";
/// Its subjects: one per device.
pub const TO_DEVICES_SUBJECTS: &str = "edgehook.to-devices.*";
/// Where devices' answers to commands go to every host.
pub const COMMAND_REPLIES: &str = "edgehook.command-replies";
/// The header that carries a message's MQTT topic.
pub const TOPIC_HEADER: &str = "Edgehook-Topic";
/// The durable consumer every host pulls from.
pub const EVENTS_CONSUMER: &str = "edgehook";
/// Webhook definitions of every dialect.
pub const DEFINITIONS_BUCKET: &str = "EDGEHOOK_DEFINITIONS";
/// The device registry: groups and devices.
pub const REGISTRY_BUCKET: &str = "EDGEHOOK_REGISTRY";
/// Plugin files.
pub const PLUGINS_BUCKET: &str = "EDGEHOOK_PLUGINS";
/// The plugins' key-value buckets.
pub const PLUGIN_STATE_BUCKET: &str = "EDGEHOOK_PLUGIN_STATE";

/// What a device id may not hold in a subject token: the separator, the
/// wildcards, white space, the escape itself; anything not ASCII too, so
/// that tokens stay readable in `nats` tools.
const NOT_IN_TOKEN: &AsciiSet = &CONTROLS.add(b' ').add(b'.').add(b'*').add(b'>').add(b'%');

/// `prefix` (ending in `.`) followed by `device` as one subject token.
pub fn device_subject(prefix: &str, device: &str) -> String {
    let mut subject = String::with_capacity(prefix.len() + device.len());
    subject.push_str(prefix);
    subject.extend(utf8_percent_encode(device, NOT_IN_TOKEN));
    subject
}

/// The MQTT topic a message carries in [`TOPIC_HEADER`]; empty when it
/// carries none.
pub fn topic_in(headers: Option<&async_nats::HeaderMap>) -> &str {
    headers
        .and_then(|h| h.get(TOPIC_HEADER))
        .map_or("", |t| t.as_str())
}

#[cfg(test)]
mod tests {
    use super::device_subject;

    #[test]
    fn a_device_id_is_one_subject_token_and_can_never_be_a_wildcard() {
        let prefix = "edgehook.events.";
        assert_eq!(device_subject(prefix, "press-7"), "edgehook.events.press-7");
        for (id, token) in [
            ("a.b", "a%2Eb"),
            ("*", "%2A"),
            (">", "%3E"),
            ("two words", "two%20words"),
            ("100%", "100%25"),
            ("capteur-é", "capteur-%C3%A9"),
        ] {
            assert_eq!(
                device_subject(prefix, id),
                format!("{prefix}{token}"),
                "{id}"
            );
        }
        assert_ne!(
            device_subject(prefix, "a.b"),
            device_subject(prefix, "a%2Eb"),
            "two devices never share a subject"
        );
    }
}
