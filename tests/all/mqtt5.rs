//! MQTT 5 devices on the embedded broker: a device speaking MQTT 5
//! (rumqttc's `v5` client, protocol level 5 in its CONNECT) publishes an
//! event and gets its hook-sent and hook-response back, as a 3.1.1 device
//! does.

use std::time::Duration;

use edgehook::config::Settings;
use edgehook_tests::BEHAVE;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::mpsc;

use crate::support::{Endpoint, TestHost, WAIT, forward_manifest};

#[tokio::test(flavor = "multi_thread")]
async fn an_mqtt5_device_gets_hook_sent_and_hook_response() {
    let mut endpoint = Endpoint::start(200, "hello v5").await;
    let manifest = forward_manifest("ping", &endpoint.url("/v5"));
    let host = TestHost::start(&[("ping", BEHAVE, &manifest)], Settings::default()).await;
    let addr = host.mqtt_addr();

    let mut opts = MqttOptions::new("mqtt5-device", addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    let (tx, mut inbox) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let packet = match eventloop.poll().await {
                Ok(Event::Incoming(packet)) => packet,
                Ok(Event::Outgoing(_)) => continue,
                Err(_) => return,
            };
            if tx.send(packet).is_err() {
                return;
            }
        }
    });
    let mut next = async || {
        tokio::time::timeout(WAIT, inbox.recv())
            .await
            .expect("a packet from the broker in time")
            .expect("the MQTT 5 session is up")
    };
    assert!(matches!(next().await, Packet::ConnAck(_)));
    client
        .subscribe("devices/mqtt5-device/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert!(matches!(next().await, Packet::SubAck(_)));

    client
        .publish(
            "devices/mqtt5-device/events/ping",
            QoS::AtLeastOnce,
            false,
            "from v5",
        )
        .await
        .unwrap();
    let mut replies = Vec::new();
    while replies.len() < 2 {
        match next().await {
            // Its own event comes back through `devices/mqtt5-device/#`.
            Packet::Publish(p) if p.topic.starts_with(b"devices/mqtt5-device/events/") => {}
            Packet::Publish(p) => replies.push((
                String::from_utf8(p.topic.to_vec()).unwrap(),
                String::from_utf8(p.payload.to_vec()).unwrap(),
            )),
            Packet::PubAck(_) => {}
            other => panic!("unexpected packet {other:?}"),
        }
    }
    assert_eq!(&endpoint.next().await.body[..], b"from v5");
    assert_eq!(replies[0].0, "devices/mqtt5-device/hook-sent/ping");
    assert_eq!(
        replies[1],
        (
            "devices/mqtt5-device/hook-response/ping/0".to_owned(),
            "hello v5".to_owned()
        )
    );
    host.host.stop().await;
}
