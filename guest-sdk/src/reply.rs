//! Building the messages a plugin returns for the device.

use crate::{Reply, ReplyKind};

impl Reply {
    /// A message on the default `hook-response/{event}` topic.
    pub fn response(payload: impl Into<Vec<u8>>) -> Self {
        Self {
            kind: ReplyKind::Response,
            topic: None,
            payload: payload.into(),
            unchunked: false,
        }
    }

    /// A message on the default `hook-error/{event}` topic.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            kind: ReplyKind::Error,
            topic: None,
            payload: text.into().into_bytes(),
            unchunked: false,
        }
    }

    /// Publishes on `devices/{device}/{topic}/{index}` instead of the default
    /// (never under `events/`).
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// Publishes as one message instead of 512-byte chunks.
    pub fn unchunked(mut self) -> Self {
        self.unchunked = true;
        self
    }
}
