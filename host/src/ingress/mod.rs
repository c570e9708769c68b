//! MQTT ingress: where device events come from and where device replies go.
//!
//! Two sources, one shape: the [`embedded`] broker (the default, so that one
//! binary runs on the edge; on a cluster too, where the cluster (`nats`) stores
//! its events) and an [`external`] MQTT broker. Each turns the
//! valid messages on `devices/+/events/#` into [`Inbound`] events on a
//! bounded channel and publishes the host's replies. An event is
//! acknowledged to the broker only when its [`Ack`] is fired: the pipeline
//! decides when an event is safe (today: once taken; with the durable queue:
//! once stored).

pub mod acl;
pub mod device_limits;
pub mod embedded;
mod error;
pub mod external;
mod inbound;
mod publisher;
pub mod refusals;
pub mod tls_front;

pub use error::IngressError;
pub(crate) use error::oversized;
pub use inbound::{Ack, Inbound, Refusal};
pub use publisher::{Forwarder, Publisher};
