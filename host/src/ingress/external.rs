//! An external MQTT broker, through a rumqttc MQTT 5 client.
//!
//! The client keeps a persistent session (stable client id, no clean start,
//! a session expiry) and acknowledges each event by hand when its [`Ack`]
//! fires, so the broker redelivers what the host had not taken when it
//! stopped. With a share group it subscribes through `$share/{group}/…`, so
//! several hosts split the events of a clustered broker.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, Publish};
use rumqttc::v5::{AsyncClient, Event as MqttEvent, EventLoop, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Ack, Inbound, IngressError};
use crate::event::Event;
use crate::topic::{EVENTS_FILTER, parse_event_topic};

/// Events the broker may send before the host acknowledges them. The
/// client's request channel holds more than this, and the pipeline's
/// inbound channel at least this, so that neither the event loop (handing
/// events to the pipeline) nor the pipeline (handing acknowledgements to
/// the event loop) can wait on the other.
pub const RECEIVE_MAXIMUM: u16 = 1000;

/// How long start-up waits for the broker's first CONNACK.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the broker keeps the session (and its QoS 1 messages) while the
/// host is away: a day.
const SESSION_EXPIRY_SECS: u32 = 24 * 60 * 60;

/// What the external client needs.
#[derive(Debug, Clone)]
pub struct ExternalOptions {
    /// `mqtt://[user:pass@]host[:port]` or `mqtts://…`.
    pub url: String,
    /// Stable client id, so the persistent session survives restarts.
    pub client_id: String,
    /// Largest event payload taken.
    pub max_event_bytes: usize,
    /// Subscribe through `$share/{group}/…` when set.
    pub share_group: Option<String>,
    /// Extra CA certificate (PEM) for `mqtts://`, beside the webpki roots.
    pub ca_file: Option<PathBuf>,
}

/// A connected client.
#[derive(Debug, Clone)]
pub struct Handle {
    client: AsyncClient,
    task: Arc<JoinHandle<()>>,
    /// Whether the broker connection is up, for `/healthz`.
    connected: Arc<AtomicBool>,
}

/// The acknowledgement owed for one event.
#[derive(Debug)]
pub struct PendingAck {
    client: AsyncClient,
    publish: Publish,
}

impl PendingAck {
    /// Sends the PUBACK.
    pub async fn ack(self) {
        if let Err(err) = self.client.ack(&self.publish).await {
            tracing::warn!("cannot acknowledge an event to the broker: {err}");
        }
    }
}

