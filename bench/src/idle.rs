//! Idle devices: N MQTT connections that log in and then only keep alive,
//! the way most of a large fleet sits on a host between events. Each is a
//! bare TCP socket speaking the three MQTT 3.1.1 packets it needs (CONNECT,
//! PINGREQ, and reading CONNACK and PINGRESP), so that the tool holds tens of
//! thousands of them cheaply. On loopback they are spread over source
//! addresses 127.0.0.2, 127.0.0.3, … so that the ephemeral ports of one
//! address do not run out. A device whose connection ends comes back as a
//! real one does after its broker restarted: after a random delay of up to
//! [`RECONNECT_SPREAD`], then trying again every [`RETRY`] until the host
//! takes it; [`Idle::all_back`] says when every one of them did.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt, stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

/// The keep-alive the idle devices announce; they ping at 90 % of it.
pub const KEEP_ALIVE: Duration = Duration::from_secs(60);

/// Connections opened at once.
const CONCURRENT_CONNECTS: usize = 256;

/// Connections per loopback source address (well under the ephemeral
/// port range of one).
const PER_SOURCE: usize = 20_000;

/// A device that lost its connection waits a random time up to this long
/// before it connects again, as real devices spread their reconnects...
const RECONNECT_SPREAD: Duration = Duration::from_secs(1);

/// ... and then tries again this often while the host refuses it.
const RETRY: Duration = Duration::from_secs(1);

/// The idle devices, connected; dropped, they disconnect. They run on a
/// runtime of their own: thousands of them connecting at once must not
/// delay the tasks that time the active devices.
pub struct Idle {
    runtime: Option<tokio::runtime::Runtime>,
    /// How long connecting all of them took.
    pub connect_time: Duration,
    count: usize,
    /// How many connected again after losing their connection.
    back: watch::Receiver<usize>,
}

impl Idle {
    /// Connects `count` idle devices (`idle-000000`, …) to `broker`.
    pub async fn connect(broker: SocketAddr, count: usize) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("idle-devices")
            .enable_all()
            .build()
            .context("a runtime for the idle devices")?;
        let (returns, back) = watch::channel(0);
        let returns = Arc::new(returns);
        let connect_time = runtime
            .spawn(async move {
                let start = Instant::now();
                let streams: Vec<TcpStream> = stream::iter(0..count)
                    .map(|i| connect_one(broker, i))
                    .buffer_unordered(CONCURRENT_CONNECTS)
                    .try_collect()
                    .await?;
                let connect_time = start.elapsed();
                for (i, stream) in streams.into_iter().enumerate() {
                    tokio::spawn(keep(broker, i, stream, Arc::clone(&returns)));
                }
                anyhow::Ok(connect_time)
            })
            .await
            .context("connecting the idle devices")??;
        Ok(Self {
            runtime: Some(runtime),
            connect_time,
            count,
            back,
        })
    }

    /// Waits until every device connected again once after losing its
    /// connection: how long that took from now, or `None` when not all of
    /// them were back within `limit`.
    pub async fn all_back(&self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        let mut back = self.back.clone();
        tokio::time::timeout(limit, back.wait_for(|n| *n >= self.count))
            .await
            .ok()?
            .ok()?;
        Some(start.elapsed())
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Idle device `i` on `stream`: keeps alive, and connects again whenever
/// its connection ends, counting each return in `back`.
async fn keep(
    broker: SocketAddr,
    i: usize,
    mut stream: TcpStream,
    back: Arc<watch::Sender<usize>>,
) {
    loop {
        keep_alive(stream).await;
        let spread = RandomState::new().hash_one(i) % RECONNECT_SPREAD.as_millis() as u64;
        tokio::time::sleep(Duration::from_millis(spread)).await;
        stream = loop {
            match connect_one(broker, i).await {
                Ok(stream) => break stream,
                Err(_) => tokio::time::sleep(RETRY).await,
            }
        };
        back.send_modify(|n| *n += 1);
    }
}

/// Pings at 90 % of the keep-alive until the connection ends, and closes
/// its socket.
async fn keep_alive(mut stream: TcpStream) {
    let mut read = [0u8; 16];
    loop {
        tokio::select! {
            got = stream.read(&mut read) => if matches!(got, Ok(0) | Err(_)) {
                return;
            },
            () = tokio::time::sleep(KEEP_ALIVE * 9 / 10) => {
                if stream.write_all(&[0xC0, 0x00]).await.is_err() {
                    return;
                }
            }
        }
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
