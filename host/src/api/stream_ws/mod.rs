//! `GET /v1/stream`: the WebSocket API of Iottly (README "Live telemetry and
//! commands: the WebSocket API") — device telemetry from the
//! [`EventStream`](crate::stream::EventStream), and commands to devices
//! through the [`Commands`](crate::commands::Commands) router.
//!
//! The key (`?api_key=` or a bearer header) is checked before the upgrade;
//! so is the connection limit. Every connection is one task ([`connection`])
//! plus its writer, tracked so that shutdown closes each with `1001` and
//! waits, bounded, for the close frames to go out. The message parsing and
//! the frames are in [`frame`]; the handshake in `handshake`; what the
//! connections share in `hub`.

pub mod connection;
pub mod frame;
mod handshake;
mod hub;

pub use crate::config::StreamLimits;
pub use handshake::{Key, MAX_MESSAGE_BYTES, handshake};
pub use hub::StreamHub;
