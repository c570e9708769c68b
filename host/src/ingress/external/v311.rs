//! MQTT 3.1.1 for the external broker, for brokers that speak no MQTT 5.
//!
//! What 3.1.1 lacks, and why the host does not need it:
//! - a session expiry: `clean session = 0` keeps the session for as long as
//!   the broker keeps sessions (mosquitto: `persistent_client_expiration`,
//!   never by default);
//! - a receive maximum: the broker's own in-flight limit bounds the events
//!   sent before the host acknowledges them (mosquitto:
//!   `max_inflight_messages`, 20 by default), well under the channels'
//!   room for [`super::RECEIVE_MAXIMUM`];
//! - No Local: the host subscribes only to `devices/+/events/#`, and it
//!   never publishes there (replies go to `hook-*` or a plugin's topic,
//!   which [`crate::topic::check_reply_suffix`] keeps off `events/`), so
//!   its own messages never come back as events.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet};

use super::RECEIVE_MAXIMUM;
use super::client::{self, Connect, Incoming, Message, PendingAck};

/// The largest packet MQTT can carry (its remaining-length limit): the
/// host's own replies are bounded by its settings (chunk size, response
/// size), not by the client's small default.
const MAX_PACKET_BYTES: usize = 268_435_455;

/// A client and its event loop, not connected yet.
pub fn connect(c: &Connect, capacity: usize) -> (client::Client, client::EventLoop) {
    let (client, mut eventloop) = AsyncClient::new(options(c), capacity);
    eventloop.set_network_options(super::connection::nodelay());
    (
        client::Client::V311(client.clone()),
        client::EventLoop::V311(eventloop, client),
    )
}

/// The client's settings for the broker `c`.
pub fn options(c: &Connect) -> MqttOptions {
    let mut options = MqttOptions::new(c.client_id.clone(), c.host.clone(), c.port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(c.clean_session)
        .set_manual_acks(true)
        .set_inflight(RECEIVE_MAXIMUM)
        .set_transport(c.transport.clone())
        .set_max_packet_size(c.max_packet_bytes, MAX_PACKET_BYTES);
    if let Some((user, password)) = &c.credentials {
        options.set_credentials(user.clone(), password.clone());
    }
    options
}

/// The next event of the loop, in the version-neutral shape.
pub async fn poll(eventloop: &mut EventLoop, client: &AsyncClient) -> Result<Incoming, String> {
    match eventloop.poll().await.map_err(|e| e.to_string())? {
        Event::Incoming(Packet::ConnAck(connack)) => Ok(Incoming::ConnAck {
            session_present: connack.session_present,
        }),
        Event::Incoming(Packet::Publish(publish)) => Ok(Incoming::Publish(Message {
            topic: publish.topic.clone(),
            payload: publish.payload.clone(),
            packet: (publish.qos != rumqttc::QoS::AtMostOnce)
                .then_some((publish.pkid, publish.dup)),
            ack: PendingAck::V311(client.clone(), Box::new(publish)),
        })),
        Event::Incoming(Packet::PubAck(_)) => Ok(Incoming::PubAck),
        Event::Incoming(Packet::SubAck(_)) => Ok(Incoming::SubAck),
        _ => Ok(Incoming::Other),
    }
}
