//! Wiring: builds every stage from a [`Config`](crate::config::Config), starts the tasks, and
//! stops them in order.
//!
//! Tasks: the ingress (embedded broker or external client) feeding a bounded
//! channel; the pipeline reading it and spawning deliveries; the plugin and
//! webhook directory watchers; the API server; the engine's epoch thread.
//! On a cluster the embedded broker feeds JetStream instead, and the
//! pipeline's channel is fed by the puller of the shared consumer; the
//! relay of what hosts send devices, the command answers and the
//! followers of the shared stores run beside them.

mod broker;
mod cluster;
mod core;
mod found;
mod host;
mod run;

pub use host::Host;
pub use run::run;
