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
            id: new_event_id(now),
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

impl Event {
    fn fields(&self) -> [&str; 4] {
        [
            self.id.as_str(),
            self.published_at.as_str(),
            self.device.as_str(),
            self.name.as_str(),
        ]
    }

    /// Its size as [`Event::encode`] writes it.
    pub fn encoded_len(&self) -> usize {
        self.fields().iter().map(|f| 4 + f.len()).sum::<usize>() + self.data.len()
    }

    /// The event as the stores keep it (the queue, the delivery history):
    /// four length-prefixed strings (id, published_at, device, name), then
    /// the data as is.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        for field in self.fields() {
            let n = u32::try_from(field.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out.extend_from_slice(&self.data);
        debug_assert_eq!(out.len(), self.encoded_len());
        out
    }

    /// The event [`Event::encode`] wrote, or what is wrong with the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        let mut rest = bytes;
        let mut field = || -> Result<&str, &'static str> {
            let (len, tail) = rest.split_first_chunk::<4>().ok_or("truncated")?;
            let len = u32::from_le_bytes(*len) as usize;
            if tail.len() < len {
                return Err("truncated");
            }
            let (text, tail) = tail.split_at(len);
            rest = tail;
            std::str::from_utf8(text).map_err(|_| "not UTF-8")
        };
        let id = field()?.to_owned();
        let published_at = field()?.to_owned();
        let device = DeviceId::try_from(field()?).map_err(|_| "bad device id")?;
        let name = EventName::try_from(field()?).map_err(|_| "bad event name")?;
        Ok(Self {
            id,
            device,
            name,
            data: Bytes::copy_from_slice(rest),
            published_at,
        })
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

/// A 128-bit id in hex: the receive time's milliseconds (48 bits) then 80
/// random bits, unique without coordination between hosts. Ids received
/// later sort later, so the delivery history's tables keyed by event id
/// grow at one end (and are pruned at the other) instead of at random
/// pages of a file much larger than its cache.
fn new_event_id(at: std::time::SystemTime) -> String {
    let millis = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        & 0xffff_ffff_ffff;
    let random = rand::random::<u128>() >> 48;
    format!("{millis:012x}{random:020x}")
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
        assert!(a.id.bytes().all(|b| b.is_ascii_hexdigit()), "{}", a.id);
        // 2026-11-22T14:16:58.123Z
        assert_eq!(a.published_at.len(), 24, "{}", a.published_at);
        assert!(a.published_at.ends_with('Z'));
    }

    #[test]
    fn ids_of_events_received_later_sort_later() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_796_256_000_123);
        let ids: Vec<String> = (0..100)
            .map(|ms| new_event_id(at + std::time::Duration::from_millis(ms)))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids[0].starts_with("01a23"), "{}", ids[0]);
        let same_ms: std::collections::HashSet<_> = (0..1000).map(|_| new_event_id(at)).collect();
        assert_eq!(same_ms.len(), 1000);
    }

    #[test]
    fn a_corrupt_event_is_named() {
        assert_eq!(
            Event::decode(b"\x05\x00\x00\x00ab").unwrap_err(),
            "truncated"
        );
        let event = Event::received(
            DeviceId::try_from("dev-1").unwrap(),
            EventName::try_from("e").unwrap(),
            Bytes::from_static(b"21.5"),
        );
        let mut bytes = event.encode();
        let back = Event::decode(&bytes).unwrap();
        assert_eq!((back.id, back.data), (event.id, event.data));
        bytes[40] = 0xff;
        assert!(Event::decode(&bytes).is_err());
    }
}
