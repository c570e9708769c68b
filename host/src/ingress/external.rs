//! An external MQTT broker, through a rumqttc client speaking MQTT 5 or
//! 3.1.1 ([`MqttVersion`]).
//!
//! The client keeps a persistent session (stable client id, no clean start,
//! a session expiry on MQTT 5) and acknowledges each event by hand when its
//! [`Ack`] fires, so the broker redelivers what the host had not taken when
//! it stopped, marked DUP with the same packet id. Each event carries that
//! origin (the host's session and the packet id), so the pipeline
//! acknowledges a resend of what it had stored without delivering it
//! again. A device's own resend reaches the host as a new message with a
//! new packet id: that one cannot be told from a second identical event.
//! With a share group it subscribes through `$share/{group}/…`, so several
//! hosts split the events of a clustered broker. An event the host could
//! not store (its queue cannot write) is not acknowledged, and re-opens
//! the session so that the broker sends it again ([`reopen`]). Devices'
//! answers to commands come through their own subscriptions, never
//! shared: each host waits for the answers to its own commands. Which version is spoken is
//! hidden behind [`client`]; the loop here is the same for both.

mod client;
mod confirm;
mod reopen;
mod v311;
mod v5;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{TlsConfiguration, Transport};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use self::client::{Client, Connect, EventLoop, Incoming, Message};
use self::confirm::Confirmations;
pub use self::reopen::Owed;
use self::reopen::Refusals;
use super::{Ack, Inbound, IngressError};
use crate::event::{CommandReply, Event};
use crate::origin::{Origin, Sent};
use crate::secrets;
use crate::topic::{
    COMMAND_REPLY_FILTERS, EVENTS_FILTER, is_command_reply_topic, parse_command_reply_topic,
    parse_event_topic,
};

/// Events the broker may send before the host acknowledges them. The
/// client's request channel holds more than this, and the pipeline's
/// inbound channel at least this, so that neither the event loop (handing
/// events to the pipeline) nor the pipeline (handing acknowledgements to
/// the event loop) can wait on the other.
pub const RECEIVE_MAXIMUM: u16 = 1000;

/// Longest a delivery waits for the broker to acknowledge its answers
/// before it lets its event go anyway (the connection is down).
const CONFIRM_WAIT: Duration = Duration::from_secs(10);

/// How long start-up waits for the broker's first CONNACK.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The MQTT version of the host's own connection to an external broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MqttVersion {
    /// MQTT 3.1.1 (`3`), for brokers without MQTT 5.
    V311,
    /// MQTT 5 (`5`), the default.
    #[default]
    V5,
}

/// A version number that is neither 3 nor 5.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not an MQTT version edgehook speaks: 3 (MQTT 3.1.1) or 5 (MQTT 5)")]
pub struct UnknownVersion(pub u8);

impl TryFrom<u8> for MqttVersion {
    type Error = UnknownVersion;

    fn try_from(n: u8) -> Result<Self, UnknownVersion> {
        match n {
            3 => Ok(Self::V311),
            5 => Ok(Self::V5),
            other => Err(UnknownVersion(other)),
        }
    }
}

/// What the external client needs.
#[derive(Debug, Clone)]
pub struct ExternalOptions {
    /// `mqtt://[user:pass@]host[:port]` or `mqtts://…`.
    pub url: String,
    /// The MQTT version to speak.
    pub version: MqttVersion,
    /// Stable client id, so the persistent session survives restarts.
    pub client_id: String,
    /// Largest event payload taken.
    pub max_event_bytes: usize,
    /// Subscribe through `$share/{group}/…` when set.
    pub share_group: Option<String>,
    /// Extra CA certificate (PEM) for `mqtts://`, beside the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// Where devices' answers to commands go.
    pub replies: mpsc::Sender<CommandReply>,
}

/// A connected client.
#[derive(Debug, Clone)]
pub struct Handle {
    client: Client,
    task: Arc<JoinHandle<()>>,
    /// Whether the broker connection is up, for `/healthz`.
    connected: Arc<AtomicBool>,
    /// The broker's acknowledgements of the host's publishes.
    confirmations: Arc<Confirmations>,
}

