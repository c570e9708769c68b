//! Why the MQTT side failed, and the one size rule of device payloads.

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
