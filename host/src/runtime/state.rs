//! What one plugin instance owns: its WASI context (empty: no files, no
//! environment, no sockets), its memory cap and its log.
//!
//! A [`HostState`] lives in exactly one `Store`, which lives for the calls
//! of exactly one event, so nothing here is shared between devices.

use std::sync::{Arc, Mutex, PoisonError};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{v0_1, v0_2};
use super::keyvalue::KvAccess;
use super::output::{GuestLog, GuestOutput};

/// Most table elements a plugin instance may have; Rust guests use a few
/// hundred at most.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The store data of one event's instance.
pub struct HostState {
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    /// The plugin's configuration as a JSON object, rendered once at load.
    config: Arc<str>,
    /// Everything the guest logged or printed during the current call.
    pub log: Arc<Mutex<GuestLog>>,
    /// Enforces the plugin's memory cap and remembers whether it was hit.
    pub limits: MemoryCap,
    /// The key-value buckets the instance may open; `None` where there is
    /// no store.
    pub(super) kv: Option<KvAccess>,
}

impl std::fmt::Debug for HostState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostState")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl HostState {
    /// Fresh state for one event's instance.
    pub fn new(
        config: Arc<str>,
        memory_cap: usize,
        log_budget: usize,
        kv: Option<KvAccess>,
    ) -> Self {
        let log = Arc::new(Mutex::new(GuestLog::new(log_budget)));
        let wasi = WasiCtx::builder()
            .stdout(GuestOutput::new(log.clone(), "stdout"))
            .stderr(GuestOutput::new(log.clone(), "stderr"))
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            config,
            log,
            limits: MemoryCap {
                cap: memory_cap,
                hit: false,
                high_water: 0,
            },
            kv,
        }
    }

    fn log_mut(&self) -> std::sync::MutexGuard<'_, GuestLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HostState {
    fn log_line(&mut self, tag: &'static str, message: &str) {
        self.log_mut().push(tag, message.as_bytes());
    }
}

impl v0_2::edgehook::webhook::types::Host for HostState {}

impl v0_2::edgehook::webhook::host::Host for HostState {
    fn log(&mut self, level: v0_2::edgehook::webhook::host::Level, message: String) {
        use v0_2::edgehook::webhook::host::Level;
        let tag = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.log_line(tag, &message);
    }

    fn config(&mut self) -> String {
        self.config.to_string()
    }
}

impl v0_1::edgehook::webhook::types::Host for HostState {}

/// The first release's host interface is the current one's.
impl v0_1::edgehook::webhook::host::Host for HostState {
    fn log(&mut self, level: v0_1::edgehook::webhook::host::Level, message: String) {
        v0_2::edgehook::webhook::host::Host::log(self, super::compat::level(level), message);
    }

    fn config(&mut self) -> String {
        v0_2::edgehook::webhook::host::Host::config(self)
    }
}

/// The memory cap of one plugin instance.
#[derive(Debug)]
pub struct MemoryCap {
    cap: usize,
    /// Set when the guest asked for more than `cap`: its failure that follows
    /// is then reported as a memory limit, not as a plain trap.
    pub hit: bool,
    /// Largest linear memory seen, for the per-plugin metrics.
    pub high_water: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.hit = true;
            return Ok(false);
        }
        self.high_water = self.high_water.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
