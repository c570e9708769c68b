//! Configuration of `edgehook serve`: [`Settings`] from the command line,
//! the environment and the TOML file, checked once by [`Config::build`]
//! into the values the host runs with.

pub mod in_force;
mod settings;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use settings::Settings;

use crate::api::serve::ApiLimits;
use crate::api::stream_ws::StreamLimits;
use crate::ingress::acl::MqttAuth;
use crate::ingress::device_limits::DeviceLimits;
use crate::ingress::external::MqttVersion;
use crate::logging::LogFormat;
use crate::nats::auth::{ClientCert, Login, NatsAuth};
use crate::pipeline::DeliveryPolicy;
use crate::queue::QueueLimits;
use crate::runtime::Limits;
use crate::throttle::{Rate, RetrySchedule, ThrottleConfig};

/// A setting that stops start-up; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid, or has an unknown key.
    #[error("config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error, naming the key and line.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("config key `{key}`: {reason}")]
    Invalid {
        /// The key, as in the TOML file.
        key: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// The default plugin limits are out of range.
    #[error("config key `limits`: {0}")]
    Limits(#[from] crate::plugins::ManifestError),
}

/// Where events come from.
#[derive(Debug, Clone)]
pub enum Broker {
    /// The embedded broker, listening here.
    Embedded {
        /// Listen address.
        listen: SocketAddr,
        /// Who may log in.
        auth: MqttAuth,
        /// Its TLS listener, if any.
        tls: Option<EmbeddedTls>,
        /// What each device may hold and send.
        limits: DeviceLimits,
    },
    /// An external broker.
    External {
        /// `mqtt://` or `mqtts://` URL.
        url: String,
        /// The MQTT version the host speaks to it.
        version: MqttVersion,
        /// Stable client id.
        client_id: String,
        /// Shared-subscription group, for several hosts on one broker.
        share_group: Option<String>,
        /// Extra CA certificate for TLS.
        ca_file: Option<PathBuf>,
    },
}

/// Several hosts on a NATS cluster with JetStream, each with its embedded
/// broker: events stored in the cluster's stream, shared by the hosts.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `nats://` URLs of the cluster's servers.
    pub urls: Vec<String>,
    /// How long an event taken and not finished stays with this host.
    pub ack_wait: Duration,
    /// The hosts' login to NATS and the servers' CA.
    pub auth: NatsAuth,
}

/// The embedded broker's TLS listener.
#[derive(Debug, Clone)]
pub struct EmbeddedTls {
    /// Listen address.
    pub listen: SocketAddr,
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

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
        let nats_auth = nats_auth(&s)?;
        let nats_auth_key = nats_auth_key(&s);
        if s.nats_url.is_none() && nats_auth != NatsAuth::default() {
            return Err(invalid(nats_auth_key, "applies only with nats_url".into()));
        }
        let bytes = |v: Option<bytesize::ByteSize>, default: u64| {
            usize::try_from(v.map_or(default, |b| b.as_u64())).unwrap_or(usize::MAX)
        };
        let max_event_bytes = bytes(s.max_event_bytes, 64 << 10);
        check(
            "max_event_bytes",
            max_event_bytes,
            1,
            256 << 20,
            "1 B..=256 MiB",
        )?;
        let http_timeout = s.http_timeout.unwrap_or(Duration::from_secs(20));
        if http_timeout < Duration::from_millis(100) || http_timeout > Duration::from_secs(600) {
            return Err(invalid(
                "http_timeout",
                format!("{http_timeout:?} is outside 100ms..=10min"),
            ));
        }
        let max_response_bytes = bytes(s.max_response_bytes, 100_000);
        check(
            "max_response_bytes",
            max_response_bytes,
            1,
            64 << 20,
            "1 B..=64 MiB",
        )?;
        let chunk_size = s.chunk_size.unwrap_or(512);
        check("chunk_size", chunk_size, 16, 1 << 20, "16..=1048576")?;
        let plugin_instances = s.plugin_instances.unwrap_or(256);
        check(
            "plugin_instances",
            plugin_instances as usize,
            1,
            10_000,
            "1..=10000",
        )?;
        let max_plugin_memory = bytes(s.max_plugin_memory, 256 << 20);
        check(
            "max_plugin_memory",
            max_plugin_memory,
            1 << 20,
            4 << 30,
            "1 MiB..=4 GiB",
        )?;
        let max_in_flight = s.max_in_flight.unwrap_or(1024);
        check("max_in_flight", max_in_flight, 1, 1_000_000, "1..=1000000")?;
        let iottly_max_webhooks = s.iottly_max_webhooks.unwrap_or(5);
        check(
            "iottly_max_webhooks",
            iottly_max_webhooks,
            1,
            1000,
            "1..=1000",
        )?;
        let mut limits =
            s.limits
                .unwrap_or_default()
                .apply(&Limits::default(), max_plugin_memory, "")?;
        // The top-level key (flag, environment, file) wins over the same
        // setting in the file's `[limits]`.
        if let Some(n) = s.suspend_after {
            let range = Limits::SUSPEND_AFTER;
            check(
                "suspend_after",
                n as usize,
                *range.start() as usize,
                *range.end() as usize,
                &format!("{}..={}", range.start(), range.end()),
            )?;
            limits.suspend_after = n;
        }

