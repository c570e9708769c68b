//! The built-in plugins, compiled to wasm by the host's build script from
//! `plugins/particle`, `plugins/iottly` and `plugins/mainflux` and embedded
//! in the binary, deflated. Each is inflated and compiled by wasmtime once, on first use, and
//! shared by every webhook of its dialect, each with its own definition as
//! configuration.

use tokio::sync::OnceCell;

use crate::runtime::{DefaultLimits, Plugin, PluginLimits, WasmEngine};

/// The `particle` plugin's component, deflated.
const PARTICLE_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/particle.wasm.deflate"));
/// The `iottly` plugin's component, deflated.
const IOTTLY_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/iottly.wasm.deflate"));
/// The `mainflux` plugin's component, deflated.
const MAINFLUX_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mainflux.wasm.deflate"));

/// The most a built-in component inflates to.
const MAX_WASM: usize = 16 << 20;

/// One of the built-in plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinPlugin {
    /// Particle-style webhooks.
    Particle,
    /// Iottly-style webhooks.
    Iottly,
    /// Mainflux-style webhooks.
    Mainflux,
}

impl BuiltinPlugin {
    /// Every built-in plugin: their names are not free for plugin files
    /// installed over the API.
    pub const ALL: [Self; 3] = [Self::Particle, Self::Iottly, Self::Mainflux];

    /// The plugin's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Particle => "particle",
            Self::Iottly => "iottly",
            Self::Mainflux => "mainflux",
        }
    }

    /// The plugin's component, inflated.
    fn wasm(self) -> Result<Vec<u8>, String> {
        let deflated = match self {
            Self::Particle => PARTICLE_WASM,
            Self::Iottly => IOTTLY_WASM,
            Self::Mainflux => MAINFLUX_WASM,
        };
        miniz_oxide::inflate::decompress_to_vec_with_limit(deflated, MAX_WASM)
            .map_err(|e| format!("inflating the built-in {} plugin: {e}", self.name()))
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// The built-in plugins, each compiled on first use.
#[derive(Debug)]
pub struct Builtin {
    engine: WasmEngine,
    limits: DefaultLimits,
    compiled: [OnceCell<Plugin>; 3],
}

impl Builtin {
    /// Nothing is compiled until [`Self::plugin`] is first called.
    pub fn new(engine: WasmEngine, limits: DefaultLimits) -> Self {
        Self {
            engine,
            limits,
            compiled: Default::default(),
        }
    }

    /// The compiled particle plugin.
    pub async fn particle(&self) -> Result<&Plugin, String> {
        self.plugin(BuiltinPlugin::Particle).await
    }

    /// The compiled plugin `kind` (from the compiled-code cache when the
    /// engine has one).
    pub async fn plugin(&self, kind: BuiltinPlugin) -> Result<&Plugin, String> {
        self.compiled[kind.slot()]
            .get_or_try_init(|| async {
                let engine = self.engine.clone();
                let limits = PluginLimits::defaults(self.limits.clone());
                let name = kind.name();
                tokio::task::spawn_blocking(move || {
                    let wasm = kind.wasm()?;
                    Plugin::load(&engine, name, &wasm, &serde_json::Value::Null, limits)
                        .map_err(|e| format!("the built-in {name} plugin does not load: {e}"))
                })
                .await
                .map_err(|e| format!("compiling the built-in {name} plugin: {e}"))?
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_plugin_inflates_to_a_component() {
        for kind in BuiltinPlugin::ALL {
            let wasm = kind.wasm().unwrap();
            // A component's header: the magic, then its version and layer.
            assert!(wasm.starts_with(b"\0asm\x0d\0\x01\0"), "{}", kind.name());
        }
    }
}
