//! The embedded broker's TLS listener (`--mqtt-tls-listen`, with
//! `--mqtt-tls-cert` and `--mqtt-tls-key`), so that device keys need not
//! cross a network in clear.
//!
//! rmqtt's own TLS listener needs the aws-lc crypto provider beside the ring
//! provider the rest of the host uses; instead this terminates TLS with
//! rustls (ring) and joins each connection to the broker's plain listener
//! on loopback, byte for byte. The broker then sees every TLS client as a
//! loopback peer: logins and topic rules are the same, the remote address
//! in its log lines is not.
//!
//! A device that names the listener by IP address sends that address as
//! SNI, which RFC 6066 does not allow: rustls ignores it and the handshake
//! goes on. rustls's warning about it, one per connection, is logged at
//! debug level (see [`crate::logging`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::IngressError;

/// TLS handshakes in progress at once; further connections wait in the
/// kernel's backlog. Bounds what half-open clients can make the host hold.
const MAX_HANDSHAKES: usize = 256;

/// Time a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running TLS listener.
#[derive(Debug)]
pub struct TlsFront {
    addr: SocketAddr,
    task: JoinHandle<()>,
    /// What each new handshake presents; a reload swaps it.
    config: Arc<ArcSwap<rustls::ServerConfig>>,
}

impl TlsFront {
    /// Listens on `listen` and joins each TLS connection to `broker`.
    pub async fn start(
        listen: SocketAddr,
        config: rustls::ServerConfig,
        broker: SocketAddr,
    ) -> Result<Self, IngressError> {
        let listen_error = |e: std::io::Error| IngressError::Listen {
            addr: listen,
            reason: e.to_string(),
        };
        let listener = TcpListener::bind(listen).await.map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
        let config = Arc::new(ArcSwap::from_pointee(config));
        let presented = config.clone();
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let task = tokio::spawn(async move {
            loop {
                let permit = handshakes
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let (socket, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!("MQTT TLS listener: {err}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = TlsAcceptor::from(presented.load_full());
                tokio::spawn(async move {
                    let tls =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await;
                    drop(permit);
                    let mut tls = match tls {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(err)) => {
                            tracing::info!(%peer, "MQTT TLS handshake failed: {err}");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "MQTT TLS handshake timed out");
                            return;
                        }
                    };
                    let mut plain = match TcpStream::connect(broker).await {
                        Ok(plain) => plain,
                        Err(err) => {
                            tracing::error!(%peer, "cannot reach the embedded broker at {broker}: {err}");
                            return;
                        }
                    };
                    let _ = plain.set_nodelay(true);
                    let _ = tls.get_ref().0.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Ok(Self { addr, task, config })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Presents `config` (a renewed certificate) from the next handshake
    /// on; connections already made keep theirs.
    pub fn set_config(&self, config: rustls::ServerConfig) {
        self.config.store(Arc::new(config));
    }

    /// Stops taking connections.
    pub fn shutdown(&self) {
        self.task.abort();
    }
}
