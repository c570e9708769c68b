//! The settings in force, named by the config file's keys: what
//! `GET /v1/config` shows (secrets masked), and what a reload (SIGHUP)
//! compares key by key to say what it applied and what needs a restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Broker, Cluster, Config, Login, MqttVersion};
use crate::secrets;
use crate::throttle::{Rate, RetrySchedule};

/// Each config key and its value in force (`null`: not set, or not
/// applying in this mode).
pub type InForce = BTreeMap<&'static str, Value>;

/// The keys a reload applies without a restart. The broker's TLS files
/// are read again on every reload, changed names or not.
pub const LIVE: [&str; 17] = [
    "log_level",
    "log_format",
    "retry_delays",
    "skip_retry_delays",
    "event_ttl",
    "history_retention",
    "history_max_bytes",
    "disable_after",
    "host_concurrency",
    "host_rate",
    "device_rate",
    "device_publish_rate",
    "device_max_subscriptions",
    "limits",
    "suspend_after",
    "mqtt_tls_cert",
    "mqtt_tls_key",
];

/// What every secret is shown as.
const MASKED: &str = "***";

impl Config {
    /// Every setting in force, by its key in the config file.
    pub fn in_force(&self) -> InForce {
        let mut out = InForce::new();
        broker(&self.broker, &mut out);
        cluster(self.cluster.as_ref(), &mut out);
        host(self, &mut out);
        out
    }

    /// Takes from `new` what a reload applies without a restart ([`LIVE`]).
    pub fn take_live(&mut self, new: &Self) {
        self.log_level.clone_from(&new.log_level);
        self.log_format = new.log_format;
        self.delivery = new.delivery.clone();
        self.throttle = new.throttle.clone();
        self.limits = new.limits;
        let (
            Broker::Embedded { tls, limits, .. },
            Broker::Embedded {
                tls: given_tls,
                limits: given,
                ..
            },
        ) = (&mut self.broker, &new.broker)
        else {
            return;
        };
        limits.publish_rate = given.publish_rate;
        limits.max_subscriptions = given.max_subscriptions;
        // The TLS listener stays where it is: its files may change, not
        // whether there is one.
        if let (Some(tls), Some(given)) = (tls, given_tls) {
            tls.cert.clone_from(&given.cert);
            tls.key.clone_from(&given.key);
        }
    }
}

/// The MQTT side's keys; those of the other kind of broker are `null`.
fn broker(broker: &Broker, out: &mut InForce) {
    let mut set = |key: &'static str, value: Value| {
        out.insert(key, value);
    };
    let embedded = match broker {
        Broker::Embedded {
            listen,
            auth,
            tls,
            limits,
        } => Some((listen, auth, tls, limits)),
        Broker::External { .. } => None,
    };
    set("mqtt_listen", json!(embedded.map(|e| e.0.to_string())));
    set(
        "mqtt_auth",
        json!(embedded.map(|e| format!("{:?}", e.1).to_lowercase())),
    );
    let tls = embedded.and_then(|e| e.2.as_ref());
    set("mqtt_tls_listen", json!(tls.map(|t| t.listen.to_string())));
    set("mqtt_tls_cert", path(tls.map(|t| &*t.cert)));
    set("mqtt_tls_key", path(tls.map(|t| &*t.key)));
    let limits = embedded.map(|e| e.3);
    set(
        "device_max_subscriptions",
        json!(limits.map(|l| l.max_subscriptions)),
    );
    set(
        "device_publish_rate",
        json!(limits.map(|l| l.publish_rate.to_string())),
    );
    set("device_max_queued", json!(limits.map(|l| l.max_queued)));

    let external = match broker {
        Broker::External {
            urls,
            version,
            client_id,
            share_group,
            ca_file,
        } => Some((urls, version, client_id, share_group, ca_file)),
        Broker::Embedded { .. } => None,
    };
    set(
        "mqtt_url",
        json!(external.map(|e| crate::secrets::url_list(e.0))),
    );
    set(
        "mqtt_version",
        json!(external.map(|e| match e.1 {
            MqttVersion::V311 => 3,
            MqttVersion::V5 => 5,
        })),
    );
    set("mqtt_client_id", json!(external.map(|e| e.2)));
    set(
        "mqtt_share_group",
        json!(external.and_then(|e| e.3.clone())),
    );
    set("mqtt_ca_file", path(external.and_then(|e| e.4.as_deref())));
}

