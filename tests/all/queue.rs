//! What the durable queue writes: only events a webhook takes cost a
//! commit, a finished event's removal rides on the next one, and a stop
//! writes what was still waiting.

use edgehook::config::Settings;
use edgehook::pipeline::REMOVAL_DELAY;
use edgehook_tests::BEHAVE;

use crate::support::{
    Device, Endpoint, HostUnderTest, TestHost, WAIT, forward_manifest, is_marker,
};

#[tokio::test(flavor = "multi_thread")]
async fn only_stored_events_cost_a_commit_and_removals_ride_on_the_next() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let manifest = forward_manifest("sensor/", &endpoint.url("/hook"));
    let host = TestHost::start(&[("behave", BEHAVE, &manifest)], Settings::default()).await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;
    // A removal waits `REMOVAL_DELAY` for company, then is written on its
    // own: the count is exact when the exchange took less than that, and a
    // machine too loaded for it tries again (after the lone commit of the
    // removal it left waiting).
    let mut tries = 0;
    loop {
        let before = host.metric("edgehook_queue_commits_total").await;
        let started = tokio::time::Instant::now();
        let commits = stored_then_unmatched(&host, &mut device, &mut endpoint).await - before;
        if started.elapsed() < REMOVAL_DELAY {
            assert_eq!(
                commits, 2,
                "one commit per stored event: `sensor/a`'s removal rides on `sensor/b`'s, \
                 the unmatched events write nothing"
            );
            break;
        }
        assert!(commits <= 3, "{commits} commits for two stored events");
        tries += 1;
        assert!(tries < 5, "never within {REMOVAL_DELAY:?} in {tries} tries");
        wait_for_commits(&host, before + commits + 1).await;
    }

    // `sensor/b`'s removal still waits for company when the host stops:
    // the stop writes it, so the next start delivers nothing again.
    let deadline = tokio::time::Instant::now() + WAIT;
    while host.metric("edgehook_queue_depth").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "`sensor/b` never left the queue"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let host = host.restart().await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    host.send_marker(&device, endpoint.url("/marker")).await;
    let replayed = endpoint.before_marker(is_marker).await;
    assert!(
        replayed.is_empty(),
        "finished events delivered again after a restart: {:?}",
        replayed.iter().map(|s| &s.body).collect::<Vec<_>>()
    );
    host.host.stop().await;
}

/// `sensor/a` delivered, five events no webhook matches, then `sensor/b`
/// delivered; the commits written so far.
async fn stored_then_unmatched(
    host: &TestHost,
    device: &mut Device,
    endpoint: &mut Endpoint,
) -> u64 {
    device.publish("sensor/a", "a").await;
    assert_eq!(&endpoint.next().await.body[..], b"a");
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/sensor/a");
    assert_eq!(
        device.next_text().await.0,
        "devices/d1/hook-response/sensor/a/0"
    );
    // Events no webhook matches are acknowledged without a write; the
    // device's events arrive in order, so once `sensor/b` is answered they
    // have all been taken.
    for _ in 0..5 {
        device.publish("other", "x").await;
    }
    device.publish("sensor/b", "b").await;
    assert_eq!(&endpoint.next().await.body[..], b"b");
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/sensor/b");
    assert_eq!(
        device.next_text().await.0,
        "devices/d1/hook-response/sensor/b/0"
    );
    host.metric("edgehook_queue_commits_total").await
}

/// Waits until the queue has made `commits` commits in all.
async fn wait_for_commits(host: &TestHost, commits: u64) {
    let deadline = tokio::time::Instant::now() + REMOVAL_DELAY + WAIT;
    while host.metric("edgehook_queue_commits_total").await < commits {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the waiting removal was never written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
