//! edgehook on an external broker: a real mosquitto started for the test.

use std::time::Duration;

use edgehook::config::Settings;
use edgehook_tests::BEHAVE;

use crate::support::{
    Device, Endpoint, HostUnderTest, Mosquitto, TestHost, WAIT, closed_port, forward_manifest,
};

/// A host on `broker` speaking `version` (none: the default) with a
/// forwarding plugin, and a device: one event goes to the endpoint and its
/// answers come back; the host's own publishes never come back as events.
async fn round_trip(broker: &Mosquitto, version: Option<u8>, client_id: &str) -> TestHost {
    let mut endpoint = Endpoint::start(200, "via mosquitto").await;
    let manifest = forward_manifest("ext", &endpoint.url("/ext"));
    let settings = Settings {
        mqtt_url: Some(format!("mqtt://{}", broker.addr)),
        mqtt_version: version,
        mqtt_client_id: Some(client_id.into()),
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
    // The host's own publishes are not events: the next request is the
    // device's next event, not one of the host's answers.
    device.publish("ext/marker", "last").await;
    let next = endpoint.next().await;
    assert_eq!(next.headers["x-event-name"], "ext/marker");
    assert_eq!(&next.body[..], b"last");
    host
}

#[tokio::test(flavor = "multi_thread")]
async fn events_through_mosquitto_reach_the_endpoint_and_answers_come_back() {
    let broker = Mosquitto::start().await;
    let host = round_trip(&broker, None, "edgehook-test-ext").await;
    assert_eq!(
        broker.protocol_of("edgehook-test-ext"),
        Some(5),
        "MQTT 5 by default"
    );

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
async fn the_host_speaks_mqtt_3_1_1_when_told() {
    let broker = Mosquitto::start().await;
    let host = round_trip(&broker, Some(3), "edgehook-test-311").await;
    assert_eq!(
        broker.protocol_of("edgehook-test-311"),
        Some(2),
        "MQTT 3.1.1"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_not_acknowledged_is_redelivered_to_the_next_session() {
    use edgehook::ingress::external::{ExternalOptions, MqttVersion, start};

    let broker = Mosquitto::start().await;
    let opts = ExternalOptions {
        urls: vec![format!("mqtt://{}", broker.addr)],
        version: MqttVersion::V5,
        client_id: "edgehook-redelivery".into(),
        max_event_bytes: 1024,
        share_group: None,
        ca_file: None,
        replies: tokio::sync::mpsc::channel(1).0,
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
    let first_sent = taken.sent.clone();
    drop(taken);

    let (tx, mut inbound) = tokio::sync::mpsc::channel(8);
    let second = start(opts, tx).await.unwrap();
    let again = tokio::time::timeout(WAIT, inbound.recv())
        .await
        .expect("redelivered")
        .unwrap();
    assert_eq!(&again.event.data[..], b"not yet stored");
    assert_eq!(again.event.name.as_str(), "kept");
    // Marked as a resend of the same message in the host's session: what
    // the pipeline recognises it by.
    let (first, resent) = (first_sent.unwrap(), again.sent.clone().unwrap());
    assert!(!first.dup && resent.dup);
    assert_eq!(resent.origin, first.origin);
    assert_eq!(&*first.origin.session, "broker/edgehook-redelivery");
    assert_eq!(resent.fingerprint, first.fingerprint);
    again.ack.ack().await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_broker_is_named_at_start() {
    let (_closed, port) = closed_port();
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let opts = edgehook::ingress::external::ExternalOptions {
        urls: vec![format!("mqtt://127.0.0.1:{port}")],
        version: edgehook::ingress::external::MqttVersion::V5,
        client_id: "nobody".into(),
        max_event_bytes: 1024,
        share_group: None,
        ca_file: None,
        replies: tokio::sync::mpsc::channel(1).0,
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
        urls: vec!["http://x".into()],
        ..opts
    };
    let err = edgehook::ingress::external::start(bad, tx)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"http\""), "{err}");
}