/// Connects, subscribes, and returns once the broker has accepted the
/// connection.
pub async fn start(
    opts: ExternalOptions,
    inbound: mpsc::Sender<Inbound>,
) -> Result<Handle, IngressError> {
    let options = mqtt_options(&opts)?;
    let (client, eventloop) = AsyncClient::new(options, usize::from(RECEIVE_MAXIMUM) + 256);
    let filter = match &opts.share_group {
        Some(group) => format!("$share/{group}/{EVENTS_FILTER}"),
        None => EVENTS_FILTER.to_owned(),
    };
    let (ready_tx, ready) = oneshot::channel();
    let connected = Arc::new(AtomicBool::new(false));
    let link = Link {
        client: client.clone(),
        filter,
        inbound,
        max_event_bytes: opts.max_event_bytes,
    };
    let task = tokio::spawn(run(eventloop, link, connected.clone(), ready_tx));
    match tokio::time::timeout(CONNECT_TIMEOUT, ready).await {
        Ok(Ok(())) => Ok(Handle {
            client,
            task: Arc::new(task),
            connected,
        }),
        Ok(Err(_)) | Err(_) => {
            task.abort();
            Err(IngressError::BadUrl {
                url: opts.url,
                reason: format!(
                    "no connection to the broker within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            })
        }
    }
}

impl Handle {
    /// Publishes with QoS 1.
    pub async fn publish(&self, topic: String, payload: Bytes) -> Result<(), IngressError> {
        self.client
            .publish(topic.clone(), QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| IngressError::Publish {
                topic,
                reason: e.to_string(),
            })
    }

    /// Whether the broker connection is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Disconnects and stops the client.
    pub async fn shutdown(&self) {
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.task.abort();
    }
}

fn mqtt_options(opts: &ExternalOptions) -> Result<MqttOptions, IngressError> {
    let bad = |reason: String| IngressError::BadUrl {
        url: opts.url.clone(),
        reason,
    };
    let url = url::Url::parse(&opts.url).map_err(|e| bad(e.to_string()))?;
    let tls = match url.scheme() {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        other => return Err(bad(format!("scheme {other:?} is not mqtt:// or mqtts://"))),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host".into()))?;
    let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
    let mut options = MqttOptions::new(opts.client_id.clone(), host, port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_start(false)
        .set_session_expiry_interval(Some(SESSION_EXPIRY_SECS))
        .set_manual_acks(true)
        .set_receive_maximum(Some(RECEIVE_MAXIMUM))
        .set_network_options(nodelay())
        .set_max_packet_size(Some(
            u32::try_from(opts.max_event_bytes + (64 << 10)).unwrap_or(u32::MAX),
        ));
    if !url.username().is_empty() {
        let decode = |s: &str| {
            url::form_urlencoded::parse(s.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect::<String>()
        };
        options.set_credentials(
            decode(url.username()),
            decode(url.password().unwrap_or_default()),
        );
    }
    if tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(
                crate::tls::client_config(opts.ca_file.as_deref())
                    .map_err(|e| bad(e.to_string()))?,
            ),
        )));
    }
    Ok(options)
}

/// Small writes (acks, replies) go out at once, not after the broker's
/// delayed ACK.
fn nodelay() -> rumqttc::NetworkOptions {
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network
}

/// What the event loop hands events to.
struct Link {
    client: AsyncClient,
    filter: String,
    inbound: mpsc::Sender<Inbound>,
    max_event_bytes: usize,
}

/// The client's event loop: connects (and reconnects), subscribes when the
/// broker has no session for us, and turns event publishes into [`Inbound`].
async fn run(
    mut eventloop: EventLoop,
    link: Link,
    connected: Arc<AtomicBool>,
    ready: oneshot::Sender<()>,
) {
    let Link {
        client,
        filter,
        inbound,
        max_event_bytes,
    } = link;
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    let mut failing = false;
    loop {
        match eventloop.poll().await {
            Ok(MqttEvent::Incoming(Packet::ConnAck(connack))) => {
                if failing {
                    tracing::info!("connected to the MQTT broker again");
                }
                failing = false;
                connected.store(true, Ordering::Relaxed);
                backoff = Duration::from_millis(100);
                if !connack.session_present {
                    let mut subscription = Filter::new(filter.clone(), QoS::AtLeastOnce);
                    subscription.nolocal = true;
                    if let Err(err) = client.try_subscribe_many([subscription]) {
                        tracing::error!("cannot subscribe to {filter}: {err}");
                    }
                }
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
            }
            Ok(MqttEvent::Incoming(Packet::Publish(publish))) => {
                if !take(publish, &client, &inbound, max_event_bytes) {
                    return;
                }
            }
            Ok(_) => {}
            Err(err) => {
                connected.store(false, Ordering::Relaxed);
                if !failing {
                    tracing::warn!("MQTT broker connection: {err}; reconnecting");
                    failing = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Hands one publish to the pipeline; false when the host is shutting down.
fn take(
    publish: Publish,
    client: &AsyncClient,
    inbound: &mpsc::Sender<Inbound>,
    max: usize,
) -> bool {
    let topic = String::from_utf8_lossy(&publish.topic).into_owned();
    let refused = match parse_event_topic(&topic) {
        Err(err) => Some(err.to_string()),
        Ok(_) if publish.payload.len() > max => Some(format!(
            "payload of {} bytes exceeds max_event_bytes {max}",
            publish.payload.len()
        )),
        Ok((device, name)) => {
            let event = Event::received(device, name, publish.payload.clone());
            let ack = Ack::external(PendingAck {
                client: client.clone(),
                publish,
            });
            return hand_over(inbound, Inbound { event, ack });
        }
    };
    if let Some(reason) = refused {
        tracing::warn!(topic, "event refused: {reason}");
        let pending = PendingAck {
            client: client.clone(),
            publish,
        };
        tokio::spawn(pending.ack());
    }
    true
}

/// Passes an event to the pipeline without ever making the event loop
/// wait: the pipeline's acknowledgements and the host's own publishes go
/// out through this loop, so a loop waiting on the pipeline could wait for
/// ever. When the channel is full (rare: the broker sends at most
/// [`RECEIVE_MAXIMUM`] unacknowledged events) a task waits instead.
fn hand_over(inbound: &mpsc::Sender<Inbound>, event: Inbound) -> bool {
    match inbound.try_send(event) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(event)) => {
            let inbound = inbound.clone();
            tokio::spawn(async move { inbound.send(event).await });
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}
