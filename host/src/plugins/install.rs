//! Plugins sent over the API (`PUT`/`DELETE /v1/plugins/{name}`): checked
//! the way the plugins directory loads them (the manifest is valid, the
//! component compiles and implements a world the host loads) before
//! anything is written, then put where the hosts load plugins from
//! ([`PluginFiles`]): the plugins directory ([`Directory`]), or on a cluster
//! the shared object store that every host copies into its own directory.
//!
//! In the directory both files are written under hidden temporary names
//! and synced, then renamed into place while the directory's watcher is
//! kept out ([`DirLock`]): it never sees half a file, nor a new manifest
//! beside an old module.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::dir::DirLock;
use super::manifest::{Manifest, ManifestError};
use crate::runtime::{DefaultLimits, LoadError, Plugin, WasmEngine};
use crate::stores::{Flags, PluginFiles};
use crate::webhooks::builtin::BuiltinPlugin;

/// The longest plugin name.
const MAX_NAME: usize = 64;

/// A plugin name that is safe as a file stem and an object name:
/// `[a-z0-9][a-z0-9_-]{0,63}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginName(String);

impl TryFrom<&str> for PluginName {
    type Error = InstallError;

    fn try_from(name: &str) -> Result<Self, Self::Error> {
        let mut chars = name.chars();
        let first = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if first && rest && name.len() <= MAX_NAME {
            Ok(Self(name.to_owned()))
        } else {
            Err(InstallError::Name(name.to_owned()))
        }
    }
}