/// The `nats_*` keys, `null` without a cluster.
fn cluster(cluster: Option<&Cluster>, out: &mut InForce) {
    let mut set = |key: &'static str, value: Value| {
        out.insert(key, value);
    };

    set(
        "nats_url",
        json!(cluster.map(|c| crate::secrets::url_list(&c.urls))),
    );
    set(
        "nats_ack_wait",
        json!(cluster.map(|c| duration(c.ack_wait))),
    );
    let auth = cluster.map(|c| &c.auth);
    let login = auth.and_then(|a| a.login.as_ref());
    let file = |pick: fn(&Login) -> Option<&Path>| path(login.and_then(pick));
    set(
        "nats_creds",
        file(|l| match l {
            Login::Creds(f) => Some(f),
            _ => None,
        }),
    );
    set(
        "nats_nkey",
        file(|l| match l {
            Login::Nkey(f) => Some(f),
            _ => None,
        }),
    );
    set(
        "nats_password_file",
        file(|l| match l {
            Login::Password { file, .. } => Some(file),
            _ => None,
        }),
    );
    set(
        "nats_token_file",
        file(|l| match l {
            Login::Token(f) => Some(f),
            _ => None,
        }),
    );
    set(
        "nats_user",
        json!(login.and_then(|l| match l {
            Login::Password { user, .. } => Some(user),
            _ => None,
        })),
    );
    set(
        "nats_ca_file",
        path(auth.and_then(|a| a.ca_file.as_deref())),
    );
    let cert = auth.and_then(|a| a.client_cert.as_ref());
    set("nats_tls_cert", path(cert.map(|c| &*c.cert)));
    set("nats_tls_key", path(cert.map(|c| &*c.key)));
}

/// Every other key.
fn host(config: &Config, out: &mut InForce) {
    let mut set = |key: &'static str, value: Value| {
        out.insert(key, value);
    };
    set("api_listen", json!(config.api_listen.to_string()));
    set(
        "api_max_connections",
        json!(config.api_limits.max_connections),
    );
    // Generated and kept in the data directory when not given: a
    // token is always in force, and never shown.
    set("api_token", json!(MASKED));
    set("plugins", path(Some(&config.plugins_dir)));
    set("webhooks", path(Some(&config.webhooks_dir)));
    set("data", path(Some(&config.data_dir)));
    set(
        "allow_private_networks",
        json!(config.allow_private_networks),
    );
    set("max_event_bytes", json!(config.max_event_bytes));
    set("http_timeout", json!(duration(config.http_timeout)));
    set("max_response_bytes", json!(config.max_response_bytes));
    set("chunk_size", json!(config.chunk_size));
    set("plugin_instances", json!(config.plugin_instances));
    set("max_plugin_memory", json!(config.max_plugin_memory));
    set("max_in_flight", json!(config.max_in_flight));
    set("iottly_max_webhooks", json!(config.iottly_max_webhooks));
    set("suspend_after", json!(config.limits.suspend_after));
    set(
        "limits",
        json!({
            "memory": config.limits.memory,
            "cpu_time": duration(config.limits.cpu_time),
            "request_body": config.limits.request_body,
            "replies": config.limits.replies,
            "reply_bytes": config.limits.reply_bytes,
            "log_bytes": config.limits.log_bytes,
            "suspend_after": config.limits.suspend_after,
            "kv_max_keys": config.limits.kv_max_keys,
        }),
    );
    set("queue_max_events", json!(config.queue.max_events));
    set("queue_max_bytes", json!(config.queue.max_bytes));
    set("event_ttl", json!(duration(config.delivery.ttl)));
    set("retry_delays", json!(delays(&config.delivery.retry)));
    set(
        "skip_retry_delays",
        json!(delays(&config.delivery.skip_retry)),
    );
    set("disable_after", json!(config.delivery.disable_after));
    set(
        "history_retention",
        json!(duration(config.delivery.history.max_age)),
    );
    set(
        "history_max_bytes",
        json!(config.delivery.history.max_bytes),
    );
    set(
        "otlp_endpoint",
        json!(
            config
                .otlp_endpoint
                .as_ref()
                .map(|u| secrets::url(u.as_str()))
        ),
    );
    set("host_concurrency", json!(config.throttle.host_concurrency));
    set("host_rate", rate(config.throttle.host_rate));
    set("device_rate", rate(config.throttle.device_rate));
    set(
        "ws_ping_interval",
        json!(duration(config.stream.ping_interval)),
    );
    set(
        "ws_pong_timeout",
        json!(duration(config.stream.pong_timeout)),
    );
    set("ws_max_connections", json!(config.stream.max_connections));
    set("command_timeout", json!(duration(config.command_timeout)));
    set("drain_timeout", json!(duration(config.drain_timeout)));
    set("log_level", json!(config.log_level));
    set("log_format", json!(config.log_format.as_str()));
    set("ready_format", json!(config.ready_format.as_str()));
}

