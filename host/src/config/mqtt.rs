//! The MQTT side's settings: the embedded broker (its listeners, who may
//! log in, what each device may hold and send) or an external broker (its
//! URL, the MQTT version the host speaks, its client id and share group).
//! README "Configuration reference".

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::{ConfigError, check, invalid, list};
use super::{QueueLimits, Settings};
use crate::throttle::Rate;

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
        /// `mqtt://` or `mqtts://` URLs of the broker's nodes: the host
        /// connects to the first that answers, and to the next when it
        /// loses one.
        urls: Vec<String>,
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

/// Device logins on the embedded broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MqttAuth {
    /// Any client, any device id; still only the host speaks on host →
    /// device topics.
    Open,
    /// Registered devices with their keys, and the operator.
    Devices,
}

/// The limits every device gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceLimits {
    /// Topic filters one session may hold at once.
    pub max_subscriptions: usize,
    /// Events (and answers to commands) one device may publish.
    pub publish_rate: Rate,
    /// Events of one device the queue may hold at once.
    pub max_queued: usize,
}

impl Default for DeviceLimits {
    fn default() -> Self {
        Self {
            max_queued: 10_000,
            max_subscriptions: 32,
            publish_rate: Rate {
                events: 100,
                period: Duration::from_secs(1),
                burst: 200,
            },
        }
    }
}

/// The MQTT version of the host's own connection to an external broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MqttVersion {
    /// MQTT 3.1.1 (`3`), for brokers without MQTT 5.
    V311,
    /// MQTT 5 (`5`), the default.
    #[default]
    V5,
}

/// A version number that is neither 3 nor 5.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not an MQTT version edgehook speaks: 3 (MQTT 3.1.1) or 5 (MQTT 5)")]
pub struct UnknownVersion(pub u8);

impl TryFrom<u8> for MqttVersion {
    type Error = UnknownVersion;

    fn try_from(n: u8) -> Result<Self, UnknownVersion> {
        match n {
            3 => Ok(Self::V311),
            5 => Ok(Self::V5),
            other => Err(UnknownVersion(other)),
        }
    }
}

impl Broker {
    /// The broker `s` names: an external one with `mqtt_url`, else the
    /// embedded one, whose devices share `queue`.
    pub(super) fn build(s: &Settings, queue: &QueueLimits) -> Result<Self, ConfigError> {
        match &s.mqtt_url {
            Some(url) => external(s, url),
            None => embedded(s, queue),
        }
    }
}

fn external(s: &Settings, url: &str) -> Result<Broker, ConfigError> {
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
    let urls = list("mqtt_url", url)?;
    Ok(Broker::External {
        urls,
        version: version(s)?,
        client_id: s.mqtt_client_id.clone().unwrap_or_else(default_client_id),
        share_group: s.mqtt_share_group.clone(),
        ca_file: s.mqtt_ca_file.clone(),
    })
}

/// `mqtt_version`, 5 when not given.
fn version(s: &Settings) -> Result<MqttVersion, ConfigError> {
    Ok(s.mqtt_version
        .map(MqttVersion::try_from)
        .transpose()
        .map_err(|e| invalid("mqtt_version", e.to_string()))?
        .unwrap_or_default())
}

fn embedded(s: &Settings, queue: &QueueLimits) -> Result<Broker, ConfigError> {
    version(s)?;
    let listen = s
        .mqtt_listen
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 1883)));
    let tls = tls(s)?;
    // As mosquitto 2: anonymous clients only when every listener is on
    // loopback.
    let loopback =
        listen.ip().is_loopback() && tls.as_ref().is_none_or(|t| t.listen.ip().is_loopback());
    let auth = s.mqtt_auth.unwrap_or(if loopback {
        MqttAuth::Open
    } else {
        MqttAuth::Devices
    });
    Ok(Broker::Embedded {
        listen,
        auth,
        tls,
        limits: device_limits(s, queue)?,
    })
}

/// The TLS listener: a certificate and its key, or neither.
fn tls(s: &Settings) -> Result<Option<EmbeddedTls>, ConfigError> {
    match (&s.mqtt_tls_cert, &s.mqtt_tls_key) {
        (Some(cert), Some(key)) => Ok(Some(EmbeddedTls {
            listen: s
                .mqtt_tls_listen
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 8883))),
            cert: cert.clone(),
            key: key.clone(),
        })),
        (None, None) if s.mqtt_tls_listen.is_none() => Ok(None),
        (None, None) => Err(invalid(
            "mqtt_tls_listen",
            "needs mqtt_tls_cert and mqtt_tls_key".into(),
        )),
        (Some(_), None) => Err(invalid("mqtt_tls_cert", "needs mqtt_tls_key".into())),
        (None, Some(_)) => Err(invalid("mqtt_tls_key", "needs mqtt_tls_cert".into())),
    }
}

fn device_limits(s: &Settings, queue: &QueueLimits) -> Result<DeviceLimits, ConfigError> {
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
    Ok(DeviceLimits {
        max_subscriptions,
        publish_rate: super::delivery::rate(
            "device_publish_rate",
            s.device_publish_rate.as_deref(),
        )?
        .unwrap_or(defaults.publish_rate),
        max_queued,
    })
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
