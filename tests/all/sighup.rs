//! SIGHUP (CONTRACT section 13): the host reads its config file again,
//! applies what can change live, logs `needs a restart: KEY` for what
//! cannot, keeps everything when the file does not parse, and presents a
//! renewed TLS certificate from the next handshake; `GET /v1/config` shows
//! the settings in force.

use std::path::Path;
use std::sync::Arc;

use edgehook_tests::BEHAVE;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::support::{
    Device, Endpoint, HostProcess, HostUnderTest, Scripted, Step, TOKEN, WAIT, forward_manifest,
    http_get, install,
};

/// The log lines up to the first that holds `text` (included).
async fn until(lines: &mut UnboundedReceiver<String>, text: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.recv().await {
            let done = line.contains(text);
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "no log line with {text:?}; seen: {seen:#?}"
    );
    seen
}

/// The settings in force, from `GET /v1/config`.
async fn in_force(host: &HostProcess) -> serde_json::Value {
    let (status, body) = http_get(host.api_addr, "/v1/config", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

const BASE: &str = r#"
mqtt_listen = "127.0.0.1:0"
allow_private_networks = true
chunk_size = 512
"#;

#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_live_settings_and_names_those_that_need_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edgehook.toml");
    write(&file, &format!("{BASE}retry_delays = \"1h\"\n"));
    let (host, mut lines) = HostProcess::start_configured(dir.path(), &file).await;
    let config = in_force(&host).await;
    assert_eq!(config["retry_delays"], "1h", "{config}");
    assert_eq!(config["api_token"], "***", "the token is never shown");
    assert!(
        !config.to_string().contains(TOKEN),
        "the token is never shown: {config}"
    );

    write(
        &file,
        &format!("{BASE}retry_delays = \"200ms\"\nlog_level = \"info,edgehook=debug\"\n")
            .replace("chunk_size = 512", "chunk_size = 256"),
    );
    host.hang_up();
    let seen = until(&mut lines, "config reloaded").await;
    assert!(
        seen.iter()
            .any(|l| l.contains("needs a restart: chunk_size")),
        "{seen:#?}"
    );
    let applied = seen.last().unwrap();
    assert!(
        applied.contains("log_level") && applied.contains("retry_delays"),
        "{applied}"
    );
    let config = in_force(&host).await;
    assert_eq!(config["retry_delays"], "200ms", "{config}");
    assert_eq!(config["log_level"], "info,edgehook=debug", "{config}");
    assert_eq!(
        config["chunk_size"], 512,
        "a restart-only key keeps its value"
    );

    // The new schedule is the one deliveries follow: the retry of a
    // failed request comes after 200 ms, not after an hour.
    let mut endpoint =
        Scripted::start(vec![Step::status(500, "down"), Step::status(200, "up")]).await;
    host.create_webhook(serde_json::json!({"event": "temp", "url": endpoint.url("/in")}))
        .await;
    let device = Device::connect(host.mqtt_addr.unwrap(), "d1").await;
    device.publish("temp", "21").await;
    endpoint.next().await;
    let retried = endpoint.next().await.seen;
    assert!(
        String::from_utf8_lossy(&retried.body).contains("data=21"),
        "{retried:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_that_does_not_parse_keeps_the_settings_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edgehook.toml");
    write(&file, &format!("{BASE}host_rate = \"10/s\"\n"));
    let (host, mut lines) = HostProcess::start_configured(dir.path(), &file).await;

    write(
        &file,
        &format!("{BASE}host_rate = \"10/s\"\nretry_delays = [\n"),
    );
    host.hang_up();
    let seen = until(&mut lines, "config not reloaded").await;
    let refused = seen.last().unwrap();
    assert!(
        refused.contains("edgehook.toml"),
        "names the file: {refused}"
    );
    write(&file, &format!("{BASE}host_rate = \"fast\"\n"));
    host.hang_up();
    let refused = until(&mut lines, "config not reloaded").await;
    assert!(
        refused.last().unwrap().contains("`host_rate`"),
        "names the key: {refused:#?}"
    );
    let config = in_force(&host).await;
    assert_eq!(config["host_rate"], "10/s burst 10", "{config}");

    // The same file again: nothing changes, nothing needs a restart.
    write(&file, &format!("{BASE}host_rate = \"10/s\"\n"));
    host.hang_up();
    let seen = until(&mut lines, "config reloaded").await;
    assert!(
        seen.last()
            .unwrap()
            .contains("no setting that applies live changed"),
        "{seen:#?}"
    );
    assert!(
        !seen.iter().any(|l| l.contains("needs a restart")),
        "{seen:#?}"
    );
    let (status, _) = http_get(host.api_addr, "/healthz", None).await;
    assert_eq!(status, 200, "the host serves on");
}

/// A certificate and its key for `127.0.0.1`, written to `dir`.
fn certificate(dir: &Path) -> String {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    write(&dir.join("cert.pem"), &certified.cert.pem());
    write(&dir.join("key.pem"), &certified.signing_key.serialize_pem());
    certified.cert.pem()
}

/// Whether a TLS handshake with `addr` succeeds for a client that trusts
/// only the certificate `trusted` (PEM).
async fn handshake_trusting(addr: std::net::SocketAddr, trusted: &str) -> bool {
    let files = tempfile::tempdir().unwrap();
    let ca = files.path().join("ca.pem");
    write(&ca, trusted);
    let config = edgehook::tls::client_config(Some(&ca)).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewed_broker_certificate_is_presented_after_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("tls");
    std::fs::create_dir(&certs).unwrap();
    let first = certificate(&certs);
    let file = dir.path().join("edgehook.toml");
    write(
        &file,
        &format!(
            "{BASE}mqtt_tls_listen = \"127.0.0.1:0\"\nmqtt_tls_cert = \"{0}/cert.pem\"\nmqtt_tls_key = \"{0}/key.pem\"\n",
            certs.display()
        ),
    );
    let (host, mut lines) = HostProcess::start_configured(dir.path(), &file).await;
    let tls = host.mqtt_tls_addr.expect("a TLS listener");
    assert!(handshake_trusting(tls, &first).await);

    let renewed = certificate(&certs);
    assert!(
        !handshake_trusting(tls, &renewed).await,
        "the old certificate until the reload"
    );
    host.hang_up();
    until(&mut lines, "config reloaded").await;
    assert!(handshake_trusting(tls, &renewed).await);
    assert!(!handshake_trusting(tls, &first).await);

    // A key that does not load keeps the certificate in force.
    write(&certs.join("key.pem"), "not a key");
    host.hang_up();
    let seen = until(&mut lines, "config reloaded").await;
    assert!(
        seen.iter()
            .any(|l| l.contains("mqtt_tls_key") && l.contains("the certificate in force stays")),
        "{seen:#?}"
    );
    assert!(handshake_trusting(tls, &renewed).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_changes_the_device_publish_rate_from_the_next_publish() {
    const REFUSED: &str = "edgehook_mqtt_refusals_total{reason=\"publish_rate\"}";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edgehook.toml");
    write(
        &file,
        &format!("{BASE}device_publish_rate = \"1000/s burst 1000\"\n"),
    );
    let (host, mut lines) = HostProcess::start_configured(dir.path(), &file).await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    host.create_webhook(serde_json::json!({"event": "temp", "url": endpoint.url("/in")}))
        .await;
    let device = Device::connect(host.mqtt_addr.unwrap(), "d1").await;
    for i in 0..3 {
        device.publish("temp", i.to_string()).await;
    }
    for _ in 0..3 {
        endpoint.next().await;
    }
    assert_eq!(host.metric(REFUSED).await, 0, "within the rate");

    write(
        &file,
        &format!("{BASE}device_publish_rate = \"1/h burst 1\"\n"),
    );
    host.hang_up();
    let seen = until(&mut lines, "config reloaded").await;
    let applied = seen.last().unwrap();
    assert!(applied.contains("device_publish_rate"), "{applied}");
    assert!(
        !seen.iter().any(|l| l.contains("needs a restart")),
        "{seen:#?}"
    );
    for i in 3..6 {
        device.publish("temp", i.to_string()).await;
    }
    // At most the first of the three fits a bucket of one an hour.
    let deadline = tokio::time::Instant::now() + WAIT;
    while host.metric(REFUSED).await < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new rate was not applied: {} refused",
            host.metric(REFUSED).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The plugins' default limits apply from the next call after SIGHUP, to
/// the plugins directory's plugins and to the built-in ones alike.
#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_new_plugin_limits_to_every_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edgehook.toml");
    write(&file, BASE);
    let mut endpoint = Endpoint::start(200, "ok").await;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    install(
        &plugins,
        "fwd",
        BEHAVE,
        &forward_manifest("fwd", &endpoint.url("/fwd")),
    );
    let (host, mut lines) = HostProcess::start_configured(dir.path(), &file).await;
    host.create_webhook(serde_json::json!({"event": "temp", "url": endpoint.url("/in")}))
        .await;
    let mut device = Device::connect(host.mqtt_addr.unwrap(), "d1").await;
    let reading = "x".repeat(200);
    for event in ["fwd", "temp"] {
        device.publish(event, reading.clone()).await;
        let seen = endpoint.next().await;
        assert!(seen.body.len() >= 200, "{event}: {seen:?}");
    }

    write(
        &file,
        &format!("{BASE}[limits]\nrequest_body = \"100 B\"\n"),
    );
    host.hang_up();
    let seen = until(&mut lines, "config reloaded").await;
    assert!(seen.last().unwrap().contains("limits"), "{seen:#?}");
    assert!(
        !seen.iter().any(|l| l.contains("needs a restart")),
        "{seen:#?}"
    );
    assert_eq!(in_force(&host).await["limits"]["request_body"], 100);
    for event in ["fwd", "temp"] {
        device.publish(event, reading.clone()).await;
        let error = format!("devices/d1/hook-error/{event}/0");
        let text = loop {
            let (topic, text) = device.next_text().await;
            if topic == error {
                break text;
            }
        };
        assert!(
            text.contains("exceeds the limit of 100 bytes"),
            "{event}: {text}"
        );
    }
}
