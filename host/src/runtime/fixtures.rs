//! The plugin the runtime's unit tests load: the built-in Particle plugin,
//! as the build script leaves it in `OUT_DIR` (see `host/build.rs`). Read
//! here rather than from the webhooks' catalog, so that the runtime does not
//! depend on what runs on it.

/// The Particle plugin's component.
pub const PARTICLE_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/particle.wasm"));