impl PluginName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PluginName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a plugin was not installed or removed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The name is not a plugin name.
    #[error(
        "{0:?} is not a plugin name: 1 to {MAX_NAME} lowercase letters, digits, '-' and '_', \
         starting with a letter or a digit"
    )]
    Name(String),
    /// The name is a built-in plugin's.
    #[error("{0} is a built-in plugin: it cannot be replaced or removed")]
    Builtin(PluginName),
    /// The manifest is not valid.
    #[error("manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// The manifest is not UTF-8 text.
    #[error("manifest: not UTF-8 text")]
    ManifestText,
    /// The component does not load.
    #[error("wasm: {0}")]
    Wasm(#[from] LoadError),
    /// No plugin of that name is installed.
    #[error("no plugin named {0}")]
    NotFound(PluginName),
    /// Writing or removing the files (the error names which).
    #[error(transparent)]
    Store(#[from] std::io::Error),
    /// A worker thread (compiling, writing) died.
    #[error("a worker thread failed: {0}")]
    Thread(String),
}

/// An installed plugin.
#[derive(Debug, Clone)]
pub struct Installed {
    /// SHA-256 of its wasm.
    pub digest: String,
    /// Whether it replaced a plugin of the same name.
    pub replaced: bool,
    /// When it was in place: a load of it is later.
    pub at: std::time::SystemTime,
}

/// Checks and installs plugins sent over the API.
#[derive(Debug, Clone)]
pub struct Installer {
    engine: WasmEngine,
    defaults: DefaultLimits,
    max_memory: usize,
    files: Arc<dyn PluginFiles>,
    flags: Arc<dyn Flags>,
}

impl Installer {
    /// An installer that checks with the plugins directory's own engine,
    /// default limits and memory maximum, writes to `files`, and starts a
    /// new run of failures in `flags` for each new version.
    pub fn new(
        engine: WasmEngine,
        (defaults, max_memory): (DefaultLimits, usize),
        files: Arc<dyn PluginFiles>,
        flags: Arc<dyn Flags>,
    ) -> Self {
        Self {
            engine,
            defaults,
            max_memory,
            files,
            flags,
        }
    }

    /// Checks `wasm` and `manifest` as plugin `name`, then installs them.
    pub async fn install(
        &self,
        name: &PluginName,
        wasm: Vec<u8>,
        manifest: Vec<u8>,
    ) -> Result<Installed, InstallError> {
        not_builtin(name)?;
        let text = std::str::from_utf8(&manifest).map_err(|_| InstallError::ManifestText)?;
        let parsed = Manifest::parse(text, &self.defaults, self.max_memory, |v| {
            std::env::var(v).ok()
        })?;
        let (engine, plugin) = (self.engine.clone(), name.to_string());
        let (wasm, loaded) = tokio::task::spawn_blocking(move || {
            let loaded = Plugin::load(&engine, &plugin, &wasm, &parsed.config, parsed.limits);
            (wasm, loaded)
        })
        .await
        .map_err(|e| InstallError::Thread(e.to_string()))?;
        let digest = loaded?.digest().to_owned();
        let replaced = self.files.put(name.as_str(), wasm, manifest).await?;
        // A new version starts a new run of failures, on every host.
        self.flags.renewed(name.as_str()).await?;
        Ok(Installed {
            digest,
            replaced,
            at: std::time::SystemTime::now(),
        })
    }

    /// Removes plugin `name`.
    pub async fn remove(&self, name: &PluginName) -> Result<(), InstallError> {
        not_builtin(name)?;
        if self.files.remove(name.as_str()).await? {
            Ok(())
        } else {
            Err(InstallError::NotFound(name.clone()))
        }
    }
}

fn not_builtin(name: &PluginName) -> Result<(), InstallError> {
    if BuiltinPlugin::ALL.iter().any(|k| k.name() == name.as_str()) {
        return Err(InstallError::Builtin(name.clone()));
    }
    Ok(())
}

/// `NAME.wasm` and `NAME.toml` in `dir`.
/// This host's plugins directory, with the lock that keeps its watcher
/// out while files change.
#[derive(Debug, Clone)]
pub struct Directory {
    dir: PathBuf,
    lock: DirLock,
}

impl Directory {
    /// The directory `dir` whose watcher takes `lock` for each look.
    pub fn new(dir: PathBuf, lock: DirLock) -> Self {
        Self { dir, lock }
    }

    fn pair(&self, name: &str) -> [PathBuf; 2] {
        ["wasm", "toml"].map(|ext| self.dir.join(format!("{name}.{ext}")))
    }
}

#[async_trait::async_trait]
impl PluginFiles for Directory {
    /// Writes the pair beside its place, synced, then renames both into
    /// place with the watcher kept out.
    async fn put(&self, name: &str, wasm: Vec<u8>, manifest: Vec<u8>) -> std::io::Result<bool> {
        let places = self.pair(name);
        let staged = places.clone().map(|path| {
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
            self.dir
                .join(format!(".{}.upload", file.unwrap_or_default()))
        });
        let to_write = staged.clone();
        tokio::task::spawn_blocking(move || {
            for (path, bytes) in to_write.iter().zip([wasm, manifest]) {
                if let Err(source) = crate::files::write_synced(path, &bytes) {
                    for path in &to_write {
                        let _ = std::fs::remove_file(path);
                    }
                    return Err(named(path, source));
                }
            }
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)??;
        let _writing = self.lock.lock().await;
        let mut replaced = false;
        for (from, to) in staged.iter().zip(&places) {
            replaced |= tokio::fs::try_exists(to).await.unwrap_or(false);
            tokio::fs::rename(from, to)
                .await
                .map_err(|e| named(to, e))?;
        }
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            crate::files::sync_dir(&dir).map_err(|e| named(&dir, e))
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(replaced)
    }

    async fn remove(&self, name: &str) -> std::io::Result<bool> {
        let _writing = self.lock.lock().await;
        let mut existed = false;
        // The manifest first: a module without one is not loaded.
        let [wasm, manifest] = self.pair(name);
        for path in [manifest, wasm] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => existed = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(named(&path, source)),
            }
        }
        Ok(existed)
    }
}

/// `source`, its message naming `path`.
fn named(path: &Path, source: std::io::Error) -> std::io::Error {
    std::io::Error::new(source.kind(), format!("{}: {source}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_file_stems() {
        for good in ["a", "my-hook", "hook_2", "0x", &"a".repeat(64)] {
            assert!(PluginName::try_from(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            "x/y",
            ".x",
            "-x",
            "_x",
            "X",
            "a.b",
            "a b",
            &"a".repeat(65),
        ] {
            assert!(PluginName::try_from(bad).is_err(), "{bad}");
        }
    }
}
