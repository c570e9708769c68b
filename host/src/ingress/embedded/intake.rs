//! The intake of devices' messages, published or from their Wills: an
//! event for the pipeline or an answer for the command router, within
//! each device's rate and share of the queue.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::event::{CommandReply, Event};
use crate::ingress::Inbound;
use crate::ingress::device_limits::{Pacer, Shares};
use crate::ingress::refusals::{Refusals, Refused};
use crate::topic::{
    is_command_reply_topic, is_event_topic, parse_command_reply_topic, parse_event_topic,
};

/// What a device's message on one of its device → host topics is.
pub(super) enum Message {
    /// An event, for the pipeline.
    Event(Event),
    /// An answer to a command, for the command router.
    Reply(CommandReply),
}

/// Why a device's message is not taken.
pub(super) enum NotTaken {
    /// Malformed or oversized: dropped (a resend would be refused again).
    Refused(String),
    /// Over the device's publish rate: dropped.
    TooFast { log: bool },
}

/// Takes devices' messages, published or from their Wills.
pub(super) struct Intake {
    pub(super) inbound: mpsc::Sender<Inbound>,
    pub(super) replies: mpsc::Sender<CommandReply>,
    pub(super) max_event_bytes: usize,
    pub(super) pacer: Pacer,
    pub(super) shares: Arc<Shares>,
    pub(super) refusals: Arc<Refusals>,
}

impl Intake {
    /// What `payload` on `topic` is for the host, if anything: `None` for
    /// a topic that is neither an event nor an answer (routed to
    /// subscribers only).
    pub(super) fn read(&self, topic: &str, payload: &Bytes) -> Option<Result<Message, NotTaken>> {
        let message = if is_command_reply_topic(topic) {
            parse_command_reply_topic(topic).map(|(device, kind, request_id)| {
                Message::Reply(CommandReply {
                    device,
                    request_id,
                    kind,
                    payload: payload.clone(),
                })
            })
        } else if is_event_topic(topic) {
            parse_event_topic(topic).map(|(device, name)| {
                Message::Event(Event::received(device, name, payload.clone()))
            })
        } else {
            return None;
        };
        let message = match message {
            Ok(message) => message,
            Err(err) => return Some(Err(NotTaken::Refused(err.to_string()))),
        };
        if let Some(why) = crate::ingress::oversized(payload, self.max_event_bytes) {
            return Some(Err(NotTaken::Refused(why)));
        }
        let device = match &message {
            Message::Event(event) => event.device.as_str(),
            Message::Reply(reply) => reply.device.as_str(),
        };
        if let Err(too_fast) = self.pacer.take(device, Instant::now()) {
            return Some(Err(NotTaken::TooFast { log: too_fast.log }));
        }
        Some(Ok(message))
    }

    /// Hands an answer to the command router.
    pub(super) async fn reply(&self, reply: CommandReply) {
        // The router never waits on a reader, so this waits only while a
        // burst of answers is being routed: the device feels it.
        if self.replies.send(reply).await.is_err() {
            tracing::debug!("the host is stopping; answer dropped");
        }
    }

    /// Counts and logs a message not taken.
    pub(super) fn log(&self, client: &str, topic: &str, not_taken: &NotTaken) {
        self.refusals.count(match not_taken {
            NotTaken::Refused(_) => Refused::PublishMalformed,
            NotTaken::TooFast { .. } => Refused::PublishRate,
        });
        let (client, topic) = (client.escape_debug(), topic.escape_debug());
        match not_taken {
            NotTaken::Refused(why) => {
                tracing::warn!(
                    "event refused: {} (client {client}, topic {topic})",
                    why.escape_debug()
                );
            }
            NotTaken::TooFast { log: true } => {
                tracing::warn!(
                    "events refused: over the device's publish rate; said once a minute (client {client}, topic {topic})"
                );
            }
            NotTaken::TooFast { log: false } => {}
        }
    }
}
