//! One connection to the broker: the socket (TCP or TLS), the packets read
//! from it, and the packets written to it, gathered and written once per
//! turn of the event loop rather than once per packet. The packets are
//! version-neutral ([`Out`], [`In`]); [`super::v311`] and [`super::v5`]
//! turn them into bytes with rumqttc's codecs.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::client::Connect;
use super::session::Unacked;
use crate::config::MqttVersion;

/// The longest a connection (TCP, TLS and the CONNACK) or one write may
/// take before the connection is given up.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(5);

/// A packet the host sends.
#[derive(Debug)]
pub enum Out<'a> {
    /// A QoS 1 message, not retained, as the session keeps it until the
    /// broker acknowledges it.
    Publish {
        /// The message and its packet id.
        message: &'a Unacked,
        /// A resend after a reconnection.
        dup: bool,
    },
    /// The acknowledgement of a received QoS 1 message.
    PubAck(u16),
    /// A QoS 1 subscription.
    Subscribe {
        /// Its packet id.
        pkid: u16,
        /// The topic filter.
        filter: &'a str,
    },
    /// The keep-alive.
    PingReq,
    /// A clean goodbye.
    Disconnect,
}

/// A packet the broker sent.
#[derive(Debug)]
pub enum In {
    /// The answer to the CONNECT.
    ConnAck(ConnAck),
    /// A message on a subscribed topic.
    Publish {
        /// Its topic.
        topic: String,
        /// Its payload.
        payload: Bytes,
        /// Its packet id for QoS 1; `None` for QoS 0.
        pkid: Option<u16>,
        /// Whether the broker sends it again.
        dup: bool,
    },
    /// The broker has one of the host's publishes.
    PubAck {
        /// The PUBLISH's packet id.
        pkid: u16,
        /// Why the broker did not take it, when it said so (MQTT 5).
        refused: Option<String>,
    },
    /// The broker answered a subscription: whether it granted it.
    SubAck {
        /// The SUBSCRIBE's packet id.
        pkid: u16,
        /// `false` when the broker refused the filter.
        granted: bool,
    },
    /// The answer to a PINGREQ.
    PingResp,
    /// A packet the host does not expect from a broker at QoS 1 (a
    /// PUBREL, a DISCONNECT): the connection is dropped.
    Unexpected(String),
}

/// What the broker said to the CONNECT.
#[derive(Debug)]
pub struct ConnAck {
    /// Whether it kept the host's session.
    pub session_present: bool,
    /// Why it refused the connection, when it did.
    pub refused: Option<String>,
    /// How many QoS 1 publishes it takes before acknowledging (MQTT 5).
    pub receive_maximum: Option<u16>,
}

/// A byte stream to the broker.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// An open connection, with its buffers.
pub struct Wire {
    stream: Box<dyn Stream>,
    version: MqttVersion,
    /// Bytes read and not yet a whole packet.
    read: BytesMut,
    /// Packets gathered for the next write.
    write: BytesMut,
    /// The largest packet taken from the broker.
    max_packet: usize,
}

impl Wire {
    /// Connects to `c` (TCP, then TLS when asked) and sends the CONNECT;
    /// returns with the broker's CONNACK.
    pub async fn open(c: &Connect, version: MqttVersion) -> Result<(Self, ConnAck), String> {
        let tcp = TcpStream::connect((c.host.as_str(), c.port))
            .await
            .map_err(|e| format!("cannot connect to {}:{}: {e}", c.host, c.port))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let stream: Box<dyn Stream> = match &c.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(c.host.clone())
                    .map_err(|e| format!("{}: {e}", c.host))?;
                let tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS with {}: {e}", c.host))?;
                Box::new(tls)
            }
        };
        let mut wire = Self {
            stream,
            version,
            read: BytesMut::with_capacity(8 << 10),
            write: BytesMut::with_capacity(8 << 10),
            max_packet: c.max_packet_bytes,
        };
        match version {
            MqttVersion::V5 => super::v5::connect(c, &mut wire.write)?,
            MqttVersion::V311 => super::v311::connect(c, &mut wire.write)?,
        }
        wire.flush().await?;
        loop {
            if let Some(packet) = wire.take()? {
                return match packet {
                    In::ConnAck(connack) => Ok((wire, connack)),
                    other => Err(format!("the broker answered the CONNECT with {other:?}")),
                };
            }
            wire.fill().await?;
        }
    }

    /// Adds `packet` to the next write.
    pub fn push(&mut self, packet: &Out<'_>) -> Result<(), String> {
        encode(self.version, packet, &mut self.write)
    }

    /// Writes every packet gathered, in one write where the socket takes
    /// it; nothing when none was.
    pub async fn flush(&mut self) -> Result<(), String> {
        if self.write.is_empty() {
            return Ok(());
        }
        let written = async {
            self.stream.write_all(&self.write).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(NETWORK_TIMEOUT, written).await {
            Ok(Ok(())) => {
                self.write.clear();
                Ok(())
            }
            Ok(Err(err)) => Err(format!("cannot write to the broker: {err}")),
            Err(_) => Err(format!(
                "the broker took no data for {} s",
                NETWORK_TIMEOUT.as_secs()
            )),
        }
    }

    /// Reads what the socket has (waiting for at least one byte).
    pub async fn fill(&mut self) -> Result<(), String> {
        self.read.reserve(8 << 10);
        match self.stream.read_buf(&mut self.read).await {
            Ok(0) => Err("the broker closed the connection".to_owned()),
            Ok(_) => Ok(()),
            Err(err) => Err(format!("cannot read from the broker: {err}")),
        }
    }

    /// The next whole packet read, if there is one.
    pub fn take(&mut self) -> Result<Option<In>, String> {
        decode(self.version, &mut self.read, self.max_packet)
    }
}

