//! A loaded plugin: its compiled, pre-linked component, its configuration,
//! its limits and its running counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::bindings::{v0_1, v0_2};
use super::call_error::CallError;
use super::engine::WasmEngine;
use super::state::HostState;
use super::world::LoadError;
use super::{Limits, PluginLimits};
use crate::streak::Streak;

/// A plugin ready to run: compiled once, instantiated fresh for every call.
#[derive(Clone)]
pub struct Plugin {
    pub(super) name: Arc<str>,
    pub(super) digest: Arc<str>,
    pub(super) pre: Pre,
    pub(super) engine: WasmEngine,
    /// The configuration as JSON, rendered once at load and handed to every
    /// instance that asks.
    pub(super) config: Arc<str>,
    pub(super) limits: PluginLimits,
    pub(super) stats: Arc<PluginStats>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .field("limits", &self.limits())
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
        limits: impl Into<PluginLimits>,
    ) -> Result<Self, LoadError> {
        let digest = digest(wasm);
        let pre = engine.prepare(wasm, &digest)?;
        Ok(Self {
            name: name.into(),
            digest: digest.into(),
            pre,
            engine: engine.clone(),
            config: config.to_string().into(),
            limits: limits.into(),
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

    /// The version of `edgehook:webhook` the plugin implements (`0.2.0`).
    pub fn world_version(&self) -> &'static str {
        self.pre.version()
    }

    /// SHA-256 of the wasm, in hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The limits in force: the next call runs under them.
    pub fn limits(&self) -> Limits {
        self.limits.current()
    }

    /// The plugin's counters, shared.
    pub fn stats_handle(&self) -> Arc<PluginStats> {
        self.stats.clone()
    }

    /// Whether it may keep key-value state (it imports the `state` world).
    pub fn keeps_state(&self) -> bool {
        matches!(self.pre, Pre::V0_3(_))
    }
}

/// A plugin compiled and linked against the world it implements.
#[derive(Clone)]
pub(super) enum Pre {
    /// `edgehook:webhook/webhook@0.3.0`: 0.2.0 that imports key-value
    /// state.
    V0_3(v0_2::WebhookPre<HostState>),
    /// `edgehook:webhook/webhook@0.2.0`.
    V0_2(v0_2::WebhookPre<HostState>),
    /// `edgehook:webhook/webhook@0.1.0`.
    V0_1(v0_1::WebhookPre<HostState>),
}

/// One instance of a plugin, of the world it implements.
pub(super) enum Instance {
    V0_2(v0_2::Webhook),
    V0_1(v0_1::Webhook),
}

impl Pre {
    pub(super) async fn instantiate_async(
        &self,
        store: &mut wasmtime::Store<HostState>,
    ) -> wasmtime::Result<Instance> {
        Ok(match self {
            Self::V0_3(pre) | Self::V0_2(pre) => {
                Instance::V0_2(pre.instantiate_async(store).await?)
            }
            Self::V0_1(pre) => Instance::V0_1(pre.instantiate_async(store).await?),
        })
    }

    /// The version of the world, as `0.2.0`.
    pub(super) fn version(&self) -> &'static str {
        match self {
            Self::V0_3(_) => "0.3.0",
            Self::V0_2(_) => "0.2.0",
            Self::V0_1(_) => "0.1.0",
        }
    }
}

/// SHA-256 of some bytes, in hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Counters of one plugin's calls, and whether a crash loop suspended it.
/// A new version of a plugin (or a replaced webhook) is a new [`Plugin`]
/// with fresh counters, which is how a suspended plugin resumes.
#[derive(Debug, Default)]
pub struct PluginStats {
    /// Calls made.
    pub calls: AtomicU64,
    /// Time the calls ran, in nanoseconds: the time the host spent inside
    /// them, not the time they waited for a slot or yielded to other tasks.
    pub call_nanos: AtomicU64,
    /// Largest linear memory of any instance, in bytes.
    pub memory_high_water: AtomicU64,
    /// Bytes of log and stdout/stderr dropped over the per-call budget.
    pub log_bytes_dropped: AtomicU64,
    /// Key-value operations that read (`get`, `exists`, `list-keys`, a
    /// `cas`'s read, `get-many`), that wrote (`set`, `delete`,
    /// `increment`, `swap`, `set-many`, `delete-many`, `set-with-ttl`),
    /// and those of either that failed.
    pub kv_reads: AtomicU64,
    /// See [`Self::kv_reads`].
    pub kv_writes: AtomicU64,
    /// See [`Self::kv_reads`].
    pub kv_errors: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    last_error: Mutex<Option<String>>,
    streak: Streak,
}

