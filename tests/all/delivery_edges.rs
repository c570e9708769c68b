//! The edges of HTTP delivery (README, "HTTP delivery") over real sockets:
//! redirects are not followed, response bodies are cut at
//! `max_response_bytes`, and a host NAME that resolves to loopback is
//! refused like a loopback address unless private networks are allowed.

use bytesize::ByteSize;
use edgehook::config::Settings;
use serde_json::json;

use crate::support::{Device, Endpoint, HostUnderTest, Scripted, Step, TestHost, is_marker};

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_is_not_followed_and_the_device_hears_the_3xx() {
    let mut target = Endpoint::start(200, "followed").await;
    let mut redirecting = Scripted::start(vec![
        Step::status(302, "moved").header("Location", &target.url("/elsewhere")),
    ])
    .await;
    let host = TestHost::start(&[], Settings::default()).await;
    host.create_webhook(json!({ "event": "post", "url": redirecting.url("/post") }))
        .await;
    host.create_webhook(
        json!({ "event": "get", "url": redirecting.url("/get"), "requestType": "GET" }),
    )
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    for event in ["post", "get"] {
        device.publish(event, "21.5").await;
        let seen = redirecting.next().await.seen;
        assert_eq!(seen.uri.path(), format!("/{event}"));
        assert_eq!(
            device.next_text().await,
            (format!("devices/d1/hook-sent/{event}"), String::new())
        );
        assert_eq!(
            device.next_text().await,
            (
                format!("devices/d1/hook-error/{event}/0"),
                "error status 302 from 127.0.0.1".into()
            ),
            "the 302 itself is the answer"
        );
    }
    // Nothing reached the redirect's target before the marker, sent there
    // directly after both.
    host.send_marker(&device, target.url("/marker")).await;
    let before = target.before_marker(is_marker).await;
    assert!(before.is_empty(), "a redirect was followed: {before:?}");
    // A 3xx is an answer, not a failure: no retry, not counted as an error.
    let before = device.before_marker("devices/d1/hook-sent/marker").await;
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(host.metric("edgehook_retries_total").await, 0);
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_longer_than_max_response_bytes_reaches_the_device_cut_at_the_limit() {
    let body: String = (0..3000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut endpoint = Endpoint::start(200, body.clone()).await;
    let host = TestHost::start(
        &[],
        Settings {
            max_response_bytes: Some(ByteSize::b(1000)),
            ..Settings::default()
        },
    )
    .await;
    host.create_webhook(json!({ "event": "big", "url": endpoint.url("/big") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("big", "x").await;
    endpoint.next().await;
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/big");
    let mut kept = String::new();
    for (index, len) in [(0, 512), (1, 488)] {
        let (topic, chunk) = device.next_text().await;
        assert_eq!(topic, format!("devices/d1/hook-response/big/{index}"));
        assert_eq!(chunk.len(), len);
        kept.push_str(&chunk);
    }
    assert_eq!(kept, body[..1000], "the first 1000 bytes, in order");
    // No third chunk, and no hook-error: the marker's answer is next.
    endpoint.answer(200, "", std::time::Duration::ZERO);
    host.send_marker(&device, endpoint.url("/marker")).await;
    let before = device.before_marker("devices/d1/hook-sent/marker").await;
    assert!(before.is_empty(), "more than the kept bytes: {before:?}");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_name_that_resolves_to_loopback_is_refused_with_a_hook_error_that_says_so() {
    let mut endpoint = Endpoint::start(200, "reached").await;
    let host = TestHost::start(
        &[],
        Settings {
            allow_private_networks: Some(false),
            ..Settings::default()
        },
    )
    .await;
    // `localhost` is a name: only the resolver's answer says it is
    // loopback (127.0.0.1 in /etc/hosts, ::1 on some systems).
    let url = format!("http://localhost:{}/in", endpoint.addr.port());
    host.create_webhook(json!({ "event": "temp", "url": url }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("temp", "21.5").await;
    let (topic, text) = device.next_text().await;
    assert_eq!(
        topic, "devices/d1/hook-error/temp/0",
        "refused before sending: no hook-sent ({text})"
    );
    assert!(
        text.starts_with("destination localhost refused: it resolves to ")
            && text.contains(", a loopback address")
            && text.contains("--allow-private-networks"),
        "{text}"
    );
    assert!(
        text.contains("127.0.0.1") || text.contains("::1"),
        "the address is named: {text}"
    );
    assert_eq!(
        host.metric("edgehook_requests_total{outcome=\"refused\"}")
            .await,
        1
    );
    // The refusal came at connect time, before any byte: nothing reached
    // the endpoint, and no attempt is left to reach it later (a refusal is
    // not retried, and the tests' host retries nothing).
    assert!(endpoint.received().is_empty());
    host.host.stop().await;
}
