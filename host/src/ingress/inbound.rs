//! What the MQTT side hands the pipeline: an [`Inbound`] event with its
//! [`Ack`], fired once the event is safe, and why an event is refused.

use tokio::sync::oneshot;

use super::{device_limits, external};
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
    pub(super) fn embedded(tx: oneshot::Sender<Result<(), Refusal>>) -> Self {
        Self(AckInner::Embedded(tx))
    }

    pub(super) fn external(pending: external::Owed) -> Self {
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
