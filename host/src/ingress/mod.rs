//! MQTT ingress: where device events come from and where device replies go.
//!
//! Two sources, one shape: the [`embedded`] broker (the default, so that one
//! binary runs on the edge; on a cluster too, where the cluster (`nats`) stores
//! its events) and an [`external`] MQTT broker. Each turns the
//! valid messages on `devices/+/events/#` into [`Inbound`] events on a
//! bounded channel and publishes the host's replies. An event is
//! acknowledged to the broker only when its [`Ack`] is fired: the pipeline
//! decides when an event is safe (today: once taken; with the durable queue:
//! once stored).

pub mod acl;
pub mod device_limits;
pub mod embedded;
pub mod external;
pub mod refusals;
pub mod tls_front;

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::event::Event;
use crate::origin::Sent;
use crate::stores::Claim;

/// An event taken from the broker, waiting for its acknowledgement.
#[derive(Debug)]
pub struct Inbound {
    /// The event itself.
    pub event: Event,
    /// Fire it once the event is safe; dropping it refuses the message so
    /// the device (or the broker's session) sends it again.
    pub ack: Ack,
    /// Its session, packet id and DUP flag, for QoS 1 and 2: what tells a
    /// resend from a new message.
    pub sent: Option<Sent>,
    /// Stored elsewhere already (the cluster's stream): given up when every
    /// webhook is done with it, never written to the local queue.
    pub claim: Option<Box<dyn Claim>>,
    /// Its place in its device's share of the queue, kept while the event
    /// is.
    pub share: device_limits::Share,
}

/// Acknowledges one MQTT message to the broker it came from.
#[derive(Debug)]
pub struct Ack(AckInner);

/// Why an event is not taken, told to the device that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The device holds its share of the queue (or of the cluster's
    /// stream): it may send the event again later.
    Share,
}

#[derive(Debug)]
enum AckInner {
    /// The embedded broker holds the PUBACK until this fires.
    Embedded(oneshot::Sender<Result<(), Refusal>>),
    /// The external broker gets a PUBACK through the client; dropped, it
    /// re-opens the client's session so the broker sends the message again.
    External(Box<external::Owed>),
    /// QoS 0: nothing to acknowledge.
    None,
}

impl Ack {
    fn embedded(tx: oneshot::Sender<Result<(), Refusal>>) -> Self {
        Self(AckInner::Embedded(tx))
    }

    fn external(pending: external::Owed) -> Self {
        Self(AckInner::External(Box::new(pending)))
    }

    /// An ack for a message that needs none.
    pub fn none() -> Self {
        Self(AckInner::None)
    }

    /// Acknowledges the message.
    pub async fn ack(self) {
        match self.0 {
            AckInner::Embedded(tx) => {
                // The publisher may have gone away; then there is no one to ack.
                let _ = tx.send(Ok(()));
            }
            AckInner::External(pending) => pending.ack().await,
            AckInner::None => {}
        }
    }

    /// Refuses the message for `why`, where the broker can say so (the
    /// embedded broker); elsewhere as dropping it does.
    pub fn refuse(self, why: Refusal) {
        if let AckInner::Embedded(tx) = self.0 {
            let _ = tx.send(Err(why));
        }
    }
}

/// Publishes the host's messages to devices, on whichever broker is in use.
#[derive(Debug, Clone)]
pub enum Publisher {
    /// Straight into the embedded broker's router.
    Embedded(embedded::Handle),
    /// Through the external broker.
    External(external::Handle),
    /// Through the cluster, to the embedded broker of every host.
    Cluster(Arc<dyn Forwarder>),
}

/// A path to devices through other hosts (a cluster's relay to every
/// host's broker).
#[async_trait::async_trait]
pub trait Forwarder: std::fmt::Debug + Send + Sync {
    /// Whether the path is up.
    fn is_connected(&self) -> bool;

    /// Publishes `payload` on `topic` with QoS 1; stored on the path when
    /// it returns.
    async fn publish(&self, topic: String, payload: Bytes) -> Result<(), IngressError>;
}

impl Publisher {
    /// Whether the broker side is up: always for the embedded broker, the
    /// connection state for an external one or the cluster.
    pub fn is_connected(&self) -> bool {
        match self {
            Self::Embedded(_) => true,
            Self::External(h) => h.is_connected(),
            Self::Cluster(c) => c.is_connected(),
        }
    }

    /// Waits until the broker has every message published so far: at once
    /// for the embedded broker and the cluster (a publish is in them when
    /// it returns), after the PUBACKs for an external one.
    pub async fn confirmed(&self) {
        if let Self::External(h) = self {
            h.confirmed().await;
        }
    }

    /// Publishes `payload` on `topic` with QoS 1.
    pub async fn publish(&self, topic: String, payload: Bytes) -> Result<(), IngressError> {
        match self {
            Self::Embedded(h) => h.publish(topic, payload).await,
            Self::External(h) => h.publish(topic, payload).await,
            Self::Cluster(c) => c.publish(topic, payload).await,
        }
    }
}

/// Failures of the MQTT side.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// The embedded broker could not start (usually: the address is in use).
    #[error("embedded MQTT broker on {addr}: {reason}")]
    Listen {
        /// The address it was asked to listen on.
        addr: std::net::SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The external broker URL is unusable.
    #[error("MQTT URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A publish to devices failed.
    #[error("publishing to {topic}: {reason}")]
    Publish {
        /// The topic of the message.
        topic: String,
        /// What went wrong.
        reason: String,
    },
}

/// Why a device's payload is refused for its size, if it is: the same
/// bound for events and for answers to commands, on either broker.
pub(crate) fn oversized(payload: &[u8], max_event_bytes: usize) -> Option<String> {
    (payload.len() > max_event_bytes).then(|| {
        format!(
            "payload of {} bytes exceeds max_event_bytes {max_event_bytes}",
            payload.len()
        )
    })
}
