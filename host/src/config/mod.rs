//! Configuration of `edgehook serve`: [`Settings`] from the command line,
//! the environment and the TOML file, checked once by [`Config::build`]
//! into the values the host runs with. Each stage's settings live in the
//! module named for the stage, and the stages take their types from here:
//! this module uses no other stage.

pub mod api;
pub mod cluster;
pub mod delivery;
mod error;
mod host;
pub mod in_force;
pub mod mqtt;
pub mod output;
pub mod plugin_limits;
mod settings;
mod sizes;

pub use api::{ApiLimits, StreamLimits};
pub use cluster::{ClientCert, Cluster, Login, NatsAuth};
pub use delivery::{DeliveryPolicy, HistoryLimits, QueueLimits};
pub use error::ConfigError;
pub use host::Config;
pub use mqtt::{Broker, DeviceLimits, EmbeddedTls, MqttAuth, MqttVersion, UnknownVersion};
pub use output::ReadyFormat;
pub use plugin_limits::{Limits, LimitsError, RawLimits};
pub use settings::Settings;

#[cfg(test)]
mod tests;
