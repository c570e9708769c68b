//! The plugin sandbox: one wasmtime engine, plugins compiled once to an
//! `InstancePre`, and a fresh store and instance for every event: one for
//! its `on-event`, kept for its `on-response` while the pool has room.
//!
//! Only this module touches the generated bindings; the rest of the host
//! sees [`Plugin`], [`CallError`] and the types of [`crate::exchange`].

mod bindings;
mod cache;
mod call;
mod compat;
mod engine;
mod limits;
mod output;
mod plugin;
mod state;

pub use call::{CallError, Kept};
pub use engine::{EngineError, EngineOptions, LoadError, WasmEngine};
pub use limits::Limits;
pub use plugin::{Plugin, PluginStats, digest};
