//! An event as the queue stores it: four length-prefixed strings (id,
//! published_at, device, name), then the data as is.

use bytes::Bytes;

use crate::event::Event;
use crate::topic::{DeviceId, EventName};

fn fields(event: &Event) -> [&str; 4] {
    [
        event.id.as_str(),
        event.published_at.as_str(),
        event.device.as_str(),
        event.name.as_str(),
    ]
}

/// The size of `event` in the queue, as [`encode`] writes it.
pub fn encoded_len(event: &Event) -> usize {
    fields(event).iter().map(|f| 4 + f.len()).sum::<usize>() + event.data.len()
}

/// Encodes an event for the queue: four length-prefixed strings (id,
/// published_at, device, name), then the data as is.
pub fn encode(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(event));
    for field in fields(event) {
        let n = u32::try_from(field.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(&event.data);
    debug_assert_eq!(out.len(), encoded_len(event));
    out
}

/// The event [`encode`] wrote, or what is wrong with the bytes.
pub(super) fn decode(bytes: &[u8]) -> Result<Event, &'static str> {
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
    Ok(Event {
        id,
        device,
        name,
        data: Bytes::copy_from_slice(rest),
        published_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_event_is_named() {
        assert_eq!(decode(b"\x05\x00\x00\x00ab").unwrap_err(), "truncated");
        let mut bytes = encode(&Event::received(
            DeviceId::try_from("dev-1").unwrap(),
            EventName::try_from("e").unwrap(),
            Bytes::from_static(b""),
        ));
        bytes[40] = 0xff;
        assert!(decode(&bytes).is_err());
    }
}
