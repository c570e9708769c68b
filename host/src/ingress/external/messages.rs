//! What the event loop does with each message: an event goes to the
//! pipeline with its [`Ack`], a device's answer to a command to the router.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::client::Message;
use super::reopen::Refusals;
use crate::event::{CommandReply, Event};
use crate::ingress::device_limits::Share;
use crate::ingress::{Ack, Inbound, oversized};
use crate::origin::{Origin, Sent};
use crate::topic::{parse_command_reply_topic, parse_event_topic};

/// Hands one message to the pipeline; false when the host is shutting down.
pub(super) fn take(
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
        Ok(_) if let Some(why) = oversized(&payload, max) => why,
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
                    share: Share::none(),
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
pub(super) fn take_reply(message: Message, replies: &mpsc::Sender<CommandReply>, max: usize) {
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
    if let Some(why) = oversized(&payload, max) {
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
/// [`RECEIVE_MAXIMUM`](super::RECEIVE_MAXIMUM) unacknowledged events) a task waits instead.
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
