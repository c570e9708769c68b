//! The storage seam: what the host keeps where either this host's own
//! files or a store every host of a cluster shares (NATS JetStream,
//! [`crate::nats`]) may hold it, chosen once at start-up by the wiring
//! (`server.rs`). A stage holds the trait object and never knows which.
//!
//! - [`Records`]: JSON records by id (the webhooks of each dialect, the
//!   registry's groups and devices), with the changes other hosts make.
//! - [`Flags`]: what failures decided about a webhook, seen by every host
//!   (auto-disable).
//!
//! The acknowledgement of a stored event (an MQTT PUBACK or a JetStream
//! ack) is the queue's [`crate::queue::Ticket`]; plugin files travel
//! through [`crate::plugins::install::Place`].

pub mod flags;
pub mod records;

pub use flags::{Flags, Unshared};
pub use records::{Change, JsonFiles, Record, Records};
