//! The plugins directory: `NAME.wasm` + `NAME.toml` pairs, loaded at start
//! and watched by polling, so that adding, replacing or removing a file
//! takes effect without a restart.
//!
//! A file must look the same on two polls in a row before it is loaded, so
//! a copy in progress is not mistaken for a broken plugin.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::manifest::Manifest;
use super::registry::{Hook, Registry};
use crate::runtime::{Limits, Plugin, WasmEngine};

/// How often the directory is looked at. Two polls make a change stable,
/// so a change takes effect within about a second.
pub const POLL_INTERVAL: Duration = Duration::from_millis(400);

/// Size and modification time of a file: enough to notice a change.
type Stamp = Option<(u64, SystemTime)>;

/// What is on disk for one plugin name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Files {
    wasm: Stamp,
    manifest: Stamp,
}

/// Loads plugins from a directory into a [`Registry`].
#[derive(Debug)]
pub struct PluginDir {
    dir: PathBuf,
    engine: WasmEngine,
    defaults: Limits,
    max_memory: usize,
    registry: Arc<Registry>,
    /// What each name looked like at the previous poll.
    seen: BTreeMap<String, Files>,
    /// What each name looked like when it was last acted on.
    done: BTreeMap<String, Files>,
}

impl PluginDir {
    /// A loader for `dir`; nothing is read until [`Self::scan`].
    pub fn new(
        dir: PathBuf,
        engine: WasmEngine,
        defaults: Limits,
        max_memory: usize,
        registry: Arc<Registry>,
    ) -> Self {
        Self {
            dir,
            engine,
            defaults,
            max_memory,
            registry,
            seen: BTreeMap::new(),
            done: BTreeMap::new(),
        }
    }

    /// Looks at the directory once and acts on every stable change. With
    /// `settle` false (the first scan at start), files are taken as they are.
    pub async fn scan(&mut self, settle: bool) {
        let now = match read_dir(&self.dir).await {
            Ok(now) => now,
            Err(err) => {
                tracing::warn!(dir = %self.dir.display(), "cannot read the plugins directory: {err}");
                return;
            }
        };
        let gone: Vec<String> = self
            .done
            .keys()
            .filter(|n| !now.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            tracing::info!(plugin = %name, "plugin removed");
            self.registry.remove(&name, None);
            self.done.remove(&name);
        }
        for (name, files) in &now {
            let stable = !settle || self.seen.get(name) == Some(files);
            if stable && self.done.get(name) != Some(files) {
                self.act(name, *files).await;
                self.done.insert(name.clone(), *files);
            }
        }
        self.seen = now;
    }

    /// Scans every [`POLL_INTERVAL`] until `shutdown` resolves.
    pub async fn watch(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => self.scan(true).await,
            }
        }
    }

    async fn act(&self, name: &str, files: Files) {
        match (files.wasm, files.manifest) {
            (Some(_), Some(_)) => match self.load(name).await {
                Ok(hook) => {
                    tracing::info!(plugin = %name, digest = %hook.plugin.digest(), event = %hook.manifest.event, "plugin loaded");
                    self.registry.install(hook);
                }
                Err(err) => {
                    tracing::error!(plugin = %name, "plugin not loaded: {err}");
                    self.registry.failed(name, err);
                }
            },
            (Some(_), None) => self.missing(name, format!("{name}.toml (its manifest) is missing")),
            (None, _) => self.missing(name, format!("{name}.wasm is missing")),
        }
    }

    fn missing(&self, name: &str, reason: String) {
        tracing::warn!(plugin = %name, "plugin not running: {reason}");
        self.registry.remove(name, Some(reason));
    }

    async fn load(&self, name: &str) -> Result<Hook, String> {
        let manifest_path = self.dir.join(format!("{name}.toml"));
        let wasm_path = self.dir.join(format!("{name}.wasm"));
        let text = tokio::fs::read_to_string(&manifest_path)
            .await
            .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
        let manifest = Manifest::parse(&text, &self.defaults, self.max_memory, |v| {
            std::env::var(v).ok()
        })
        .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
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
            manifest,
            plugin,
        })
    }
}

/// Whether a file stem is a usable plugin name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

async fn read_dir(dir: &Path) -> std::io::Result<BTreeMap<String, Files>> {
    let mut out: BTreeMap<String, Files> = BTreeMap::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        if !matches!(ext, "wasm" | "toml") || !valid_name(stem) {
            continue;
        }
        let Ok(meta) = entry.metadata().await else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let stamp = Some((
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        ));
        let files = out.entry(stem.to_owned()).or_insert(Files {
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
