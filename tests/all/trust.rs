//! The embedded broker's trust boundary as an attacker on the network
//! tries it (CONTRACT section 12), over real sockets with MQTT 3.1.1 and 5:
//! Wills on topics the client may not publish, client ids that name
//! another device or another login's session, a device over its
//! subscription, publish and queue limits while the others go on, and
//! client-chosen text in the log.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use edgehook::config::Settings;
use edgehook::ingress::acl::MqttAuth;
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode as Code5, LastWill as Will5, Packet as Packet5,
    SubscribeReasonCode as SubCode5,
};
use rumqttc::{
    AsyncClient, ConnectReturnCode as Code311, Event, LastWill, MqttOptions, Packet, QoS,
    SubscribeReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::support::{Endpoint, HostProcess, HostUnderTest, TestHost, WAIT};

/// How a client logs in.
#[derive(Clone, Copy)]
struct Login<'a> {
    client_id: &'a str,
    credentials: Option<(&'a str, &'a str)>,
    /// (topic, payload) of its Will.
    will: Option<(&'a str, &'a str)>,
    clean: bool,
    v5: bool,
}

impl<'a> Login<'a> {
    fn new(client_id: &'a str) -> Self {
        Self {
            client_id,
            credentials: None,
            will: None,
            clean: true,
            v5: false,
        }
    }

    fn key(self, user: &'a str, password: &'a str) -> Self {
        Self {
            credentials: Some((user, password)),
            ..self
        }
    }

    fn will(self, topic: &'a str, payload: &'a str) -> Self {
        Self {
            will: Some((topic, payload)),
            ..self
        }
    }

    fn persistent(self) -> Self {
        Self {
            clean: false,
            ..self
        }
    }

    fn v5(self) -> Self {
        Self { v5: true, ..self }
    }
}

/// What a client saw, whatever its protocol.
#[derive(Debug, PartialEq)]
enum Seen {
    /// The CONNACK's code (0: accepted).
    ConnAck(u8),
    /// Whether each filter was granted, or the refusal's name.
    SubAck(Vec<Result<(), String>>),
    Publish(String, String),
    /// A PUBACK (3.1.1), by packet id.
    PubAck(u16),
    /// The connection ended.
    Closed(String),
}

/// A client that does not reconnect: everything it sees is reported.
struct Client {
    v311: Option<AsyncClient>,
    v5: Option<rumqttc::v5::AsyncClient>,
    seen: mpsc::UnboundedReceiver<Seen>,
    task: JoinHandle<()>,
}

