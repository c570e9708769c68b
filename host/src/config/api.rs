//! The HTTP API's settings: its connections' limits, the WebSocket API's
//! heartbeat and connection limit, and how long a command waits for its
//! device. README "Configuration reference".

use std::time::Duration;

use super::Settings;
use super::error::{ConfigError, check, within};

/// How long a client has to finish its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle keep-alive connection is kept open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once unless configured.
pub const MAX_CONNECTIONS: usize = 1024;

/// The limits of the API's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// Connections served at once; each holds a socket and a task.
    pub max_connections: usize,
    /// Time to finish a request's headers: a client that trickles bytes
    /// (slowloris) holds a connection no longer than this.
    pub header_timeout: Duration,
    /// Time an idle keep-alive connection is kept for its next request.
    pub idle_timeout: Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// The heartbeat and the connection limit, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// How often the server pings.
    pub ping_interval: Duration,
    /// How long a ping may wait for its pong.
    pub pong_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

impl ApiLimits {
    /// The API's limits from `s`.
    pub(super) fn build(s: &Settings) -> Result<Self, ConfigError> {
        let limits = Self {
            max_connections: s.api_max_connections.unwrap_or(MAX_CONNECTIONS),
            ..Self::default()
        };
        check(
            "api_max_connections",
            limits.max_connections,
            1,
            100_000,
            "1..=100000",
        )?;
        Ok(limits)
    }
}

impl StreamLimits {
    /// The WebSocket API's heartbeat and connection limit from `s`.
    pub(super) fn build(s: &Settings) -> Result<Self, ConfigError> {
        let limits = Self {
            ping_interval: within(
                "ws_ping_interval",
                s.ws_ping_interval,
                Duration::from_secs(30),
                Duration::from_millis(10)..=Duration::from_secs(3600),
                "10ms..=1h",
            )?,
            pong_timeout: within(
                "ws_pong_timeout",
                s.ws_pong_timeout,
                Duration::from_secs(10),
                Duration::from_millis(10)..=Duration::from_secs(600),
                "10ms..=10min",
            )?,
            max_connections: s.ws_max_connections.unwrap_or(1000),
        };
        check(
            "ws_max_connections",
            limits.max_connections,
            1,
            100_000,
            "1..=100000",
        )?;
        Ok(limits)
    }
}

/// `command_timeout`: how long a command waits for each word from its
/// device.
pub(super) fn command_timeout(s: &Settings) -> Result<Duration, ConfigError> {
    within(
        "command_timeout",
        s.command_timeout,
        Duration::from_secs(60),
        Duration::from_millis(10)..=Duration::from_secs(24 * 3600),
        "10ms..=24h",
    )
}
