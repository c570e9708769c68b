//! The one wasmtime [`Engine`] of the host, its linker, and the compiled-code
//! cache.
//!
//! One configuration for every plugin: async calls, epoch interruption, the
//! pooling allocator, the component model. Compiled components are kept in
//! the data directory ([`CodeCache`]), so a restart does not recompile.
//!
//! The linker gives a plugin the `edgehook:webhook` host interface (of
//! 0.2.0, the current world, and of 0.1.0, the first release) and
//! the few WASI p2 interfaces a Rust `wasm32-wasip2` guest imports in
//! practice ([`GIVEN_WASI`]): no sockets, no HTTP, no files. A plugin that
//! imports anything else fails to load, with a [`LoadError`] that names the
//! interface.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, HasData, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::bindings::{cli, clocks, io, random};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};

use super::bindings::{v0_1, v0_2};
use super::cache::CodeCache;
use super::plugin::Pre;
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

/// The worlds a plugin may implement, as errors name them.
const WORLD: &str = "edgehook:webhook/webhook@0.2.0 (or @0.1.0)";

/// Why a plugin could not be loaded. The caller puts the file's name in
/// front of the message.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A core module (`wasm32-unknown-unknown`, `wasm32-wasip1`), not a
    /// component.
    #[error(
        "the file is a core wasm module, not a component; build for wasm32-wasip2 \
         (`cargo build --release --target wasm32-wasip2`)"
    )]
    CoreModule,
    /// The bytes are not a valid component (truncated, corrupt, not wasm).
    #[error("not a valid WebAssembly component: {0:#}")]
    Compile(wasmtime::Error),
    /// A valid component of another world: an export of ours is missing or
    /// has another type.
    #[error("does not implement {WORLD}: {missing}")]
    Exports {
        /// What is missing, e.g. "no `on-event` export".
        missing: String,
    },
    /// The component imports an interface the host does not give plugins.
    #[error(
        "the component imports {interface}{others}, which edgehook does not give plugins ({why})",
        others = and_more(*.others)
    )]
    NotGiven {
        /// The first import not given, with its version.
        interface: String,
        /// How many other imports are not given either.
        others: usize,
        /// Why plugins do not get it.
        why: &'static str,
    },
    /// The component does not link for another reason (an import of an
    /// incompatible version, a type that does not match).
    #[error("does not match the {WORLD} world: {0:#}")]
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
    cache: Option<CodeCache>,
    /// One permit per pool slot: a call waits here rather than failing when
    /// every slot is in use.
    slots: Arc<Semaphore>,
    /// The number of pool slots.
    instances: usize,
    ticker: Arc<Ticker>,
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
        let mut linker = Linker::new(&engine);
        for (_, add) in GIVEN_WASI {
            add(&mut linker)?;
        }
        v0_2::Webhook::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        v0_1::Webhook::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
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
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
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
    /// instance outlive its call (see [`crate::runtime::Kept`]), so that
    /// instances kept across requests never take more than half the pool
    /// from the calls that need one now.
    pub fn is_roomy(&self) -> bool {
        self.slots.available_permits() * 2 >= self.instances
    }

    /// A call runs: the epoch advances while the guard lives.
    pub fn running(&self) -> Running<'_> {
        self.ticker.enter();
        Running {
            ticker: &self.ticker,
        }
    }

    /// Compiles (or loads from the cache) a component and checks it against
    /// the world. CPU-heavy on a cache miss: call from a blocking thread.
    pub(super) fn prepare(&self, wasm: &[u8], digest: &str) -> Result<Pre, LoadError> {
        let component = self.component(wasm, digest)?;
        let ty = component.component_type();
        let exports: Vec<&str> = ty.exports(&self.engine).map(|(name, _)| name).collect();
        if let Some(missing) = missing_exports(&exports) {
            return Err(LoadError::Exports { missing });
        }
        let imports: Vec<&str> = ty.imports(&self.engine).map(|(name, _)| name).collect();
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|err| not_given(&imports).unwrap_or(LoadError::World(err)))?;
        if imports.iter().any(|name| is_first_release(name)) {
            v0_1::WebhookPre::new(pre).map(Pre::V0_1)
        } else {
            v0_2::WebhookPre::new(pre).map(Pre::V0_2)
        }
        .map_err(LoadError::World)
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

