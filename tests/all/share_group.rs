//! Several hosts on one external broker with `--mqtt-share-group`: each
//! event is delivered once, by one of them, and both take some (README,
//! "Configuration reference", `mqtt_share_group`).

use std::collections::BTreeMap;

use edgehook::config::Settings;

use crate::support::{Device, Endpoint, HostUnderTest, Mosquitto, TestHost};

/// Events the device publishes.
const EVENTS: usize = 40;

/// A host on `broker` in the share group `group`, with a webhook on
/// `shared` posting to `endpoint` under `/{name}`, so that each request
/// says which host made it.
async fn member(broker: &Mosquitto, group: &str, name: &str, endpoint: &Endpoint) -> TestHost {
    let settings = Settings {
        mqtt_url: Some(format!("mqtt://{}", broker.addr)),
        mqtt_client_id: Some(format!("edgehook-share-{name}")),
        mqtt_share_group: Some(group.into()),
        ..Settings::default()
    };
    let host = TestHost::start(&[], settings).await;
    host.create_webhook(serde_json::json!({
        "event": "shared",
        "url": endpoint.url(&format!("/{name}")),
        "body": "{{{PARTICLE_EVENT_VALUE}}}",
    }))
    .await;
    host
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_in_one_share_group_deliver_each_event_once_between_them() {
    let broker = Mosquitto::start().await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    let a = member(&broker, "fleet", "a", &endpoint).await;
    let b = member(&broker, "fleet", "b", &endpoint).await;
    let device = Device::connect(broker.addr, "sharer").await;
    for i in 0..EVENTS {
        device.publish("shared", i.to_string()).await;
    }

    // Which host delivered each event: every one arrives, none twice.
    let mut by: BTreeMap<usize, String> = BTreeMap::new();
    while by.len() < EVENTS {
        let seen = endpoint.next().await;
        let n: usize = std::str::from_utf8(&seen.body).unwrap().parse().unwrap();
        let host = seen.uri.path().to_owned();
        if let Some(first) = by.insert(n, host.clone()) {
            panic!("event {n} delivered by {first} and again by {host}");
        }
    }
    for host in ["/a", "/b"] {
        assert!(
            by.values().any(|h| h == host),
            "host {host} took none of the events: {by:?}"
        );
    }
    // Each event was taken by one host only: what they took adds up to
    // what was published, so no second delivery can still come.
    let taken = a.metric("edgehook_events_total").await + b.metric("edgehook_events_total").await;
    assert_eq!(taken, EVENTS as u64, "events taken by the two hosts");
    assert!(endpoint.received().is_empty(), "a second delivery came");
    a.host.stop().await;
    b.host.stop().await;
}
