//! The JetStream side of the ingress: pulls device events from the shared
//! durable consumer and hands them to the pipeline as [`Inbound`] events
//! that are already stored (the stream holds them), each with its
//! [`Held`] acknowledgement. Each carries its MQTT topic in the header
//! [`TOPIC_HEADER`](super::TOPIC_HEADER) ([`super::intake`] put it there).

use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::held::Held;
use super::{Nats, topic_in};
use crate::event::Event;
use crate::ingress::{Ack, Inbound};
use crate::topic::parse_event_topic;

/// Events asked for at once. The client keeps what it was handed and not
/// yet taken in a buffer, where no progress ack keeps them: small, so that
/// a busy pipeline never leaves an event there for an ack wait (and to
/// another host).
const BATCH: usize = 64;

/// What the puller needs.
#[derive(Debug)]
pub struct Puller {
    /// The connection.
    pub nats: Nats,
    /// The consumer's ack wait: progress acks come every half of it.
    pub ack_wait: Duration,
    /// Largest event payload taken.
    pub max_event_bytes: usize,
}

impl Puller {
    /// Pulls events into `inbound` until `shutdown`; reconnects (and
    /// creates the stream and consumer again if they went away) on errors.
    pub async fn run(self, inbound: mpsc::Sender<Inbound>, shutdown: CancellationToken) {
        let mut failing = false;
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            let pulled = tokio::select! {
                () = shutdown.cancelled() => return,
                pulled = self.pull(&inbound, &mut failing) => pulled,
            };
            match pulled {
                Ok(()) => return,
                Err(err) => {
                    if !failing {
                        tracing::warn!("JetStream: {err}; trying again");
                        failing = true;
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Pulls until the pipeline goes away (`Ok`) or JetStream fails.
    async fn pull(
        &self,
        inbound: &mpsc::Sender<Inbound>,
        failing: &mut bool,
    ) -> Result<(), String> {
        // Sets the consumer's ack wait to this host's, which the progress
        // acks below follow.
        let consumer = self
            .nats
            .events_consumer(self.ack_wait)
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(BATCH)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        if *failing {
            tracing::info!("JetStream: pulling events again");
            *failing = false;
        }
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| e.to_string())?;
            let stored = message
                .info()
                .map(|i| (i.stream_sequence, std::time::SystemTime::from(i.published)))
                .ok();
            let (message, acker) = message.split();
            let held = Held::new(acker, self.ack_wait);
            let topic = topic_in(message.headers.as_ref());
            let refused = match parse_event_topic(topic) {
                Err(err) => err.to_string(),
                Ok(_)
                    if let Some(why) =
                        crate::ingress::oversized(&message.payload, self.max_event_bytes) =>
                {
                    why
                }
                Ok((device, name)) => {
                    let event = match stored {
                        Some((serial, at)) => {
                            Event::stored(device, name, message.payload, serial, at)
                        }
                        None => Event::received(device, name, message.payload),
                    };
                    let taken = Inbound {
                        event,
                        ack: Ack::none(),
                        sent: None,
                        claim: Some(Box::new(held)),
                        share: crate::ingress::device_limits::Share::none(),
                    };
                    if inbound.send(taken).await.is_err() {
                        return Ok(());
                    }
                    continue;
                }
            };
            tracing::warn!(topic, "event refused: {refused}");
            held.refuse();
        }
        Err("the consumer's message stream ended".to_owned())
    }
}
