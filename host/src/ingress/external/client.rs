//! The seam between the external ingress and the MQTT version it speaks:
//! one client (publish QoS 1, subscribe, disconnect), one event loop, one
//! kind of received message with its acknowledgement owed. The rest of
//! [`super`] — and so the pipeline — never knows which version is in use;
//! [`super::v5`] and [`super::v311`] hold what differs.

use bytes::Bytes;

/// What either version's client is set up with.
#[derive(Clone)]
pub struct Connect {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Stable client id, so the persistent session survives restarts.
    pub client_id: String,
    /// A session that ends with the connection (nothing is owed to it).
    pub clean_session: bool,
    /// User name and password from the URL.
    pub credentials: Option<(String, String)>,
    /// TCP, or TLS with the host's rustls configuration.
    pub transport: rumqttc::Transport,
    /// Largest packet taken from the broker: an event of the largest size
    /// allowed, with room for its topic and properties.
    pub max_packet_bytes: usize,
}

/// A client handle, cheap to clone.
#[derive(Debug, Clone)]
pub enum Client {
    /// MQTT 5.
    V5(rumqttc::v5::AsyncClient),
    /// MQTT 3.1.1.
    V311(rumqttc::AsyncClient),
}

/// The event loop that owns the connection.
#[expect(
    clippy::large_enum_variant,
    reason = "one event loop per host, polled in place for its whole life: boxing saves nothing"
)]
pub enum EventLoop {
    /// MQTT 5, with the client that acknowledges its messages.
    V5(rumqttc::v5::EventLoop, rumqttc::v5::AsyncClient),
    /// MQTT 3.1.1, with the client that acknowledges its messages.
    V311(rumqttc::EventLoop, rumqttc::AsyncClient),
}

/// What the event loop saw.
#[derive(Debug)]
pub enum Incoming {
    /// The broker accepted the connection.
    ConnAck {
        /// Whether the broker kept our session (and so our subscription).
        session_present: bool,
    },
    /// A message on a subscribed topic.
    Publish(Message),
    /// The broker acknowledged one of the host's publishes.
    PubAck,
    /// The broker answered one of the host's subscriptions.
    SubAck,
    /// Anything else (acks of our own packets, pings).
    Other,
}

/// A message from the broker, and the acknowledgement owed for it.
#[derive(Debug)]
pub struct Message {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
    /// Its packet id (QoS 1 and 2) and DUP flag: the broker resends what
    /// the host's session did not acknowledge with the same id and DUP=1.
    pub packet: Option<(u16, bool)>,
    /// The PUBACK to send once it is safe.
    pub ack: PendingAck,
}

/// The acknowledgement owed for one message.
#[derive(Debug)]
pub enum PendingAck {
    /// For an MQTT 5 message.
    V5(
        rumqttc::v5::AsyncClient,
        Box<rumqttc::v5::mqttbytes::v5::Publish>,
    ),
    /// For an MQTT 3.1.1 message.
    V311(rumqttc::AsyncClient, Box<rumqttc::Publish>),
}

impl PendingAck {
    /// Sends the PUBACK.
    pub async fn ack(self) {
        let result = match self {
            Self::V5(client, publish) => client.ack(&publish).await.map_err(|e| e.to_string()),
            Self::V311(client, publish) => client.ack(&publish).await.map_err(|e| e.to_string()),
        };
        if let Err(err) = result {
            tracing::warn!("cannot acknowledge an event to the broker: {err}");
        }
    }
}

impl Client {
    /// Publishes with QoS 1, not retained.
    pub async fn publish(&self, topic: String, payload: Bytes) -> Result<(), String> {
        match self {
            Self::V5(c) => c
                .publish(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    false,
                    payload,
                )
                .await
                .map_err(|e| e.to_string()),
            Self::V311(c) => c
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Asks for a QoS 1 subscription to `filter`, without waiting.
    pub fn subscribe(&self, filter: &str) -> Result<(), String> {
        match self {
            Self::V5(c) => super::v5::subscribe(c, filter),
            Self::V311(c) => c
                .try_subscribe(filter, rumqttc::QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
        }
    }

    /// Sends a DISCONNECT.
    pub async fn disconnect(&self) {
        // Gone already is as good as disconnected.
        let _ = match self {
            Self::V5(c) => c.disconnect().await.map_err(|e| e.to_string()),
            Self::V311(c) => c.disconnect().await.map_err(|e| e.to_string()),
        };
    }
}

impl EventLoop {
    /// The next thing that happened on the connection; an error means the
    /// connection is down (the next poll reconnects).
    pub async fn poll(&mut self) -> Result<Incoming, String> {
        match self {
            Self::V5(eventloop, client) => super::v5::poll(eventloop, client).await,
            Self::V311(eventloop, client) => super::v311::poll(eventloop, client).await,
        }
    }

    /// Connects to `c` from the next connection on; what the session owes
    /// (unacknowledged publishes, subscriptions asked for) carries over.
    pub fn point_at(&mut self, c: &Connect) {
        match self {
            Self::V5(eventloop, _) => eventloop.options = super::v5::options(c),
            Self::V311(eventloop, _) => eventloop.mqtt_options = super::v311::options(c),
        }
    }

    /// Drops the connection, keeping the session: the next poll connects
    /// again, the broker sends what the host has not acknowledged, and the
    /// host's own unacknowledged publishes go out again.
    pub fn reopen(&mut self) {
        match self {
            Self::V5(eventloop, _) => eventloop.clean(),
            Self::V311(eventloop, _) => eventloop.clean(),
        }
    }
}
