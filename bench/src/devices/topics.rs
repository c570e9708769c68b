//! The topics a device publishes and subscribes to, and how it reads an
//! answer that comes on them.

use rumqttc::{QoS, SubscribeFilter};

/// The event every device publishes; the webhook's prefix.
pub const EVENT: &str = "load";

/// An answer a device received: to which event, and how.
#[derive(Debug, PartialEq)]
pub(super) enum Answer<'a> {
    /// A hook-response naming event `seq`.
    Response(usize),
    /// A hook-error for event `seq`, with its text.
    Error(usize, &'a [u8]),
}

impl Answer<'_> {
    pub(super) fn seq(&self) -> usize {
        match *self {
            Self::Response(seq) | Self::Error(seq, _) => seq,
        }
    }
}

/// The topics a device publishes and subscribes to, and how it reads what
/// comes on them.
#[derive(Debug)]
pub(super) struct Topics {
    pub(super) events: String,
    pub(super) responses: String,
    pub(super) errors: String,
}

impl Topics {
    pub(super) fn new(device: &str) -> Self {
        Self {
            events: format!("devices/{device}/events/{EVENT}"),
            responses: format!("devices/{device}/hook-response/{EVENT}/"),
            errors: format!("devices/{device}/hook-error/{EVENT}/"),
        }
    }

    pub(super) fn filters(&self) -> [SubscribeFilter; 2] {
        [&self.responses, &self.errors]
            .map(|prefix| SubscribeFilter::new(format!("{prefix}#"), QoS::AtLeastOnce))
    }

    /// Reads one message: a response is the first chunk with the event's
    /// sequence number as its payload (the sink echoes it); an error comes
    /// on `hook-error/load/{seq}/{index}` (the webhook's
    /// `errorResponseTopic`). `None` for anything else.
    pub(super) fn read<'a>(&self, topic: &str, payload: &'a [u8]) -> Option<Answer<'a>> {
        if topic.strip_prefix(&self.responses) == Some("0") {
            let seq = std::str::from_utf8(payload).ok()?.parse().ok()?;
            return Some(Answer::Response(seq));
        }
        let seq = topic.strip_prefix(&self.errors)?.strip_suffix("/0")?;
        Some(Answer::Error(seq.parse().ok()?, payload))
    }
}
