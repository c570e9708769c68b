//! What hosts send devices, on a cluster: hook-sent, hook-response,
//! hook-error and commands are published to [`TO_DEVICES_STREAM`] (stored
//! on a majority of its replicas before the publish returns), and every
//! host relays that stream into its own embedded broker ([`Relay`]). The
//! host that holds the device's session delivers it at QoS 1, to a
//! connected device or to its persistent session; the others have no
//! subscriber for it.
//!
//! The relay reads the stream in order from where it started; when its
//! node dies it goes on from the last message it relayed, so nothing sent
//! while it moves to another node is lost.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use bytes::Bytes;
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use super::{
    Nats, NatsError, TO_DEVICES_STREAM, TO_DEVICES_SUBJECTS, TOPIC_HEADER, device_subject, topic_in,
};
use crate::ingress::embedded;
use crate::ingress::{Forwarder, IngressError};

/// The subject prefix of [`TO_DEVICES_SUBJECTS`].
const PREFIX: &str = "edgehook.to-devices.";

/// Publishes the host's messages to devices through the cluster.
#[derive(Debug, Clone)]
pub struct ToDevices {
    nats: Nats,
}

impl ToDevices {
    /// Sends through `nats`.
    pub fn new(nats: Nats) -> Self {
        debug_assert!(TO_DEVICES_SUBJECTS.starts_with(PREFIX));
        Self { nats }
    }
}

#[async_trait::async_trait]
impl Forwarder for ToDevices {
    /// Whether the connection to NATS is up.
    fn is_connected(&self) -> bool {
        self.nats.is_connected()
    }

    /// Publishes `payload` on `topic` (`devices/{id}/…`); returns once the
    /// stream holds it.
    async fn publish(&self, topic: String, payload: Bytes) -> Result<(), IngressError> {
        let device = topic
            .strip_prefix("devices/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        let subject = device_subject(PREFIX, device);
        let mut headers = HeaderMap::new();
        headers.insert(TOPIC_HEADER, topic.as_str());
        let failed = |reason: String| IngressError::Publish {
            topic: topic.clone(),
            reason: format!("JetStream {TO_DEVICES_STREAM}: {reason}"),
        };
        let stored = self
            .nats
            .js
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|e| failed(e.to_string()))?;
        stored.await.map_err(|e| failed(e.to_string()))?;
        Ok(())
    }
}

/// Relays [`TO_DEVICES_STREAM`] into this host's embedded broker.
#[derive(Debug)]
pub struct Relay {
    nats: Nats,
    broker: embedded::Handle,
    /// The next stream sequence to relay.
    next: u64,
}

impl Relay {
    /// A relay of everything published from now on.
    pub async fn start(nats: Nats, broker: embedded::Handle) -> Result<Self, NatsError> {
        let mut stream = nats.to_devices_stream().await?;
        let next = stream
            .info()
            .await
            .map_err(|e| NatsError::jetstream(format!("stream {TO_DEVICES_STREAM}"), e))?
            .state
            .last_sequence
            + 1;
        Ok(Self { nats, broker, next })
    }

    /// Relays until `shutdown`; reads on from where it was after errors.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut failing = false;
        while !shutdown.is_cancelled() {
            let relayed = tokio::select! {
                () = shutdown.cancelled() => return,
                relayed = self.relay(&mut failing) => relayed,
            };
            if !failing {
                tracing::warn!(
                    "JetStream {TO_DEVICES_STREAM}: {relayed}; reading on from message {}",
                    self.next
                );
                failing = true;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Relays until reading fails; why.
    async fn relay(&mut self, failing: &mut bool) -> String {
        let stream = match self.nats.to_devices_stream().await {
            Ok(stream) => stream,
            Err(err) => return err.to_string(),
        };
        let config = OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: self.next,
            },
            ..Default::default()
        };
        let mut messages = match stream.create_consumer(config).await {
            Ok(consumer) => match consumer.messages().await {
                Ok(messages) => messages,
                Err(err) => return err.to_string(),
            },
            Err(err) => return err.to_string(),
        };
        if std::mem::take(failing) {
            tracing::info!("JetStream {TO_DEVICES_STREAM}: relaying again");
        }
        while let Some(message) = messages.next().await {
            let message = match message {
                Ok(message) => message,
                Err(err) => return err.to_string(),
            };
            if let Ok(info) = message.info() {
                self.next = info.stream_sequence + 1;
            }
            let topic = topic_in(message.headers.as_ref()).to_owned();
            if topic.is_empty() {
                continue;
            }
            if let Err(err) = self.broker.publish(topic, message.payload.clone()).await {
                tracing::warn!("relaying to a device: {err}");
            }
        }
        "the stream of messages ended".to_owned()
    }
}
