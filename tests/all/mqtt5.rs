//! MQTT 5 devices on the embedded broker: a device speaking MQTT 5
//! (rumqttc's `v5` client, protocol level 5 in its CONNECT) publishes an
//! event and gets its hook-sent and hook-response back, as a 3.1.1 device
//! does.

use edgehook::config::Settings;
use edgehook_tests::BEHAVE;

use crate::support::{Device, Endpoint, HostUnderTest, TestHost, forward_manifest};

#[tokio::test(flavor = "multi_thread")]
async fn an_mqtt5_device_gets_hook_sent_and_hook_response() {
    let mut endpoint = Endpoint::start(200, "hello v5").await;
    let manifest = forward_manifest("ping", &endpoint.url("/v5"));
    let host = TestHost::start(&[("ping", BEHAVE, &manifest)], Settings::default()).await;
    let mut device = Device::connect_v5(host.mqtt_addr(), "mqtt5-device").await;

    device.publish("ping", "from v5").await;

    assert_eq!(&endpoint.next().await.body[..], b"from v5");
    assert_eq!(
        device.next_text().await,
        (
            "devices/mqtt5-device/hook-sent/ping".to_owned(),
            String::new()
        )
    );
    assert_eq!(
        device.next_text().await,
        (
            "devices/mqtt5-device/hook-response/ping/0".to_owned(),
            "hello v5".to_owned()
        )
    );
    host.host.stop().await;
}