impl PluginStats {
    /// Counts one call that ran `took` with at most `memory` bytes of
    /// linear memory.
    pub(super) fn record_call(&self, took: Duration, memory: usize) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.call_nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.memory_high_water
            .fetch_max(memory as u64, Ordering::Relaxed);
    }

    /// Counts the final result of a call: its error by cause, and its place
    /// in the run of failures. `Some(reason)` when this result suspended the
    /// plugin.
    pub(super) fn record_result<T>(
        &self,
        name: &str,
        result: &Result<T, CallError>,
        suspend_after: u32,
    ) -> Option<String> {
        if let Err(err) = result {
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
        let failure = match result {
            Err(err) if err.is_failure() => Some(err as &dyn std::fmt::Display),
            _ => None,
        };
        // A failure is a call the sandbox had to stop or refuse (trap,
        // deadline, memory, invalid result, failed instantiation). The
        // plugin's own error is a deliberate answer: it proves the plugin
        // runs, so, like a success, it ends the run.
        self.streak.record(failure, suspend_after, |n, err| {
            format!(
                "plugin {name} is suspended after {n} consecutive {} (last: {err}); \
                 drop in a new version to resume",
                crate::streak::failures(n)
            )
        })
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

    /// Why the plugin is suspended, if it is: it is then not called.
    pub fn suspended(&self) -> Option<String> {
        self.streak.tripped().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trap() -> CallError {
        CallError::Trap {
            plugin: "p".into(),
            message: "wasm trap: unreachable".into(),
        }
    }

    fn own_error() -> CallError {
        CallError::Plugin {
            plugin: "p".into(),
            message: "no".into(),
        }
    }

    #[test]
    fn suspends_after_the_threshold_of_failures_in_a_row_naming_the_last() {
        let stats = PluginStats::default();
        assert_eq!(stats.record_result::<()>("p", &Err(trap()), 3), None);
        assert_eq!(stats.record_result::<()>("p", &Err(trap()), 3), None);
        let deadline = CallError::Deadline {
            plugin: "p".into(),
            limit_ms: 50,
        };
        let reason = stats.record_result::<()>("p", &Err(deadline), 3).unwrap();
        assert_eq!(
            reason,
            "plugin p is suspended after 3 consecutive failures \
             (last: plugin p ran past its time limit of 50 ms); drop in a new version to resume"
        );
        assert_eq!(stats.suspended(), Some(reason));
    }

    #[test]
    fn a_success_or_the_plugins_own_error_ends_the_run() {
        let stats = PluginStats::default();
        for _ in 0..5 {
            assert_eq!(stats.record_result::<()>("p", &Err(trap()), 3), None);
            assert_eq!(stats.record_result::<()>("p", &Err(trap()), 3), None);
            assert_eq!(stats.record_result::<()>("p", &Err(own_error()), 3), None);
            assert_eq!(stats.record_result("p", &Ok(()), 3), None);
        }
        assert_eq!(stats.suspended(), None);
        assert_eq!(stats.errors().get("trap"), Some(&10));
        assert_eq!(stats.errors().get("plugin"), Some(&5));
    }

    #[test]
    fn a_threshold_of_one_suspends_on_the_first_failure() {
        let stats = PluginStats::default();
        assert_eq!(stats.record_result("p", &Ok(()), 1), None);
        assert!(stats.record_result::<()>("p", &Err(trap()), 1).is_some());
        assert!(
            stats
                .suspended()
                .unwrap()
                .contains("after 1 consecutive failure (last")
        );
    }
}
