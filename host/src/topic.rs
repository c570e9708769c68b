//! The MQTT topics of the contract, parsed once at the edge of the host.
//!
//! Devices publish on `devices/{device_id}/events/{event_name}`; the host
//! answers under `devices/{device_id}/`. Everything past this module works
//! with [`DeviceId`] and [`EventName`], never with raw topic strings.

use std::fmt;
use std::sync::Arc;

/// The filter the host subscribes to for device events.
pub const EVENTS_FILTER: &str = "devices/+/events/#";

/// Longest device id the host accepts, in bytes.
pub const MAX_DEVICE_ID_LEN: usize = 128;

/// Longest event name the host accepts, in bytes (MQTT allows 64 KiB topics;
/// no real event name comes near this).
pub const MAX_EVENT_NAME_LEN: usize = 256;

/// Why a topic is not a device event topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The topic does not start with `devices/{id}/events/`.
    #[error("topic {0:?} is not of the form devices/{{device_id}}/events/{{event_name}}")]
    NotAnEvent(String),
    /// The device id is empty, too long or has a character MQTT reserves.
    #[error("device id {0:?} is invalid: 1 to {MAX_DEVICE_ID_LEN} bytes, no '+', '#' or NUL")]
    BadDeviceId(String),
    /// The event name is empty, too long or has a character MQTT reserves.
    #[error(
        "event name {0:?} is invalid: 1 to {MAX_EVENT_NAME_LEN} bytes, no '+', '#', NUL or empty level"
    )]
    BadEventName(String),
}

/// A device id taken from a topic: non-empty, no `/`, no wildcard.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(Arc<str>);

impl DeviceId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for DeviceId {
    type Error = TopicError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        if s.is_empty() || s.len() > MAX_DEVICE_ID_LEN || s.contains(['/', '+', '#', '\0']) {
            return Err(TopicError::BadDeviceId(s.to_owned()));
        }
        Ok(Self(s.into()))
    }
}

impl serde::Serialize for DeviceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::try_from(s.as_str()).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event name taken from a topic; it may contain `/` but no empty level.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventName(Arc<str>);

impl EventName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for EventName {
    type Error = TopicError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        if s.is_empty()
            || s.len() > MAX_EVENT_NAME_LEN
            || s.contains(['+', '#', '\0'])
            || s.split('/').any(str::is_empty)
        {
            return Err(TopicError::BadEventName(s.to_owned()));
        }
        Ok(Self(s.into()))
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits `devices/{device_id}/events/{event_name}` into its two parts.
pub fn parse_event_topic(topic: &str) -> Result<(DeviceId, EventName), TopicError> {
    let not_event = || TopicError::NotAnEvent(topic.to_owned());
    let rest = topic.strip_prefix("devices/").ok_or_else(not_event)?;
    let (device, rest) = rest.split_once('/').ok_or_else(not_event)?;
    let name = rest.strip_prefix("events/").ok_or_else(not_event)?;
    Ok((DeviceId::try_from(device)?, EventName::try_from(name)?))
}

/// Whether a topic is one devices publish events on (`devices/+/events/#`),
/// valid or not; the ingress uses it to tell event traffic from the rest.
pub fn is_event_topic(topic: &str) -> bool {
    topic
        .strip_prefix("devices/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, rest)| rest.starts_with("events/") || rest == "events")
}

/// `devices/{device}/{suffix}/{index}`: the topic of one reply chunk.
pub fn reply_topic(device: &DeviceId, suffix: &str, index: usize) -> String {
    format!("devices/{device}/{suffix}/{index}")
}

/// `devices/{device}/hook-sent/{event}`.
pub fn hook_sent_topic(device: &DeviceId, event: &EventName) -> String {
    format!("devices/{device}/hook-sent/{event}")
}

/// Checks a reply topic chosen by a plugin (the part under
/// `devices/{device}/`, without the chunk index). It may not be empty, hold a
/// wildcard or NUL, have an empty level, or land on a topic that devices
/// publish on, so that replies can never trigger webhooks.
pub fn check_reply_suffix(suffix: &str) -> Result<(), String> {
    if suffix.is_empty() || suffix.len() > MAX_EVENT_NAME_LEN + 32 {
        return Err(format!(
            "reply topic {suffix:?} must be 1 to {} bytes",
            MAX_EVENT_NAME_LEN + 32
        ));
    }
    if suffix.contains(['+', '#', '\0']) || suffix.split('/').any(str::is_empty) {
        return Err(format!(
            "reply topic {suffix:?} may not hold '+', '#', NUL or an empty level"
        ));
    }
    let first = suffix.split('/').next().unwrap_or_default();
    if matches!(first, "events" | "command-output" | "command-done") {
        return Err(format!(
            "reply topic {suffix:?} may not start with {first:?}: devices publish there"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_simple_and_nested_event_names() {
        let (d, e) = parse_event_topic("devices/dev-1/events/temp").unwrap();
        assert_eq!((d.as_str(), e.as_str()), ("dev-1", "temp"));
        let (d, e) = parse_event_topic("devices/x/events/a/b/c").unwrap();
        assert_eq!((d.as_str(), e.as_str()), ("x", "a/b/c"));
    }

    #[test]
    fn rejects_topics_that_are_not_events() {
        for t in [
            "devices/dev/hook-sent/temp",
            "device/dev/events/temp",
            "devices/dev",
            "devices//events/temp",
            "devices/dev/events/",
            "devices/dev/events",
            "devices/dev/events/a//b",
            "devices/dev/events/a/",
            "/devices/dev/events/a",
        ] {
            assert!(parse_event_topic(t).is_err(), "{t} should be rejected");
        }
    }

    #[test]
    fn errors_name_the_bad_part() {
        let err = parse_event_topic("devices//events/temp").unwrap_err();
        assert!(
            matches!(err, TopicError::BadDeviceId(ref s) if s.is_empty()),
            "{err}"
        );
        let long = "x".repeat(MAX_EVENT_NAME_LEN + 1);
        let err = parse_event_topic(&format!("devices/d/events/{long}")).unwrap_err();
        assert!(matches!(err, TopicError::BadEventName(_)), "{err}");
        let err = parse_event_topic("devices/d/status").unwrap_err();
        assert!(err.to_string().contains("devices/d/status"), "{err}");
    }

    #[test]
    fn tells_event_traffic_from_the_rest() {
        assert!(is_event_topic("devices/d/events/x"));
        assert!(is_event_topic("devices//events/"));
        assert!(!is_event_topic("devices/d/hook-response/x/0"));
        assert!(!is_event_topic("other/d/events/x"));
    }

    #[test]
    fn reply_suffixes_cannot_reach_event_topics() {
        assert!(check_reply_suffix("hook-response/temp").is_ok());
        assert!(check_reply_suffix("weather/today").is_ok());
        for bad in [
            "",
            "events/x",
            "events",
            "a/#",
            "a/+/b",
            "a//b",
            "command-done/1",
        ] {
            assert!(
                check_reply_suffix(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn builds_reply_topics() {
        let d = DeviceId::try_from("d1").unwrap();
        let e = EventName::try_from("a/b").unwrap();
        assert_eq!(hook_sent_topic(&d, &e), "devices/d1/hook-sent/a/b");
        assert_eq!(
            reply_topic(&d, "hook-response/a/b", 2),
            "devices/d1/hook-response/a/b/2"
        );
    }
}