        let queue = QueueLimits {
            max_events: s.queue_max_events.unwrap_or(100_000),
            max_bytes: bytes(s.queue_max_bytes, 256 << 20),
        };
        check(
            "queue_max_events",
            queue.max_events,
            1,
            100_000_000,
            "1..=100000000",
        )?;
        // The byte budget must fit the largest event, and a semaphore.
        check(
            "queue_max_bytes",
            queue.max_bytes,
            max_event_bytes + 1024,
            u32::MAX as usize,
            &format!(
                "max_event_bytes + 1 KiB ({} B)..=4 GiB",
                max_event_bytes + 1024
            ),
        )?;
        let ttl = s.event_ttl.unwrap_or(Duration::from_secs(24 * 3600));
        if ttl < Duration::from_secs(1) {
            return Err(invalid("event_ttl", format!("{ttl:?} is below 1s")));
        }
        let delivery = DeliveryPolicy {
            retry: delays("retry_delays", s.retry_delays.as_deref())?,
            skip_retry: delays("skip_retry_delays", s.skip_retry_delays.as_deref())?,
            ttl,
            disable_after: s.disable_after.unwrap_or(10),
        };
        let host_concurrency = s.host_concurrency.unwrap_or(32);
        check(
            "host_concurrency",
            host_concurrency,
            1,
            100_000,
            "1..=100000",
        )?;
        let throttle = ThrottleConfig {
            host_concurrency,
            host_rate: rate("host_rate", s.host_rate.as_deref())?,
            device_rate: rate("device_rate", s.device_rate.as_deref())?,
            ..ThrottleConfig::default()
        };

        let stream = StreamLimits {
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
            stream.max_connections,
            1,
            100_000,
            "1..=100000",
        )?;
        let api_limits = ApiLimits {
            max_connections: s
                .api_max_connections
                .unwrap_or(ApiLimits::default().max_connections),
            ..ApiLimits::default()
        };
        check(
            "api_max_connections",
            api_limits.max_connections,
            1,
            100_000,
            "1..=100000",
        )?;
        let command_timeout = within(
            "command_timeout",
            s.command_timeout,
            Duration::from_secs(60),
            Duration::from_millis(10)..=Duration::from_secs(24 * 3600),
            "10ms..=24h",
        )?;
        let drain_timeout = within(
            "drain_timeout",
            s.drain_timeout,
            Duration::from_secs(10),
            Duration::ZERO..=Duration::from_secs(3600),
            "0s..=1h",
        )?;

        let log_level = s
            .log_level
            .unwrap_or_else(|| crate::logging::DEFAULT_LEVEL.to_owned());
        crate::logging::filter(&log_level).map_err(|e| invalid("log_level", e))?;

