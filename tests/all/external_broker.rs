//! edgehook on an external broker: a real mosquitto started for the test.

use std::time::Duration;

use edgehook::config::Settings;
use edgehook_tests::BEHAVE;

use crate::support::{Device, Endpoint, Mosquitto, TestHost, WAIT, closed_port, forward_manifest};

#[tokio::test(flavor = "multi_thread")]
async fn events_through_mosquitto_reach_the_endpoint_and_answers_come_back() {
    let broker = Mosquitto::start().await;
    let mut endpoint = Endpoint::start(200, "via mosquitto").await;
    let manifest = forward_manifest("ext", &endpoint.url("/ext"));
    let settings = Settings {
        mqtt_url: Some(format!("mqtt://{}", broker.addr)),
        mqtt_client_id: Some("edgehook-test-ext".into()),
        ..Settings::default()
    };
    let host = TestHost::start(&[("ext", BEHAVE, &manifest)], settings).await;
    assert!(host.host.mqtt_addr.is_none());
    let mut device = Device::connect(broker.addr, "m1").await;

    device.publish("ext/reading", "21.5").await;
    let seen = endpoint.next().await;
    assert_eq!(&seen.body[..], b"21.5");
    assert_eq!(seen.headers["x-event-name"], "ext/reading");
    assert_eq!(
        device.next_text().await,
        ("devices/m1/hook-sent/ext/reading".into(), String::new())
    );
    assert_eq!(
        device.next_text().await,
        (
            "devices/m1/hook-response/ext/reading/0".into(),
            "via mosquitto".into()
        )
    );
    // The host's own publishes are not events: nothing more arrives before
    // the next event.
    device.publish("ext/marker", "marker").await;
    let before = endpoint.before_marker(|s| s.body == "marker").await;
    assert!(before.is_empty(), "{before:?}");

    // Health follows the broker connection.
    assert_eq!(host.api_get("/healthz", None).await.0, 200);
    drop(broker);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = host.api_get("/healthz", None).await;
        if status == 503 {
            assert!(
                body["error"].as_str().unwrap().contains("MQTT broker"),
                "{body}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "healthz stayed {status} without a broker"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_not_acknowledged_is_redelivered_to_the_next_session() {
    use edgehook::ingress::external::{ExternalOptions, start};

    let broker = Mosquitto::start().await;
    let opts = ExternalOptions {
        url: format!("mqtt://{}", broker.addr),
        client_id: "edgehook-redelivery".into(),
        max_event_bytes: 1024,
        share_group: None,
        ca_file: None,
    };
    let (tx, mut inbound) = tokio::sync::mpsc::channel(8);
    let first = start(opts.clone(), tx).await.unwrap();
    let device = Device::connect(broker.addr, "m2").await;
    device.publish("kept", "not yet stored").await;
    let taken = tokio::time::timeout(WAIT, inbound.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&taken.event.data[..], b"not yet stored");
    // The host stops before the event is safe: no PUBACK goes out.
    first.shutdown().await;
    drop(taken);

    let (tx, mut inbound) = tokio::sync::mpsc::channel(8);
    let second = start(opts, tx).await.unwrap();
    let again = tokio::time::timeout(WAIT, inbound.recv())
        .await
        .expect("redelivered")
        .unwrap();
    assert_eq!(&again.event.data[..], b"not yet stored");
    assert_eq!(again.event.name.as_str(), "kept");
    again.ack.ack().await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_broker_is_named_at_start() {
    let (_closed, port) = closed_port();
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let opts = edgehook::ingress::external::ExternalOptions {
        url: format!("mqtt://127.0.0.1:{port}"),
        client_id: "nobody".into(),
        max_event_bytes: 1024,
        share_group: None,
        ca_file: None,
    };
    let err = edgehook::ingress::external::start(opts.clone(), tx.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("no connection"),
        "{err}"
    );
    let bad = edgehook::ingress::external::ExternalOptions {
        url: "http://x".into(),
        ..opts
    };
    let err = edgehook::ingress::external::start(bad, tx)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"http\""), "{err}");
}