impl Client {
    async fn connect(addr: SocketAddr, login: Login<'_>) -> Self {
        let (tx, seen) = mpsc::unbounded_channel();
        let host = addr.ip().to_string();
        if login.v5 {
            let mut opts = rumqttc::v5::MqttOptions::new(login.client_id, host, addr.port());
            opts.set_clean_start(login.clean);
            if let Some((user, password)) = login.credentials {
                opts.set_credentials(user, password);
            }
            if let Some((topic, payload)) = login.will {
                opts.set_last_will(Will5::new(topic, payload, QoS5::AtLeastOnce, false, None));
            }
            let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(opts, 16);
            let task = tokio::spawn(async move {
                loop {
                    let seen = match eventloop.poll().await {
                        Ok(rumqttc::v5::Event::Incoming(packet)) => match packet {
                            Packet5::ConnAck(ack) => Seen::ConnAck(ack.code as u8),
                            Packet5::SubAck(ack) => Seen::SubAck(
                                ack.return_codes
                                    .iter()
                                    .map(|c| match c {
                                        SubCode5::Success(_) => Ok(()),
                                        other => Err(format!("{other:?}")),
                                    })
                                    .collect(),
                            ),
                            Packet5::Publish(p) => Seen::Publish(
                                String::from_utf8_lossy(&p.topic).into_owned(),
                                String::from_utf8_lossy(&p.payload).into_owned(),
                            ),
                            _ => continue,
                        },
                        Ok(_) => continue,
                        Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => {
                            Seen::ConnAck(code5(code))
                        }
                        Err(err) => Seen::Closed(err.to_string()),
                    };
                    let end = matches!(seen, Seen::Closed(_) | Seen::ConnAck(1..));
                    if tx.send(seen).is_err() || end {
                        return;
                    }
                }
            });
            return Self {
                v311: None,
                v5: Some(client),
                seen,
                task,
            };
        }
        let mut opts = MqttOptions::new(login.client_id, host, addr.port());
        opts.set_clean_session(login.clean);
        if let Some((user, password)) = login.credentials {
            opts.set_credentials(user, password);
        }
        if let Some((topic, payload)) = login.will {
            opts.set_last_will(LastWill::new(topic, payload, QoS::AtLeastOnce, false));
        }
        let (client, mut eventloop) = AsyncClient::new(opts, 16);
        let task = tokio::spawn(async move {
            loop {
                let seen = match eventloop.poll().await {
                    Ok(Event::Incoming(packet)) => match packet {
                        Packet::ConnAck(ack) => Seen::ConnAck(ack.code as u8),
                        Packet::SubAck(ack) => Seen::SubAck(
                            ack.return_codes
                                .iter()
                                .map(|c| match c {
                                    SubscribeReasonCode::Success(_) => Ok(()),
                                    SubscribeReasonCode::Failure => Err("Failure".into()),
                                })
                                .collect(),
                        ),
                        Packet::Publish(p) => {
                            Seen::Publish(p.topic, String::from_utf8_lossy(&p.payload).into_owned())
                        }
                        Packet::PubAck(ack) => Seen::PubAck(ack.pkid),
                        _ => continue,
                    },
                    Ok(_) => continue,
                    Err(rumqttc::ConnectionError::ConnectionRefused(code)) => {
                        Seen::ConnAck(code as u8)
                    }
                    Err(err) => Seen::Closed(err.to_string()),
                };
                let end = matches!(seen, Seen::Closed(_) | Seen::ConnAck(1..));
                if tx.send(seen).is_err() || end {
                    return;
                }
            }
        });
        Self {
            v311: Some(client),
            v5: None,
            seen,
            task,
        }
    }

    async fn next(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("the broker answered in time")
            .unwrap_or_else(|| Seen::Closed("the client task ended".into()))
    }

    /// The CONNACK's code.
    async fn connack(&mut self) -> u8 {
        match self.next().await {
            Seen::ConnAck(code) => code,
            other => panic!("no CONNACK but {other:?}"),
        }
    }

    /// Subscribes to `filter`; whether it was granted.
    async fn subscribe(&mut self, filter: &str) -> Result<(), String> {
        if let Some(c) = &self.v311 {
            c.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        } else if let Some(c) = &self.v5 {
            c.subscribe(filter, QoS5::AtLeastOnce).await.unwrap();
        }
        loop {
            match self.next().await {
                Seen::SubAck(mut codes) => return codes.remove(0),
                Seen::Closed(why) => panic!("closed while subscribing: {why}"),
                _ => {}
            }
        }
    }

    async fn publish(&self, topic: &str, data: &str) {
        if let Some(c) = &self.v311 {
            c.publish(topic, QoS::AtLeastOnce, false, data.as_bytes().to_vec())
                .await
                .unwrap();
        } else if let Some(c) = &self.v5 {
            c.publish(topic, QoS5::AtLeastOnce, false, data.as_bytes().to_vec())
                .await
                .unwrap();
        }
    }

    /// The next message published to this client: (topic, text).
    async fn message(&mut self) -> (String, String) {
        loop {
            match self.next().await {
                Seen::Publish(topic, text) => return (topic, text),
                Seen::Closed(why) => panic!("closed while waiting for a message: {why}"),
                _ => {}
            }
        }
    }