        let version = s
            .mqtt_version
            .map(MqttVersion::try_from)
            .transpose()
            .map_err(|e| invalid("mqtt_version", e.to_string()))?
            .unwrap_or_default();
        let cluster = match s.nats_url {
            Some(urls) => {
                if s.mqtt_url.is_some() {
                    return Err(invalid(
                        "mqtt_url",
                        "does not apply with nats_url: devices log in to the hosts' embedded brokers (mqtt_listen), whose events are stored in JetStream".into(),
                    ));
                }
                let ack_wait = within(
                    "nats_ack_wait",
                    s.nats_ack_wait,
                    Duration::from_secs(30),
                    Duration::from_secs(1)..=Duration::from_secs(3600),
                    "1s..=1h",
                )?;
                let urls = list("nats_url", &urls)?;
                if nats_auth.login.is_some()
                    && urls
                        .iter()
                        .any(|u| crate::nats::auth::split_userinfo(u).1.is_some())
                {
                    return Err(invalid(
                        "nats_url",
                        format!(
                            "carries a login (user:password@) and `{}` gives another: keep one",
                            nats_auth_key
                        ),
                    ));
                }
                Some(Cluster {
                    urls,
                    ack_wait,
                    auth: nats_auth,
                })
            }
            None if s.nats_ack_wait.is_some() => {
                return Err(invalid(
                    "nats_ack_wait",
                    "applies only with nats_url".into(),
                ));
            }
            None => None,
        };
        let broker = match s.mqtt_url {
            Some(url) => {
                if s.mqtt_listen.is_some() {
                    return Err(invalid(
                        "mqtt_url",
                        "cannot be used together with mqtt_listen".into(),
                    ));
                }
                for (key, given) in [
                    ("mqtt_auth", s.mqtt_auth.is_some()),
                    ("mqtt_tls_cert", s.mqtt_tls_cert.is_some()),
                    ("mqtt_tls_listen", s.mqtt_tls_listen.is_some()),
                ] {
                    if given {
                        return Err(invalid(
                            key,
                            "applies to the embedded broker, not to an external one".into(),
                        ));
                    }
                }
                Broker::External {
                    url,
                    version,
                    client_id: s.mqtt_client_id.unwrap_or_else(default_client_id),
                    share_group: s.mqtt_share_group,
                    ca_file: s.mqtt_ca_file,
                }
            }
            None => {
                let listen = s
                    .mqtt_listen
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 1883)));
                let tls = match (s.mqtt_tls_cert, s.mqtt_tls_key) {
                    (Some(cert), Some(key)) => Some(EmbeddedTls {
                        listen: s
                            .mqtt_tls_listen
                            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 8883))),
                        cert,
                        key,
                    }),
                    (None, None) if s.mqtt_tls_listen.is_none() => None,
                    (None, None) => {
                        return Err(invalid(
                            "mqtt_tls_listen",
                            "needs mqtt_tls_cert and mqtt_tls_key".into(),
                        ));
                    }
                    (Some(_), None) => {
                        return Err(invalid("mqtt_tls_cert", "needs mqtt_tls_key".into()));
                    }
                    (None, Some(_)) => {
                        return Err(invalid("mqtt_tls_key", "needs mqtt_tls_cert".into()));
                    }
                };
                // As mosquitto 2: anonymous clients only when every
                // listener is on loopback.
                let loopback = listen.ip().is_loopback()
                    && tls.as_ref().is_none_or(|t| t.listen.ip().is_loopback());
                let auth = s.mqtt_auth.unwrap_or(if loopback {
                    MqttAuth::Open
                } else {
                    MqttAuth::Devices
                });
                let defaults = DeviceLimits::default();
                let max_subscriptions = s
                    .device_max_subscriptions
                    .unwrap_or(defaults.max_subscriptions);
                check(
                    "device_max_subscriptions",
                    max_subscriptions,
                    1,
                    100_000,
                    "1..=100000",
                )?;
                let max_queued = s
                    .device_max_queued
                    .unwrap_or((queue.max_events / 10).max(1));
                check(
                    "device_max_queued",
                    max_queued,
                    1,
                    queue.max_events,
                    &format!("1..=queue_max_events ({})", queue.max_events),
                )?;
                let limits = DeviceLimits {
                    max_subscriptions,
                    publish_rate: rate("device_publish_rate", s.device_publish_rate.as_deref())?
                        .unwrap_or(defaults.publish_rate),
                    max_queued,
                };
                Broker::Embedded {
                    listen,
                    auth,
                    tls,
                    limits,
                }
            }
        };
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
            max_event_bytes,
            http_timeout,
            max_response_bytes,
            chunk_size,
            plugin_instances,
            max_plugin_memory,
            max_in_flight,
            iottly_max_webhooks,
            limits,
            queue,
            delivery,
            throttle,
            stream,
            command_timeout,
            drain_timeout,
            log_level,
            log_format: s.log_format.unwrap_or_default(),
        })
    }
}

