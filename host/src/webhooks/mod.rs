//! Particle-style webhooks: the catalog (from the API and from files), its
//! store in the data directory, the webhooks directory watcher, the
//! built-in plugin that runs them, the delivery log every webhook keeps, and
//! the masked view the API shows of a definition.

pub mod builtin;
pub mod catalog;
pub mod files;
pub mod log;
pub mod masked;
pub mod store;

pub use builtin::Builtin;
pub use catalog::{Catalog, WebhookError};
pub use files::WebhookDir;
pub use log::DeliveryLog;
pub use store::Store;
