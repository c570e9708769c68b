//! What the webhooks of every dialect share: the collection that keeps and
//! puts them in force, the checks of their common fields, their ids, the
//! store that keeps them, the webhooks directory watcher, the built-in
//! plugins that run them, and the errors.

pub mod builtin;
pub mod checks;
pub mod collection;
pub mod error;
pub mod files;
pub mod ids;
pub mod store;

pub use builtin::Builtin;
pub use collection::{Collection, Dialect, Runner, Running};
pub use error::WebhookError;
pub use files::WebhookDir;
pub use store::Store;
