//! A resent message is delivered once: a device that did not read its
//! PUBACK resends with DUP=1 and the same packet id, and a host that
//! crashed between the queue's commit and the PUBACK gets the message again
//! (from the device on the embedded broker, from its session on mosquitto).
//! The endpoint gets one request with one `webhook-id`; the resend is
//! acknowledged and counted in `edgehook_resends_total`. Nothing arriving
//! late is shown by a marker event published after the resend.

use std::time::Duration;

use bytesize::ByteSize;
use edgehook::config::Settings;

use crate::support::{Device, Endpoint, HostUnderTest, TestHost, WAIT, is_marker};

#[tokio::test(flavor = "multi_thread")]
async fn a_device_resend_after_its_event_was_delivered_is_acknowledged_not_delivered_again() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let host = TestHost::start(&[], Settings::default()).await;
    host.create_webhook(serde_json::json!({ "event": "resend", "url": endpoint.url("/resend") }))
        .await;
    host.create_webhook(serde_json::json!({ "event": "marker", "url": endpoint.url("/marker") }))
        .await;

    let mut device = Device::raw(host.mqtt_addr(), "r1").await;
    device.publish_pkid("resend", "21.5", 7, false).await;
    let first = endpoint.next().await;
    // The delivery is done and the event has left the queue: the resend
    // must be recognised without it.
    wait_for_metric(&host, "edgehook_queue_depth 0").await;
    // The device leaves without reading its PUBACK, comes back and resends.
    drop(device);
    let mut device = Device::raw(host.mqtt_addr(), "r1").await;
    device.publish_pkid("resend", "21.5", 7, true).await;
    device.puback(7).await;
    device.publish_pkid("marker", "", 8, false).await;
    device.puback(8).await;
    let late = endpoint.before_marker(is_marker).await;
    assert!(
        late.is_empty(),
        "the resend was delivered again: webhook-id {:?} after {:?}",
        late[0].headers["webhook-id"],
        first.headers["webhook-id"]
    );
    assert!(
        host.metrics()
            .await
            .contains("\nedgehook_resends_total 1\n"),
        "the resend was not counted"
    );

    // The same packet id without DUP is a new message, and a new event.
    device.publish_pkid("resend", "21.5", 7, false).await;
    device.puback(7).await;
    let second = endpoint.next().await;
    assert_eq!(second.uri.path(), "/resend");
    assert_ne!(
        second.headers["webhook-id"], first.headers["webhook-id"],
        "a new message reusing the packet id is a new event"
    );
    host.host.stop().await;
}

