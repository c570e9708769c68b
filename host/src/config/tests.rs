//! The configuration's checks: defaults, ranges, and which keys go together.

use std::path::PathBuf;
use std::time::Duration;

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
fn mqtt_url_names_one_node_or_a_comma_list() {
    let c = from_toml("mqtt_url = \"mqtt://a:1883, mqtts://b:8883,\"").unwrap();
    match c.broker {
        Broker::External { urls, .. } => assert_eq!(urls, ["mqtt://a:1883", "mqtts://b:8883"]),
        Broker::Embedded { .. } => unreachable!(),
    }
    let err = from_toml("mqtt_url = \" , \"").unwrap_err();
    assert!(
        err.contains("`mqtt_url`") && err.contains("names no URL"),
        "{err}"
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
