//! The tests' one MQTT client, [`Device`], made by one constructor per way
//! of connecting:
//!
//! - [`Device::connect`] (MQTT 3.1.1) and [`Device::connect_v5`] (MQTT 5):
//!   a device as a client library makes it, reconnecting by itself,
//!   subscribed to `devices/{id}/#`, with an inbox of what the host sends
//!   it;
//! - [`Device::login`]: an MQTT 3.1.1 client that logs in with a user name
//!   and password (a device's key, the operator's token) and never
//!   reconnects: every packet, refusal or close is reported as [`Heard`],
//!   for the tests of who may speak on the embedded broker;
//! - [`Device::raw`]: MQTT 3.1.1 packets written by hand (with rumqttc's
//!   encoders) on a plain TCP socket, so that a test sets what a client
//!   library decides for itself: the packet id, the DUP flag, and leaving
//!   before the PUBACK is read.
//!
//! A method used on a device of another kind panics, naming the
//! constructor it needs.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::v5::mqttbytes::v5::Packet as Packet5;
use rumqttc::{
    AsyncClient, Connect, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, Publish,
    QoS, SubscribeReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::{WAIT, before};

/// What the host sent a device: (topic, payload).
type Inbox = mpsc::UnboundedReceiver<(String, Vec<u8>)>;

/// What a login device hears, in order.
type Hearing = mpsc::UnboundedReceiver<Heard>;

/// Largest packet a raw device reads or writes.
const MAX_PACKET: usize = 1 << 20;

/// What a [`Device::login`] device hears.
#[derive(Debug)]
pub enum Heard {
    /// A packet from the broker.
    Packet(Packet),
    /// The broker refused the login or closed the connection.
    Closed(String),
}

/// An MQTT client on the host's broker (or any broker).
#[derive(Debug)]
pub struct Device {
    /// The id given to the constructor: the device in `devices/{id}/…`.
    pub id: String,
    link: Link,
}

/// A device's connection, by the constructor that made it.
#[derive(Debug)]
enum Link {
    /// [`Device::connect`], [`Device::connect_v5`].
    Subscribed(Client, Inbox),
    /// [`Device::login`].
    Login(AsyncClient, Hearing),
    /// [`Device::raw`]: the socket and what was read from it but not yet
    /// decoded.
    Raw(TcpStream, BytesMut),
}

/// A subscribed device's client, by protocol version.
#[derive(Debug)]
enum Client {
    V311(AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// The constructors, as a wrong kind's panic names them.
const SUBSCRIBED: &str = "Device::connect or Device::connect_v5";
const LOGIN: &str = "Device::login";
const RAW: &str = "Device::raw";
const CLIENT_LIBRARY: &str = "Device::connect, Device::connect_v5 or Device::login";

impl Link {
    /// The constructor that made this kind of connection.
    fn made_by(&self) -> &'static str {
        match self {
            Self::Subscribed(..) => SUBSCRIBED,
            Self::Login(..) => LOGIN,
            Self::Raw(..) => RAW,
        }
    }

    /// Panics: `method` needs a device made by `needs`, not this one.
    fn unsupported(&self, method: &str, needs: &str) -> ! {
        panic!(
            "Device::{method} needs a device from {needs}, not one from {}",
            self.made_by()
        )
    }
}

/// What a subscribed device's event loop does with the packets it
/// receives, whatever the protocol.
struct Received {
    inbox: mpsc::UnboundedSender<(String, Vec<u8>)>,
    subscribed: Option<oneshot::Sender<()>>,
    /// `devices/{id}/`, the device's own topics.
    own: String,
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

/// Subscribed devices: [`Device::connect`], [`Device::connect_v5`].
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
            link: Link::Subscribed(client, inbox),
        }
    }

    /// Publishes `data` on `devices/{id}/events/{name}` with QoS 1
    /// (subscribed and login devices).
    pub async fn publish(&self, name: &str, data: impl Into<Vec<u8>>) {
        self.publish_raw(&format!("devices/{}/events/{name}", self.id), data)
            .await;
    }

    /// Publishes on any topic with QoS 1 (subscribed and login devices).
    pub async fn publish_raw(&self, topic: &str, data: impl Into<Vec<u8>>) {
        match &self.link {
            Link::Subscribed(Client::V311(c), _) | Link::Login(c, _) => c
                .publish(topic, QoS::AtLeastOnce, false, data.into())
                .await
                .unwrap(),
            Link::Subscribed(Client::V5(c), _) => c
                .publish(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    false,
                    data.into(),
                )
                .await
                .unwrap(),
            Link::Raw(..) => self.link.unsupported("publish_raw", CLIENT_LIBRARY),
        }
    }

    /// The next message for this device, or panics after [`WAIT`].
    pub async fn next(&mut self) -> (String, Vec<u8>) {
        let inbox = match &mut self.link {
            Link::Subscribed(_, inbox) => inbox,
            other => other.unsupported("next", SUBSCRIBED),
        };
        tokio::time::timeout(WAIT, inbox.recv())
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

/// Login devices: [`Device::login`], which never reconnect.
impl Device {
    /// Connects to `addr` with MQTT 3.1.1 as client `id`, logging in with
    /// `login` (user name, password) if any, without waiting for the
    /// CONNACK; what the broker sends or does is then [`Device::heard`].
    pub async fn login(addr: SocketAddr, id: &str, login: Option<(&str, &str)>) -> Self {
        let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        if let Some((user, password)) = login {
            opts.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(opts, 16);
        let (tx, hearing) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let event = match eventloop.poll().await {
                    Ok(Event::Incoming(packet)) => Heard::Packet(packet),
                    Ok(Event::Outgoing(_)) => continue,
                    Err(err) => Heard::Closed(describe(&err)),
                };
                let closed = matches!(event, Heard::Closed(_));
                if tx.send(event).is_err() || closed {
                    return;
                }
            }
        });
        Self {
            id: id.to_owned(),
            link: Link::Login(client, hearing),
        }
    }

    /// What the broker sent or did next; panics after [`WAIT`].
    pub async fn heard(&mut self) -> Heard {
        self.hear("heard").await
    }

    /// The next [`Heard`], for `method`.
    async fn hear(&mut self, method: &str) -> Heard {
        let hearing = match &mut self.link {
            Link::Login(_, hearing) => hearing,
            other => other.unsupported(method, LOGIN),
        };
        tokio::time::timeout(WAIT, hearing.recv())
            .await
            .expect("the broker answered in time")
            .expect("the client task runs")
    }

    /// The login's outcome: `Ok` on CONNACK success, the reason otherwise.
    pub async fn login_outcome(&mut self) -> Result<(), String> {
        match self.hear("login_outcome").await {
            Heard::Packet(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => Ok(()),
            other => Err(format!("{other:?}")),
        }
    }

    /// Subscribes to `filter` and returns whether the broker granted it.
    pub async fn subscribe(&mut self, filter: &str) -> bool {
        let client = match &self.link {
            Link::Login(client, _) => client,
            other => other.unsupported("subscribe", LOGIN),
        };
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        loop {
            if let Heard::Packet(Packet::SubAck(ack)) = self.hear("subscribe").await {
                return !matches!(ack.return_codes[0], SubscribeReasonCode::Failure);
            }
        }
    }

    /// The next message published to this client: (topic, text).
    pub async fn message(&mut self) -> (String, String) {
        loop {
            match self.hear("message").await {
                Heard::Packet(Packet::Publish(p)) => {
                    return (p.topic, String::from_utf8_lossy(&p.payload).into_owned());
                }
                Heard::Closed(why) => panic!("closed while waiting for a message: {why}"),
                Heard::Packet(_) => {}
            }
        }
    }

    /// Waits for the connection to close; why.
    pub async fn closed(&mut self) -> String {
        loop {
            if let Heard::Closed(why) = self.hear("closed").await {
                return why;
            }
        }
    }
}

/// Why a login device's connection ended.
fn describe(err: &ConnectionError) -> String {
    match err {
        ConnectionError::ConnectionRefused(code) => format!("refused: {code:?}"),
        other => other.to_string(),
    }
}

/// Logs in as a device would: the broker may still be ending an earlier
/// session of this client id, and says "server unavailable" meanwhile;
/// then the device tries again. The first other answer.
pub async fn login_settled(
    addr: SocketAddr,
    id: &str,
    login: (&str, &str),
) -> Result<Device, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut client = Device::login(addr, id, Some(login)).await;
        match client.login_outcome().await {
            Err(why) if why.contains("ServiceUnavailable") => {
                assert!(tokio::time::Instant::now() < deadline, "{why}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(why) => return Err(why),
            Ok(()) => return Ok(client),
        }
    }
}

/// Raw devices: [`Device::raw`], with a persistent session.
impl Device {
    /// Connects to `addr` as device `id` with `clean session = 0` (the
    /// session, and its packet ids, live on) and waits for the CONNACK.
    pub async fn raw(addr: SocketAddr, id: &str) -> Self {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut read = BytesMut::new();
        let mut connect = Connect::new(client_id(id));
        connect.keep_alive = 30;
        connect.clean_session = false;
        write_packet(&mut stream, Packet::Connect(connect)).await;
        match read_packet(&mut stream, &mut read).await {
            Some(Packet::ConnAck(ack)) => assert_eq!(ack.code, ConnectReturnCode::Success),
            other => panic!("no CONNACK but {other:?}"),
        }
        Self {
            id: id.to_owned(),
            link: Link::Raw(stream, read),
        }
    }

    /// Publishes `data` on `devices/{id}/events/{name}` at QoS 1 with
    /// packet id `pkid` and the DUP flag `dup`, without waiting.
    pub async fn publish_pkid(&mut self, name: &str, data: &str, pkid: u16, dup: bool) {
        let topic = format!("devices/{}/events/{name}", self.id);
        let (stream, _) = self.socket("publish_pkid");
        let mut publish = Publish::new(topic, QoS::AtLeastOnce, data);
        publish.pkid = pkid;
        publish.dup = dup;
        write_packet(stream, Packet::Publish(publish)).await;
    }

    /// Waits for the PUBACK of `pkid`, skipping other packets; panics when
    /// none comes within [`WAIT`] or the connection closes first.
    pub async fn puback(&mut self, pkid: u16) {
        let (stream, read) = self.socket("puback");
        let wait = async {
            loop {
                match read_packet(stream, read).await {
                    Some(Packet::PubAck(ack)) if ack.pkid == pkid => return,
                    Some(_) => {}
                    None => panic!("the connection closed before the PUBACK of {pkid}"),
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .unwrap_or_else(|_| panic!("no PUBACK of {pkid} in time"));
    }

    /// The PUBACKs that come before the connection closes (within
    /// [`WAIT`]).
    pub async fn pubacks_until_closed(&mut self) -> Vec<u16> {
        let (stream, read) = self.socket("pubacks_until_closed");
        let mut acks = Vec::new();
        let wait = async {
            while let Some(packet) = read_packet(stream, read).await {
                if let Packet::PubAck(ack) = packet {
                    acks.push(ack.pkid);
                }
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .expect("the connection closed in time");
        acks
    }

    /// A raw device's socket and read buffer, for `method`.
    fn socket(&mut self, method: &str) -> (&mut TcpStream, &mut BytesMut) {
        match &mut self.link {
            Link::Raw(stream, read) => (stream, read),
            other => other.unsupported(method, RAW),
        }
    }
}

/// Writes `packet` on a raw device's socket.
async fn write_packet(stream: &mut TcpStream, packet: Packet) {
    let mut buf = BytesMut::new();
    packet.write(&mut buf, MAX_PACKET).unwrap();
    stream.write_all(&buf).await.unwrap();
}

/// The next packet from the broker on a raw device's socket, `read` holding
/// what came but is not decoded yet; `None` once the connection is closed.
async fn read_packet(stream: &mut TcpStream, read: &mut BytesMut) -> Option<Packet> {
    loop {
        match Packet::read(read, MAX_PACKET) {
            Ok(packet) => return Some(packet),
            Err(rumqttc::Error::InsufficientBytes(_)) => {}
            Err(err) => panic!("a malformed packet from the broker: {err:?}"),
        }
        match stream.read_buf(read).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The MQTT client id of device `id`, unique to this test process (the
/// subscribed and raw devices; a login device's client id is `id` itself).
fn client_id(id: &str) -> String {
    format!("{id}-{}", std::process::id())
}
