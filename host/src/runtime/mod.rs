//! The plugin sandbox: one wasmtime engine, plugins compiled once to an
//! `InstancePre`, and a fresh store and instance for every event: one for
//! its `on-event`, kept for its `on-response` while the pool has room.
//!
//! Only this module touches the generated bindings; the rest of the host
//! sees [`Plugin`], [`CallError`] and the types of [`crate::exchange`].

mod bindings;
mod cache;
mod call;
mod call_error;
mod compat;
mod convert;
mod engine;
#[cfg(test)]
mod fixtures;
mod keyvalue;
mod limits;
mod output;
mod plugin;
mod state;
mod ticker;
mod world;

pub use crate::config::Limits;
pub use call::KeptInstance;
pub use call_error::CallError;
pub use engine::{EngineError, EngineOptions, WasmEngine};
pub use keyvalue::KvAccess;
pub use limits::{DefaultLimits, PluginLimits};
pub use plugin::{Plugin, PluginStats, digest};
pub use world::LoadError;
