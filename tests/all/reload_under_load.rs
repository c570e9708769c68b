//! Hot reload under load: a plugin replaced, then broken, while devices
//! publish paced at 5,000 events/s (the host takes them as fast as it can;
//! this is a correctness test, not a measurement). No event is lost or
//! delivered twice, the new version takes over once it is compiled and
//! checked, and a broken version leaves the running one in place.

use std::collections::BTreeMap;
use std::time::Duration;

use edgehook::config::Settings;
use edgehook_tests::BEHAVE;

use crate::support::{Device, Endpoint, HostUnderTest, TestHost, forward_manifest};

/// Events published in all.
const EVENTS: usize = 10_000;
/// Devices publishing them, round robin.
const DEVICES: usize = 20;
/// The pace of publishing, events per second.
const RATE: usize = 5_000;

/// Writes `bytes` to `path` with a rename, as a deploy would.
fn replace(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_replaced_and_broken_under_load_loses_no_event() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let host = TestHost::start(
        &[(
            "relay",
            BEHAVE,
            &forward_manifest("load", &endpoint.url("/v1")),
        )],
        Settings::default(),
    )
    .await;
    let dir = host.plugins_dir();
    let mut devices = Vec::with_capacity(DEVICES);
    for i in 0..DEVICES {
        devices.push(Device::connect(host.mqtt_addr(), &format!("load-{i}")).await);
    }

    let publisher = tokio::spawn(async move {
        let per_tick = RATE / 100;
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut sent = 0;
        while sent < EVENTS {
            tick.tick().await;
            for _ in 0..per_tick.min(EVENTS - sent) {
                devices[sent % DEVICES]
                    .publish("load", sent.to_string())
                    .await;
                sent += 1;
            }
        }
        devices
    });

    let mut seen: BTreeMap<usize, &'static str> = BTreeMap::new();
    let mut broken_at = None;
    // No bound on the whole run (a loaded machine is slow, not wrong): the
    // test gives up when no event arrives within `WAIT` (`Endpoint::next`).
    while seen.len() < EVENTS {
        let request = endpoint.next().await;
        let version = match request.uri.path() {
            "/v1" => "v1",
            "/v2" => "v2",
            other => panic!("a request to {other}"),
        };
        let n: usize = std::str::from_utf8(&request.body).unwrap().parse().unwrap();
        assert!(
            seen.insert(n, version).is_none(),
            "event {n} delivered twice"
        );
        // Once the load is on, put the new version in place.
        if seen.len() == EVENTS / 10 {
            replace(
                &dir.join("relay.toml"),
                forward_manifest("load", &endpoint.url("/v2")).as_bytes(),
            );
        }
        // As soon as the new version serves, break it: the broken file must
        // not take over, and nothing may be lost meanwhile.
        if version == "v2" && broken_at.is_none() {
            replace(&dir.join("relay.wasm"), b"\0asm\x0d\0\x01\0not a component");
            broken_at = Some(seen.len());
        }
    }
    let broken_at = broken_at.expect("the new version took over");
    let v1 = seen.values().filter(|v| **v == "v1").count();
    assert!(v1 >= EVENTS / 10, "v1 served {v1} events");
    assert!(
        EVENTS - broken_at >= EVENTS / 10,
        "the broken version arrived while events were still flowing (after {broken_at})"
    );

    let status = host.plugin_status("relay").await.unwrap();
    assert_eq!(status["state"], "running", "{status}");
    assert!(
        status["error"]
            .as_str()
            .unwrap_or_default()
            .contains("relay.wasm"),
        "the broken version is reported: {status}"
    );

    // Every device heard back once per event it published.
    let mut devices = publisher.await.unwrap();
    for (i, device) in devices.iter_mut().enumerate() {
        let expected = (0..EVENTS).filter(|n| n % DEVICES == i).count();
        let mut responses = 0;
        while responses < expected {
            let (topic, payload) = device.next().await;
            if topic.contains("/hook-response/") {
                assert_eq!(payload, b"ok");
                responses += 1;
            } else {
                assert!(topic.contains("/hook-sent/"), "{topic}");
            }
        }
        device.publish("load-marker", "marker").await;
        let hook_sent = format!("devices/{}/hook-sent/load-marker", device.id);
        let before = device.before_marker(&hook_sent).await;
        assert!(before.is_empty(), "once per event: {before:?}");
    }
    host.host.stop().await;
}
