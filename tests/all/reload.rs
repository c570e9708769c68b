//! The plugins directory without restarts: add, replace, break, remove.

use std::time::{Duration, Instant};

use edgehook::config::Settings;
use edgehook_tests::{BEHAVE, THINGSPEAK};

use crate::support::{
    Device, Endpoint, HostUnderTest, TestHost, forward_manifest, install, is_marker, not_wasm,
};

#[tokio::test(flavor = "multi_thread")]
async fn plugins_are_added_replaced_and_removed_without_a_restart() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let host = TestHost::start(&[], Settings::default()).await;
    let dir = host.plugins_dir();
    let device = Device::connect(host.mqtt_addr(), "d").await;

    // Added: in force without a restart.
    install(
        &dir,
        "hot",
        BEHAVE,
        &forward_manifest("r", &endpoint.url("/v1")),
    );
    host.wait_for_plugin("hot", |s| s["state"] == "running")
        .await;
    device.publish("r", "one").await;
    assert_eq!(endpoint.next().await.uri.path(), "/v1");
    let first_digest = host.plugin_status("hot").await.unwrap()["digest"].clone();

    // Replaced by a broken file: reported, and the previous version runs on.
    std::fs::write(dir.join("hot.wasm"), b"\0asm\x0d\0\x01\0garbage").unwrap();
    let status = host
        .wait_for_plugin("hot", |s| s["error"].is_string())
        .await;
    assert_eq!(status["state"], "running");
    assert_eq!(status["digest"], first_digest);
    assert!(
        status["error"].as_str().unwrap().contains("hot.wasm"),
        "{status}"
    );
    device.publish("r", "two").await;
    assert_eq!(endpoint.next().await.uri.path(), "/v1");

    // A bad manifest is named too, and still the previous version runs.
    std::fs::copy(BEHAVE, dir.join("hot.wasm")).unwrap();
    std::fs::write(
        dir.join("hot.toml"),
        "event = \"r\"\nallowed_hosts = []\ncolour = \"red\"\n",
    )
    .unwrap();
    let status = host
        .wait_for_plugin("hot", |s| {
            s["error"].as_str().is_some_and(|e| e.contains("colour"))
        })
        .await;
    assert_eq!(status["digest"], first_digest);

    // Replaced by a good version with another configuration: it takes over.
    std::fs::write(
        dir.join("hot.toml"),
        forward_manifest("r", &endpoint.url("/v2")),
    )
    .unwrap();
    host.wait_for_plugin("hot", |s| s["error"].is_null()).await;
    device.publish("r", "three").await;
    assert_eq!(endpoint.next().await.uri.path(), "/v2");

    // Replaced by another plugin entirely (a new digest).
    install(
        &dir,
        "hot",
        THINGSPEAK,
        "event = \"r\"\nallowed_hosts = []\n[config]\napi_key = \"k\"\n",
    );
    host.wait_for_plugin("hot", |s| {
        s["digest"] != first_digest && s["error"].is_null()
    })
    .await;

    // Removed: gone from the list and from the event path.
    std::fs::remove_file(dir.join("hot.wasm")).unwrap();
    std::fs::remove_file(dir.join("hot.toml")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while host.plugin_status("hot").await.is_some() {
        assert!(
            Instant::now() < deadline,
            "the removed plugin is still listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    device.publish("r", "four").await;
    host.send_marker(&device, endpoint.url("/marker")).await;
    let before = endpoint.before_marker(is_marker).await;
    assert!(
        before.is_empty(),
        "a removed plugin runs no more: {before:?}"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_cannot_load_at_start_is_reported_and_the_rest_run() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let host = TestHost::start(
        &[("good", BEHAVE, &forward_manifest("r", &endpoint.url("/")))],
        Settings::default(),
    )
    .await;
    let dir = host.plugins_dir();
    std::fs::write(dir.join("random.wasm"), not_wasm()).unwrap();
    std::fs::write(
        dir.join("random.toml"),
        "event = \"r\"\nallowed_hosts = []\n",
    )
    .unwrap();
    std::fs::copy(BEHAVE, dir.join("lonely.wasm")).unwrap();

    let random = host
        .wait_for_plugin("random", |s| s["state"] == "failed")
        .await;
    assert!(
        random["error"]
            .as_str()
            .unwrap()
            .contains("not a valid WebAssembly component"),
        "{random}"
    );
    let lonely = host
        .wait_for_plugin("lonely", |s| s["state"] == "failed")
        .await;
    assert!(
        lonely["error"].as_str().unwrap().contains("lonely.toml"),
        "{lonely}"
    );

    // The running plugin delivers; the one that did not load tells the
    // device why (in either order: they run side by side).
    let mut device = Device::connect(host.mqtt_addr(), "d").await;
    device.publish("r", "x").await;
    assert_eq!(&endpoint.next().await.body[..], b"x");
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(device.next_text().await);
    }
    got.sort();
    assert_eq!(got[0].0, "devices/d/hook-error/r/0");
    assert!(
        got[0].1.starts_with("plugin random is not running: ")
            && got[0].1.contains("not a valid WebAssembly component"),
        "{}",
        got[0].1
    );
    assert_eq!(got[1].0, "devices/d/hook-response/r/0");
    assert_eq!(got[2].0, "devices/d/hook-sent/r");
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_the_wasm_alone_unloads_the_plugin() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let host = TestHost::start(
        &[("hot", BEHAVE, &forward_manifest("r", &endpoint.url("/hot")))],
        Settings::default(),
    )
    .await;
    let dir = host.plugins_dir();
    let mut device = Device::connect(host.mqtt_addr(), "d").await;
    host.wait_for_plugin("hot", |s| s["state"] == "running")
        .await;
    device.publish("r", "one").await;
    assert_eq!(endpoint.next().await.uri.path(), "/hot");
    assert_eq!(device.next_text().await.0, "devices/d/hook-sent/r");
    assert_eq!(device.next_text().await.0, "devices/d/hook-response/r/0");

    // The manifest is left behind: the plugin is gone all the same.
    std::fs::remove_file(dir.join("hot.wasm")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(status) = host.plugin_status("hot").await {
        assert!(
            Instant::now() < deadline,
            "a plugin without its wasm is still listed: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    device.publish("r", "two").await;
    host.send_marker(&device, endpoint.url("/marker")).await;
    let before = endpoint.before_marker(is_marker).await;
    assert!(
        before.is_empty(),
        "a removed plugin runs no more: {before:?}"
    );
    let before = device.before_marker("devices/d/hook-sent/marker").await;
    assert!(
        before.is_empty(),
        "nothing tells the device of a plugin that is gone: {before:?}"
    );

    // Its wasm back: it runs again.
    std::fs::copy(BEHAVE, dir.join("hot.wasm")).unwrap();
    host.wait_for_plugin("hot", |s| s["state"] == "running")
        .await;
    device.publish("r", "three").await;
    assert_eq!(endpoint.next().await.uri.path(), "/hot");
    host.host.stop().await;
}
