//! The device event as it travels through the host.

use bytes::Bytes;

use crate::topic::{CommandReport, DeviceId, EventName, RequestId};

/// One event a device published, as received by the host.
///
/// Cheap to clone: the ids are shared strings and the data is reference
/// counted, so the pipeline can hand it to several webhooks without copying.
#[derive(Debug, Clone)]
pub struct Event {
    /// Unique per event; receivers deduplicate retries with it.
    pub id: String,
    /// Taken from the topic.
    pub device: DeviceId,
    /// Taken from the topic; may contain `/`.
    pub name: EventName,
    /// The payload exactly as published.
    pub data: Bytes,
    /// The host's receive time, RFC 3339 UTC with milliseconds.
    pub published_at: String,
}

impl Event {
    /// An event received now, with a fresh id.
    pub fn received(device: DeviceId, name: EventName, data: Bytes) -> Self {
        let now = std::time::SystemTime::now();
        Self {
            id: new_event_id(),
            device,
            name,
            data,
            published_at: humantime::format_rfc3339_millis(now).to_string(),
        }
    }
}

impl Event {
    /// An event a broker stored at `at` under `serial` (a stream's
    /// sequence number): its id is the same for whoever takes it, so that
    /// an event taken over by another host carries the same `webhook-id`.
    pub fn stored(
        device: DeviceId,
        name: EventName,
        data: Bytes,
        serial: u64,
        at: std::time::SystemTime,
    ) -> Self {
        let nanos = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self {
            id: format!("{nanos:016x}{serial:016x}"),
            device,
            name,
            data,
            published_at: humantime::format_rfc3339_millis(at).to_string(),
        }
    }
}

/// What a device published about a command it was sent: a chunk of output
/// or its end. Not an event: never queued, never given to a webhook.
#[derive(Debug, Clone)]
pub struct CommandReply {
    /// Taken from the topic.
    pub device: DeviceId,
    /// The command it answers, taken from the topic.
    pub request_id: RequestId,
    /// Output or done.
    pub kind: CommandReport,
    /// The payload exactly as published (`{"chunk", "fd"}` or `{"exit_code"}`).
    pub payload: Bytes,
}

/// A 128-bit random id in hex: unique without coordination between hosts.
fn new_event_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_events_get_unique_ids_and_a_millisecond_timestamp() {
        let d = DeviceId::try_from("d").unwrap();
        let n = EventName::try_from("e").unwrap();
        let a = Event::received(d.clone(), n.clone(), Bytes::new());
        let b = Event::received(d, n, Bytes::new());
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 32);
        // 2026-11-22T14:16:58.123Z
        assert_eq!(a.published_at.len(), 24, "{}", a.published_at);
        assert!(a.published_at.ends_with('Z'));
    }
}
