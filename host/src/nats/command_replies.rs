//! Devices' answers to commands, on a cluster: a command may have been
//! sent through any host's API, and the device answers on the host that
//! holds its session. Every host publishes the answers its broker takes
//! on [`COMMAND_REPLIES`] and hands every answer published there to its
//! command router, which keeps those of the commands it sent. Plain NATS
//! (at most once): an answer lost while a node dies is a command that
//! times out, as one whose device went away.

use async_nats::HeaderMap;
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{COMMAND_REPLIES, Nats, NatsError, TOPIC_HEADER, topic_in};
use crate::event::CommandReply;
use crate::topic::{command_reply_topic, parse_command_reply_topic};

/// Publishes the answers this host's broker takes until `shutdown`.
pub async fn publish(
    nats: Nats,
    mut taken: mpsc::Receiver<CommandReply>,
    shutdown: CancellationToken,
) {
    loop {
        let reply = tokio::select! {
            () = shutdown.cancelled() => return,
            reply = taken.recv() => match reply {
                Some(reply) => reply,
                None => return,
            },
        };
        let mut headers = HeaderMap::new();
        let topic = command_reply_topic(&reply.device, reply.kind, &reply.request_id);
        headers.insert(TOPIC_HEADER, topic.as_str());
        if let Err(err) = nats
            .client
            .publish_with_headers(COMMAND_REPLIES, headers, reply.payload)
            .await
        {
            tracing::warn!("an answer to a command not sent to the other hosts: {err}");
        }
    }
}

/// Every host's answers, for the command router `to`.
#[derive(Debug)]
pub struct Receiver {
    subscription: async_nats::Subscriber,
}

impl Receiver {
    /// Subscribes now, so that no answer published after start-up is
    /// missed.
    pub async fn start(nats: &Nats) -> Result<Self, NatsError> {
        let subscription = nats
            .client
            .subscribe(COMMAND_REPLIES)
            .await
            .map_err(|e| NatsError::jetstream(COMMAND_REPLIES, e))?;
        Ok(Self { subscription })
    }

    /// Hands answers to `to` until `shutdown`.
    pub async fn run(mut self, to: mpsc::Sender<CommandReply>, shutdown: CancellationToken) {
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => return,
                message = self.subscription.next() => match message {
                    Some(message) => message,
                    None => return,
                },
            };
            let topic = topic_in(message.headers.as_ref());
            let Ok((device, kind, request_id)) = parse_command_reply_topic(topic) else {
                tracing::debug!("not an answer to a command on {COMMAND_REPLIES}; dropped");
                continue;
            };
            let reply = CommandReply {
                device,
                request_id,
                kind,
                payload: message.payload,
            };
            if to.send(reply).await.is_err() {
                return;
            }
        }
    }
}
