//! Where an MQTT message came from, so that a resend of it can be told
//! from a new message: the session that sent it, its packet id, whether it
//! says it is a resend (DUP), and a fingerprint of its content.
//!
//! A QoS 1 or 2 message is named by its packet id within its session until
//! its PUBACK; a sender that got no PUBACK sends it again with DUP=1 and the
//! same packet id. The pipeline remembers the origin of every event it
//! stores (`queue::origins`) and acknowledges such a resend without storing
//! or delivering it again.

use std::hash::Hasher as _;
use std::sync::Arc;

use siphasher::sip::SipHasher13;

use crate::event::Event;

/// A packet id within one MQTT session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `device/{client id}` for a device on the embedded broker;
    /// `broker/{client id}` for the host's own session on an external
    /// broker, which resends to the host what the host did not acknowledge.
    pub session: Arc<str>,
    /// The packet id the sender gave the message.
    pub packet_id: u16,
}

impl Origin {
    /// A device's message to the embedded broker.
    pub fn device(client_id: &str, packet_id: u16) -> Self {
        Self {
            session: format!("device/{client_id}").into(),
            packet_id,
        }
    }

    /// An external broker's message to the host's session `session` (see
    /// [`Origin::broker_session`]).
    pub fn broker(session: Arc<str>, packet_id: u16) -> Self {
        Self { session, packet_id }
    }

    /// The session name of the host's client `client_id` on an external
    /// broker: made once, shared by every message of that session.
    pub fn broker_session(client_id: &str) -> Arc<str> {
        format!("broker/{client_id}").into()
    }
}

/// How a QoS 1 or 2 event was sent: enough to recognise its resend.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Its session and packet id.
    pub origin: Origin,
    /// The DUP flag: the sender may have sent this message before.
    pub dup: bool,
    /// [`fingerprint`] of the event: a resend has the same one, a new
    /// message that reuses the packet id almost surely does not.
    pub fingerprint: u64,
}

impl Sent {
    /// How `event` was sent, with `origin` and the DUP flag `dup`.
    pub fn new(origin: Origin, dup: bool, event: &Event) -> Self {
        Self {
            origin,
            dup,
            fingerprint: fingerprint(event),
        }
    }
}

/// A 64-bit hash of the event's device, name and data; the same in every
/// run and every version (SipHash-1-3 with fixed keys), because it is kept
/// on disk.
pub fn fingerprint(event: &Event) -> u64 {
    let mut h = SipHasher13::new();
    for field in [event.device.as_str(), event.name.as_str()] {
        h.write(&(field.len() as u64).to_le_bytes());
        h.write(field.as_bytes());
    }
    h.write(&event.data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::topic::{DeviceId, EventName};

    fn event(device: &str, name: &str, data: &'static [u8]) -> Event {
        Event::received(
            DeviceId::try_from(device).unwrap(),
            EventName::try_from(name).unwrap(),
            Bytes::from_static(data),
        )
    }

    #[test]
    fn the_fingerprint_is_of_the_content_and_stable() {
        let a = event("d1", "temp", b"21.5");
        assert_eq!(fingerprint(&a), fingerprint(&event("d1", "temp", b"21.5")));
        assert_ne!(fingerprint(&a), fingerprint(&event("d1", "temp", b"21.6")));
        assert_ne!(fingerprint(&a), fingerprint(&event("d2", "temp", b"21.5")));
        // The fields are length-prefixed: moving a byte between them counts.
        assert_ne!(
            fingerprint(&event("d1", "ab", b"")),
            fingerprint(&event("d1a", "b", b""))
        );
        // Kept on disk: the value must not change between versions.
        assert_eq!(fingerprint(&a), 0xc6e1_005d_aeae_80d5);
    }
}
