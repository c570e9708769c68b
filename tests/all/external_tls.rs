//! An external broker over TLS (`mqtts://`, its CA given with
//! `--mqtt-ca-file`): events and answers go through it, a certificate the
//! host cannot verify stops start-up, and when the broker is killed and
//! comes back the host connects again and subscribes anew (README,
//! "Configuration reference", `mqtt_url` and `mqtt_ca_file`).

use std::time::Duration;

use edgehook::config::{Config, Settings};
use edgehook::server::Host;

use crate::support::{Device, Endpoint, HostUnderTest, Mosquitto, TestHost, WAIT};

/// The settings of a host on `broker`'s TLS listener, named `localhost`
/// (a name its certificate holds), trusting its CA when `trusted`.
fn over_tls(broker: &Mosquitto, client_id: &str, trusted: bool) -> Settings {
    let port = broker.tls_addr.expect("a TLS listener").port();
    Settings {
        mqtt_url: Some(format!("mqtts://localhost:{port}")),
        mqtt_client_id: Some(client_id.into()),
        mqtt_ca_file: trusted.then(|| broker.ca_file.clone().expect("the broker's CA")),
        ..Settings::default()
    }
}

/// A host on `broker` over TLS with a webhook on `tls` posting to
/// `endpoint`.
async fn host_on(broker: &Mosquitto, client_id: &str, endpoint: &Endpoint) -> TestHost {
    let host = TestHost::start(&[], over_tls(broker, client_id, true)).await;
    assert!(host.host.mqtt_addr.is_none(), "no embedded broker");
    host.create_webhook(serde_json::json!({
        "event": "tls",
        "url": endpoint.url("/tls"),
        "body": "{{{PARTICLE_EVENT_VALUE}}}",
    }))
    .await;
    host
}

/// `device` publishes `tls` with `data`: it reaches `endpoint` and the
/// answers come back to the device (through the host's TLS connection).
async fn round_trip(device: &mut Device, endpoint: &mut Endpoint, data: &str) {
    device.publish("tls", data).await;
    let seen = endpoint.next().await;
    assert_eq!(std::str::from_utf8(&seen.body).unwrap(), data);
    let id = device.id.clone();
    assert_eq!(
        device.next_text().await.0,
        format!("devices/{id}/hook-sent/tls")
    );
    assert_eq!(
        device.next_text().await,
        (
            format!("devices/{id}/hook-response/tls/0"),
            "over tls".into()
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn events_and_answers_go_through_a_broker_over_tls() {
    let broker = Mosquitto::start_tls().await;
    let mut endpoint = Endpoint::start(200, "over tls").await;
    let host = host_on(&broker, "edgehook-tls", &endpoint).await;
    // The device on the broker's plain listener: only the host speaks TLS.
    let mut device = Device::connect(broker.addr, "t1").await;
    round_trip(&mut device, &mut endpoint, "21.5").await;
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_certificate_the_host_cannot_verify_stops_start_up() {
    let broker = Mosquitto::start_tls().await;
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        api_listen: Some("127.0.0.1:0".parse().unwrap()),
        data: Some(dir.path().join("data")),
        plugins: Some(dir.path().join("plugins")),
        webhooks: Some(dir.path().join("webhooks")),
        ..over_tls(&broker, "edgehook-untrusting", false)
    };
    let cfg = Config::build(settings).expect("valid settings");
    let err = match Host::start(cfg).await {
        Ok(host) => {
            host.stop().await;
            panic!("the host trusted a certificate from an unknown CA");
        }
        Err(err) => format!("{err:#}"),
    };
    let url = format!("mqtts://localhost:{}", broker.tls_addr.unwrap().port());
    assert!(
        err.contains(&url) && err.contains("no connection"),
        "the error names the broker it could not reach: {err}"
    );
    assert!(
        err.contains("certificate"),
        "the error says why: the certificate was not trusted: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_connects_again_when_the_broker_comes_back() {
    let mut broker = Mosquitto::start_tls().await;
    let mut endpoint = Endpoint::start(200, "over tls").await;
    let host = host_on(&broker, "edgehook-tls-again", &endpoint).await;
    let mut device = Device::connect(broker.addr, "t2").await;
    round_trip(&mut device, &mut endpoint, "before").await;

    // Killed and started again: no session survives (`persistence false`),
    // so the host must connect and subscribe anew by itself.
    broker.restart().await;
    // Probes, from another device to another endpoint, until one is
    // delivered: the host is subscribed again.
    let mut probes = Endpoint::start(200, "probe").await;
    host.create_webhook(serde_json::json!({ "event": "probe", "url": probes.url("/probe") }))
        .await;
    let prober = Device::connect(broker.addr, "t2-probe").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        prober.publish("probe", "").await;
        let probe = tokio::time::timeout(Duration::from_millis(200), probes.next()).await;
        if probe.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the host did not come back to the broker within {WAIT:?}"
        );
    }
    let mut device = Device::connect(broker.addr, "t3").await;
    round_trip(&mut device, &mut endpoint, "after").await;
    host.host.stop().await;
}
