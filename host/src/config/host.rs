//! The checked configuration of one host: [`Config::build`] takes the
//! [`Settings`] of the command line, the environment and the file, has each
//! stage's settings checked by the module that names them, and fills in
//! the defaults (README "Configuration reference").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::api::{self, ApiLimits, StreamLimits};
use super::delivery::{self, DeliveryPolicy, QueueLimits};
use super::error::{ConfigError, invalid, within};
use super::mqtt::Broker;
use super::output::{self, ReadyFormat};
use super::sizes::Sizes;
use super::{Cluster, Limits, Settings};
use crate::logging::LogFormat;
use crate::throttle::ThrottleConfig;

/// The checked configuration of a host.
#[derive(Debug, Clone)]
pub struct Config {
    /// The MQTT side.
    pub broker: Broker,
    /// The NATS cluster this host shares the work through, if any.
    pub cluster: Option<Cluster>,
    /// HTTP API address.
    pub api_listen: SocketAddr,
    /// Limits of the HTTP API's connections.
    pub api_limits: ApiLimits,
    /// Plugins directory.
    pub plugins_dir: PathBuf,
    /// Particle-style webhook files directory.
    pub webhooks_dir: PathBuf,
    /// State directory.
    pub data_dir: PathBuf,
    /// API bearer token; generated when absent.
    pub api_token: Option<String>,
    /// Whether webhooks may call loopback and private addresses.
    pub allow_private_networks: bool,
    /// Largest event payload accepted.
    pub max_event_bytes: usize,
    /// Time limit of one webhook request.
    pub http_timeout: Duration,
    /// Response bytes kept.
    pub max_response_bytes: usize,
    /// Chunk size of device messages.
    pub chunk_size: usize,
    /// Plugin instances alive at once.
    pub plugin_instances: u32,
    /// Most memory any plugin may be given.
    pub max_plugin_memory: usize,
    /// Deliveries in progress at once.
    pub max_in_flight: usize,
    /// Iottly-style webhooks one project may have.
    pub iottly_max_webhooks: usize,
    /// Default limits of every plugin.
    pub limits: Limits,
    /// Bounds of the durable queue.
    pub queue: QueueLimits,
    /// Retries, TTL and auto-disable.
    pub delivery: DeliveryPolicy,
    /// Per-host and per-device throttling.
    pub throttle: ThrottleConfig,
    /// The WebSocket API's heartbeat and connection limit.
    pub stream: StreamLimits,
    /// How long a command waits for each word from its device.
    pub command_timeout: Duration,
    /// How long a stop waits for deliveries in progress.
    pub drain_timeout: Duration,
    /// What is logged: a level or `RUST_LOG`-style directives.
    pub log_level: String,
    /// The shape of log lines.
    pub log_format: LogFormat,
    /// The shape of the ready line.
    pub ready_format: ReadyFormat,
    /// Where traces go (OTLP/HTTP), if anywhere.
    pub otlp_endpoint: Option<url::Url>,
}

impl Config {
    /// Reads the TOML file at `path`.
    pub fn read_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Checks `s` and fills in the defaults.
    pub fn build(s: Settings) -> Result<Self, ConfigError> {
        let cluster = Cluster::build(&s)?;
        let sizes = Sizes::build(&s)?;
        let queue = QueueLimits::build(&s, sizes.max_event_bytes)?;
        let delivery = DeliveryPolicy::build(&s)?;
        let throttle = delivery::throttle(&s)?;
        let stream = StreamLimits::build(&s)?;
        let api_limits = ApiLimits::build(&s)?;
        let command_timeout = api::command_timeout(&s)?;
        let drain_timeout = within(
            "drain_timeout",
            s.drain_timeout,
            Duration::from_secs(10),
            Duration::ZERO..=Duration::from_secs(3600),
            "0s..=1h",
        )?;
        let log_level = output::log_level(&s)?;
        let broker = Broker::build(&s, &queue)?;
        if let Some(token) = &s.api_token
            && (token.len() < 16 || token.chars().any(|c| !c.is_ascii_graphic()))
        {
            return Err(invalid(
                "api_token",
                "must be at least 16 printable ASCII characters".into(),
            ));
        }
        Ok(Self {
            broker,
            cluster,
            api_listen: s
                .api_listen
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            api_limits,
            plugins_dir: s.plugins.unwrap_or_else(|| "plugins".into()),
            webhooks_dir: s.webhooks.unwrap_or_else(|| "webhooks".into()),
            data_dir: s.data.unwrap_or_else(|| "data".into()),
            api_token: s.api_token,
            allow_private_networks: s.allow_private_networks.unwrap_or(false),
            max_event_bytes: sizes.max_event_bytes,
            http_timeout: sizes.http_timeout,
            max_response_bytes: sizes.max_response_bytes,
            chunk_size: sizes.chunk_size,
            plugin_instances: sizes.plugin_instances,
            max_plugin_memory: sizes.max_plugin_memory,
            max_in_flight: sizes.max_in_flight,
            iottly_max_webhooks: sizes.iottly_max_webhooks,
            limits: sizes.limits,
            queue,
            delivery,
            throttle,
            stream,
            command_timeout,
            drain_timeout,
            log_level,
            log_format: s.log_format.unwrap_or_default(),
            ready_format: s.ready_format.unwrap_or_default(),
            otlp_endpoint: output::otlp_endpoint(s.otlp_endpoint.as_deref())?,
        })
    }
}
