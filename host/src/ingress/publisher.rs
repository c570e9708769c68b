//! What reaches the devices: the [`Publisher`] of whichever broker is in
//! use, and the [`Forwarder`] a cluster's path to them implements.

use std::sync::Arc;

use bytes::Bytes;

use super::{IngressError, embedded, external};

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
