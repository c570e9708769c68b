//! A stop lets go of the data directory even while a request hangs: after
//! the drain timeout the deliveries still in progress are stopped, every
//! task the host started has ended when `stop` returns, and a host started
//! at once on the same directories opens them and sends the event again
//! (a service manager's restart, or the in-process restarts of the tests).

use std::time::Duration;

use edgehook::config::Settings;
use serde_json::json;

use crate::support::{Device, Endpoint, HostUnderTest, TestHost};

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_while_a_request_hangs_releases_the_data_directory_and_loses_nothing() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    endpoint.answer(200, "too late", Duration::from_secs(3600));
    let host = TestHost::start(
        &[],
        Settings {
            drain_timeout: Some(Duration::from_millis(200)),
            ..Settings::default()
        },
    )
    .await;
    host.create_webhook(json!({ "event": "slow", "url": endpoint.url("/slow") }))
        .await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("slow", "reading-1").await;
    let first = endpoint.next().await;
    assert!(
        String::from_utf8_lossy(&first.body).contains("reading-1"),
        "{first:?}"
    );

    endpoint.answer(200, "ok", Duration::ZERO);
    // Panics with "Database already open" when a hung delivery still
    // holds the device registry.
    let _host = host.restart().await;
    let again = endpoint.next().await;
    assert!(
        String::from_utf8_lossy(&again.body).contains("reading-1"),
        "the event left in progress by the stop is sent again: {again:?}"
    );
}
