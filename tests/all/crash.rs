//! A crash loses nothing acknowledged: the host runs as its own process,
//! devices publish under load to an endpoint that holds its answers (so
//! acknowledged events pile up in the durable queue), the host is killed
//! with SIGKILL, and a new host on the same data directory delivers every
//! event the broker had acknowledged to a device — with the embedded broker
//! (the PUBACK waits for the queue's commit) and with mosquitto (whose
//! persistent session sends the rest again). Events the endpoint saw
//! before the kill may come again (at least once); those duplicates are
//! counted and may not exceed the requests in flight at the kill.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use crate::support::{
    Device, Endpoint, HostProcess, HostUnderTest, Mosquitto, WAIT, host_dir, publish_under_load,
    seq_of,
};

const DEVICES: usize = 8;
const EVENTS_PER_DEVICE: usize = 400;
/// The host is killed once this many events were acknowledged.
const KILL_AFTER: usize = 600;

/// A directory with one Particle-style webhook file sending `crash` events
/// to `endpoint`.
fn crash_dir(endpoint: &Endpoint) -> tempfile::TempDir {
    let dir = host_dir();
    let webhook = serde_json::json!({
        "event": "crash",
        "url": format!("http://{}/hook", endpoint.addr),
        "json": { "seq": "{{seq}}" },
        "noDefaults": true,
    });
    std::fs::write(dir.path().join("webhooks/crash.json"), webhook.to_string()).unwrap();
    dir
}

/// Collects what the endpoint saw until every acknowledged event is in,
/// then returns (missing, duplicates).
async fn collect_until_acked_arrived(
    endpoint: &mut Endpoint,
    seen: &mut Vec<String>,
    acked: &BTreeSet<(usize, usize)>,
) -> Vec<(usize, usize)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
        let missing: Vec<_> = acked
            .iter()
            .filter(|(d, n)| !got.contains(format!("{d}-{n}").as_str()))
            .copied()
            .collect();
        if missing.is_empty() || tokio::time::Instant::now() > deadline {
            return missing;
        }
        if let Ok(s) = tokio::time::timeout(Duration::from_secs(5), endpoint.next()).await {
            seen.push(seq_of(&s.body));
        }
    }
}

/// Publishes under load to an endpoint that holds its answers, kills the
/// host after `KILL_AFTER` PUBACKs while events wait in its queue, starts a
/// new host on the same directory with the endpoint answering at once, and
/// checks that every acknowledged event reached the endpoint, the ones not
/// seen before the kill included, with duplicates counted and bounded.
/// `broker` is the external broker's address, or `None` for the embedded
/// one.
async fn crash_and_recover(mqtt: &[&str], broker: Option<SocketAddr>) {
    let mut endpoint = Endpoint::start(200, "ok").await;
    // Requests reach the endpoint and wait there: nothing is done, and
    // what the broker acknowledges stays in the durable queue.
    endpoint.answer(200, "ok", Duration::from_secs(600));
    let dir = crash_dir(&endpoint);
    let host = HostProcess::start(dir.path(), mqtt).await;
    // The embedded broker acknowledges only what the queue committed, so
    // only requests in flight at the kill can come again; mosquitto also
    // sends again what the host had committed but not yet acknowledged,
    // which the restarted host recognises as resends.
    let external = broker.is_some();
    let broker = broker
        .or(host.mqtt_addr)
        .expect("an external or an embedded broker");
    let (acked, clients) = publish_under_load(&[broker], "crash", DEVICES, EVENTS_PER_DEVICE).await;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < KILL_AFTER {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the host took too few events"
        );
        while let Ok(s) = tokio::time::timeout(Duration::from_millis(5), endpoint.next()).await {
            seen.push(seq_of(&s.body));
        }
    }
    // With mosquitto the PUBACKs come from the broker, which may not have
    // handed the host anything yet: wait until events wait in its queue.
    let depth = loop {
        let depth = host.queue_depth().await;
        if depth > 0 {
            break depth;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event waits in the queue at the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    host.kill().await;
    // From here on no PUBACK can come from the killed host; with mosquitto
    // the devices go on, and mosquitto keeps their events for the host's
    // session. Disconnecting them is what ends their publishing.
    for client in &clients {
        let _ = client.disconnect().await;
    }
    // Requests the killed host had sent may still be on their way in.
    while let Ok(s) = tokio::time::timeout(Duration::from_millis(200), endpoint.next()).await {
        seen.push(seq_of(&s.body));
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= KILL_AFTER);
    let in_flight = seen.len();
    let seen_before: BTreeSet<String> = seen.iter().cloned().collect();
    let unseen: Vec<_> = acked
        .iter()
        .filter(|(d, n)| !seen_before.contains(&format!("{d}-{n}")))
        .copied()
        .collect();
    assert!(
        !unseen.is_empty(),
        "every acknowledged event reached the endpoint before the kill: \
         the restarted host would have nothing to replay"
    );

    endpoint.answer(200, "ok", Duration::ZERO);
    let host = HostProcess::start(dir.path(), mqtt).await;
    let missing = collect_until_acked_arrived(&mut endpoint, &mut seen, &acked).await;
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events never reached the endpoint, e.g. {:?} \
         ({in_flight} requests before the kill, {} in all)",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)],
        seen.len()
    );
    // Any duplicate reaches the endpoint before the restarted host has
    // delivered a marker published now and emptied its queue: the broker
    // hands the host the marker after all it still held for it, and the
    // endpoint records a request before answering it, so before its event
    // leaves the queue.
    let broker = if external {
        broker
    } else {
        host.mqtt_addr.expect("the embedded broker")
    };
    let marker = Device::connect(broker, "marker").await;
    marker.publish("crash", r#"{"seq":"marker"}"#).await;
    let before = endpoint
        .before_marker(|s| seq_of(&s.body) == "marker")
        .await;
    seen.extend(before.iter().map(|s| seq_of(&s.body)));
    let deadline = tokio::time::Instant::now() + WAIT;
    while host.queue_depth().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restarted host never emptied its queue"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen.extend(endpoint.received().iter().map(|s| seq_of(&s.body)));
    let mut times: BTreeMap<&str, usize> = BTreeMap::new();
    for seq in &seen {
        *times.entry(seq).or_default() += 1;
    }
    let duplicates: usize = times.values().map(|n| n - 1).sum();
    let most = times.values().copied().max().unwrap_or(0);
    // An event can reach the endpoint once from the killed host (in
    // flight) and once from the restarted host's replay of its queue. With
    // mosquitto, the broker's resend of a message the killed host stored
    // but never acknowledged is recognised (DUP, the host's session and
    // packet id) and not delivered a third time.
    assert!(
        duplicates <= in_flight && most <= 2,
        "{duplicates} duplicate deliveries (one event {most} times): \
         {in_flight} requests in flight at the kill, {} events unseen before it, \
         {depth} in the queue",
        unseen.len()
    );
    eprintln!(
        "crash: {} acknowledged, {in_flight} in flight at the kill, {} delivered only \
         after the restart, {duplicates} duplicates, queue depth {depth}",
        acked.len(),
        unseen.len()
    );
    host.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_under_load_loses_no_event_the_embedded_broker_acknowledged() {
    crash_and_recover(&["--mqtt-listen", "127.0.0.1:0"], None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkill_under_load_loses_no_event_mosquitto_acknowledged() {
    let broker = Mosquitto::start().await;
    let url = format!("mqtt://{}", broker.addr);
    crash_and_recover(
        &[
            "--mqtt-url",
            &url,
            "--mqtt-client-id",
            "edgehook-crash-test",
        ],
        Some(broker.addr),
    )
    .await;
}
