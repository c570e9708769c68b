//! Plugins from the plugins directory: manifests, loading and watching, and
//! the registry of webhooks in force.

pub mod dir;
pub mod manifest;
pub mod registry;

pub use dir::PluginDir;
pub use manifest::{Manifest, ManifestError};
pub use registry::{Hook, PluginStatus, Registry};
