//! The built-in `particle` plugin, compiled to wasm by the host's build
//! script from `plugins/particle` and embedded in the binary. It is compiled
//! by wasmtime once, on first use, and shared by every Particle-style
//! webhook, each with its own definition as configuration.

use tokio::sync::OnceCell;

use crate::runtime::{Limits, Plugin, WasmEngine};

/// The `particle` plugin's component.
pub const PARTICLE_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/particle.wasm"));

/// The particle plugin, compiled on first use.
#[derive(Debug)]
pub struct Builtin {
    engine: WasmEngine,
    limits: Limits,
    particle: OnceCell<Plugin>,
}

impl Builtin {
    /// Nothing is compiled until [`Self::particle`] is first called.
    pub fn new(engine: WasmEngine, limits: Limits) -> Self {
        Self {
            engine,
            limits,
            particle: OnceCell::new(),
        }
    }

    /// The compiled particle plugin (from the compiled-code cache when the
    /// engine has one).
    pub async fn particle(&self) -> Result<&Plugin, String> {
        self.particle
            .get_or_try_init(|| async {
                let engine = self.engine.clone();
                let limits = self.limits;
                tokio::task::spawn_blocking(move || {
                    Plugin::load(
                        &engine,
                        "particle",
                        PARTICLE_WASM,
                        &serde_json::Value::Null,
                        limits,
                    )
                })
                .await
                .map_err(|e| format!("compiling the built-in particle plugin: {e}"))?
                .map_err(|e| format!("the built-in particle plugin does not load: {e}"))
            })
            .await
    }
}
