//! Removing a device through the API (`DELETE /v1/devices/{id}`) with
//! `--mqtt-auth devices`: its open session is closed, its key logs in no
//! more (not even once a device of the same id is registered again), and
//! no other device's session is touched.

use edgehook::config::Settings;
use edgehook::ingress::acl::MqttAuth;
use serde_json::json;

use crate::support::{Endpoint, HostUnderTest, TestHost, login_settled};

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_device_is_disconnected_and_its_key_logs_in_no_more() {
    let mut endpoint = Endpoint::start(200, "noted").await;
    let host = TestHost::start(
        &[],
        Settings {
            mqtt_auth: Some(MqttAuth::Devices),
            ..Settings::default()
        },
    )
    .await;
    host.create_webhook(
        json!({ "event": "temp", "url": endpoint.url("/in"), "body": "{{PARTICLE_DEVICE_ID}}" }),
    )
    .await;
    let addr = host.mqtt_addr();
    let gone_key = host.register_device("gone").await;
    let stays_key = host.register_device("stays").await;
    let mut gone = login_settled(addr, "gone", ("gone", &gone_key))
        .await
        .unwrap();
    assert!(gone.subscribe("devices/gone/#").await);
    let mut stays = login_settled(addr, "stays", ("stays", &stays_key))
        .await
        .unwrap();
    assert!(stays.subscribe("devices/stays/#").await);

    let (status, body) = host.api("DELETE", "/v1/devices/gone", "").await;
    assert_eq!(status, 204, "{body}");
    let why = gone.closed().await;
    assert!(!why.contains("refused"), "{why}");
    assert_eq!(host.api("GET", "/v1/devices/gone", "").await.0, 404);

    let refused = login_settled(addr, "gone", ("gone", &gone_key))
        .await
        .expect_err("the deleted device's key still logs in");
    assert!(refused.contains("BadUserNamePassword"), "{refused}");

    // The other device's session was left alone: its event goes through
    // and the answer comes back on the same connection.
    stays.publish_raw("devices/stays/events/temp", "1").await;
    assert_eq!(&endpoint.next().await.body[..], b"stays");
    let mut answers = Vec::new();
    while !answers
        .iter()
        .any(|(t, _)| t == "devices/stays/hook-response/temp/0")
    {
        answers.push(stays.message().await);
    }

    // A device registered again under the same id has a new key; the old
    // one still logs in nowhere.
    let new_key = host.register_device("gone").await;
    assert_ne!(new_key, gone_key);
    let refused = login_settled(addr, "gone", ("gone", &gone_key))
        .await
        .expect_err("the old key logs in to the new device");
    assert!(refused.contains("BadUserNamePassword"), "{refused}");
    login_settled(addr, "gone", ("gone", &new_key))
        .await
        .expect("the new key logs in");
    host.host.stop().await;
}
