//! The raw settings of `edgehook serve`, as given on the command line, in
//! the environment (`EDGEHOOK_*`) and in the TOML file: every field
//! optional, unknown TOML keys rejected. [`super::Config::build`] turns
//! them into checked runtime values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

use super::{MqttAuth, RawLimits, ReadyFormat};
use crate::logging::LogFormat;

fn duration(s: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(s)
}

/// One source of settings. The command line (and its environment
/// variables) wins over the file, the file over the defaults.
#[derive(Debug, Default, Clone, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address of the embedded MQTT broker [default: 127.0.0.1:1883]
    #[arg(long, env = "EDGEHOOK_MQTT_LISTEN", value_name = "ADDR")]
    pub mqtt_listen: Option<SocketAddr>,
    /// Device logins on the embedded broker: `open` (anyone) or `devices` (registered devices with their keys) [default: open on a loopback address, devices otherwise]
    #[arg(long, env = "EDGEHOOK_MQTT_AUTH", value_name = "MODE")]
    pub mqtt_auth: Option<MqttAuth>,
    /// Address of the embedded broker's TLS listener [default: 0.0.0.0:8883 when a certificate is given]
    #[arg(long, env = "EDGEHOOK_MQTT_TLS_LISTEN", value_name = "ADDR")]
    pub mqtt_tls_listen: Option<SocketAddr>,
    /// Certificate chain (PEM) of the embedded broker's TLS listener
    #[arg(long, env = "EDGEHOOK_MQTT_TLS_CERT", value_name = "FILE")]
    pub mqtt_tls_cert: Option<PathBuf>,
    /// Private key (PEM) of that certificate
    #[arg(long, env = "EDGEHOOK_MQTT_TLS_KEY", value_name = "FILE")]
    pub mqtt_tls_key: Option<PathBuf>,
    /// Use this external MQTT broker (mqtt://host:port, mqtts://…) instead of the embedded one; a comma list names its nodes, tried in turn
    #[arg(long, env = "EDGEHOOK_MQTT_URL", value_name = "URL[,URL…]")]
    pub mqtt_url: Option<String>,
    /// MQTT version of the host's connection to the external broker: 3 (MQTT 3.1.1) or 5 [default: 5]
    #[arg(long, env = "EDGEHOOK_MQTT_VERSION", value_name = "3|5")]
    pub mqtt_version: Option<u8>,
    /// Client id on the external broker; keep it stable so its persistent session survives restarts [default: edgehook-HOSTNAME]
    #[arg(long, env = "EDGEHOOK_MQTT_CLIENT_ID", value_name = "ID")]
    pub mqtt_client_id: Option<String>,
    /// Share device events with other hosts through $share/GROUP/... on a clustered broker
    #[arg(long, env = "EDGEHOOK_MQTT_SHARE_GROUP", value_name = "GROUP")]
    pub mqtt_share_group: Option<String>,
    /// Share the work with other hosts through this NATS cluster with JetStream (nats://host:port, a comma list); devices then use the MQTT listeners of the NATS nodes, named by --mqtt-url
    #[arg(long, env = "EDGEHOOK_NATS_URL", value_name = "URL[,URL…]")]
    pub nats_url: Option<String>,
    /// An event taken by a host that neither finishes it nor says it is still working on it for this long goes to another host [default: 30s]
    #[arg(long, env = "EDGEHOOK_NATS_ACK_WAIT", value_name = "DURATION", value_parser = duration)]
    #[serde(default, with = "humantime_serde")]
    pub nats_ack_wait: Option<Duration>,
    /// With --nats-url: log in to NATS with this credentials file (a user JWT and its nkey seed)
    #[arg(long, env = "EDGEHOOK_NATS_CREDS", value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// With --nats-url: log in to NATS with the user nkey seed in this file
    #[arg(long, env = "EDGEHOOK_NATS_NKEY", value_name = "FILE")]
    pub nats_nkey: Option<PathBuf>,
    /// With --nats-url: log in to NATS as this user, with --nats-password-file (also the login of the host's MQTT connections to the nodes)
    #[arg(long, env = "EDGEHOOK_NATS_USER", value_name = "USER")]
    pub nats_user: Option<String>,
    /// The file holding the password of --nats-user (its first line)
    #[arg(long, env = "EDGEHOOK_NATS_PASSWORD_FILE", value_name = "FILE")]
    pub nats_password_file: Option<PathBuf>,
    /// With --nats-url: log in to NATS with the token in this file (its first line)
    #[arg(long, env = "EDGEHOOK_NATS_TOKEN_FILE", value_name = "FILE")]
    pub nats_token_file: Option<PathBuf>,
    /// With --nats-url: require TLS and verify the NATS servers with this CA (PEM)
    #[arg(long, env = "EDGEHOOK_NATS_CA_FILE", value_name = "FILE")]
    pub nats_ca_file: Option<PathBuf>,
    /// With --nats-url: the host's certificate chain (PEM) for servers that verify clients
    #[arg(long, env = "EDGEHOOK_NATS_TLS_CERT", value_name = "FILE")]
    pub nats_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --nats-tls-cert
    #[arg(long, env = "EDGEHOOK_NATS_TLS_KEY", value_name = "FILE")]
    pub nats_tls_key: Option<PathBuf>,
    /// Extra CA certificate (PEM) for mqtts:// brokers
    #[arg(long, env = "EDGEHOOK_MQTT_CA_FILE", value_name = "FILE")]
    pub mqtt_ca_file: Option<PathBuf>,
    /// HTTP API address [default: 127.0.0.1:8080]
    #[arg(long, env = "EDGEHOOK_API_LISTEN", value_name = "ADDR")]
    pub api_listen: Option<SocketAddr>,
    /// HTTP API connections served at once; further ones wait in the listen backlog [default: 1024]
    #[arg(long, env = "EDGEHOOK_API_MAX_CONNECTIONS", value_name = "N")]
    pub api_max_connections: Option<usize>,
    /// Plugins directory (NAME.wasm + NAME.toml) [default: ./plugins]
    #[arg(long, env = "EDGEHOOK_PLUGINS", value_name = "DIR")]
    pub plugins: Option<PathBuf>,
    /// Particle-style webhook files directory [default: ./webhooks]
    #[arg(long, env = "EDGEHOOK_WEBHOOKS", value_name = "DIR")]
    pub webhooks: Option<PathBuf>,
    /// State directory (API token, compiled-plugin cache) [default: ./data]
    #[arg(long, env = "EDGEHOOK_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Bearer token of the API [default: generated and kept in the data directory]
    #[arg(long, env = "EDGEHOOK_API_TOKEN", value_name = "TOKEN")]
    pub api_token: Option<String>,
    /// Let webhooks call loopback and private addresses
    #[arg(long, env = "EDGEHOOK_ALLOW_PRIVATE_NETWORKS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub allow_private_networks: Option<bool>,
    /// Largest event payload taken from devices [default: 64 KiB]
    #[arg(long, env = "EDGEHOOK_MAX_EVENT_BYTES", value_name = "SIZE")]
    pub max_event_bytes: Option<ByteSize>,
    /// Time limit of one webhook request, connect to last byte [default: 20s]
    #[arg(long, env = "EDGEHOOK_HTTP_TIMEOUT", value_name = "DURATION", value_parser = duration)]
    #[serde(default, with = "humantime_serde")]
    pub http_timeout: Option<Duration>,
    /// Response body bytes kept; the rest is cut [default: 100 KB]
    #[arg(long, env = "EDGEHOOK_MAX_RESPONSE_BYTES", value_name = "SIZE")]
    pub max_response_bytes: Option<ByteSize>,
    /// Size of response chunks sent to devices [default: 512]
    #[arg(long, env = "EDGEHOOK_CHUNK_SIZE", value_name = "BYTES")]
    pub chunk_size: Option<usize>,
    /// Plugin instances alive at once; further calls wait [default: 256]
    #[arg(long, env = "EDGEHOOK_PLUGIN_INSTANCES", value_name = "N")]
    pub plugin_instances: Option<u32>,
    /// The most memory any plugin may be given [default: 256 MiB]
    #[arg(long, env = "EDGEHOOK_MAX_PLUGIN_MEMORY", value_name = "SIZE")]
    pub max_plugin_memory: Option<ByteSize>,
    /// Webhook deliveries in progress at once; further events wait [default: 1024]
    #[arg(long, env = "EDGEHOOK_MAX_IN_FLIGHT", value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// Iottly-style webhooks one project may have [default: 5]
    #[arg(long, env = "EDGEHOOK_IOTTLY_MAX_WEBHOOKS", value_name = "N")]
    pub iottly_max_webhooks: Option<usize>,
    /// Failed plugin calls in a row (traps, deadlines, memory, invalid results) after which a plugin is suspended until a new version is loaded; a manifest's `[limits] suspend_after` overrides it [default: 10]
    #[arg(long, env = "EDGEHOOK_SUSPEND_AFTER", value_name = "N")]
    pub suspend_after: Option<u32>,
    /// Events the durable queue holds at once; when full, no more are taken from the broker [default: 100000]
    #[arg(long, env = "EDGEHOOK_QUEUE_MAX_EVENTS", value_name = "N")]
    pub queue_max_events: Option<usize>,
    /// Bytes of events the durable queue holds at once [default: 256 MiB]
    #[arg(long, env = "EDGEHOOK_QUEUE_MAX_BYTES", value_name = "SIZE")]
    pub queue_max_bytes: Option<ByteSize>,
    /// Events not delivered within this time after they arrived are dropped with a hook-error [default: 24h]
    #[arg(long, env = "EDGEHOOK_EVENT_TTL", value_name = "DURATION", value_parser = duration)]
    #[serde(default, with = "humantime_serde")]
    pub event_ttl: Option<Duration>,
    /// Delays before each retry of a request that failed with a timeout, a connection error, 408, 425, 429 or 5xx; comma-separated, empty for none [default: 30s,1m]
    #[arg(long, env = "EDGEHOOK_RETRY_DELAYS", value_name = "DURATIONS")]
    pub retry_delays: Option<String>,
    /// Delays before each new attempt of a request skipped because its host was sleeping after too many errors [default: 30s,1m]
    #[arg(long, env = "EDGEHOOK_SKIP_RETRY_DELAYS", value_name = "DURATIONS")]
    pub skip_retry_delays: Option<String>,
    /// How long the delivery history keeps every attempt and its event (`GET /v1/deliveries`, dead letters, replays) [default: 7d]
    #[arg(long, env = "EDGEHOOK_HISTORY_RETENTION", value_name = "DURATION", value_parser = duration)]
    #[serde(default, with = "humantime_serde")]
    pub history_retention: Option<Duration>,
    /// Most bytes of attempts and events the delivery history keeps; beyond it the oldest go first; 0 keeps no history [default: 256 MiB]
    #[arg(long, env = "EDGEHOOK_HISTORY_MAX_BYTES", value_name = "SIZE")]
    pub history_max_bytes: Option<ByteSize>,
    /// Export one OpenTelemetry trace per event to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318 [default: none]
    #[arg(long, env = "EDGEHOOK_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Requests in progress to one destination host at once [default: 32]
    #[arg(long, env = "EDGEHOOK_HOST_CONCURRENCY", value_name = "N")]
    pub host_concurrency: Option<usize>,
    /// Most requests to one destination host, e.g. 100/s, 600/min [default: no limit]
    #[arg(long, env = "EDGEHOOK_HOST_RATE", value_name = "RATE")]
    pub host_rate: Option<String>,
    /// Topic filters one device's session may hold on the embedded broker [default: 32]
    #[arg(long, env = "EDGEHOOK_DEVICE_MAX_SUBSCRIPTIONS", value_name = "N")]
    pub device_max_subscriptions: Option<usize>,
    /// Most events one device may publish to the embedded broker, e.g. 100/s burst 200; beyond it they are refused [default: 100/s burst 200]
    #[arg(long, env = "EDGEHOOK_DEVICE_PUBLISH_RATE", value_name = "RATE")]
    pub device_publish_rate: Option<String>,
    /// Events of one device the durable queue may hold at once; beyond it the device's events are refused until some are delivered [default: a tenth of queue_max_events]
    #[arg(long, env = "EDGEHOOK_DEVICE_MAX_QUEUED", value_name = "N")]
    pub device_max_queued: Option<usize>,
    /// Most deliveries for one device, e.g. 1/s [default: no limit]
    #[arg(long, env = "EDGEHOOK_DEVICE_RATE", value_name = "RATE")]
    pub device_rate: Option<String>,
    /// Failed deliveries in a row after which a webhook is disabled until replaced; 0 never disables [default: 10]
    #[arg(long, env = "EDGEHOOK_DISABLE_AFTER", value_name = "N")]
    pub disable_after: Option<u32>,
    /// Interval of the WebSocket API's pings (`GET /v1/stream`) [default: 30s]
    #[arg(long, env = "EDGEHOOK_WS_PING_INTERVAL", value_name = "DURATION", value_parser = duration)]
    #[serde(default, with = "humantime_serde")]
    pub ws_ping_interval: Option<Duration>,
    /// A WebSocket connection that has not answered a ping with a pong within this time is closed [default: 10s]
    #[arg(long, env = "EDGEHOOK_WS_PONG_TIMEOUT", value_name = "DURATION", value_parser = duration)]
    #[serde(default, with = "humantime_serde")]
    pub ws_pong_timeout: Option<Duration>,
    /// WebSocket connections open at once; further handshakes get 503 [default: 1000]
    #[arg(long, env = "EDGEHOOK_WS_MAX_CONNECTIONS", value_name = "N")]
    pub ws_max_connections: Option<usize>,
    /// A command whose device says nothing for this long ends with an error [default: 60s]
    #[arg(long, env = "EDGEHOOK_COMMAND_TIMEOUT", value_name = "DURATION", value_parser = duration)]
    #[serde(default, with = "humantime_serde")]
    pub command_timeout: Option<Duration>,
    /// On SIGTERM or SIGINT, how long deliveries in progress may take to finish; the rest stay queued for the next start [default: 10s]
    #[arg(long, env = "EDGEHOOK_DRAIN_TIMEOUT", value_name = "DURATION", value_parser = duration)]
    #[serde(default, with = "humantime_serde")]
    pub drain_timeout: Option<Duration>,
    /// What to log: a level (`error`, `warn`, `info`, `debug`, `trace`) or `RUST_LOG`-style directives such as `info,edgehook::delivery=debug`; the broker's and the NATS client's own lines stay at `warn` unless named [default: info]
    #[arg(long, env = "EDGEHOOK_LOG_LEVEL", value_name = "DIRECTIVES")]
    pub log_level: Option<String>,
    /// Log lines as `text` (coloured only on a terminal) or `json` (one object a line) [default: text]
    #[arg(long, env = "EDGEHOOK_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// The ready line as `text` (for people) or `json` (one object on one line, for tools that start the host) [default: text]
    #[arg(long, env = "EDGEHOOK_READY_FORMAT", value_name = "FORMAT")]
    pub ready_format: Option<ReadyFormat>,
    /// Default limits of every plugin (file only: `[limits]`)
    #[arg(skip)]
    #[serde(default)]
    pub limits: Option<RawLimits>,
}