    /// Drops the TCP connection without a DISCONNECT, as a device that
    /// loses power does: the broker publishes its Will.
    fn vanish(self) {
        self.task.abort();
    }
}

/// The wire value of an MQTT 5 CONNACK code rumqttc decoded.
fn code5(code: Code5) -> u8 {
    match code {
        Code5::Success => 0,
        Code5::BadUserNamePassword => 0x86,
        Code5::NotAuthorized => 0x87,
        Code5::ClientIdentifierNotValid => 0x85,
        other => panic!("an unexpected MQTT 5 CONNACK code {other:?}"),
    }
}

/// 3.1.1 and MQTT 5 CONNACK codes.
const V311_NOT_AUTHORIZED: u8 = Code311::NotAuthorized as u8;
const V5_NOT_AUTHORIZED: u8 = 0x87;

async fn host_with(auth: MqttAuth, extra: Settings) -> TestHost {
    TestHost::start(
        &[],
        Settings {
            mqtt_auth: Some(auth),
            ..extra
        },
    )
    .await
}

/// A webhook on `event` to `endpoint` whose request names the device and
/// the data, and whose answer goes back to the device.
async fn forward(host: &TestHost, endpoint: &Endpoint, event: &str) {
    host.create_webhook(serde_json::json!({
        "event": event, "url": endpoint.url("/in"),
        "json": {"d": "{{PARTICLE_DEVICE_ID}}", "v": "{{PARTICLE_EVENT_VALUE}}"}
    }))
    .await;
}

/// A host in `devices` mode with `settings`, a webhook on `temp` to
/// `endpoint`, and devices `a`, `b` and `c`; their keys.
async fn three_devices(endpoint: &Endpoint, settings: Settings) -> (TestHost, [String; 3]) {
    let host = host_with(MqttAuth::Devices, settings).await;
    forward(&host, endpoint, "temp").await;
    let mut keys = Vec::new();
    for id in ["a", "b", "c"] {
        keys.push(host.register_device(id).await);
    }
    (host, keys.try_into().expect("three keys"))
}