/// `value` (or `default`) when within `range`, else an error naming `key`.
fn within(
    key: &'static str,
    value: Option<Duration>,
    default: Duration,
    range: std::ops::RangeInclusive<Duration>,
    shown: &str,
) -> Result<Duration, ConfigError> {
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(invalid(
            key,
            format!("{} is outside {shown}", humantime::format_duration(value)),
        ))
    }
}

/// A retry schedule from `30s, 1m` (empty: no retries); the default is
/// Particle's: 30 seconds, then 1 minute.
fn delays(key: &'static str, text: Option<&str>) -> Result<RetrySchedule, ConfigError> {
    let Some(text) = text else {
        return Ok(RetrySchedule::new(vec![
            Duration::from_secs(30),
            Duration::from_secs(60),
        ]));
    };
    let delays = text
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            humantime::parse_duration(d).map_err(|e| {
                invalid(
                    key,
                    format!("{d:?} is not a duration ({e}); write e.g. \"30s, 1m\""),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if delays.len() > 100 {
        return Err(invalid(
            key,
            format!("{} delays: at most 100", delays.len()),
        ));
    }
    Ok(RetrySchedule::new(delays))
}

fn rate(key: &'static str, text: Option<&str>) -> Result<Option<Rate>, ConfigError> {
    text.map(|t| t.parse().map_err(|e| invalid(key, format!("{e}"))))
        .transpose()
}

fn invalid(key: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { key, reason }
}

fn check(
    key: &'static str,
    value: usize,
    min: usize,
    max: usize,
    range: &str,
) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(invalid(key, format!("{value} is outside {range}")))
    }
}

/// The hosts' login to NATS and TLS from the `nats_*` keys: at most one
/// way to log in, and every file with its partner.
fn nats_auth(s: &Settings) -> Result<NatsAuth, ConfigError> {
    let ways: Vec<&str> = [
        ("nats_creds", s.nats_creds.is_some()),
        ("nats_nkey", s.nats_nkey.is_some()),
        (
            "nats_user",
            s.nats_user.is_some() || s.nats_password_file.is_some(),
        ),
        ("nats_token_file", s.nats_token_file.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, given)| given.then_some(key))
    .collect();
    if let [_, second, ..] = ways.as_slice() {
        return Err(invalid(
            second,
            format!(
                "{} are each a way to log in to NATS: give at most one of nats_creds, nats_nkey, nats_user + nats_password_file, nats_token_file",
                ways.join(" and ")
            ),
        ));
    }
    let login = match (&s.nats_user, &s.nats_password_file) {
        (Some(user), Some(file)) => Some(Login::Password {
            user: user.clone(),
            file: file.clone(),
        }),
        (Some(_), None) => return Err(invalid("nats_user", "needs nats_password_file".into())),
        (None, Some(_)) => return Err(invalid("nats_password_file", "needs nats_user".into())),
        (None, None) => s
            .nats_creds
            .clone()
            .map(Login::Creds)
            .or_else(|| s.nats_nkey.clone().map(Login::Nkey))
            .or_else(|| s.nats_token_file.clone().map(Login::Token)),
    };
    let client_cert = match (&s.nats_tls_cert, &s.nats_tls_key) {
        (Some(cert), Some(key)) => Some(ClientCert {
            cert: cert.clone(),
            key: key.clone(),
        }),
        (Some(_), None) => return Err(invalid("nats_tls_cert", "needs nats_tls_key".into())),
        (None, Some(_)) => return Err(invalid("nats_tls_key", "needs nats_tls_cert".into())),
        (None, None) => None,
    };
    Ok(NatsAuth {
        login,
        ca_file: s.nats_ca_file.clone(),
        client_cert,
    })
}

/// The first `nats_*` key of the login or TLS that is given, for messages.
fn nats_auth_key(s: &Settings) -> &'static str {
    [
        ("nats_creds", s.nats_creds.is_some()),
        ("nats_nkey", s.nats_nkey.is_some()),
        ("nats_user", s.nats_user.is_some()),
        ("nats_password_file", s.nats_password_file.is_some()),
        ("nats_token_file", s.nats_token_file.is_some()),
        ("nats_ca_file", s.nats_ca_file.is_some()),
        ("nats_tls_cert", s.nats_tls_cert.is_some()),
        ("nats_tls_key", s.nats_tls_key.is_some()),
    ]
    .into_iter()
    .find_map(|(key, given)| given.then_some(key))
    .unwrap_or("nats_url")
}

