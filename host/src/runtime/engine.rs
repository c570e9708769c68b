//! The one wasmtime [`Engine`] of the host: its configuration (async calls,
//! epoch interruption, the pooling allocator, the component model), its
//! pool of instance slots, and the compiled-code cache. Compiled components
//! are kept in the data directory ([`CodeCache`]), so a restart does not
//! recompile; each is checked against the world ([`super::world`]) before
//! it becomes a plugin.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::cache::CodeCache;
use super::plugin::Pre;
use super::state::HostState;
use super::ticker::{Running, Ticker};
use super::world::{LoadError, instantiate_pre, is_core_module, linker};
use crate::stores::KeyValue;

/// Linear memory kept paged in between instances in one pool slot: enough
/// for a typical transform's working set (a Rust guest starts at 1.1 MiB),
/// so reuse costs no page faults and no `madvise`.
const KEEP_RESIDENT: usize = 4 << 20;

/// The same for the async stack of a call.
const STACK_KEEP_RESIDENT: usize = 256 << 10;

/// Sizing of the engine, from the host configuration.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Most plugin instances alive at once (pool slots); calls beyond it wait.
    pub instances: u32,
    /// The largest memory any plugin may be given.
    pub max_memory: usize,
    /// Where compiled code is cached; `None` to compile every time.
    pub cache_dir: Option<PathBuf>,
    /// Where the plugins' key-value buckets are kept; `None`: plugins
    /// cannot keep state (`open` fails with a message that says so).
    pub kv: Option<Arc<dyn KeyValue>>,
}

/// Why the engine could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// wasmtime refused the configuration (e.g. the pool does not fit).
    #[error("wasmtime: {0:#}")]
    Wasmtime(wasmtime::Error),
    /// The cache directory or the epoch thread could not be created.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<wasmtime::Error> for EngineError {
    fn from(err: wasmtime::Error) -> Self {
        Self::Wasmtime(err)
    }
}

/// The engine, the linker and the epoch ticker.
#[derive(Clone)]
pub struct WasmEngine {
    engine: Engine,
    linker: Arc<Linker<HostState>>,
    cache: Option<CodeCache>,
    /// One permit per pool slot: a call waits here rather than failing when
    /// every slot is in use.
    slots: Arc<Semaphore>,
    /// The number of pool slots.
    instances: usize,
    ticker: Arc<Ticker>,
    kv: Option<Arc<dyn KeyValue>>,
}

impl std::fmt::Debug for WasmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmEngine")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl WasmEngine {
    /// Builds the engine and starts its epoch ticker.
    pub fn new(opts: &EngineOptions) -> Result<Self, EngineError> {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(opts.instances)
            .total_core_instances(opts.instances * 8)
            .total_memories(opts.instances * 2)
            .total_tables(opts.instances * 8)
            .total_stacks(opts.instances)
            .max_memory_size(opts.max_memory)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(STACK_KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .wasm_component_model(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)?;
        let linker = linker(&engine)?;
        let ticker = Ticker::start(engine.clone())?;
        let cache = opts
            .cache_dir
            .as_deref()
            .map(|dir| CodeCache::open(dir, &engine))
            .transpose()?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache,
            slots: Arc::new(Semaphore::new(opts.instances as usize)),
            instances: opts.instances as usize,
            ticker: Arc::new(ticker),
            kv: opts.kv.clone(),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Where the plugins' buckets are kept, if anywhere.
    pub(super) fn kv(&self) -> Option<&Arc<dyn KeyValue>> {
        self.kv.as_ref()
    }

    /// Waits for a free instance slot.
    pub async fn slot(&self) -> Slot {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the slot semaphore is never closed");
        Slot { _permit: permit }
    }

    /// Whether at least half of the slots are free: only then may an
    /// instance outlive its call (see [`crate::runtime::KeptInstance`]), so that
    /// instances kept across requests never take more than half the pool
    /// from the calls that need one now.
    pub fn is_roomy(&self) -> bool {
        self.slots.available_permits() * 2 >= self.instances
    }

    /// A call runs: the epoch advances while the guard lives.
    pub fn running(&self) -> Running<'_> {
        self.ticker.enter()
    }

    /// Compiles (or loads from the cache) a component and checks it against
    /// the world. CPU-heavy on a cache miss: call from a blocking thread.
    pub(super) fn prepare(&self, wasm: &[u8], digest: &str) -> Result<Pre, LoadError> {
        let component = self.component(wasm, digest)?;
        instantiate_pre(&self.engine, &self.linker, &component)
    }

    fn component(&self, wasm: &[u8], digest: &str) -> Result<Component, LoadError> {
        if is_core_module(wasm) {
            return Err(LoadError::CoreModule);
        }
        let Some(cache) = &self.cache else {
            return Component::new(&self.engine, wasm).map_err(LoadError::Compile);
        };
        if let Some(component) = cache.load(&self.engine, digest) {
            return Ok(component);
        }
        let compiled = self
            .engine
            .precompile_component(wasm)
            .map_err(LoadError::Compile)?;
        cache
            .store(&self.engine, digest, &compiled)
            .map_err(LoadError::Compile)
    }
}

/// A pool slot, held by an instance from its creation to its drop.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fixtures::PARTICLE_WASM;

    fn engine() -> WasmEngine {
        WasmEngine::new(&EngineOptions {
            instances: 1,
            max_memory: 16 << 20,
            cache_dir: None,
            kv: None,
        })
        .expect("engine")
    }

    #[test]
    fn bytes_that_are_not_a_component_say_so() {
        let engine = engine();
        let load = |wasm: &[u8]| engine.prepare(wasm, "test").map(|_| ()).unwrap_err();

        let core = load(b"\0asm\x01\0\0\0");
        assert!(matches!(core, LoadError::CoreModule), "{core}");
        assert!(
            core.to_string().starts_with(
                "the file is a core wasm module, not a component; build for wasm32-wasip2"
            ),
            "{core}"
        );

        let truncated = load(&PARTICLE_WASM[..PARTICLE_WASM.len() / 2]);
        assert!(matches!(truncated, LoadError::Compile(_)), "{truncated}");
        let text = truncated.to_string();
        assert!(
            text.starts_with("not a valid WebAssembly component: ") && text.len() > 40,
            "{text}"
        );

        let random = load(
            &(0..4096u32)
                .map(|i| (i * 7919 % 251) as u8)
                .collect::<Vec<_>>(),
        );
        assert!(matches!(random, LoadError::Compile(_)), "{random}");

        assert!(engine.prepare(PARTICLE_WASM, "particle").is_ok());
    }
}