/// Waits until `host`'s `/metrics` has the line `line`.
async fn wait_for_metric(host: &TestHost, line: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !host.metrics().await.contains(&format!("\n{line}\n")) {
        assert!(tokio::time::Instant::now() < deadline, "never {line}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resend_while_the_event_waits_for_room_in_the_queue_is_delivered_once() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    // Room for one big event, or for two small ones, but not for both.
    let settings = Settings {
        max_event_bytes: Some(ByteSize::b(4096)),
        queue_max_bytes: Some(ByteSize::b(5120)),
        ..Settings::default()
    };
    let host = TestHost::start(&[], settings).await;
    host.create_webhook(serde_json::json!({ "event": "resend", "url": endpoint.url("/resend") }))
        .await;
    host.create_webhook(serde_json::json!({ "event": "marker", "url": endpoint.url("/marker") }))
        .await;
    let mut device = Device::raw(host.mqtt_addr(), "r4").await;

    // The big event fills the queue until its request is answered, 2 s
    // after it arrives.
    endpoint.answer(200, "ok", Duration::from_secs(2));
    device
        .publish_pkid("resend/big", &"x".repeat(4096), 1, false)
        .await;
    device.puback(1).await;
    endpoint.next().await;
    endpoint.answer(200, "ok", Duration::ZERO);
    // The small one is taken and waits for room; its device gives up on
    // the PUBACK, reconnects and resends it (rmqtt takes the new
    // connection's publish once the old one's hook is done, so the resend
    // comes once the small one is stored).
    let small = "y".repeat(900);
    device.publish_pkid("resend/small", &small, 7, false).await;
    wait_for_metric(&host, "edgehook_events_total 2").await;
    drop(device);
    let mut device = Device::raw(host.mqtt_addr(), "r4").await;
    device.publish_pkid("resend/small", &small, 7, true).await;
    device.puback(7).await;
    device.publish_pkid("marker", "", 8, false).await;
    device.puback(8).await;
    let before = endpoint.before_marker(is_marker).await;
    let ids: Vec<_> = before.iter().map(|s| &s.headers["webhook-id"]).collect();
    assert_eq!(ids.len(), 1, "the small event, once: {ids:?}");
    wait_for_metric(&host, "edgehook_resends_total 1").await;
    host.host.stop().await;
}

/// The resends over the host's crash, with the debug builds' crash hook.
#[cfg(debug_assertions)]
mod crash {
    use std::path::Path;

    use crate::support::{
        Device, Endpoint, HostProcess, HostUnderTest, Mosquitto, host_dir, is_marker,
    };

    /// Makes the host abort after the commit of a `crash` event, before its
    /// PUBACK (debug builds only).
    const CRASH_HOOK: (&str, &str) = ("EDGEHOOK_TEST_CRASH_AFTER_COMMIT", "crash");

    /// A host directory with webhooks on `crash` and `marker` events.
    fn crash_dir(endpoint: &Endpoint) -> tempfile::TempDir {
        let dir = host_dir();
        for event in ["crash", "marker"] {
            let webhook = serde_json::json!({
                "event": event,
                "url": endpoint.url(&format!("/{event}")),
            });
            std::fs::write(
                dir.path().join(format!("webhooks/{event}.json")),
                webhook.to_string(),
            )
            .unwrap();
        }
        dir
    }

    /// Starts the host on `dir` with the crash hook, and waits for the crash.
    async fn crashed(dir: &Path, mqtt: &[&str], publish: impl AsyncFnOnce(&HostProcess)) {
        let host = HostProcess::start_with_env(dir, mqtt, &[CRASH_HOOK]).await;
        publish(&host).await;
        let status = host.exited().await;
        assert!(!status.success(), "the host did not crash: {status}");
    }

    /// After the restart the endpoint gets the stored event once, from the
    /// queue, and nothing else before the marker; the resend is counted.
    async fn delivered_once(
        endpoint: &mut Endpoint,
        host: &HostProcess,
        marker: impl AsyncFnOnce(),
    ) {
        let replayed = endpoint.next().await;
        assert_eq!(replayed.uri.path(), "/crash");
        marker().await;
        let late = endpoint.before_marker(is_marker).await;
        assert!(
            late.is_empty(),
            "delivered again: webhook-id {:?} after {:?}",
            late[0].headers["webhook-id"],
            replayed.headers["webhook-id"]
        );
        assert_eq!(host.metric("edgehook_resends_total").await, 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_device_resend_after_a_crash_between_commit_and_puback_is_not_delivered_again() {
        let mut endpoint = Endpoint::start(200, "ok").await;
        let dir = crash_dir(&endpoint);
        let mqtt = ["--mqtt-listen", "127.0.0.1:0"];
        crashed(dir.path(), &mqtt, async |host| {
            let mut device = Device::raw(host.mqtt_addr.unwrap(), "r2").await;
            device.publish_pkid("crash", "21.5", 3, false).await;
            assert!(
                device.pubacks_until_closed().await.is_empty(),
                "a PUBACK came before the crash"
            );
        })
        .await;

        let host = HostProcess::start(dir.path(), &mqtt).await;
        let mut device = Device::raw(host.mqtt_addr.unwrap(), "r2").await;
        device.publish_pkid("crash", "21.5", 3, true).await;
        device.puback(3).await;
        delivered_once(&mut endpoint, &host, async || {
            device.publish_pkid("marker", "", 4, false).await;
            device.puback(4).await;
        })
        .await;
        host.kill().await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn mosquittos_redelivery_after_a_crash_between_commit_and_puback_is_not_delivered_again()
    {
        let mut endpoint = Endpoint::start(200, "ok").await;
        let dir = crash_dir(&endpoint);
        let broker = Mosquitto::start().await;
        let url = format!("mqtt://{}", broker.addr);
        let mqtt = [
            "--mqtt-url",
            &url,
            "--mqtt-client-id",
            "edgehook-resend-test",
        ];
        let device = Device::connect(broker.addr, "r3").await;
        crashed(dir.path(), &mqtt, async |_| {
            device.publish("crash", "21.5").await;
        })
        .await;

        // mosquitto sends the message again to the host's session, DUP=1.
        let host = HostProcess::start(dir.path(), &mqtt).await;
        delivered_once(&mut endpoint, &host, async || {
            device.publish("marker", "").await;
        })
        .await;
        host.kill().await;
    }
}