/// Connects, subscribes, and returns once the broker has accepted the
/// connection.
pub async fn start(
    opts: ExternalOptions,
    inbound: mpsc::Sender<Inbound>,
) -> Result<Handle, IngressError> {
    let connect = connect_options(&opts, &opts.url)?;
    let capacity = usize::from(RECEIVE_MAXIMUM) + 256;
    let (client, eventloop) = match opts.version {
        MqttVersion::V5 => v5::connect(&connect, capacity),
        MqttVersion::V311 => v311::connect(&connect, capacity),
    };
    let filter = match &opts.share_group {
        Some(group) => format!("$share/{group}/{EVENTS_FILTER}"),
        None => EVENTS_FILTER.to_owned(),
    };
    let (ready_tx, ready) = oneshot::channel();
    let connected = Arc::new(AtomicBool::new(false));
    let confirmations = Arc::new(Confirmations::default());
    let link = Link {
        client: client.clone(),
        session: Origin::broker_session(&opts.client_id),
        filter,
        inbound,
        replies: opts.replies.clone(),
        max_event_bytes: opts.max_event_bytes,
        confirmations: confirmations.clone(),
        refusals: Arc::default(),
    };
    let task = tokio::spawn(run(eventloop, link, connected.clone(), ready_tx));
    match tokio::time::timeout(CONNECT_TIMEOUT, ready).await {
        Ok(Ok(())) => Ok(Handle {
            client,
            task: Arc::new(task),
            connected,
            confirmations,
        }),
        Ok(Err(_)) | Err(_) => {
            task.abort();
            Err(IngressError::BadUrl {
                url: secrets::url(&opts.url).into_owned(),
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
        self.confirmations.ask();
        self.client
            .publish(topic.clone(), payload)
            .await
            .map_err(|reason| IngressError::Publish { topic, reason })
    }

    /// Waits until the broker has acknowledged every publish made so far
    /// (at most [`CONFIRM_WAIT`]; past it, says so and returns).
    pub async fn confirmed(&self) {
        if !self.confirmations.settled(CONFIRM_WAIT).await {
            tracing::warn!(
                "the MQTT broker acknowledged no answers for {} s; going on without",
                CONFIRM_WAIT.as_secs()
            );
        }
    }

    /// Whether the broker connection is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Disconnects and stops the client.
    pub async fn shutdown(&self) {
        self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.task.abort();
    }
}

/// The connection settings `url` names, whichever the version.
fn connect_options(opts: &ExternalOptions, url: &str) -> Result<Connect, IngressError> {
    let bad = |reason: String| IngressError::BadUrl {
        url: secrets::url(url).into_owned(),
        reason,
    };
    let url = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let tls = match url.scheme() {
        "mqtt" | "tcp" => false,
        "mqtts" | "ssl" => true,
        other => return Err(bad(format!("scheme {other:?} is not mqtt:// or mqtts://"))),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host".into()))?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(s.as_bytes())
            .map(|(k, _)| k.into_owned())
            .collect::<String>()
    };
    let credentials = (!url.username().is_empty()).then(|| {
        (
            decode(url.username()),
            decode(url.password().unwrap_or_default()),
        )
    });
    let transport = if tls {
        Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(
            crate::tls::client_config(opts.ca_file.as_deref()).map_err(|e| bad(e.to_string()))?,
        )))
    } else {
        Transport::tcp()
    };
    Ok(Connect {
        host: host.to_owned(),
        port: url.port().unwrap_or(if tls { 8883 } else { 1883 }),
        client_id: opts.client_id.clone(),
        clean_session: false,
        credentials,
        transport,
        max_packet_bytes: opts.max_event_bytes + (64 << 10),
    })
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
    client: Client,
    /// The host's session on the broker, the origin of every message.
    session: Arc<str>,
    /// The events filter.
    filter: String,
    inbound: mpsc::Sender<Inbound>,
    replies: mpsc::Sender<CommandReply>,
    max_event_bytes: usize,
    confirmations: Arc<Confirmations>,
    /// Events the pipeline refused, which re-open the session.
    refusals: Arc<Refusals>,
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
        session,
        filter,
        inbound,
        replies,
        max_event_bytes,
        confirmations,
        refusals,
    } = link;
    let mut ready = Some(ready);
    // Subscriptions asked for and not yet acknowledged.
    let mut subscribing = 0_usize;
    let mut backoff = Duration::from_millis(100);
    let mut failing = false;
    // Kept across polls: its wait for a refusal is registered once.
    let mut reopen = std::pin::pin!(refusals.due());
    loop {
        let polled = tokio::select! {
            polled = eventloop.poll() => polled,
            () = &mut reopen => {
                if refusals.reopening() {
                    tracing::warn!(
                        "re-opening the MQTT session, so that the broker sends again the events the host could not store (again while they are refused, at most every {} s)",
                        reopen::MAX.as_secs()
                    );
                } else {
                    tracing::debug!("re-opening the MQTT session again");
                }
                // The poll cut short is made good by dropping the
                // connection: what it was sending goes out again.
                eventloop.reopen();
                reopen.set(refusals.due());
                continue;
            }
        };
        match polled {
            Ok(Incoming::ConnAck { session_present }) => {
                if failing {
                    tracing::info!("connected to the MQTT broker again");
                }
                failing = false;
                connected.store(true, Ordering::Relaxed);
                if !session_present {
                    let lost = confirmations.lost();
                    if lost > 0 {
                        tracing::warn!(
                            "the MQTT broker started a new session: {lost} message(s) to devices it had not acknowledged are lost"
                        );
                    }
                }
                backoff = Duration::from_millis(100);
                // Ready once the broker has answered every subscription:
                // before, a device's event could find no subscriber.
                let mut asked = 0;
                if !session_present {
                    match client.subscribe(&filter) {
                        Ok(()) => asked += 1,
                        Err(err) => tracing::error!("cannot subscribe to {filter}: {err}"),
                    }
                }
                // Every time: a session kept from a version without commands
                // lacks these, and subscribing again changes nothing.
                for reply_filter in COMMAND_REPLY_FILTERS {
                    match client.subscribe(reply_filter) {
                        Ok(()) => asked += 1,
                        Err(err) => tracing::error!("cannot subscribe to {reply_filter}: {err}"),
                    }
                }
                subscribing = asked;
                if subscribing == 0
                    && let Some(tx) = ready.take()
                {
                    let _ = tx.send(());
                }
            }
            Ok(Incoming::SubAck) => {
                subscribing = subscribing.saturating_sub(1);
                if subscribing == 0
                    && let Some(tx) = ready.take()
                {
                    let _ = tx.send(());
                }
            }
            Ok(Incoming::Publish(message)) if is_command_reply_topic(&message.topic) => {
                take_reply(message, &replies, max_event_bytes);
            }
            Ok(Incoming::Publish(message)) => {
                if !take(message, &session, &refusals, &inbound, max_event_bytes) {
                    return;
                }
            }
            Ok(Incoming::PubAck) => confirmations.acked(),
            Ok(Incoming::Other) => {}
            Err(err) => {
                refusals.disconnected();
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

/// Hands one message to the pipeline; false when the host is shutting down.
fn take(
    message: Message,
    session: &Arc<str>,
    refusals: &Arc<Refusals>,
    inbound: &mpsc::Sender<Inbound>,
    max: usize,
) -> bool {
    let Message {
        topic,
        payload,
        packet,
        ack,
    } = message;
    let refused = match parse_event_topic(&topic) {
        Err(err) => err.to_string(),
        Ok(_) if let Some(why) = super::oversized(&payload, max) => why,
        Ok((device, name)) => {
            let event = Event::received(device, name, payload);
            let sent =
                packet.map(|(id, dup)| Sent::new(Origin::broker(session.clone(), id), dup, &event));
            let ack = Ack::external(refusals.owe(ack));
            return hand_over(
                inbound,
                Inbound {
                    event,
                    ack,
                    sent,
                    claim: None,
                    share: crate::ingress::device_limits::Share::none(),
                },
            );
        }
    };
    tracing::warn!(topic, "event refused: {refused}");
    tokio::spawn(ack.ack());
    true
}

/// Hands a device's answer to a command to the router, acknowledging it at
/// once (it is not an event: nothing is stored). Never waits: when the
/// router is behind, the answer is dropped with a log line.
fn take_reply(message: Message, replies: &mpsc::Sender<CommandReply>, max: usize) {
    let Message {
        topic,
        payload,
        ack,
        ..
    } = message;
    tokio::spawn(ack.ack());
    let (device, kind, request_id) = match parse_command_reply_topic(&topic) {
        Ok(parsed) => parsed,
        Err(err) => return tracing::warn!(topic, "answer refused: {err}"),
    };
    if let Some(why) = super::oversized(&payload, max) {
        return tracing::warn!(topic, "answer refused: {why}");
    }
    let reply = CommandReply {
        device,
        request_id,
        kind,
        payload,
    };
    if let Err(mpsc::error::TrySendError::Full(_)) = replies.try_send(reply) {
        tracing::warn!(topic, "answer dropped: the command router is behind");
    }
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
