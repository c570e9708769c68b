//! A loaded plugin: its compiled, pre-linked component, its configuration,
//! its limits and its running counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::bindings::WebhookPre;
use super::call::CallError;
use super::engine::{LoadError, WasmEngine};
use super::limits::Limits;
use super::state::HostState;

/// A plugin ready to run: compiled once, instantiated fresh for every call.
#[derive(Clone)]
pub struct Plugin {
    pub(super) name: Arc<str>,
    pub(super) digest: Arc<str>,
    pub(super) pre: WebhookPre<HostState>,
    pub(super) engine: WasmEngine,
    /// The configuration as JSON, rendered once at load and handed to every
    /// instance that asks.
    pub(super) config: Arc<str>,
    pub(super) limits: Limits,
    pub(super) stats: Arc<PluginStats>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Compiles `wasm` (or takes it from the cache) and checks it against the
    /// world. CPU-heavy on a cache miss: call it from a blocking thread.
    pub fn load(
        engine: &WasmEngine,
        name: &str,
        wasm: &[u8],
        config: &serde_json::Value,
        limits: Limits,
    ) -> Result<Self, LoadError> {
        let digest = digest(wasm);
        let pre = engine.prepare(wasm, &digest)?;
        Ok(Self {
            name: name.into(),
            digest: digest.into(),
            pre,
            engine: engine.clone(),
            config: config.to_string().into(),
            limits,
            stats: Arc::default(),
        })
    }

    /// The same compiled plugin under another name with another
    /// configuration and counters of its own: one compiled built-in plugin
    /// serves every webhook of its dialect.
    pub fn configured(&self, name: &str, config: &serde_json::Value) -> Self {
        Self {
            name: name.into(),
            config: config.to_string().into(),
            stats: Arc::default(),
            ..self.clone()
        }
    }

    /// The plugin's name (its file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the wasm, in hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The limits applied to every call.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The plugin's counters, shared.
    pub fn stats_handle(&self) -> Arc<PluginStats> {
        self.stats.clone()
    }
}

/// SHA-256 of some bytes, in hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Counters of one plugin's calls.
#[derive(Debug, Default)]
pub struct PluginStats {
    /// Calls made.
    pub calls: AtomicU64,
    /// Time spent in calls, in nanoseconds.
    pub call_nanos: AtomicU64,
    /// Largest linear memory of any instance, in bytes.
    pub memory_high_water: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    last_error: Mutex<Option<String>>,
}

impl PluginStats {
    pub(super) fn record<T>(&self, result: &Result<T, CallError>, took: Duration, memory: usize) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.call_nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.memory_high_water
            .fetch_max(memory as u64, Ordering::Relaxed);
        if let Err(err) = result {
            self.record_error(err);
        }
    }

    /// Counts an error found after the call itself returned (the plugin's
    /// own error, or a result over a limit).
    pub(super) fn record_error(&self, err: &CallError) {
        *self
            .errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(err.cause())
            .or_default() += 1;
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(err.to_string());
    }

    /// Errors so far, by cause.
    pub fn errors(&self) -> BTreeMap<&'static str, u64> {
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The last call error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
