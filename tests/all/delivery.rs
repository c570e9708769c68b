//! The path of an event end to end: device → plugin → endpoint → device.

use std::time::Duration;

use bytesize::ByteSize;

use edgehook::config::Settings;
use edgehook_tests::{BEHAVE, THINGSPEAK};

use crate::support::{Device, Endpoint, HostUnderTest, TestHost, forward_manifest};

#[tokio::test(flavor = "multi_thread")]
async fn thingspeak_event_becomes_a_form_post_and_the_answer_returns_to_the_device() {
    let mut endpoint = Endpoint::start(200, "42").await;
    let manifest = format!(
        "event = \"temp\"\nallowed_hosts = [\"127.0.0.1\"]\n[config]\nurl = \"{}\"\napi_key = \"KEY1\"\nfields = {{ temp = \"field1\", hum = \"field2\" }}\n",
        endpoint.url("/update")
    );
    let host = TestHost::start(
        &[("thingspeak", THINGSPEAK, &manifest)],
        Settings::default(),
    )
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "dev-1").await;

    device.publish("temp", r#"{"temp": 21.5, "hum": 40}"#).await;

    let seen = endpoint.next().await;
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.uri.path(), "/update");
    assert_eq!(
        seen.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert!(
        seen.headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("edgehook/")
    );
    assert_eq!(seen.headers["webhook-id"].len(), 32);
    let body = String::from_utf8(seen.body.to_vec()).unwrap();
    let mut pairs: Vec<&str> = body.split('&').collect();
    pairs.sort_unstable();
    assert_eq!(pairs, ["api_key=KEY1", "field1=21.5", "field2=40"]);

    assert_eq!(
        device.next_text().await,
        ("devices/dev-1/hook-sent/temp".into(), String::new())
    );
    assert_eq!(
        device.next_text().await,
        ("devices/dev-1/hook-response/temp/0".into(), "42".into())
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_response_arrives_in_512_byte_chunks() {
    let body: String = (0..1300)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut endpoint = Endpoint::start(200, body.clone()).await;
    let manifest = forward_manifest("sensor/", &endpoint.url("/hook"));
    let host = TestHost::start(&[("behave", BEHAVE, &manifest)], Settings::default()).await;
    let mut device = Device::connect(host.mqtt_addr(), "d2").await;

    device.publish("sensor/a/b", "payload").await;

    let seen = endpoint.next().await;
    assert_eq!(&seen.body[..], b"payload");
    assert_eq!(seen.headers["x-event-name"], "sensor/a/b");
    assert_eq!(seen.headers["x-event-device"], "d2");
    assert_eq!(seen.headers["x-event-id"], seen.headers["webhook-id"]);
    assert_eq!(
        device.next_text().await.0,
        "devices/d2/hook-sent/sensor/a/b"
    );
    let mut joined = String::new();
    for (index, len) in [(0, 512), (1, 512), (2, 276)] {
        let (topic, chunk) = device.next_text().await;
        assert_eq!(
            topic,
            format!("devices/d2/hook-response/sensor/a/b/{index}")
        );
        assert_eq!(chunk.len(), len);
        joined.push_str(&chunk);
    }
    assert_eq!(joined, body);
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_reach_the_device_as_hook_errors_that_say_what_happened() {
    let endpoint = Endpoint::start(404, "nope").await;
    let manifest = forward_manifest("nf", &endpoint.url("/missing"));
    let refused_manifest = "event = \"private\"\nallowed_hosts = [\"127.0.0.1\"]\n[config]\nmode = \"forward\"\nurl = \"http://127.0.0.1:9/x\"\n";
    let elsewhere_manifest = "event = \"elsewhere\"\nallowed_hosts = [\"example.org\"]\n[config]\nmode = \"forward\"\nurl = \"http://127.0.0.1:9/x\"\n";
    let host = TestHost::start(
        &[
            ("notfound", BEHAVE, &manifest),
            ("private", BEHAVE, refused_manifest),
            ("elsewhere", BEHAVE, elsewhere_manifest),
        ],
        Settings {
            allow_private_networks: Some(false),
            ..Settings::default()
        },
    )
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "d3").await;

    device.publish("private", "x").await;
    let (topic, text) = device.next_text().await;
    assert_eq!(topic, "devices/d3/hook-error/private/0");
    assert!(
        text.contains("127.0.0.1")
            && text.contains("loopback")
            && text.contains("--allow-private-networks"),
        "{text}"
    );

    device.publish("elsewhere", "x").await;
    let (topic, text) = device.next_text().await;
    assert_eq!(topic, "devices/d3/hook-error/elsewhere/0");
    assert!(
        text.contains("allowed_hosts") && text.contains("elsewhere"),
        "{text}"
    );
    host.host.stop().await;

    // With private networks allowed, the 404 is the endpoint's answer.
    let host = TestHost::start(&[("notfound", BEHAVE, &manifest)], Settings::default()).await;
    let mut device = Device::connect(host.mqtt_addr(), "d3").await;
    device.publish("nf", "x").await;
    assert_eq!(device.next_text().await.0, "devices/d3/hook-sent/nf");
    assert_eq!(
        device.next_text().await,
        (
            "devices/d3/hook-error/nf/0".into(),
            "error status 404".into()
        )
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_endpoint_times_out_without_holding_up_other_webhooks() {
    let slow = Endpoint::start(200, "late").await;
    slow.answer(200, "late", Duration::from_secs(30));
    let mut fast = Endpoint::start(200, "quick").await;
    let host = TestHost::start(
        &[
            ("slow", BEHAVE, &forward_manifest("slow", &slow.url("/"))),
            ("fast", BEHAVE, &forward_manifest("fast", &fast.url("/"))),
        ],
        Settings {
            http_timeout: Some(Duration::from_secs(2)),
            ..Settings::default()
        },
    )
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "d4").await;

    device.publish("slow", "1").await;
    device.publish("fast", "2").await;
    fast.next().await;
    assert_eq!(device.next_text().await.0, "devices/d4/hook-sent/fast");
    assert_eq!(
        device.next_text().await,
        ("devices/d4/hook-response/fast/0".into(), "quick".into())
    );
    assert_eq!(device.next_text().await.0, "devices/d4/hook-sent/slow");
    let (topic, text) = device.next_text().await;
    assert_eq!(topic, "devices/d4/hook-error/slow/0");
    assert!(
        text.contains("timeout after 2 s") && text.contains("127.0.0.1"),
        "{text}"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_matching_events_and_devices_run_a_plugin() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let manifest = format!(
        "event = \"Temp\"\ndevices = [\"allowed\"]\nallowed_hosts = [\"127.0.0.1\"]\n[config]\nmode = \"forward\"\nurl = \"{}\"\n",
        endpoint.url("/")
    );
    let host = TestHost::start(&[("filtered", BEHAVE, &manifest)], Settings::default()).await;
    let other = Device::connect(host.mqtt_addr(), "other").await;
    let mut allowed = Device::connect(host.mqtt_addr(), "allowed").await;

    other.publish("Temperature", "from other").await;
    allowed.publish("temperature", "wrong case").await;
    allowed.publish("Temperature", "yes").await;

    assert_eq!(&endpoint.next().await.body[..], b"yes");
    assert_eq!(
        allowed.next_text().await.0,
        "devices/allowed/hook-sent/Temperature"
    );
    allowed.publish("Temperature", "marker").await;
    let before = endpoint.before_marker(|s| s.body == "marker").await;
    assert!(before.is_empty(), "only `yes` ran the plugin: {before:?}");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_topics_and_oversized_events_are_refused_and_the_host_goes_on() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let manifest = forward_manifest("e", &endpoint.url("/"));
    let host = TestHost::start(
        &[("any", BEHAVE, &manifest)],
        Settings {
            max_event_bytes: Some(ByteSize::kib(1)),
            ..Settings::default()
        },
    )
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "d5").await;

    device
        .publish_raw("devices/d5/events/e//x", "bad level")
        .await;
    device.publish("e", vec![b'x'; 1025]).await;
    device.publish("e", "fits").await;

    assert_eq!(&endpoint.next().await.body[..], b"fits");
    device.publish("e", "marker").await;
    let before = endpoint.before_marker(|s| s.body == "marker").await;
    assert!(before.is_empty(), "only `fits` was delivered: {before:?}");
    assert_eq!(device.next_text().await.0, "devices/d5/hook-sent/e");
    host.host.stop().await;
}
