//! Plugins from the plugins directory: manifests, loading and watching,
//! installing over the API, and the registry of webhooks in force and its
//! index by event prefix.

pub mod dir;
pub mod hook;
pub mod index;
pub mod install;
pub mod manifest;
pub mod registry;

pub use dir::PluginDir;
pub use hook::{Filter, Hook, Retired};
pub use install::{InstallError, Installer, PluginName};
pub use manifest::{HostPattern, Manifest, ManifestError};
pub use registry::{PluginStatus, Registry};