/// What a codec's write came to, with the error said.
pub fn written<E: std::fmt::Display>(result: Result<usize, E>) -> Result<(), String> {
    result
        .map(drop)
        .map_err(|e| format!("cannot write an MQTT packet: {e}"))
}

/// Adds `packet` to `buf` as `version` writes it.
fn encode(version: MqttVersion, packet: &Out<'_>, buf: &mut BytesMut) -> Result<(), String> {
    match version {
        MqttVersion::V5 => super::v5::encode(packet, buf),
        MqttVersion::V311 => super::v311::encode(packet, buf),
    }
}

/// The next whole packet of `version` in `buf` (of at most `max_packet`
/// bytes), if there is one.
fn decode(
    version: MqttVersion,
    buf: &mut BytesMut,
    max_packet: usize,
) -> Result<Option<In>, String> {
    match version {
        MqttVersion::V5 => super::v5::decode(buf, max_packet),
        MqttVersion::V311 => super::v311::decode(buf, max_packet),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_read_back_whole_in_either_version_and_half_a_packet_waits() {
        for version in [MqttVersion::V311, MqttVersion::V5] {
            let payload = Bytes::from_static(b"21.5");
            let message = Unacked {
                pkid: 7,
                topic: "devices/d/hook-sent/e".to_owned(),
                payload: payload.clone(),
            };
            let publish = Out::Publish {
                message: &message,
                dup: true,
            };
            let mut buf = BytesMut::new();
            encode(version, &publish, &mut buf).unwrap();
            encode(version, &Out::PubAck(9), &mut buf).unwrap();
            let mut read = buf.split_to(5);
            assert!(
                decode(version, &mut read, 1 << 10).unwrap().is_none(),
                "{version:?}: not whole yet"
            );
            read.unsplit(buf);
            let Some(In::Publish {
                topic,
                payload: got,
                pkid,
                dup,
            }) = decode(version, &mut read, 1 << 10).unwrap()
            else {
                panic!("{version:?}: not a publish");
            };
            assert_eq!(
                (topic.as_str(), got, pkid, dup),
                ("devices/d/hook-sent/e", payload.clone(), Some(7), true),
                "{version:?}"
            );
            assert!(
                matches!(
                    decode(version, &mut read, 1 << 10).unwrap(),
                    Some(In::PubAck { pkid: 9, .. })
                ),
                "{version:?}: the second packet of one read"
            );
            let mut big = BytesMut::new();
            encode(version, &publish, &mut big).unwrap();
            assert!(
                decode(version, &mut big, 8).is_err(),
                "{version:?}: larger than allowed"
            );
        }
    }

    #[test]
    fn a_refused_connection_says_why_in_either_version() {
        for (version, bytes) in [
            (MqttVersion::V311, &[0x20, 0x02, 0x00, 0x05][..]),
            (MqttVersion::V5, &[0x20, 0x03, 0x00, 0x87, 0x00][..]),
        ] {
            let Some(In::ConnAck(connack)) =
                decode(version, &mut BytesMut::from(bytes), 1 << 10).unwrap()
            else {
                panic!("{version:?}: not a CONNACK");
            };
            assert_eq!(
                connack.refused.as_deref(),
                Some("NotAuthorized"),
                "{version:?}"
            );
        }
    }
}
