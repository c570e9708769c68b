//! Commands from backends to devices (README "MQTT topics" and "Live telemetry
//! and commands: the WebSocket API"): the router that publishes them and brings
//! the devices' answers back, and what is kept for the HTTP route.

pub mod kept;
pub mod router;

pub use kept::{KeptCommands, Record, State};
pub use router::{CommandError, CommandRequest, Commands, Sink, SocketSink, Update};
