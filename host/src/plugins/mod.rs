//! Plugin files: their manifests, the plugins directory (loaded and
//! watched), and installing over the API. What they become, the webhooks in
//! force, is [`crate::hooks`].

pub mod dir;
pub mod install;
pub mod manifest;

pub use dir::PluginDir;
pub use install::{InstallError, Installer, PluginName};
pub use manifest::{Manifest, ManifestError};