/// Adds one interface to the linker.
type AddToLinker = fn(&mut Linker<HostState>) -> wasmtime::Result<()>;

/// The WASI p2 interfaces plugins are given, by name without version, and
/// how each is added to the linker: exactly those a Rust `wasm32-wasip2`
/// guest imports. Every Rust plugin imports `wasi:io/*` and `wasi:cli/*`
/// (std's streams, environment, exit and terminal checks); `SystemTime`,
/// `Instant` and `HashMap`'s seed bring in `wasi:clocks/*` and
/// `wasi:random/*`. Each call's WASI context is empty: no environment, no
/// arguments, an empty stdin; stdout and stderr go to the plugin's log.
///
/// Not given: `wasi:sockets/*` and `wasi:http/*` (the host sends the
/// requests) and `wasi:filesystem/*` (a plugin reads nothing: only a plugin
/// that calls `std::fs` imports it, and there would be no file to reach).
const GIVEN_WASI: &[(&str, AddToLinker)] = &[
    ("wasi:io/error", |l| {
        io::error::add_to_linker::<_, Table>(l, |s| s.ctx().table)
    }),
    ("wasi:io/poll", |l| {
        io::poll::add_to_linker::<_, Table>(l, |s| s.ctx().table)
    }),
    ("wasi:io/streams", |l| {
        io::streams::add_to_linker::<_, Table>(l, |s| s.ctx().table)
    }),
    ("wasi:clocks/wall-clock", |l| {
        clocks::wall_clock::add_to_linker::<_, WasiClocks>(l, HostState::clocks)
    }),
    ("wasi:clocks/monotonic-clock", |l| {
        clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(l, HostState::clocks)
    }),
    ("wasi:random/random", |l| {
        random::random::add_to_linker::<_, WasiRandom>(l, HostState::random)
    }),
    ("wasi:random/insecure", |l| {
        random::insecure::add_to_linker::<_, WasiRandom>(l, HostState::random)
    }),
    ("wasi:random/insecure-seed", |l| {
        random::insecure_seed::add_to_linker::<_, WasiRandom>(l, HostState::random)
    }),
    ("wasi:cli/environment", |l| {
        cli::environment::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/exit", |l| {
        cli::exit::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/stdin", |l| {
        cli::stdin::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/stdout", |l| {
        cli::stdout::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/stderr", |l| {
        cli::stderr::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/terminal-input", |l| {
        cli::terminal_input::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/terminal-output", |l| {
        cli::terminal_output::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/terminal-stdin", |l| {
        cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/terminal-stdout", |l| {
        cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
    ("wasi:cli/terminal-stderr", |l| {
        cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, HostState::cli)
    }),
];

/// The version line of the WASI interfaces in [`GIVEN_WASI`]: any `0.2.x`
/// links, as wasmtime matches semver-compatible versions.
const WASI_LINE: &str = "0.2.";

/// The interfaces of our own world, and the versions the host implements.
const HOST_INTERFACES: &[&str] = &["edgehook:webhook/host", "edgehook:webhook/types"];
const HOST_VERSIONS: &[&str] = &["0.2.0", "0.1.0"];

/// The functions the world exports; a component without them is not a
/// plugin.
const WORLD_EXPORTS: &[&str] = &["on-event", "on-response"];

/// The `wasi:io` interfaces work on the resource table alone.
struct Table;

impl HasData for Table {
    type Data<'a> = &'a mut ResourceTable;
}

/// Whether `wasm` starts with the header of a core module (version 1)
/// rather than a component's.
fn is_core_module(wasm: &[u8]) -> bool {
    wasm.starts_with(b"\0asm\x01\0\0\0")
}

/// What a component exporting `exports` lacks of the world, if anything.
fn missing_exports(exports: &[&str]) -> Option<String> {
    let missing: Vec<String> = WORLD_EXPORTS
        .iter()
        .filter(|name| !exports.contains(name))
        .map(|name| format!("`{name}`"))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let exported = if exports.is_empty() {
        "nothing".to_owned()
    } else {
        exports
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(format!(
        "no {} export (it exports {exported})",
        missing.join(" or ")
    ))
}

/// Whether the linker gives the import `name` (`package/interface@version`).
fn is_given(name: &str) -> bool {
    let Some((interface, version)) = name.split_once('@') else {
        return false;
    };
    if HOST_INTERFACES.contains(&interface) {
        return HOST_VERSIONS.contains(&version);
    }
    GIVEN_WASI.iter().any(|(given, _)| *given == interface) && version.starts_with(WASI_LINE)
}

/// Whether the import `name` is of the first release of our world: a
/// plugin built against it runs as one of `edgehook:webhook@0.1.0`.
fn is_first_release(name: &str) -> bool {
    name.split_once('@').is_some_and(|(interface, version)| {
        HOST_INTERFACES.contains(&interface) && version == "0.1.0"
    })
}

/// The error for a component that imports something the linker does not
/// give, naming one such import: the first of the package that matters
/// most (a plugin that opens sockets usually imports `wasi:filesystem` as
/// well, and the sockets are the point); `None` if it imports nothing else.
fn not_given(imports: &[&str]) -> Option<LoadError> {
    let refused: Vec<&str> = imports
        .iter()
        .copied()
        .filter(|name| !is_given(name))
        .collect();
    let (rank, why) = refused.iter().map(|name| refusal(name)).min()?;
    let interface = refused.iter().find(|name| refusal(name).0 == rank)?;
    Some(LoadError::NotGiven {
        interface: (*interface).to_owned(),
        others: refused.len() - 1,
        why,
    })
}

/// Packages plugins do not get, most telling first, and why.
const REFUSED: &[(&str, &str)] = &[
    (
        "wasi:sockets",
        "no network or sockets: the host sends the requests",
    ),
    ("wasi:http", "no network: the host sends the requests"),
    (
        "wasi:filesystem",
        "no files: a plugin's settings come from its manifest's [config]",
    ),
    (
        "edgehook:webhook",
        "this host implements edgehook:webhook@0.2.0 and @0.1.0",
    ),
];

/// The rank of the interface `name` in [`REFUSED`], and why plugins do not
/// get it.
fn refusal(name: &str) -> (usize, &'static str) {
    let package = name.split('/').next().unwrap_or(name);
    REFUSED
        .iter()
        .position(|(refused, _)| *refused == package)
        .map_or(
            (
                REFUSED.len(),
                "plugins get the edgehook:webhook host interface and WASI io, clocks, random and cli only",
            ),
            |rank| (rank, REFUSED[rank].1),
        )
}

fn and_more(others: usize) -> String {
    match others {
        0 => String::new(),
        n => format!(" (and {n} more it does not give)"),
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on its own OS thread, so
/// deadlines fire even when every async worker is busy running guests.
/// It sleeps while no call has run for a whole tick: an idle
/// host has no thread waking a hundred times a second, and a busy one does
/// not wake it for every call. Deadlines count ticks from the start of each
/// call, so ticks nobody waits for are not needed.
#[derive(Debug)]
struct Ticker {
    shared: Arc<Activity>,
    thread: std::thread::Thread,
}

/// What the ticker's thread and the calls share.
#[derive(Debug, Default)]
struct Activity {
    stop: AtomicBool,
    /// Calls running.
    active: AtomicUsize,
    /// Calls that started, ever: a call that started and ended within
    /// one tick still keeps the ticker awake.
    entered: AtomicUsize,
    /// The thread is asleep (or about to be), waiting for a call.
    asleep: AtomicBool,
}

impl Ticker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let weak = engine.weak();
        drop(engine);
        let shared = Arc::new(Activity::default());
        let activity = shared.clone();
        let handle = std::thread::Builder::new()
            .name("edgehook-epoch".into())
            .spawn(move || {
                let mut seen = 0;
                while !activity.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(EPOCH_TICK);
                    let Some(engine) = weak.upgrade() else { break };
                    engine.increment_epoch();
                    drop(engine);
                    let entered = activity.entered.load(Ordering::SeqCst);
                    if entered == seen {
                        activity.sleep_until_a_call();
                    }
                    seen = entered;
                }
            })?;
        Ok(Self {
            shared,
            thread: handle.thread().clone(),
        })
    }

    /// A call starts: the epoch must advance.
    fn enter(&self) {
        let a = &self.shared;
        a.active.fetch_add(1, Ordering::SeqCst);
        a.entered.fetch_add(1, Ordering::SeqCst);
        if a.asleep.swap(false, Ordering::SeqCst) {
            self.thread.unpark();
        }
    }

    /// A call ended.
    fn leave(&self) {
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Activity {
    /// On the ticker's thread: parks while no call runs. A call
    /// that starts after `asleep` is set sees it and unparks the thread;
    /// one that started before is seen in `active`.
    fn sleep_until_a_call(&self) {
        self.asleep.store(true, Ordering::SeqCst);
        while self.active.load(Ordering::SeqCst) == 0
            && self.asleep.load(Ordering::SeqCst)
            && !self.stop.load(Ordering::SeqCst)
        {
            std::thread::park();
        }
        self.asleep.store(false, Ordering::SeqCst);
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// A pool slot, held by an instance from its creation to its drop.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

/// A call in progress: the epoch advances while one is.
#[derive(Debug)]
pub struct Running<'a> {
    ticker: &'a Ticker,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.ticker.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::builtin::PARTICLE_WASM;

    /// What `wasm32-wasip2` Rust plugins import (the thingspeak example's
    /// list), and what `std::net` adds.
    const PLUGIN_IMPORTS: &[&str] = &[
        "edgehook:webhook/host@0.1.0",
        "edgehook:webhook/types@0.1.0",
        "wasi:io/poll@0.2.6",
        "wasi:io/error@0.2.6",
        "wasi:io/streams@0.2.6",
        "wasi:cli/environment@0.2.6",
        "wasi:cli/exit@0.2.6",
        "wasi:cli/stdin@0.2.6",
        "wasi:cli/stdout@0.2.6",
        "wasi:cli/stderr@0.2.6",
        "wasi:cli/terminal-input@0.2.6",
        "wasi:cli/terminal-output@0.2.6",
        "wasi:cli/terminal-stdin@0.2.6",
        "wasi:cli/terminal-stdout@0.2.6",
        "wasi:cli/terminal-stderr@0.2.6",
        "wasi:clocks/wall-clock@0.2.6",
        "wasi:clocks/monotonic-clock@0.2.6",
        "wasi:random/random@0.2.0",
    ];

    fn engine() -> WasmEngine {
        WasmEngine::new(&EngineOptions {
            instances: 1,
            max_memory: 16 << 20,
            cache_dir: None,
        })
        .expect("engine")
    }

    /// Whether `linker` has `name` (an exact `interface@version`):
    /// defining a function under a name the linker already has fails.
    fn has(linker: &mut Linker<HostState>, name: &str) -> bool {
        linker.root().func_wrap(name, |_, (): ()| Ok(())).is_err()
    }

    /// The exact version under which wasmtime-wasi registers its WASI 0.2
    /// interfaces, found in a linker that has `wasi:io/error` alone.
    fn linked_wasi_version(engine: &Engine) -> String {
        let mut probe = Linker::<HostState>::new(engine);
        io::error::add_to_linker::<_, Table>(&mut probe, |s| s.ctx().table).unwrap();
        (0..1000)
            .map(|patch| format!("{WASI_LINE}{patch}"))
            .find(|version| has(&mut probe, &format!("wasi:io/error@{version}")))
            .expect("wasmtime-wasi registers wasi:io/error under some 0.2.x")
    }

    #[test]
    fn every_given_interface_is_in_the_linker_and_sockets_are_not() {
        let engine = Engine::default();
        let version = linked_wasi_version(&engine);
        let mut linker = Linker::<HostState>::new(&engine);
        for (_, add) in GIVEN_WASI {
            add(&mut linker).unwrap();
        }
        // Everything wasmtime-wasi offers, under the same version: the
        // interfaces left out must be found there, or their absence from
        // ours would prove nothing.
        let mut full = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut full).unwrap();
        for (name, _) in GIVEN_WASI {
            let name = format!("{name}@{version}");
            assert!(has(&mut linker, &name), "{name} is not in the linker");
        }
        for name in ["wasi:sockets/tcp", "wasi:filesystem/types"] {
            let name = format!("{name}@{version}");
            assert!(has(&mut full, &name), "wasmtime-wasi has no {name}");
            assert!(!has(&mut linker, &name), "{name} is in the linker");
        }
        let http = format!("wasi:http/types@{version}");
        assert!(!has(&mut linker, &http), "{http} is in the linker");
    }

    #[test]
    fn what_rust_plugins_import_is_given() {
        assert!(not_given(PLUGIN_IMPORTS).is_none());
        assert!(is_given("wasi:io/poll@0.2.0"));
        assert!(!is_given("wasi:io/poll@0.3.0"));
        assert!(!is_given("wasi:io/poll"));
        assert!(is_given("edgehook:webhook/host@0.2.0"));
        assert!(is_given("edgehook:webhook/types@0.1.0"));
        assert!(!is_given("edgehook:webhook/host@0.3.0"));
        assert!(is_first_release("edgehook:webhook/types@0.1.0"));
        assert!(!is_first_release("edgehook:webhook/types@0.2.0"));
    }

    #[test]
    fn an_import_not_given_is_named_with_the_reason() {
        let mut imports = PLUGIN_IMPORTS.to_vec();
        imports.extend([
            "wasi:filesystem/types@0.2.6",
            "wasi:sockets/tcp@0.2.6",
            "wasi:sockets/network@0.2.6",
        ]);
        assert_eq!(
            not_given(&imports).unwrap().to_string(),
            "the component imports wasi:sockets/tcp@0.2.6 (and 2 more it does not give), \
             which edgehook does not give plugins (no network or sockets: the host sends the requests)"
        );
        assert_eq!(
            not_given(&["wasi:filesystem/preopens@0.2.6"])
                .unwrap()
                .to_string(),
            "the component imports wasi:filesystem/preopens@0.2.6, which edgehook does not give \
             plugins (no files: a plugin's settings come from its manifest's [config])"
        );
        assert!(
            not_given(&["wasi:http/outgoing-handler@0.2.6"])
                .unwrap()
                .to_string()
                .ends_with("(no network: the host sends the requests)")
        );
        assert!(
            not_given(&["wasi:keyvalue/store@0.2.0"])
                .unwrap()
                .to_string()
                .ends_with("(plugins get the edgehook:webhook host interface and WASI io, clocks, random and cli only)")
        );
        assert!(
            not_given(&["edgehook:webhook/host@0.3.0"])
                .unwrap()
                .to_string()
                .ends_with("(this host implements edgehook:webhook@0.2.0 and @0.1.0)")
        );
    }

    #[test]
    fn a_component_of_another_world_is_told_what_it_lacks() {
        assert_eq!(missing_exports(&["on-event", "on-response", "extra"]), None);
        assert_eq!(
            LoadError::Exports {
                missing: missing_exports(&["hello"]).unwrap()
            }
            .to_string(),
            "does not implement edgehook:webhook/webhook@0.2.0 (or @0.1.0): \
             no `on-event` or `on-response` export (it exports `hello`)"
        );
        assert_eq!(
            missing_exports(&["on-event"]).unwrap(),
            "no `on-response` export (it exports `on-event`)"
        );
        assert_eq!(
            missing_exports(&[]).unwrap(),
            "no `on-event` or `on-response` export (it exports nothing)"
        );
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
