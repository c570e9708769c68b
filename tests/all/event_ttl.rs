//! `event_ttl`: an event not delivered within its TTL is dropped with a
//! hook-error and counted, whether it waits for a retry or was left in the
//! queue by a host that stopped.

use std::time::Duration;

use edgehook::config::{Config, Settings};
use edgehook::server::Host;
use serde_json::json;

use crate::support::{Device, HostUnderTest, Mosquitto, Scripted, Step, TestHost, WAIT, is_marker};

/// The value of the sample `series` (name and labels, as written).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in the metrics:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_that_would_outlive_its_ttl_before_the_next_retry_is_dropped_with_a_hook_error() {
    let mut endpoint = Scripted::start(vec![Step::status(503, "down")]).await;
    let host = TestHost::start(
        &[],
        Settings {
            event_ttl: Some(Duration::from_secs(2)),
            // The first retry is due within the TTL, the second is not.
            retry_delays: Some("300ms, 5s".into()),
            ..Settings::default()
        },
    )
    .await;
    host.create_webhook(json!({ "event": "temp", "url": endpoint.url("/in") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    device.publish("temp", "21.5").await;
    let first = endpoint.next().await;
    let second = endpoint.next().await;
    assert_eq!(
        first.seen.headers["webhook-id"],
        second.seen.headers["webhook-id"]
    );
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/temp");
    assert_eq!(
        device.next_text().await,
        (
            "devices/d1/hook-error/temp/0".into(),
            "event dropped: not delivered within its TTL of 2s".into()
        )
    );
    let text = host.metrics().await;
    assert_eq!(
        sample(&text, r#"edgehook_dropped_total{reason="ttl"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"edgehook_dropped_total{reason="retries"}"#),
        0.0
    );
    assert_eq!(sample(&text, "edgehook_retries_total"), 1.0);
    assert_eq!(host.metric("edgehook_queue_depth").await, 0);

    // No third attempt: the marker's request is the next one.
    host.send_marker(&device, endpoint.url("/marker")).await;
    let before = endpoint.before_marker(is_marker).await;
    assert!(before.is_empty(), "attempted after its drop: {before:?}");
    host.host.stop().await;
}

/// A host on the external broker `broker` whose directories are `dir`'s,
/// with `settings` over the tests' usual ones.
async fn host_in(dir: tempfile::TempDir, broker: &Mosquitto, settings: Settings) -> TestHost {
    std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
    let cfg = Config::build(settings.or(Settings {
        mqtt_url: Some(format!("mqtt://{}", broker.addr)),
        mqtt_client_id: Some("edgehook-ttl-restart".into()),
        api_listen: Some("127.0.0.1:0".parse().unwrap()),
        plugins: Some(dir.path().join("plugins")),
        webhooks: Some(dir.path().join("webhooks")),
        data: Some(dir.path().join("data")),
        allow_private_networks: Some(true),
        plugin_instances: Some(32),
        retry_delays: Some(String::new()),
        ..Settings::default()
    }))
    .expect("valid test configuration");
    let host = Host::start(cfg).await.expect("host starts");
    TestHost { host, dir }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_left_queued_past_its_ttl_is_dropped_at_the_next_start_not_sent() {
    let broker = Mosquitto::start().await;
    let mut endpoint =
        Scripted::start(vec![Step::status(503, "down"), Step::status(200, "late")]).await;
    // The same settings in both runs: a TTL of 4 s, and a retry due within
    // it, 3 s after a failure. The host stops while the event waits for
    // that retry: it stays queued.
    let settings = || Settings {
        event_ttl: Some(Duration::from_secs(4)),
        retry_delays: Some("3s".into()),
        ..Settings::default()
    };
    // The device stays on the broker while the host stops and starts.
    let mut device = Device::connect(broker.addr, "d1").await;
    let first = host_in(tempfile::tempdir().unwrap(), &broker, settings()).await;
    first
        .create_webhook(json!({ "event": "temp", "url": endpoint.url("/in") }))
        .await;
    device.publish("temp", "21.5").await;
    let published = tokio::time::Instant::now();
    let attempt = endpoint.next().await;
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/temp");
    assert_eq!(first.metric("edgehook_queue_depth").await, 1);
    let TestHost { host, dir } = first;
    host.stop().await;
    assert!(
        published.elapsed() < Duration::from_secs(3),
        "the host stopped only after the retry was due"
    );

    // Started again once the event is older than its TTL.
    tokio::time::sleep_until(published + Duration::from_millis(4500)).await;
    let second = host_in(dir, &broker, settings()).await;
    second.send_marker(&device, endpoint.url("/marker")).await;
    let before = endpoint.before_marker(is_marker).await;
    assert!(
        before.is_empty(),
        "an event past its TTL was sent after the restart (webhook-id {:?}, as before the stop: {:?})",
        before
            .iter()
            .map(|s| &s.headers["webhook-id"])
            .collect::<Vec<_>>(),
        attempt.seen.headers["webhook-id"]
    );
    let before = device.before_marker("devices/d1/hook-sent/marker").await;
    assert_eq!(before.len(), 1, "one hook-error, nothing else: {before:?}");
    let (topic, text) = &before[0];
    assert_eq!(topic, "devices/d1/hook-error/temp/0", "{before:?}");
    assert!(text.contains("TTL of 4s"), "{text}");
    assert_eq!(
        second
            .metric("edgehook_dropped_total{reason=\"ttl\"}")
            .await,
        1
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while second.metric("edgehook_queue_depth").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expired event stayed queued"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.host.stop().await;
}
