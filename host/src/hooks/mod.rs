//! The webhooks in force: each a [`Hook`] (a compiled plugin with its
//! configuration, the events that run it, where it may send, its delivery
//! log), in a [`Registry`] the pipeline reads without locking, indexed by
//! event prefix. Plugin files and every dialect's webhooks become hooks;
//! the pipeline knows no difference.

pub mod hook;
pub mod host_pattern;
pub mod index;
pub mod log;
pub mod registry;

pub use hook::{Filter, Hook, Retired, Retirement};
pub use host_pattern::HostPattern;
pub use log::DeliveryLog;
pub use registry::{PluginStatus, Registry};