/// The keys whose values differ between `old` and `new`.
pub fn changed(old: &InForce, new: &InForce) -> Vec<&'static str> {
    new.iter()
        .filter(|(key, value)| old.get(*key) != Some(value))
        .map(|(key, _)| *key)
        .collect()
}

fn path(path: Option<&Path>) -> Value {
    json!(path.map(|p| p.display().to_string()))
}

fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn delays(schedule: &RetrySchedule) -> String {
    schedule
        .delays()
        .iter()
        .map(|d| duration(*d))
        .collect::<Vec<_>>()
        .join(",")
}

fn rate(rate: Option<Rate>) -> Value {
    json!(rate.map(|r| r.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{InForce, LIVE, changed};
    use crate::config::{Config, Settings};

    fn built(toml: &str) -> Config {
        Config::build(toml::from_str::<Settings>(toml).unwrap()).unwrap()
    }

    #[test]
    fn every_key_of_the_file_is_shown_and_no_other() {
        let shown = built("").in_force();
        // The flags are the file's keys; `[limits]` is in the file only.
        let command = <Settings as clap::Args>::augment_args(clap::Command::new("serve"));
        let mut keys: Vec<&str> = command
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .collect();
        keys.push("limits");
        for key in &keys {
            assert!(shown.contains_key(key), "{key} not shown");
        }
        for key in shown.keys() {
            assert!(keys.contains(key), "{key} is not a config key");
        }
        for key in LIVE {
            assert!(shown.contains_key(key), "{key} is not a config key");
        }
    }

    #[test]
    fn secrets_are_masked() {
        let config = built(
            r#"
            api_token = "0123456789abcdef-secret"
            mqtt_url = "mqtt://user:hunter22@broker.example:1883"
            "#,
        );
        let text = serde_json::to_string(&config.in_force()).unwrap();
        assert!(!text.contains("0123456789abcdef-secret"), "{text}");
        assert!(!text.contains("hunter22"), "{text}");
        assert!(text.contains("broker.example"), "{text}");
    }

    #[test]
    fn a_reload_takes_the_live_keys_and_leaves_the_others() {
        let mut old = built(r#"api_listen = "127.0.0.1:8080""#);
        let new = built(
            r#"
            api_listen = "127.0.0.1:9090"
            retry_delays = "1s,2s,3s"
            log_level = "debug"
            host_rate = "10/s"
            suspend_after = 3
            [limits]
            request_body = "1 KiB"
            "#,
        );
        let before: InForce = old.in_force();
        old.take_live(&new);
        assert_eq!(
            changed(&before, &old.in_force()),
            [
                "host_rate",
                "limits",
                "log_level",
                "retry_delays",
                "suspend_after"
            ]
        );
        assert_eq!(old.limits.request_body, 1024);
        assert_eq!(changed(&old.in_force(), &new.in_force()), ["api_listen"]);
        assert_eq!(old.in_force()["retry_delays"], "1s,2s,3s");
    }
}
