//! An MQTT device, speaking 3.1.1 or 5: publishes events and collects what
//! the host sends it.

use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::Packet as Packet5;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, oneshot};

use super::{WAIT, before};

/// What the host sent a device: (topic, payload).
type Inbox = mpsc::UnboundedReceiver<(String, Vec<u8>)>;

/// An MQTT device on the host's broker.
pub struct Device {
    pub id: String,
    client: Client,
    inbox: Inbox,
}

/// The device's connection, by protocol version.
enum Client {
    V311(AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// What a device's event loop does with the packets it receives, whatever
/// the protocol.
struct Received {
    inbox: mpsc::UnboundedSender<(String, Vec<u8>)>,
    subscribed: Option<oneshot::Sender<()>>,
    /// `devices/{id}/`, the device's own topics.
    own: String,
}

impl Received {
    fn suback(&mut self) {
        if let Some(tx) = self.subscribed.take() {
            let _ = tx.send(());
        }
    }

    /// Keeps a message for the device; false once the device is gone.
    fn publish(&self, topic: &[u8], payload: &[u8]) -> bool {
        let topic = String::from_utf8_lossy(topic).into_owned();
        // What it publishes itself (events, answers to commands) comes back
        // through `devices/{id}/#`; a device cares only about what the host
        // sends it.
        let own = topic.strip_prefix(&self.own).is_some_and(|rest| {
            ["events/", "command-output/", "command-done/"]
                .iter()
                .any(|p| rest.starts_with(p))
        });
        own || self.inbox.send((topic, payload.to_vec())).is_ok()
    }
}

impl Device {
    /// Connects to `addr` as `id` with MQTT 3.1.1 and subscribes to
    /// `devices/{id}/#`.
    pub async fn connect(addr: SocketAddr, id: &str) -> Self {
        let mut opts = MqttOptions::new(client_id(id), addr.ip().to_string(), addr.port());
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (mut received, inbox, subscribed) = Received::new(id);
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => received.suback(),
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if !received.publish(p.topic.as_bytes(), &p.payload) {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Self::subscribed(id, Client::V311(client), inbox, subscribed).await
    }

    /// Connects to `addr` as `id` with MQTT 5 and subscribes to
    /// `devices/{id}/#`.
    pub async fn connect_v5(addr: SocketAddr, id: &str) -> Self {
        use rumqttc::v5::{AsyncClient, Event, MqttOptions};
        let mut opts = MqttOptions::new(client_id(id), addr.ip().to_string(), addr.port());
        opts.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (mut received, inbox, subscribed) = Received::new(id);
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet5::SubAck(_))) => received.suback(),
                    Ok(Event::Incoming(Packet5::Publish(p))) => {
                        if !received.publish(&p.topic, &p.payload) {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Self::subscribed(id, Client::V5(client), inbox, subscribed).await
    }

    /// Subscribes `client` to `devices/{id}/#` and waits for the SUBACK.
    async fn subscribed(
        id: &str,
        client: Client,
        inbox: Inbox,
        subscribed: oneshot::Receiver<()>,
    ) -> Self {
        let filter = format!("devices/{id}/#");
        match &client {
            Client::V311(c) => c.subscribe(filter, QoS::AtLeastOnce).await.unwrap(),
            Client::V5(c) => c
                .subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
                .await
                .unwrap(),
        }
        tokio::time::timeout(WAIT, subscribed)
            .await
            .expect("subscribed in time")
            .unwrap();
        Self {
            id: id.to_owned(),
            client,
            inbox,
        }
    }

    /// Publishes `data` on `devices/{id}/events/{name}` with QoS 1.
    pub async fn publish(&self, name: &str, data: impl Into<Vec<u8>>) {
        self.publish_raw(&format!("devices/{}/events/{name}", self.id), data)
            .await;
    }

    /// Publishes on any topic with QoS 1.
    pub async fn publish_raw(&self, topic: &str, data: impl Into<Vec<u8>>) {
        match &self.client {
            Client::V311(c) => c
                .publish(topic, QoS::AtLeastOnce, false, data.into())
                .await
                .unwrap(),
            Client::V5(c) => c
                .publish(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    false,
                    data.into(),
                )
                .await
                .unwrap(),
        }
    }

    /// The next message for this device, or panics after [`WAIT`].
    pub async fn next(&mut self) -> (String, Vec<u8>) {
        tokio::time::timeout(WAIT, self.inbox.recv())
            .await
            .expect("no message reached the device in time")
            .unwrap()
    }

    /// The next message, as (topic, UTF-8 text).
    pub async fn next_text(&mut self) -> (String, String) {
        let (topic, payload) = self.next().await;
        (topic, String::from_utf8(payload).expect("UTF-8 payload"))
    }

    /// The messages (topic, UTF-8 text) that arrive before one on `marker`;
    /// panics when none comes within [`WAIT`]. A test publishes an event
    /// whose reply comes on `marker` after the one whose replies must not
    /// come: when nothing came before the marker, nothing came late either.
    pub async fn before_marker(&mut self, marker: &str) -> Vec<(String, String)> {
        before(
            async || self.next_text().await,
            |(topic, _)| topic == marker,
        )
        .await
    }
}

impl Received {
    /// The loop's side, the device's inbox and the SUBACK's signal.
    fn new(id: &str) -> (Self, Inbox, oneshot::Receiver<()>) {
        let (inbox, rx) = mpsc::unbounded_channel();
        let (subscribed, suback) = oneshot::channel();
        let received = Self {
            inbox,
            subscribed: Some(subscribed),
            own: format!("devices/{id}/"),
        };
        (received, rx, suback)
    }
}

/// The MQTT client id of device `id`, unique to this test process.
fn client_id(id: &str) -> String {
    format!("{id}-{}", std::process::id())
}
