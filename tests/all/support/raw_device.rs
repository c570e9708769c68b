//! A device on a plain TCP socket that writes its MQTT 3.1.1 packets by
//! hand (with rumqttc's encoders), so that a test sets what a client
//! library decides for itself: the packet id, the DUP flag, and leaving
//! before the PUBACK is read.

use std::net::SocketAddr;

use bytes::BytesMut;
use rumqttc::{Connect, ConnectReturnCode, Packet, Publish, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;

/// Largest packet read.
const MAX_PACKET: usize = 1 << 20;

/// One connection of a device with a persistent session.
pub struct RawDevice {
    id: String,
    stream: TcpStream,
    read: BytesMut,
}

impl RawDevice {
    /// Connects to `addr` as device `id` with `clean session = 0` (the
    /// session, and its packet ids, live on) and waits for the CONNACK.
    pub async fn connect(addr: SocketAddr, id: &str) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut device = Self {
            id: id.to_owned(),
            stream,
            read: BytesMut::new(),
        };
        let mut connect = Connect::new(format!("{id}-{}", std::process::id()));
        connect.keep_alive = 30;
        connect.clean_session = false;
        device.write(Packet::Connect(connect)).await;
        match device.next().await {
            Some(Packet::ConnAck(ack)) => assert_eq!(ack.code, ConnectReturnCode::Success),
            other => panic!("no CONNACK but {other:?}"),
        }
        device
    }

    /// Publishes `data` on `devices/{id}/events/{name}` at QoS 1 with
    /// packet id `pkid` and the DUP flag `dup`, without waiting.
    pub async fn publish(&mut self, name: &str, data: &str, pkid: u16, dup: bool) {
        let topic = format!("devices/{}/events/{name}", self.id);
        let mut publish = Publish::new(topic, QoS::AtLeastOnce, data);
        publish.pkid = pkid;
        publish.dup = dup;
        self.write(Packet::Publish(publish)).await;
    }

    /// Waits for the PUBACK of `pkid`, skipping other packets; panics when
    /// none comes within [`WAIT`] or the connection closes first.
    pub async fn puback(&mut self, pkid: u16) {
        let wait = async {
            loop {
                match self.next().await {
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
        let mut acks = Vec::new();
        let wait = async {
            while let Some(packet) = self.next().await {
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

    async fn write(&mut self, packet: Packet) {
        let mut buf = BytesMut::new();
        packet.write(&mut buf, MAX_PACKET).unwrap();
        self.stream.write_all(&buf).await.unwrap();
    }

    /// The next packet from the broker; `None` once the connection is
    /// closed.
    async fn next(&mut self) -> Option<Packet> {
        loop {
            match Packet::read(&mut self.read, MAX_PACKET) {
                Ok(packet) => return Some(packet),
                Err(rumqttc::Error::InsufficientBytes(_)) => {}
                Err(err) => panic!("a malformed packet from the broker: {err:?}"),
            }
            match self.stream.read_buf(&mut self.read).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}