/// The items of a comma list, which must have one.
fn list(key: &'static str, text: &str) -> Result<Vec<String>, ConfigError> {
    let items: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if items.is_empty() {
        return Err(invalid(key, "names no URL".into()));
    }
    Ok(items)
}

fn default_client_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host = host.trim();
    if host.is_empty() {
        "edgehook".to_owned()
    } else {
        format!("edgehook-{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_toml(text: &str) -> Result<Config, String> {
        let settings: Settings = toml::from_str(text).map_err(|e| e.to_string())?;
        Config::build(settings).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_the_contracts() {
        let c = from_toml("").unwrap();
        assert!(
            matches!(c.broker, Broker::Embedded { listen, auth: MqttAuth::Open, tls: None, .. } if listen.to_string() == "127.0.0.1:1883")
        );
        assert_eq!(c.api_listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.api_limits.max_connections, 1024);
        assert_eq!(c.api_limits.header_timeout, Duration::from_secs(10));
        assert_eq!(c.api_limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.plugins_dir, PathBuf::from("plugins"));
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert_eq!(c.chunk_size, 512);
        assert_eq!(c.http_timeout, Duration::from_secs(20));
        assert_eq!(c.max_response_bytes, 100_000);
        assert_eq!(c.limits.suspend_after, 10);
        assert!(!c.allow_private_networks);
        assert_eq!(c.stream.ping_interval, Duration::from_secs(30));
        assert_eq!(c.stream.pong_timeout, Duration::from_secs(10));
        assert_eq!(c.stream.max_connections, 1000);
        assert_eq!(c.command_timeout, Duration::from_secs(60));
        assert_eq!(c.drain_timeout, Duration::from_secs(10));
    }

    #[test]
    fn websocket_and_command_settings_take_humantime_durations() {
        let c = from_toml(
            "ws_ping_interval = \"200ms\"\nws_pong_timeout = \"150ms\"\nws_max_connections = 2\ncommand_timeout = \"2m\"",
        )
        .unwrap();
        assert_eq!(c.stream.ping_interval, Duration::from_millis(200));
        assert_eq!(c.stream.pong_timeout, Duration::from_millis(150));
        assert_eq!(c.stream.max_connections, 2);
        assert_eq!(c.command_timeout, Duration::from_secs(120));
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let file: Settings = toml::from_str("chunk_size = 100\nhttp_timeout = \"5s\"").unwrap();
        let cli = Settings {
            chunk_size: Some(200),
            ..Settings::default()
        };
        let c = Config::build(cli.or(file)).unwrap();
        assert_eq!(c.chunk_size, 200);
        assert_eq!(c.http_timeout, Duration::from_secs(5));
    }

    #[test]
    fn suspend_after_comes_from_the_key_or_the_limits_table() {
        assert_eq!(
            from_toml("suspend_after = 3").unwrap().limits.suspend_after,
            3
        );
        assert_eq!(
            from_toml("[limits]\nsuspend_after = 4")
                .unwrap()
                .limits
                .suspend_after,
            4
        );
        let both = from_toml("suspend_after = 3\n[limits]\nsuspend_after = 4").unwrap();
        assert_eq!(both.limits.suspend_after, 3, "the top-level key wins");
    }

    #[test]
    fn device_logins_are_required_off_loopback() {
        let auth = |text: &str| match from_toml(text).unwrap().broker {
            Broker::Embedded { auth, .. } => auth,
            Broker::External { .. } => unreachable!(),
        };
        assert_eq!(auth(""), MqttAuth::Open);
        assert_eq!(auth("mqtt_listen = \"0.0.0.0:1883\""), MqttAuth::Devices);
        let tls = "mqtt_tls_cert = \"c.pem\"\nmqtt_tls_key = \"k.pem\"";
        assert_eq!(auth(tls), MqttAuth::Devices, "TLS on 0.0.0.0:8883");
        let local = format!("{tls}\nmqtt_tls_listen = \"127.0.0.1:8883\"");
        assert_eq!(auth(&local), MqttAuth::Open);
        let chosen = "mqtt_listen = \"0.0.0.0:1883\"\nmqtt_auth = \"open\"";
        assert_eq!(auth(chosen), MqttAuth::Open);
    }

    #[test]
    fn nats_takes_a_list_of_urls_beside_the_embedded_broker() {
        let text = "nats_url = \"nats://a:4222, nats://b:4222\"\nmqtt_listen = \"0.0.0.0:1883\"";
        let config = from_toml(text).unwrap();
        let cluster = config.cluster.expect("nats_url was given");
        assert_eq!(cluster.urls, ["nats://a:4222", "nats://b:4222"]);
        assert_eq!(cluster.ack_wait, Duration::from_secs(30));
        assert!(
            matches!(
                config.broker,
                Broker::Embedded {
                    auth: MqttAuth::Devices,
                    ..
                }
            ),
            "devices log in to the host's own broker, with their keys off loopback"
        );
        let kept = from_toml(&format!("{text}\nnats_ack_wait = \"5s\"")).unwrap();
        assert_eq!(kept.cluster.unwrap().ack_wait, Duration::from_secs(5));
        for (text, key) in [
            ("nats_url = \" , \"", "nats_url"),
            (
                "nats_url = \"nats://a\"\nmqtt_url = \"mqtt://a\"",
                "mqtt_url",
            ),
            (
                "nats_url = \"nats://a\"\nnats_ack_wait = \"0s\"",
                "nats_ack_wait",
            ),
            ("nats_ack_wait = \"5s\"", "nats_ack_wait"),
        ] {
            let err = from_toml(text).unwrap_err();
            assert!(err.contains(&format!("`{key}`")), "{text}: {err}");
        }
    }

    #[test]
    fn nats_logins_are_one_at_most_and_files_come_with_their_partners() {
        let base = "nats_url = \"nats://a\"\n";
        let auth = |more: &str| {
            let auth = from_toml(&format!("{base}{more}"))
                .unwrap()
                .cluster
                .expect("nats_url was given")
                .auth;
            let ca = auth.ca_file.clone();
            (auth, ca)
        };
        let (given, ca) =
            auth("nats_user = \"hosts\"\nnats_password_file = \"pw\"\nnats_ca_file = \"ca.pem\"");
        assert_eq!(
            given.login,
            Some(Login::Password {
                user: "hosts".into(),
                file: "pw".into()
            })
        );
        assert_eq!(ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(
            auth("nats_nkey = \"seed\"").0.login,
            Some(Login::Nkey("seed".into()))
        );
        for (more, expected) in [
            (
                "nats_creds = \"c\"\nnats_token_file = \"t\"",
                "`nats_token_file`: nats_creds and nats_token_file are each a way to log in",
            ),
            (
                "nats_nkey = \"k\"\nnats_password_file = \"p\"",
                "`nats_user`: nats_nkey and nats_user",
            ),
            ("nats_user = \"u\"", "`nats_user`: needs nats_password_file"),
            (
                "nats_password_file = \"p\"",
                "`nats_password_file`: needs nats_user",
            ),
            (
                "nats_tls_key = \"k\"",
                "`nats_tls_key`: needs nats_tls_cert",
            ),
            (
                "nats_tls_cert = \"c\"",
                "`nats_tls_cert`: needs nats_tls_key",
            ),
        ] {
            let err = from_toml(&format!("{base}{more}")).unwrap_err();
            assert!(err.contains(expected), "{more}: {err}");
        }
        let twice = "nats_url = \"nats://u:p@a\"\nnats_token_file = \"t\"";
        assert!(
            from_toml(twice)
                .unwrap_err()
                .contains("`nats_url`: carries a login")
        );
        let alone = from_toml("nats_ca_file = \"ca.pem\"").unwrap_err();
        assert!(
            alone.contains("`nats_ca_file`: applies only with nats_url"),
            "{alone}"
        );
    }

    #[test]
    fn the_mqtt_version_is_3_or_5_and_5_by_default() {
        let version = |text: &str| match from_toml(text).unwrap().broker {
            Broker::External { version, .. } => version,
            Broker::Embedded { .. } => unreachable!("an external broker was configured"),
        };
        assert_eq!(version("mqtt_url = \"mqtt://x\""), MqttVersion::V5);
        assert_eq!(
            version("mqtt_url = \"mqtt://x\"\nmqtt_version = 3"),
            MqttVersion::V311
        );
        assert_eq!(
            version("mqtt_url = \"mqtt://x\"\nmqtt_version = 5"),
            MqttVersion::V5
        );
    }

    #[test]
    fn errors_name_the_key() {
        for (text, key) in [
            ("colour = 1", "colour"),
            ("chunk_size = 0", "chunk_size"),
            ("http_timeout = \"1h\"", "http_timeout"),
            ("max_event_bytes = \"1 GiB\"", "max_event_bytes"),
            ("api_token = \"short\"", "api_token"),
            ("mqtt_listen = \"nowhere\"", "mqtt_listen"),
            (
                "mqtt_version = 4",
                "`mqtt_version`: 4 is not an MQTT version edgehook speaks: 3 (MQTT 3.1.1) or 5",
            ),
            ("mqtt_version = \"five\"", "mqtt_version"),
            (
                "mqtt_url = \"mqtt://x\"\nmqtt_listen = \"127.0.0.1:1\"",
                "mqtt_url",
            ),
            ("[limits]\nmemory = \"1 KiB\"", "memory"),
            ("[limits]\nbogus = 1", "bogus"),
            (
                "suspend_after = 0",
                "`suspend_after`: 0 is outside 1..=1000",
            ),
            ("suspend_after = 1001", "`suspend_after`"),
            ("suspend_after = \"many\"", "suspend_after"),
            ("[limits]\nsuspend_after = 5000", "`suspend_after`"),
            ("mqtt_auth = \"anyone\"", "mqtt_auth"),
            (
                "mqtt_url = \"mqtt://x\"\nmqtt_auth = \"devices\"",
                "`mqtt_auth`",
            ),
            (
                "mqtt_tls_cert = \"c.pem\"",
                "`mqtt_tls_cert`: needs mqtt_tls_key",
            ),
            ("mqtt_tls_key = \"k.pem\"", "`mqtt_tls_key`"),
            ("mqtt_tls_listen = \"0.0.0.0:8883\"", "`mqtt_tls_listen`"),
            (
                "ws_ping_interval = \"2h\"",
                "`ws_ping_interval`: 2h is outside",
            ),
            ("ws_pong_timeout = \"1ms\"", "`ws_pong_timeout`"),
            ("ws_pong_timeout = \"soon\"", "ws_pong_timeout"),
            ("ws_max_connections = 0", "`ws_max_connections`"),
            (
                "api_max_connections = 0",
                "`api_max_connections`: 0 is outside",
            ),
            ("api_max_connections = 100001", "`api_max_connections`"),
            ("command_timeout = \"2d\"", "`command_timeout`"),
            ("drain_timeout = \"2h\"", "`drain_timeout`"),
        ] {
            let err = from_toml(text).unwrap_err();
            assert!(err.contains(key), "{text:?}: {err}");
        }
    }
}
