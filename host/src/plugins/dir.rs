//! The plugins directory: `NAME.wasm` + `NAME.toml` pairs, loaded at start
//! and watched by polling, so that adding, replacing or removing a file
//! takes effect without a restart.
//!
//! A plugin is its `.wasm`: removing it removes the plugin, whether or not
//! its manifest is left; a `.wasm` without a manifest is listed as failed.
//!
//! A file must look the same on two polls in a row before it is loaded, so
//! a copy in progress is not mistaken for a broken plugin. A look at the
//! directory holds its [`DirLock`], which the API's installer takes while it
//! renames a new pair into place: a look sees both files old or both new.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::manifest::Manifest;
use crate::delivery::SendOptions;
use crate::hooks::{Filter, Hook, Registry, Retirement};
use crate::runtime::{DefaultLimits, Plugin, WasmEngine};
use crate::streak::Streak;
use crate::watch::{self, FileChange, Scan, Settle, Stamp};

/// What is on disk for one plugin name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Files {
    wasm: Stamp,
    manifest: Stamp,
}

/// Held by a look at the plugins directory, and by whoever puts a pair of
/// files in place together.
pub type DirLock = Arc<tokio::sync::Mutex<()>>;

/// Loads plugins from a directory into a [`Registry`].
#[derive(Debug)]
pub struct PluginDir {
    dir: PathBuf,
    lock: DirLock,
    engine: WasmEngine,
    defaults: DefaultLimits,
    max_memory: usize,
    registry: Arc<Registry>,
    settle: Settle<Files>,
}

impl PluginDir {
    /// A loader for `dir`; nothing is read until [`Self::scan`].
    pub fn new(
        dir: PathBuf,
        engine: WasmEngine,
        defaults: DefaultLimits,
        max_memory: usize,
        registry: Arc<Registry>,
    ) -> Self {
        Self {
            dir,
            lock: DirLock::default(),
            engine,
            defaults,
            max_memory,
            registry,
            settle: Settle::default(),
        }
    }

    /// The directory and the lock of its looks, for writing pairs into it.
    pub fn lock(&self) -> (PathBuf, DirLock) {
        (self.dir.clone(), self.lock.clone())
    }

    async fn act(&self, name: &str, files: Files) {
        match (files.wasm, files.manifest) {
            (Some(_), Some(_)) => {
                let manifest = match self.manifest(name).await {
                    Ok(manifest) => manifest,
                    Err(err) => return self.failed(name, err, None),
                };
                let filter = manifest.filter.clone();
                match self.load(name, manifest).await {
                    Ok(hook) => {
                        tracing::info!(plugin = %name, digest = %hook.plugin.digest(), world = hook.plugin.world_version(), event = %hook.filter.event, "plugin loaded");
                        self.registry.install(hook);
                    }
                    Err(err) => self.failed(name, err, Some(filter)),
                }
            }
            (Some(_), None) => self.missing(name, format!("{name}.toml (its manifest) is missing")),
            // No component, nothing to run: the plugin is gone, as when
            // both files are, whatever manifest is left behind.
            (None, Some(_)) => {
                tracing::info!(plugin = %name, "plugin removed: {name}.wasm is gone ({name}.toml alone loads nothing)");
                self.registry.remove(name, None);
            }
            (None, None) => self.registry.remove(name, None),
        }
    }

    fn failed(&self, name: &str, err: String, filter: Option<Filter>) {
        tracing::error!(plugin = %name, "plugin not loaded: {err}");
        self.registry.failed(name, err, filter);
    }

    fn missing(&self, name: &str, reason: String) {
        tracing::warn!(plugin = %name, "plugin not running: {reason}");
        self.registry.remove(name, Some(reason));
    }

    async fn manifest(&self, name: &str) -> Result<Manifest, String> {
        let manifest_path = self.dir.join(format!("{name}.toml"));
        let text = tokio::fs::read_to_string(&manifest_path)
            .await
            .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
        Manifest::parse(&text, &self.defaults, self.max_memory, |v| {
            std::env::var(v).ok()
        })
        .map_err(|e| format!("{}: {e}", manifest_path.display()))
    }

    async fn load(&self, name: &str, manifest: Manifest) -> Result<Hook, String> {
        let wasm_path = self.dir.join(format!("{name}.wasm"));
        let wasm = tokio::fs::read(&wasm_path)
            .await
            .map_err(|e| format!("{}: {e}", wasm_path.display()))?;
        let engine = self.engine.clone();
        let plugin_name = name.to_owned();
        let (config, limits) = (manifest.config.clone(), manifest.limits);
        let plugin = tokio::task::spawn_blocking(move || {
            Plugin::load(&engine, &plugin_name, &wasm, &config, limits)
        })
        .await
        .map_err(|e| format!("{}: compiler thread failed: {e}", wasm_path.display()))?
        .map_err(|e| format!("{}: {e}", wasm_path.display()))?;
        Ok(Hook {
            name: name.into(),
            filter: manifest.filter,
            allowed_hosts: manifest.allowed_hosts,
            plugin,
            send: SendOptions {
                auth: manifest.auth,
                retry: manifest.retry,
                ..SendOptions::default()
            },
            log: Arc::default(),
            failures: Streak::default(),
            one_way: false,
            retirement: Retirement::default(),
        })
    }
}

impl Scan for PluginDir {
    async fn scan(&mut self, settle: bool) {
        let lock = self.lock.clone();
        let _looking = lock.lock().await;
        let now = match read_dir(&self.dir).await {
            Ok(now) => now,
            Err(err) => {
                tracing::warn!(dir = %self.dir.display(), "cannot read the plugins directory: {err}");
                return;
            }
        };
        for change in self.settle.changes(now, settle) {
            match change {
                FileChange::Gone(name) => {
                    tracing::info!(plugin = %name, "plugin removed");
                    self.registry.remove(&name, None);
                }
                FileChange::Changed(name, files) => self.act(&name, files).await,
            }
        }
    }
}

async fn read_dir(dir: &Path) -> std::io::Result<BTreeMap<String, Files>> {
    let mut out: BTreeMap<String, Files> = BTreeMap::new();
    for (stem, ext, stamp) in watch::files(dir, &["wasm", "toml"]).await? {
        let files = out.entry(stem).or_insert(Files {
            wasm: None,
            manifest: None,
        });
        if ext == "wasm" {
            files.wasm = stamp;
        } else {
            files.manifest = stamp;
        }
    }
    Ok(out)
}
