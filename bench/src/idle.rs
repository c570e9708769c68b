//! Idle devices: N MQTT connections that log in and then only keep alive,
//! the way most of a large fleet sits on a host between events. Each is a
//! bare TCP socket speaking the three MQTT 3.1.1 packets it needs (CONNECT,
//! PINGREQ, and reading CONNACK and PINGRESP), so that the tool holds tens of
//! thousands of them cheaply. On loopback they are spread over source
//! addresses 127.0.0.2, 127.0.0.3, … so that the ephemeral ports of one
//! address do not run out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt, stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

/// The keep-alive the idle devices announce; they ping at 90 % of it.
pub const KEEP_ALIVE: Duration = Duration::from_secs(60);

/// Connections opened at once.
const CONCURRENT_CONNECTS: usize = 256;

/// Connections per loopback source address (well under the ephemeral
/// port range of one).
const PER_SOURCE: usize = 20_000;

/// The idle devices, connected; dropped, they disconnect.
pub struct Idle {
    _keep_alive: JoinSet<()>,
    /// How long connecting all of them took.
    pub connect_time: Duration,
}

impl Idle {
    /// Connects `count` idle devices (`idle-000000`, …) to `broker`.
    pub async fn connect(broker: SocketAddr, count: usize) -> anyhow::Result<Self> {
        let start = Instant::now();
        let streams: Vec<TcpStream> = stream::iter(0..count)
            .map(|i| connect_one(broker, i))
            .buffer_unordered(CONCURRENT_CONNECTS)
            .try_collect()
            .await?;
        let connect_time = start.elapsed();
        let mut keep_alive = JoinSet::new();
        for stream in streams {
            keep_alive.spawn(ping(stream));
        }
        Ok(Self {
            _keep_alive: keep_alive,
            connect_time,
        })
    }
}

/// Idle device `i`: connected and logged in.
async fn connect_one(broker: SocketAddr, i: usize) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4().context("a socket for an idle device")?;
    if broker.ip().is_loopback() {
        let source = Ipv4Addr::new(127, 0, 0, 2 + u8::try_from(i / PER_SOURCE)?);
        socket
            .bind(SocketAddr::new(IpAddr::V4(source), 0))
            .with_context(|| format!("binding idle device {i} to {source}"))?;
    }
    let mut stream = socket.connect(broker).await.with_context(|| {
        format!("idle device {i} connecting to {broker} (is `ulimit -n` high enough?)")
    })?;
    stream.set_nodelay(true)?;
    stream
        .write_all(&connect_packet(&format!("idle-{i:06}")))
        .await?;
    let mut connack = [0u8; 4];
    stream
        .read_exact(&mut connack)
        .await
        .with_context(|| format!("idle device {i}: no CONNACK"))?;
    if connack[..2] != [0x20, 0x02] || connack[3] != 0 {
        bail!("idle device {i}: the broker refused it (CONNACK {connack:02x?})");
    }
    Ok(stream)
}

/// Pings at 90 % of the keep-alive until the connection ends.
async fn ping(mut stream: TcpStream) {
    let mut pong = [0u8; 2];
    loop {
        tokio::time::sleep(KEEP_ALIVE * 9 / 10).await;
        if stream.write_all(&[0xC0, 0x00]).await.is_err()
            || stream.read_exact(&mut pong).await.is_err()
        {
            return;
        }
    }
}

/// An MQTT 3.1.1 CONNECT with a clean session and [`KEEP_ALIVE`].
fn connect_packet(client_id: &str) -> Vec<u8> {
    let id = client_id.as_bytes();
    let id_len = u16::try_from(id.len()).expect("a short client id");
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02];
    body.extend_from_slice(&(KEEP_ALIVE.as_secs() as u16).to_be_bytes());
    body.extend_from_slice(&id_len.to_be_bytes());
    body.extend_from_slice(id);
    let remaining = u8::try_from(body.len()).expect("under 128 bytes: one length byte");
    let mut packet = vec![0x10, remaining];
    packet.extend_from_slice(&body);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_packet_is_mqtt_3_1_1() {
        assert_eq!(
            connect_packet("idle-000001"),
            [
                &[0x10, 23, 0, 4][..],
                b"MQTT",
                &[4, 0x02, 0, 60, 0, 11],
                b"idle-000001"
            ]
            .concat()
        );
    }
}
