//! The API's other webhook dialects, each on its own built-in plugin:
//! Iottly-style webhooks (per project) and Mainflux-style webhooks (per
//! thing, scoped to its group). [`Book`] keeps the webhooks of one dialect
//! (store, registry, delivery logs); each dialect's module parses its
//! definitions and says how they run.

pub mod book;
pub mod iottly;
pub mod mainflux;

pub use book::{Book, Dialect, DialectError};
pub use iottly::Iottly;
pub use mainflux::Mainflux;
