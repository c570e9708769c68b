//! MQTT 5 for the external broker: a session expiry of a day, a receive
//! maximum of [`RECEIVE_MAXIMUM`], and a No Local subscription.

use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};

use super::RECEIVE_MAXIMUM;
use super::client::{self, Connect, Incoming, Message, PendingAck};

/// How long the broker keeps the session (and its QoS 1 messages) while the
/// host is away: a day.
const SESSION_EXPIRY_SECS: u32 = 24 * 60 * 60;

/// A client and its event loop, not connected yet.
pub fn connect(c: &Connect, capacity: usize) -> (client::Client, client::EventLoop) {
    let (client, eventloop) = AsyncClient::new(options(c), capacity);
    (
        client::Client::V5(client.clone()),
        client::EventLoop::V5(eventloop, client),
    )
}

/// The client's settings for the broker `c`.
pub fn options(c: &Connect) -> MqttOptions {
    let mut options = MqttOptions::new(c.client_id.clone(), c.host.clone(), c.port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_start(c.clean_session)
        .set_session_expiry_interval((!c.clean_session).then_some(SESSION_EXPIRY_SECS))
        .set_manual_acks(true)
        .set_receive_maximum(Some(RECEIVE_MAXIMUM))
        .set_network_options(super::connection::nodelay())
        .set_transport(c.transport.clone())
        .set_max_packet_size(Some(u32::try_from(c.max_packet_bytes).unwrap_or(u32::MAX)));
    if let Some((user, password)) = &c.credentials {
        options.set_credentials(user.clone(), password.clone());
    }
    options
}

/// Subscribes with No Local, so that the host never gets its own publishes
/// back, except through a shared subscription (`$share/…`), where MQTT 5
/// forbids it (MQTT-3.8.3-4) and a strict broker refuses the SUBSCRIBE:
/// there the host relies on what 3.1.1 relies on (see [`super::v311`]):
/// it never publishes on the events it subscribes to.
pub fn subscribe(client: &AsyncClient, filter: &str) -> Result<(), String> {
    let mut subscription = Filter::new(filter.to_owned(), QoS::AtLeastOnce);
    subscription.nolocal = !filter.starts_with("$share/");
    client
        .try_subscribe_many([subscription])
        .map_err(|e| e.to_string())
}

/// The next event of the loop, in the version-neutral shape.
pub async fn poll(eventloop: &mut EventLoop, client: &AsyncClient) -> Result<Incoming, String> {
    match eventloop.poll().await.map_err(|e| e.to_string())? {
        Event::Incoming(Packet::ConnAck(connack)) => Ok(Incoming::ConnAck {
            session_present: connack.session_present,
        }),
        Event::Incoming(Packet::Publish(publish)) => Ok(Incoming::Publish(Message {
            topic: String::from_utf8_lossy(&publish.topic).into_owned(),
            payload: publish.payload.clone(),
            packet: (publish.qos != QoS::AtMostOnce).then_some((publish.pkid, publish.dup)),
            ack: PendingAck::V5(client.clone(), Box::new(publish)),
        })),
        Event::Incoming(Packet::PubAck(_)) => Ok(Incoming::PubAck),
        Event::Incoming(Packet::SubAck(_)) => Ok(Incoming::SubAck),
        _ => Ok(Incoming::Other),
    }
}
