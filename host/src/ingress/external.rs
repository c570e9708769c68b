//! An external MQTT broker, through the host's own client (rumqttc's
//! codecs) speaking MQTT 5 or 3.1.1 ([`MqttVersion`]).
//!
//! The client keeps a persistent session (stable client id, no clean start,
//! a session expiry on MQTT 5) and acknowledges each event by hand when its
//! [`Ack`](super::Ack) fires, so the broker redelivers what the host had not taken when
//! it stopped, marked DUP with the same packet id. Each event carries that
//! origin (the host's session and the packet id), so the pipeline
//! acknowledges a resend of what it had stored without delivering it
//! again. A device's own resend reaches the host as a new message with a
//! new packet id: that one cannot be told from a second identical event.
//! With a share group it subscribes through `$share/{group}/…`, so several
//! hosts split the events of a clustered broker. An event the host could
//! not store (its queue cannot write) is not acknowledged, and re-opens
//! the session so that the broker sends it again (`reopen`). Devices'
//! answers to commands come through their own subscriptions, never
//! shared: each host waits for the answers to its own commands. Which
//! version is spoken is hidden behind `client`; the `event_loop` is the
//! same for both, and hands each message on (`messages`). The client
//! writes what its event loop gathered in a turn at once (`wire`), so
//! that the acknowledgements of a commit and the answers sent meanwhile
//! share a system call.

mod client;
mod confirm;
mod connection;
mod event_loop;
mod messages;
mod nodes;
mod reopen;
mod session;
mod v311;
mod v5;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use self::client::{Client, EventLoop};
use self::confirm::Confirmations;
use self::connection::connect_options;
use self::event_loop::{Link, run};
use self::nodes::Nodes;
pub use self::reopen::Owed;
use super::{Inbound, IngressError};
pub use crate::config::MqttVersion;
use crate::event::CommandReply;
use crate::origin::Origin;
use crate::secrets;
use crate::topic::EVENTS_FILTER;

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

/// What the external client needs.
#[derive(Debug, Clone)]
pub struct ExternalOptions {
    /// `mqtt://[user:pass@]host[:port]` or `mqtts://…`: the broker's
    /// nodes, tried in turn.
    pub urls: Vec<String>,
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
    let nodes = opts
        .urls
        .iter()
        .map(|url| connect_options(&opts, url))
        .collect::<Result<Vec<_>, _>>()?;
    let capacity = usize::from(RECEIVE_MAXIMUM) + 256;
    let (client, eventloop) = EventLoop::new(opts.version, nodes[0].clone(), capacity);
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
        last_error: Arc::default(),
    };
    let last_error = link.last_error.clone();
    let nodes = Nodes::new(nodes, &opts.urls);
    let task = tokio::spawn(run((eventloop, nodes), link, connected.clone(), ready_tx));
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
                url: secrets::url_list(&opts.urls),
                reason: format!(
                    "no connection to the broker within {} s{}",
                    CONNECT_TIMEOUT.as_secs(),
                    last_error
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .as_deref()
                        .map(|err| format!(" (the last attempt: {err})"))
                        .unwrap_or_default()
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
    /// (at most `CONFIRM_WAIT`; past it, says so and returns).
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
