//! The HTTP API: health, and behind the bearer token the plugins (listed,
//! installed, removed),
//! the webhooks with their logs, the device registry, the live event
//! stream, the WebSocket API, commands to devices and the metrics; and,
//! open like health, the web console that calls them.
pub mod auth;
pub mod commands;
pub mod config;
pub mod console;
mod deliveries;
pub mod events;
pub mod fleet;
mod health;
pub mod iottly;
pub mod mainflux;
pub mod metrics;
mod plugin_kv;
pub mod plugins;
mod refusal;
mod routes;
pub mod serve;
mod state;
pub mod stream_ws;
mod try_out;
pub mod webhooks;

pub use routes::router;
pub use state::ApiState;
