//! [`NatsError`]: why the NATS side cannot be used.

use super::auth;

/// Why the NATS side cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// No server of the list could be reached.
    #[error("NATS {urls}: {reason}")]
    Connect {
        /// The URLs as given (passwords masked).
        urls: String,
        /// What went wrong.
        reason: String,
    },
    /// A file of the login or of TLS cannot be used.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// A server refused the login or its certificate was not trusted:
    /// trying again will not help.
    #[error("NATS {urls}: {reason}")]
    Refused {
        /// The URLs as given (passwords masked).
        urls: String,
        /// What the server or the TLS check said, and what to look at.
        reason: String,
    },
    /// JetStream refused to create or open something.
    #[error("JetStream {what}: {reason}")]
    JetStream {
        /// The stream, consumer or bucket.
        what: String,
        /// What the server said.
        reason: String,
    },
}

impl NatsError {
    /// JetStream refused `what`, saying `reason`.
    pub(super) fn jetstream(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::JetStream {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
