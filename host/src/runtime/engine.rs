//! The one wasmtime [`Engine`] of the host, its linker, and the compiled-code
//! cache.
//!
//! One configuration for every plugin: async calls, epoch interruption, the
//! pooling allocator, the component model. Compiled components are kept in
//! the data directory, keyed by the wasm's digest and the engine's
//! compatibility hash, so a restart does not recompile.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{Webhook, WebhookPre};
use super::state::HostState;

/// How often the epoch advances; the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

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
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a valid component.
    #[error("not a valid WebAssembly component: {0:#}")]
    Compile(wasmtime::Error),
    /// The component does not fit the `edgehook:webhook@0.1.0` world, or
    /// imports something the host does not give.
    #[error("does not match the edgehook:webhook@0.1.0 world: {0:#}")]
    World(wasmtime::Error),
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
    cache_dir: Option<PathBuf>,
    /// One permit per pool slot: a call waits here rather than failing when
    /// every slot is in use.
    slots: Arc<Semaphore>,
    _ticker: Arc<Ticker>,
}

impl std::fmt::Debug for WasmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmEngine")
            .field("cache_dir", &self.cache_dir)
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
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Webhook::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)?;
        let ticker = Ticker::start(engine.clone())?;
        if let Some(dir) = &opts.cache_dir {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache_dir: opts.cache_dir.clone(),
            slots: Arc::new(Semaphore::new(opts.instances as usize)),
            _ticker: Arc::new(ticker),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Waits for a free instance slot.
    pub async fn slot(&self) -> SemaphorePermit<'_> {
        self.slots
            .acquire()
            .await
            .expect("the slot semaphore is never closed")
    }

    /// Compiles (or loads from the cache) a component and checks it against
    /// the world. CPU-heavy on a cache miss: call from a blocking thread.
    pub fn prepare(&self, wasm: &[u8], digest: &str) -> Result<WebhookPre<HostState>, LoadError> {
        let component = self.component(wasm, digest)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(LoadError::World)?;
        WebhookPre::new(pre).map_err(LoadError::World)
    }

    fn component(&self, wasm: &[u8], digest: &str) -> Result<Component, LoadError> {
        let Some(path) = self.cache_path(digest) else {
            return Component::new(&self.engine, wasm).map_err(LoadError::Compile);
        };
        if path.exists() {
            match load_cached(&self.engine, &path) {
                Ok(component) => return Ok(component),
                Err(err) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached code: {err:#}")
                }
            }
        }
        let compiled = self
            .engine
            .precompile_component(wasm)
            .map_err(LoadError::Compile)?;
        if let Err(err) = write_atomically(&path, &compiled) {
            tracing::warn!(path = %path.display(), "cannot cache compiled code: {err}");
        }
        load_cached(&self.engine, &path)
            .or_else(|_| Component::new(&self.engine, wasm))
            .map_err(LoadError::Compile)
    }

    fn cache_path(&self, digest: &str) -> Option<PathBuf> {
        let mut hasher = DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        let engine_hash = hasher.finish();
        self.cache_dir
            .as_ref()
            .map(|dir| dir.join(format!("{digest}-{engine_hash:016x}.cwasm")))
    }
}

#[expect(
    unsafe_code,
    reason = "the file is compiled code this host wrote into its own data directory \
              for this engine's configuration; wasmtime checks its header and version"
)]
fn load_cached(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: see the reason above: only this host writes these files, named
    // by the engine's compatibility hash, and wasmtime validates the header.
    unsafe { Component::deserialize_file(engine, path) }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on its own OS thread, so
/// deadlines fire even when every async worker is busy running guests.
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let weak = engine.weak();
        drop(engine);
        std::thread::Builder::new()
            .name("edgehook-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(Self { stop })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
