//! Storage faults (CONTRACT section 12): while the queue cannot write
//! (here a full disk, injected into the queue's commits), no event is
//! acknowledged and `/healthz` answers `503` with the reason; once writes
//! succeed the events come again, from the devices on the embedded broker
//! and from the host's re-opened session on mosquitto, and every one
//! reaches the endpoint, once. Nothing arriving late is shown by a marker
//! event published after the rest.

use std::collections::BTreeSet;
use std::time::Duration;

use edgehook::config::Settings;
use edgehook::queue::DiskFault;
use edgehook_tests::BEHAVE;
use tokio::time::Instant;

use crate::support::{
    Device, Endpoint, HostUnderTest, Mosquitto, Seen, TestHost, WAIT, forward_manifest,
};

/// Events published while the disk is full.
const N: u16 = 20;

/// What `/healthz` says while the disk is full.
const FULL: &str = "cannot write: No space left on device (os error 28)";

/// The packet id of event `i`.
fn pkid(i: u16) -> u16 {
    i + 10
}

/// Whether a request is the one of the event `sf/marker` (by the header
/// naming its event).
fn names_the_marker_event(seen: &Seen) -> bool {
    seen.headers["x-event-name"] == "sf/marker"
}

/// The bodies of the next `n` requests to `endpoint`, and when the first
/// came.
async fn bodies(endpoint: &mut Endpoint, n: u16) -> (BTreeSet<String>, Instant) {
    let first = endpoint.next().await;
    let at = Instant::now();
    let mut bodies = BTreeSet::from([String::from_utf8(first.body.to_vec()).unwrap()]);
    for _ in 1..n {
        let seen = endpoint.next().await;
        let body = String::from_utf8(seen.body.to_vec()).unwrap();
        assert!(bodies.insert(body.clone()), "delivered twice: {body}");
    }
    (bodies, at)
}

fn all_events() -> BTreeSet<String> {
    (0..N).map(|i| i.to_string()).collect()
}

async fn assert_unavailable(host: &TestHost) {
    let (status, body) = host.api_get("/healthz", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["queue"], FULL, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_the_embedded_broker_an_event_not_stored_gets_no_puback_and_is_taken_when_sent_again() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let manifest = forward_manifest("sf", &endpoint.url("/sf"));
    let host = TestHost::start(&[("sf", BEHAVE, &manifest)], Settings::default()).await;
    let faults = host.host.disk_faults.clone();

    let mut device = Device::raw(host.mqtt_addr(), "f1").await;
    device.publish_pkid("sf/before", "before", 1, false).await;
    device.puback(1).await;
    assert_eq!(&endpoint.next().await.body[..], b"before");

    faults.inject(Some(DiskFault::Full));
    for i in 0..N {
        device
            .publish_pkid(&format!("sf/{i}"), &i.to_string(), pkid(i), false)
            .await;
    }
    // The first commit fails: its PUBACK never comes, the connection closes.
    let acked = device.pubacks_until_closed().await;
    assert!(acked.is_empty(), "PUBACKs for events not stored: {acked:?}");
    assert_unavailable(&host).await;
    // The device comes back while the disk is still full: refused again.
    let mut device = Device::raw(host.mqtt_addr(), "f1").await;
    device.publish_pkid("sf/0", "0", pkid(0), true).await;
    let acked = device.pubacks_until_closed().await;
    assert!(acked.is_empty(), "PUBACKs for events not stored: {acked:?}");
    assert_unavailable(&host).await;
    assert!(
        endpoint.received().is_empty(),
        "delivered without being stored"
    );

    faults.inject(None);
    let lifted = Instant::now();
    let mut device = Device::raw(host.mqtt_addr(), "f1").await;
    for i in 0..N {
        device
            .publish_pkid(&format!("sf/{i}"), &i.to_string(), pkid(i), true)
            .await;
    }
    device.puback(pkid(0)).await;
    let resumed = lifted.elapsed();
    for i in 1..N {
        device.puback(pkid(i)).await;
    }
    let (bodies, _) = bodies(&mut endpoint, N).await;
    assert_eq!(bodies, all_events());
    eprintln!("embedded broker: the first PUBACK {resumed:?} after writes succeed again");
    device.publish_pkid("sf/marker", "", 1, false).await;
    device.puback(1).await;
    let late = endpoint.before_marker(names_the_marker_event).await;
    assert!(late.is_empty(), "delivered again: {late:?}");
    assert_eq!(host.api_get("/healthz", None).await.0, 200);
    host.host.stop().await;
}

/// A host on mosquitto speaking `version` (none: the default) as
/// `client_id`: events published while the disk is full reach the endpoint
/// once it is not, without anyone sending them again but the broker.
async fn through_mosquitto(version: Option<u8>, client_id: &str) {
    let broker = Mosquitto::start().await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    let manifest = forward_manifest("sf", &endpoint.url("/sf"));
    let settings = Settings {
        mqtt_url: Some(format!("mqtt://{}", broker.addr)),
        mqtt_version: version,
        mqtt_client_id: Some(client_id.into()),
        ..Settings::default()
    };
    let host = TestHost::start(&[("sf", BEHAVE, &manifest)], settings).await;
    let faults = host.host.disk_faults.clone();
    let device = Device::connect(broker.addr, "f2").await;
    device.publish("sf/before", "before").await;
    assert_eq!(&endpoint.next().await.body[..], b"before");

    faults.inject(Some(DiskFault::Full));
    for i in 0..N {
        device.publish(&format!("sf/{i}"), i.to_string()).await;
    }
    // The host re-opens its session while writes fail, again and again:
    // mosquitto sees it connect (once at start, then at each re-open).
    let deadline = Instant::now() + WAIT;
    while broker.connections_of(client_id) < 4 {
        assert!(
            Instant::now() < deadline,
            "the host re-opened its session {} time(s) while writes failed",
            broker.connections_of(client_id) - 1
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_unavailable(&host).await;
    assert!(
        endpoint.received().is_empty(),
        "delivered without being stored"
    );

    faults.inject(None);
    let lifted = Instant::now();
    let (bodies, first) = bodies(&mut endpoint, N).await;
    assert_eq!(bodies, all_events());
    eprintln!(
        "mosquitto (MQTT {}): the first event {:?}, all {N} {:?} after writes succeed again",
        version.unwrap_or(5),
        first - lifted,
        lifted.elapsed()
    );
    device.publish("sf/marker", "").await;
    let late = endpoint.before_marker(names_the_marker_event).await;
    assert!(late.is_empty(), "delivered again: {late:?}");
    assert_eq!(host.api_get("/healthz", None).await.0, 200);
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_mosquitto_the_host_reopens_its_session_until_the_events_it_could_not_store_are_stored()
{
    through_mosquitto(None, "edgehook-test-faults-5").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_mosquitto_with_mqtt_3_1_1_the_events_not_stored_come_again_too() {
    through_mosquitto(Some(3), "edgehook-test-faults-3").await;
}
