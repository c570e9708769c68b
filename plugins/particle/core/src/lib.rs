//! Particle-style webhooks: the JSON definition of Particle's webhook
//! reference, read once into a [`Webhook`], which turns each device
//! [`Event`] into the HTTP [`Request`] to send and the [`Outcome`] of that
//! request into the [`Reply`] messages for the device.
//!
//! Pure Rust, no I/O: the host uses it natively to check definitions and
//! filter events ([`Webhook::event`], [`Webhook::device_id`]), and the
//! `particle` wasm plugin uses it to render.
//!
//! ```
//! use edgehook_particle::{Event, Method, Webhook};
//!
//! let hook = Webhook::from_slice(br#"{"event": "demo", "url": "http://host.com"}"#)?;
//! let event = Event {
//!     id: "1",
//!     device_id: "3f002b000000000000000000",
//!     name: "demo",
//!     data: b"mydata",
//!     published_at: "2017-02-01T21:08:05.763Z",
//!     product_id: None,
//! };
//! let request = hook.request(&event)?;
//! assert_eq!(request.method, Method::Post);
//! assert_eq!(
//!     request.body,
//!     b"event=demo&data=mydata&published_at=2017-02-01T21%3A08%3A05.763Z&coreid=3f002b000000000000000000"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! - [`template`]: mustache, parsed once into nodes, rendered against a
//!   stack of JSON contexts.
//! - `definition`: the raw JSON read field by field into a checked
//!   [`Webhook`].
//! - `json`: JSON values whose keys and strings are templates (`json`,
//!   `responseTemplate`).
//! - `vars`: the [`Event`] and the `PARTICLE_*` variables of its context.
//! - `request`: the [`Request`] of an event, default data included.
//! - `response`: the [`Reply`] messages for an [`Outcome`].
//! - `encode`: percent-encoding of forms and query strings.
//! - `url`: scheme, host and query string of URLs.
//! - `error`: [`DefinitionError`] and [`RenderError`].
#![deny(missing_docs)]

mod definition;
mod encode;
mod error;
mod json;
mod request;
mod response;
pub mod template;
mod url;
mod vars;

pub use definition::Webhook;
pub use error::{DefinitionError, RenderError};
pub use request::{Method, Request};
pub use response::{Outcome, Reply, ReplyKind, Response};
pub use vars::Event;