/// (device, data) of a request the endpoint received.
async fn next_request(endpoint: &mut Endpoint) -> (String, String) {
    let seen = endpoint.next().await;
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    (
        body["d"].as_str().unwrap().to_owned(),
        body["v"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_will_the_client_could_not_publish_is_refused_at_connect_in_both_modes() {
    let mut endpoint = Endpoint::start(200, "noted").await;
    let host = host_with(MqttAuth::Devices, Settings::default()).await;
    forward(&host, &endpoint, "temp").await;
    let addr = host.mqtt_addr();
    let key_a = host.register_device("a").await;
    let key_b = host.register_device("b").await;
    let mut b = Client::connect(addr, Login::new("b").key("b", &key_b)).await;
    assert_eq!(b.connack().await, 0);
    b.subscribe("devices/b/#").await.unwrap();

    for v5 in [false, true] {
        let refused = if v5 {
            V5_NOT_AUTHORIZED
        } else {
            V311_NOT_AUTHORIZED
        };
        for topic in [
            "devices/b/commands",
            "devices/b/hook-response/temp/0",
            "devices/b/events/temp",
            "devices/a/hook-error/temp/0",
            "devices/a/anything",
            "elsewhere",
        ] {
            let mut login = Login::new("a").key("a", &key_a).will(topic, "forged");
            if v5 {
                login = login.v5();
            }
            let mut a = Client::connect(addr, login).await;
            assert_eq!(a.connack().await, refused, "a Will on {topic}, v5: {v5}");
        }
    }
    assert_eq!(
        host.metric("edgehook_mqtt_refusals_total{reason=\"login_forbidden\"}")
            .await,
        12,
        "every refused login counted"
    );

    // Nothing reached b: the first thing it hears is the answer to its own
    // event, published after every attempt.
    b.publish("devices/b/events/temp", "21").await;
    assert_eq!(next_request(&mut endpoint).await, ("b".into(), "21".into()));
    let mut heard = Vec::new();
    while heard
        .last()
        .is_none_or(|(topic, _)| topic != "devices/b/hook-response/temp/0")
    {
        heard.push(b.message().await);
    }
    assert!(
        heard.iter().all(|(_, text)| text != "forged"),
        "a forged Will reached b: {heard:?}"
    );
    assert_eq!(heard.last().unwrap().1, "noted");

    // Open mode: no login, yet no Will on a host → device topic either.
    let open = host_with(MqttAuth::Open, Settings::default()).await;
    for (v5, refused) in [(false, V311_NOT_AUTHORIZED), (true, V5_NOT_AUTHORIZED)] {
        for topic in ["devices/b/commands", "devices/b/hook-sent/x"] {
            let mut login = Login::new("anyone").will(topic, "forged");
            if v5 {
                login = login.v5();
            }
            let mut c = Client::connect(open.mqtt_addr(), login).await;
            assert_eq!(c.connack().await, refused, "open mode, a Will on {topic}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_will_on_the_devices_own_events_becomes_an_event() {
    let mut endpoint = Endpoint::start(200, "noted").await;
    for (auth, v5) in [
        (MqttAuth::Devices, false),
        (MqttAuth::Devices, true),
        (MqttAuth::Open, false),
    ] {
        let host = host_with(auth, Settings::default()).await;
        forward(&host, &endpoint, "gone").await;
        let key = host.register_device("a").await;
        let mut login = Login::new("a")
            .key("a", &key)
            .will("devices/a/events/gone", "power lost");
        if auth == MqttAuth::Open {
            login.credentials = None;
        }
        if v5 {
            login = login.v5();
        }
        let mut a = Client::connect(host.mqtt_addr(), login).await;
        assert_eq!(a.connack().await, 0);
        a.vanish();
        assert_eq!(
            next_request(&mut endpoint).await,
            ("a".into(), "power lost".into()),
            "{auth:?}, v5: {v5}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_id_is_the_devices_own_and_no_login_takes_over_another_session() {
    let mut endpoint = Endpoint::start(200, "noted").await;
    let host = host_with(MqttAuth::Devices, Settings::default()).await;
    forward(&host, &endpoint, "temp").await;
    let addr = host.mqtt_addr();
    let key_a = host.register_device("a").await;
    let key_b = host.register_device("b").await;
    let token = host.host.api_token.clone();

    // b is online with a persistent session and a subscription.
    let mut b = Client::connect(addr, Login::new("b").key("b", &key_b).persistent()).await;
    assert_eq!(b.connack().await, 0);
    b.subscribe("devices/b/#").await.unwrap();

    // a, with its own key, under b's client id or any other: refused, with
    // a clean session or not, in either protocol; b stays connected.
    for client_id in ["b", "agent-b", "agent-a", ""] {
        for persistent in [false, true] {
            for (v5, refused) in [(false, V311_NOT_AUTHORIZED), (true, V5_NOT_AUTHORIZED)] {
                let mut login = Login::new(client_id).key("a", &key_a);
                if persistent && !client_id.is_empty() {
                    login = login.persistent();
                }
                if v5 {
                    login = login.v5();
                }
                let mut a = Client::connect(addr, login).await;
                assert_eq!(
                    a.connack().await,
                    refused,
                    "device a as client {client_id:?}, persistent {persistent}, v5 {v5}"
                );
            }
        }
    }
    // The operator may not use a device's id either.
    let mut ops = Client::connect(addr, Login::new("b").key("edgehook", &token)).await;
    assert_eq!(ops.connack().await, V311_NOT_AUTHORIZED);

    // b never noticed: its session is the one that answers.
    b.publish("devices/b/events/temp", "21").await;
    assert_eq!(next_request(&mut endpoint).await, ("b".into(), "21".into()));
    loop {
        match b.next().await {
            Seen::Publish(topic, _) if topic == "devices/b/hook-response/temp/0" => break,
            Seen::Publish(..) | Seen::PubAck(_) => {}
            other => panic!("b was disturbed: {other:?}"),
        }
    }

    // A flapping pair: a device logging in twice takes its own session
    // over, as MQTT says.
    let mut a1 = Client::connect(addr, Login::new("a").key("a", &key_a)).await;
    assert_eq!(a1.connack().await, 0);
    let mut a2 = Client::connect(addr, Login::new("a").key("a", &key_a)).await;
    assert_eq!(a2.connack().await, 0);
    assert!(matches!(a1.next().await, Seen::Closed(_)));

    // An operator session under an id that a device registered later
    // gets: the device's login does not inherit it (nor its `#`).
    let mut ops = Client::connect(
        addr,
        Login::new("late").key("edgehook", &token).persistent(),
    )
    .await;
    assert_eq!(ops.connack().await, 0);
    ops.subscribe("#").await.unwrap();
    ops.vanish();
    let key_late = host.register_device("late").await;
    let mut late =
        Client::connect(addr, Login::new("late").key("late", &key_late).persistent()).await;
    assert_eq!(late.connack().await, V311_NOT_AUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_holds_at_most_its_share_of_subscriptions() {
    let host = host_with(
        MqttAuth::Devices,
        Settings {
            device_max_subscriptions: Some(3),
            ..Settings::default()
        },
    )
    .await;
    let key = host.register_device("a").await;
    let token = host.host.api_token.clone();
    for v5 in [false, true] {
        let mut login = Login::new("a").key("a", &key);
        if v5 {
            login = login.v5();
        }
        let mut a = Client::connect(host.mqtt_addr(), login).await;
        assert_eq!(a.connack().await, 0);
        for filter in ["devices/a/x", "devices/a/y", "devices/a/z"] {
            a.subscribe(filter).await.unwrap();
        }
        assert_eq!(a.subscribe("devices/a/x").await, Ok(()), "the same again");
        let refused = a.subscribe("devices/a/w").await.unwrap_err();
        if v5 {
            assert_eq!(refused, "QuotaExceeded");
        }
    }
    // The operator is not a device.
    let mut ops =
        Client::connect(host.mqtt_addr(), Login::new("ops").key("edgehook", &token)).await;
    assert_eq!(ops.connack().await, 0);
    for i in 0..5 {
        ops.subscribe(&format!("devices/{i}/#")).await.unwrap();
    }
}

/// An MQTT 5 client on a plain socket, for the reason codes a client
/// library hides: CONNECT, PUBLISH at QoS 1, and each PUBACK's reason.
struct RawV5 {
    stream: TcpStream,
    read: BytesMut,
}

fn put_str(buf: &mut BytesMut, s: &str) {
    buf.put_u16(s.len() as u16);
    buf.put_slice(s.as_bytes());
}

fn packet(kind: u8, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_u8(kind);
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        out.put_u8(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    out.put_slice(body);
    out
}

impl RawV5 {
    async fn connect(addr: SocketAddr, device: &str, key: &str) -> Self {
        let mut body = BytesMut::new();
        put_str(&mut body, "MQTT");
        body.put_u8(5);
        body.put_u8(0x80 | 0x40 | 0x02);
        body.put_u16(60);
        body.put_u8(0);
        put_str(&mut body, device);
        put_str(&mut body, device);
        put_str(&mut body, key);
        let mut raw = Self {
            stream: TcpStream::connect(addr).await.unwrap(),
            read: BytesMut::new(),
        };
        raw.stream.write_all(&packet(0x10, &body)).await.unwrap();
        let (kind, connack) = raw.next().await;
        assert_eq!((kind, connack[1]), (0x20, 0), "CONNACK accepted");
        raw
    }

    async fn publish(&mut self, topic: &str, data: &str, pkid: u16) {
        let mut body = BytesMut::new();
        put_str(&mut body, topic);
        body.put_u16(pkid);
        body.put_u8(0);
        body.put_slice(data.as_bytes());
        self.stream.write_all(&packet(0x32, &body)).await.unwrap();
    }

    /// The next PUBACK: (packet id, reason code).
    async fn puback(&mut self) -> (u16, u8) {
        loop {
            let (kind, mut body) = self.next().await;
            if kind == 0x40 {
                let pkid = body.get_u16();
                return (pkid, body.first().copied().unwrap_or(0));
            }
        }
    }

    /// The next packet: (first byte, body).
    async fn next(&mut self) -> (u8, BytesMut) {
        let wait = async {
            loop {
                if let Some(packet) = self.parse() {
                    return packet;
                }
                let n = self.stream.read_buf(&mut self.read).await.unwrap();
                assert!(n > 0, "the broker closed the connection");
            }
        };
        tokio::time::timeout(WAIT, wait)
            .await
            .expect("a packet in time")
    }

    fn parse(&mut self) -> Option<(u8, BytesMut)> {
        let mut len = 0usize;
        for i in 1..5 {
            let byte = *self.read.get(i)?;
            len |= usize::from(byte & 0x7f) << (7 * (i - 1));
            if byte & 0x80 == 0 {
                if self.read.len() < 1 + i + len {
                    return None;
                }
                let kind = self.read[0];
                self.read.advance(1 + i);
                return Some((kind, self.read.split_to(len)));
            }
        }
        panic!("a malformed remaining length");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_over_its_publish_rate_is_refused_while_others_go_on() {
    let mut endpoint = Endpoint::start(200, "noted").await;
    let settings = Settings {
        device_publish_rate: Some("1/min burst 3".into()),
        ..Settings::default()
    };
    let (host, [key_a, key_b, key_c]) = three_devices(&endpoint, settings).await;

    // MQTT 5: three taken, the rest refused with quota exceeded.
    let mut a = RawV5::connect(host.mqtt_addr(), "a", &key_a).await;
    for pkid in 1..=6 {
        a.publish("devices/a/events/temp", &pkid.to_string(), pkid)
            .await;
    }
    let mut reasons = Vec::new();
    for _ in 1..=6 {
        reasons.push(a.puback().await);
    }
    reasons.sort();
    assert_eq!(
        reasons,
        [(1, 0), (2, 0), (3, 0), (4, 0x97), (5, 0x97), (6, 0x97)]
    );

    // MQTT 3.1.1: every publish acknowledged, three taken.
    let mut b = Client::connect(host.mqtt_addr(), Login::new("b").key("b", &key_b)).await;
    assert_eq!(b.connack().await, 0);
    for i in 1..=6 {
        b.publish("devices/b/events/temp", &i.to_string()).await;
    }
    let mut acked = 0;
    while acked < 6 {
        match b.next().await {
            Seen::PubAck(_) => acked += 1,
            Seen::Closed(why) => panic!("b was disconnected: {why}"),
            _ => {}
        }
    }
    // Another device is not held back by them.
    let mut c = Client::connect(host.mqtt_addr(), Login::new("c").key("c", &key_c)).await;
    assert_eq!(c.connack().await, 0);
    c.publish("devices/c/events/temp", "marker").await;

    let mut taken = Vec::new();
    while taken.len() < 7 {
        taken.push(next_request(&mut endpoint).await);
    }
    taken.sort();
    let from = |d: &str| -> Vec<String> {
        taken
            .iter()
            .filter(|(device, _)| device == d)
            .map(|(_, v)| v.clone())
            .collect()
    };
    assert_eq!(from("a"), ["1", "2", "3"]);
    assert_eq!(from("b"), ["1", "2", "3"]);
    assert_eq!(from("c"), ["marker"]);
    // Every publish was decided before its PUBACK: nothing more was taken.
    assert_eq!(host.metric("edgehook_events_total").await, 7);
    // Each refusal counted, under its reason.
    assert_eq!(
        host.metric("edgehook_mqtt_refusals_total{reason=\"publish_rate\"}")
            .await,
        6
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_client_chose_reaches_the_log_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let (host, mut log) = HostProcess::start_logged(
        dir.path(),
        &["--mqtt-listen", "127.0.0.1:0", "--mqtt-auth", "devices"],
    )
    .await;
    let addr = host.mqtt_addr.expect("the embedded broker");
    let forged = "x\nWARN edgehook: all is well\u{1b}[2J";
    for (client_id, user) in [(forged, forged), ("marker", "marker")] {
        let mut c = Client::connect(addr, Login::new(client_id).key(user, "no key")).await;
        assert_eq!(c.connack().await, Code311::BadUserNamePassword as u8);
    }
    let mut lines = Vec::new();
    while !lines
        .last()
        .is_some_and(|l: &String| l.contains("client marker"))
    {
        let line = tokio::time::timeout(WAIT, log.recv())
            .await
            .expect("the refusals are logged")
            .expect("the host runs");
        lines.push(line);
    }
    let refused: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("login refused"))
        .collect();
    assert_eq!(refused.len(), 2, "{lines:#?}");
    assert!(
        refused[0].contains(r"client x\nWARN edgehook: all is well\u{1b}[2J"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.starts_with("WARN edgehook") && !l.contains('\u{1b}')),
        "a forged log line: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_over_its_share_of_the_queue_is_refused_while_others_go_on() {
    let mut endpoint = Endpoint::start(200, "noted").await;
    // Each request is answered after a while: its event stays queued.
    endpoint.answer(200, "noted", Duration::from_secs(5));
    let settings = Settings {
        device_max_queued: Some(2),
        ..Settings::default()
    };
    let (host, [key_a, key_b, key_c]) = three_devices(&endpoint, settings).await;

    // MQTT 5: two stored, the third refused with quota exceeded.
    let mut a = RawV5::connect(host.mqtt_addr(), "a", &key_a).await;
    for pkid in 1..=3 {
        a.publish("devices/a/events/temp", &pkid.to_string(), pkid)
            .await;
        let expected = if pkid < 3 { 0 } else { 0x97 };
        assert_eq!(a.puback().await, (pkid, expected));
    }
    // MQTT 3.1.1: the third is not acknowledged; the connection closes so
    // that the device sends it again.
    let mut c = Client::connect(host.mqtt_addr(), Login::new("c").key("c", &key_c)).await;
    assert_eq!(c.connack().await, 0);
    for i in 1..=3 {
        c.publish("devices/c/events/temp", &i.to_string()).await;
    }
    // (The PUBACKs before the close may be lost with the connection.)
    while !matches!(c.next().await, Seen::Closed(_)) {}

    // Another device's event goes through meanwhile.
    let mut b = Client::connect(host.mqtt_addr(), Login::new("b").key("b", &key_b)).await;
    assert_eq!(b.connack().await, 0);
    b.publish("devices/b/events/temp", "marker").await;
    let mut taken = Vec::new();
    while !taken.contains(&("b".to_owned(), "marker".to_owned())) {
        taken.push(next_request(&mut endpoint).await);
    }
    // Two of a's, two of c's and b's were taken, nothing else.
    assert_eq!(host.metric("edgehook_events_total").await, 5);
    assert_eq!(
        host.metric("edgehook_mqtt_refusals_total{reason=\"publish_share\"}")
            .await,
        2
    );

    // Once its events are delivered, the device has its share back.
    let deadline = tokio::time::Instant::now() + 2 * WAIT;
    while host.metric("edgehook_queue_depth").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queue never drained"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.publish("devices/a/events/temp", "4", 4).await;
    assert_eq!(a.puback().await, (4, 0));
}