impl Settings {
    /// These settings, with `other` filling the gaps.
    pub fn or(self, other: Self) -> Self {
        Self {
            mqtt_listen: self.mqtt_listen.or(other.mqtt_listen),
            mqtt_auth: self.mqtt_auth.or(other.mqtt_auth),
            mqtt_tls_listen: self.mqtt_tls_listen.or(other.mqtt_tls_listen),
            mqtt_tls_cert: self.mqtt_tls_cert.or(other.mqtt_tls_cert),
            mqtt_tls_key: self.mqtt_tls_key.or(other.mqtt_tls_key),
            mqtt_url: self.mqtt_url.or(other.mqtt_url),
            mqtt_version: self.mqtt_version.or(other.mqtt_version),
            mqtt_client_id: self.mqtt_client_id.or(other.mqtt_client_id),
            mqtt_share_group: self.mqtt_share_group.or(other.mqtt_share_group),
            mqtt_ca_file: self.mqtt_ca_file.or(other.mqtt_ca_file),
            nats_url: self.nats_url.or(other.nats_url),
            nats_ack_wait: self.nats_ack_wait.or(other.nats_ack_wait),
            nats_creds: self.nats_creds.or(other.nats_creds),
            nats_nkey: self.nats_nkey.or(other.nats_nkey),
            nats_user: self.nats_user.or(other.nats_user),
            nats_password_file: self.nats_password_file.or(other.nats_password_file),
            nats_token_file: self.nats_token_file.or(other.nats_token_file),
            nats_ca_file: self.nats_ca_file.or(other.nats_ca_file),
            nats_tls_cert: self.nats_tls_cert.or(other.nats_tls_cert),
            nats_tls_key: self.nats_tls_key.or(other.nats_tls_key),
            api_listen: self.api_listen.or(other.api_listen),
            api_max_connections: self.api_max_connections.or(other.api_max_connections),
            plugins: self.plugins.or(other.plugins),
            webhooks: self.webhooks.or(other.webhooks),
            data: self.data.or(other.data),
            api_token: self.api_token.or(other.api_token),
            allow_private_networks: self.allow_private_networks.or(other.allow_private_networks),
            max_event_bytes: self.max_event_bytes.or(other.max_event_bytes),
            http_timeout: self.http_timeout.or(other.http_timeout),
            max_response_bytes: self.max_response_bytes.or(other.max_response_bytes),
            chunk_size: self.chunk_size.or(other.chunk_size),
            plugin_instances: self.plugin_instances.or(other.plugin_instances),
            max_plugin_memory: self.max_plugin_memory.or(other.max_plugin_memory),
            max_in_flight: self.max_in_flight.or(other.max_in_flight),
            iottly_max_webhooks: self.iottly_max_webhooks.or(other.iottly_max_webhooks),
            suspend_after: self.suspend_after.or(other.suspend_after),
            queue_max_events: self.queue_max_events.or(other.queue_max_events),
            queue_max_bytes: self.queue_max_bytes.or(other.queue_max_bytes),
            event_ttl: self.event_ttl.or(other.event_ttl),
            retry_delays: self.retry_delays.or(other.retry_delays),
            skip_retry_delays: self.skip_retry_delays.or(other.skip_retry_delays),
            history_retention: self.history_retention.or(other.history_retention),
            history_max_bytes: self.history_max_bytes.or(other.history_max_bytes),
            otlp_endpoint: self.otlp_endpoint.or(other.otlp_endpoint),
            host_concurrency: self.host_concurrency.or(other.host_concurrency),
            host_rate: self.host_rate.or(other.host_rate),
            device_max_subscriptions: self
                .device_max_subscriptions
                .or(other.device_max_subscriptions),
            device_publish_rate: self.device_publish_rate.or(other.device_publish_rate),
            device_max_queued: self.device_max_queued.or(other.device_max_queued),
            device_rate: self.device_rate.or(other.device_rate),
            disable_after: self.disable_after.or(other.disable_after),
            ws_ping_interval: self.ws_ping_interval.or(other.ws_ping_interval),
            ws_pong_timeout: self.ws_pong_timeout.or(other.ws_pong_timeout),
            ws_max_connections: self.ws_max_connections.or(other.ws_max_connections),
            command_timeout: self.command_timeout.or(other.command_timeout),
            drain_timeout: self.drain_timeout.or(other.drain_timeout),
            log_level: self.log_level.or(other.log_level),
            log_format: self.log_format.or(other.log_format),
            ready_format: self.ready_format.or(other.ready_format),
            limits: self.limits.or(other.limits),
        }
    }
}
