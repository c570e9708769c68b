//! The durable queue: every event a webhook matches is on disk before the
//! broker hears it was received, and stays there until each of its
//! webhooks is done with it (answered, failed for good, or dropped by
//! policy). A crash loses nothing acknowledged: at start the host delivers
//! what the queue still holds.
//!
//! Bounded in events and in bytes; when full, [`Queue::reserve`] waits, the
//! pipeline stops taking messages, and the broker holds them
//! (backpressure) instead of anything being dropped.
//!
//! A commit that cannot be written (a full or failing disk) acknowledges
//! nothing, and [`Queue::write_fault`] says why, for `/healthz`, until a
//! commit succeeds again.

mod error;
#[cfg(any(test, feature = "fault-injection"))]
mod faults;
mod frame;
mod handle;
mod health;
mod journal;
mod legacy;
pub mod origins;
mod recovery;
mod segment;
mod state;
mod writer;

pub use error::JournalError;
#[cfg(any(test, feature = "fault-injection"))]
pub use faults::{DiskFault, DiskFaults};
pub use handle::{Opened, Queue, QueueLimits, Room, Ticket, Unwritten};
pub use journal::Change;
pub use origins::{MAX_ORIGINS, Origins};
pub use recovery::Pending;
