//! The path of one event: taken from the ingress, matched against the
//! webhooks, stored in the durable queue, acknowledged to the broker, and
//! delivered by each matching webhook (`deliver.rs`), with the host's
//! outgoing auth (`authorize.rs`). The intake
//! (`intake.rs`) takes and commits events; a batch (`batch.rs`) is one
//! commit; the parts (`parts.rs`) are what every delivery shares.
//!
//! The intake is a group commit: it takes every event waiting on the
//! ingress channel (up to [`MAX_BATCH`]), writes them with the deletions
//! of finished events in one transaction, and only then acknowledges them.
//! Deletions alone wait up to [`REMOVAL_DELAY`] for events to ride with:
//! at a steady rate, every commit is one that a new event needed anyway.
//! A commit carries what came while the last one was written, so batches
//! grow with the rate by themselves and a lone event is committed at once;
//! only once events come in a crowd (the last commit carried
//! [`CROWD`] or more) does a commit wait, up to
//! [`COMMIT_WAIT`], for company.
//! An event no webhook matches is acknowledged at once and never stored.
//! When the queue is full the intake waits, and the broker holds the rest.
//!
//! The intake also owns the [`Origins`](crate::queue::Origins) of stored
//! events: a resent message (DUP, a known session and packet id, the same
//! content) is acknowledged — once the event it repeats is stored — and
//! neither counted, streamed nor delivered again. Its origin is written
//! with the event, in the same transaction: no extra commit, and no lock
//! (one task owns it).
//!
//! One task per (event, webhook) delivery. Only plugin calls and requests
//! count against `max_in_flight`; waiting for a host (its concurrency, its
//! rate, a `Retry-After`) or for a retry holds no slot, so a slow or
//! failing endpoint never holds up the others.

mod authorize;
mod batch;
mod deliver;
mod intake;
mod parts;
mod record;
mod replay;
pub mod stats;

pub use crate::config::DeliveryPolicy;
pub use intake::{COMMIT_WAIT, CROWD, MAX_BATCH, REMOVAL_DELAY};
pub use parts::{Parts, Pipeline};
pub use record::{RecordStats, Recorder};
pub use replay::{ReplayError, Replays};
pub use stats::DeliveryStats;
