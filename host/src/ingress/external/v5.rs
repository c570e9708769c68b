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
    let mut options = MqttOptions::new(c.client_id.clone(), c.host.clone(), c.port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_start(false)
        .set_session_expiry_interval(Some(SESSION_EXPIRY_SECS))
        .set_manual_acks(true)
        .set_receive_maximum(Some(RECEIVE_MAXIMUM))
        .set_network_options(super::nodelay())
        .set_transport(c.transport.clone())
        .set_max_packet_size(Some(u32::try_from(c.max_packet_bytes).unwrap_or(u32::MAX)));
    if let Some((user, password)) = &c.credentials {
        options.set_credentials(user.clone(), password.clone());
    }
    let (client, eventloop) = AsyncClient::new(options, capacity);
    (
        client::Client::V5(client.clone()),
        client::EventLoop::V5(eventloop, client),
    )
}

/// Subscribes with No Local: the host never gets its own publishes back,
/// whatever the filter.
pub fn subscribe(client: &AsyncClient, filter: &str) -> Result<(), String> {
    let mut subscription = Filter::new(filter.to_owned(), QoS::AtLeastOnce);
    subscription.nolocal = true;
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
        _ => Ok(Incoming::Other),
    }
}
