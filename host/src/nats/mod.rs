//! Several hosts on NATS JetStream (README "Running several hosts" and
//! ARCHITECTURE "Several hosts"): the connection, and what the hosts share
//! through it.
//!
//! Devices log in to the hosts' own embedded brokers, with the rules of a
//! single host; NATS is only the hosts' ([`auth`]):
//! - [`intake`]: what a host's broker takes from its devices goes into the
//!   replicated stream [`EVENTS_STREAM`] before the device gets its
//!   PUBACK;
//! - [`events`]: every host pulls those events from one shared durable
//!   consumer; each is acknowledged to JetStream only when every matching
//!   webhook is done with it ([`held::Held`]), so a dead host's events go
//!   to the others;
//! - [`to_devices`]: what hosts send devices goes through the stream
//!   [`TO_DEVICES_STREAM`], which every host relays into its own broker,
//!   and devices' answers to commands through [`COMMAND_REPLIES`] to every
//!   host ([`command_replies`]).
//! - [`shared`]: webhook definitions of every dialect and the device
//!   registry, in the key-value buckets [`DEFINITIONS_BUCKET`] and
//!   [`REGISTRY_BUCKET`], watched by every host.
//! - [`trips`]: webhooks disabled after failures in a row, disabled on
//!   every host.
//! - [`plugins`]: plugin files in the object store [`PLUGINS_BUCKET`],
//!   copied into each host's plugins directory, where the directory's own
//!   hot reload takes them.
//!
//! - [`followers`]: the tasks that apply every host's changes here.
//! - [`auth`]: the hosts' login to NATS and the servers' certificates.
//!
//! The stream, the consumer and the buckets are created by the first host
//! that finds them missing, with `min(3, nodes)` replicas (`streams`).
//!
//! The module's own plumbing: `connection` (the client), `names` (of
//! streams, subjects and buckets), `streams`, `patience` (writes tried
//! again), `backlog` (for health), `error`.

pub mod auth;
mod backlog;
pub mod command_replies;
mod connection;
mod error;
pub mod events;
pub mod followers;
pub mod held;
pub mod intake;
mod names;
mod patience;
pub mod plugin_state;
pub mod plugins;
pub mod shared;
mod streams;
pub mod to_devices;
pub mod trips;

pub use connection::Nats;
pub use error::NatsError;
pub use names::{
    COMMAND_REPLIES, DEFINITIONS_BUCKET, EVENTS_CONSUMER, EVENTS_STREAM, EVENTS_SUBJECTS,
    PLUGIN_STATE_BUCKET, PLUGINS_BUCKET, REGISTRY_BUCKET, TO_DEVICES_STREAM, TO_DEVICES_SUBJECTS,
    TOPIC_HEADER, device_subject, topic_in,
};
pub use patience::{PATIENCE, patiently};
