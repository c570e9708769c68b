//! Several hosts on one NATS JetStream cluster (CONTRACT sections 11 and
//! 12): a real 3-node `nats-server` cluster on loopback with TLS and the
//! hosts' login on ([`NatsCluster`]), and edgehook hosts as separate
//! processes, each with its own embedded broker (`--mqtt-listen`), where
//! the devices connect.
//!
//! - Definitions, the registry and plugins made on one host are in force
//!   on the others; a webhook disabled on one is disabled on all.
//! - A host killed under load: every event a device had its PUBACK for is
//!   delivered by the other host (it is in JetStream), under the same
//!   `webhook-id`.
//! - A NATS node killed under load (the events stream's leader, 3,000
//!   events of 12 devices that send each event again until its PUBACK):
//!   within 30 s of its death every event is acknowledged and has reached
//!   the endpoint, and the hosts' `/healthz` is 200 again; the hosts take
//!   events with the node down and after its return.
//! - A device away when its answer is published gets it on return; a host
//!   without NATS says it is unhealthy.
//! - Device logins (`--mqtt-auth devices`) with the shared registry: a
//!   device made through host A logs in at host B and gets its answers
//!   there, whichever host delivered its event; a command sent through A
//!   reaches it at B and its answer comes back to A; another device's key,
//!   another device's client id, topics and subscriptions are refused at B.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Outgoing, Packet, QoS,
    SubscribeReasonCode,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::support::{
    Acked, Endpoint, HostProcess, HostUnderTest, NatsCluster, Seen, TOKEN, WAIT, edgehook_binary,
    forward_manifest, host_dir, http_get, http_request, ids, is_marker, publish_under_load, seq_of,
};

/// How soon a change made on one host must be in force on the others.
const SPREAD: Duration = Duration::from_secs(2);

/// How soon after a host or a NATS node dies every event a device had its
/// PUBACK for must have reached the endpoint, and the surviving hosts be
/// healthy again (issue 23).
const RECOVERY: Duration = Duration::from_secs(30);

/// The load of the kill tests: 12 devices of 250 events, 3,000 in all.
const DEVICES: usize = 12;
const EVENTS_PER_DEVICE: usize = 250;

/// Starts a host on `dir` on the cluster (TLS, the hosts' login), with its
/// embedded broker on a free port and an ack wait of 5 s.
async fn start_host(cluster: &NatsCluster, dir: &Path) -> HostProcess {
    start_host_with(cluster, dir, &[]).await
}

/// [`start_host`] with more flags.
async fn start_host_with(cluster: &NatsCluster, dir: &Path, more: &[&str]) -> HostProcess {
    let flags = cluster.host_flags();
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend(["--mqtt-listen", "127.0.0.1:0", "--nats-ack-wait", "5s"]);
    args.extend_from_slice(more);
    HostProcess::start(dir, &args).await
}

/// The host's embedded broker.
fn broker(host: &HostProcess) -> SocketAddr {
    host.mqtt_addr
        .expect("a host on a cluster runs its embedded broker (its ready line names it)")
}

async fn api(host: &HostProcess, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    http_request(host.api_addr, method, path, Some(TOKEN), body).await
}

/// Waits (at most [`SPREAD`]) until `GET path` on `host` satisfies `ok`;
/// how long that took.
async fn until(
    host: &HostProcess,
    path: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let (status, body) = http_get(host.api_addr, path, Some(TOKEN)).await;
        if status == 200 && ok(&body) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < SPREAD,
            "GET {path} on another host did not show the change within {SPREAD:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn definitions_registry_and_plugins_reach_every_host() {
    let cluster = NatsCluster::start(3).await;
    let (dir_a, dir_b) = (host_dir(), host_dir());
    let a = start_host(&cluster, dir_a.path()).await;
    let b = start_host(&cluster, dir_b.path()).await;

    // A Particle-style webhook made on one host runs on the other.
    let (status, created) = api(
        &a,
        "POST",
        "/v1/webhooks",
        r#"{"event":"temp","url":"http://127.0.0.1:9/hook"}"#,
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    until(&b, "/v1/webhooks", |l| ids(l).contains(&id.as_str())).await;

    // The registry: a group and a device made on B are on A.
    let (status, body) = api(&b, "POST", "/v1/groups", r#"{"id":"line-1"}"#).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = api(
        &b,
        "POST",
        "/v1/devices",
        r#"{"id":"press-7","group":"line-1"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    until(&a, "/v1/devices", |l| ids(l).contains(&"press-7")).await;

    // An Iottly-style webhook on A for the project made on B: A knows the
    // project, and B gets the webhook.
    let (status, body) = api(
        &a,
        "POST",
        "/v1/projects/line-1/webhooks",
        r#"{"description":"all","url":"http://127.0.0.1:9/iottly","type":"user"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let iottly = body["id"].as_str().unwrap().to_owned();
    until(&b, "/v1/projects/line-1/webhooks", |l| {
        ids(l).contains(&iottly.as_str())
    })
    .await;

    // A deletion on B is in force on A.
    let (status, body) = api(&b, "DELETE", &format!("/v1/webhooks/{id}"), "").await;
    assert_eq!(status, 200, "{body}");
    until(&a, "/v1/webhooks", |l| !ids(l).contains(&id.as_str())).await;

    // A plugin pushed through one host's API runs on both, and on a host
    // that joins later.
    let manifest = dir_a.path().join("pushed.toml");
    std::fs::write(
        &manifest,
        forward_manifest("pushed", "http://127.0.0.1:9/p"),
    )
    .unwrap();
    let wasm = dir_a.path().join("pushed.wasm");
    std::fs::copy(edgehook_tests::BEHAVE, &wasm).unwrap();
    let plugin = |host: &HostProcess, args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(edgehook_binary())
            .arg("plugin")
            .args(args)
            .args([
                "--api",
                &format!("http://{}", host.api_addr),
                "--token",
                TOKEN,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    plugin(
        &a,
        &["push".as_ref(), wasm.as_os_str(), manifest.as_os_str()],
    );
    let running = |l: &serde_json::Value| {
        l.as_array().is_some_and(|a| {
            a.iter()
                .any(|p| p["name"] == "pushed" && p["state"] == "running")
        })
    };
    // Loading compiles the module: give it the plugin directory's own pace.
    for host in [&a, &b] {
        host.wait_for("/v1/plugins", running).await;
    }
    let dir_c = host_dir();
    let c = start_host(&cluster, dir_c.path()).await;
    c.wait_for("/v1/plugins", running).await;
    // Removed through another host's API: gone from every host (the
    // files in its plugins directory said when it is not).
    plugin(&b, &["remove".as_ref(), "pushed".as_ref()]);
    for (host, dir, name) in [(&a, &dir_a, "A"), (&b, &dir_b, "B"), (&c, &dir_c, "C")] {
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, list) = http_get(host.api_addr, "/v1/plugins", Some(TOKEN)).await;
            if !running(&list) {
                break;
            }
            if Instant::now() >= deadline {
                let files: Vec<_> = std::fs::read_dir(dir.path().join("plugins"))
                    .unwrap()
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect();
                panic!(
                    "host {name} still runs the plugin removed through B {WAIT:?} later \
                     (its plugins directory holds {files:?}): {list}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (_, list) = http_get(c.api_addr, "/v1/projects/line-1/webhooks", Some(TOKEN)).await;
    assert!(ids(&list).contains(&iottly.as_str()), "{list}");
}

/// A request's event (`seq` of its body, `{device}-{n}`) and its
/// `webhook-id`.
fn event_and_id(seen: &Seen) -> (String, String) {
    let id = seen.header("webhook-id").expect("a webhook-id");
    (seq_of(&seen.body), id.to_owned())
}

/// What reached the endpoint of a kill test: (seq, webhook-id) in order.
#[derive(Default)]
struct Arrived(Vec<(String, String)>);

impl Arrived {
    /// Takes what reaches `endpoint` for up to `limit`.
    async fn take_for(&mut self, endpoint: &mut Endpoint, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(seen) = tokio::time::timeout_at(deadline, endpoint.next()).await {
                self.0.push(event_and_id(&seen));
            }
        }
    }

    /// Takes one request if it comes within 100 ms.
    async fn take_one(&mut self, endpoint: &mut Endpoint) {
        if let Ok(seen) = tokio::time::timeout(Duration::from_millis(100), endpoint.next()).await {
            self.0.push(event_and_id(&seen));
        }
    }

    /// The acknowledged events (`{device}-{n}`) that have not arrived.
    fn missing(&self, acked: &Acked) -> Vec<String> {
        let got: BTreeSet<&str> = self.0.iter().map(|(s, _)| s.as_str()).collect();
        acked
            .lock()
            .unwrap()
            .iter()
            .map(|(d, n)| format!("{d}-{n}"))
            .filter(|seq| !got.contains(seq.as_str()))
            .collect()
    }

    /// Panics when an event arrived more than `most` times, when more than
    /// a tenth of `acked` arrived twice, or, with `one_id`, under several
    /// `webhook-id`s (whichever host delivers a stored event, it is the
    /// same delivery; an event its device sent again is stored again, and
    /// is another); the number of duplicates.
    fn check_duplicates(&self, acked: usize, most: usize, one_id: bool) -> usize {
        let mut times: BTreeMap<&str, usize> = BTreeMap::new();
        let mut ids: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (seq, id) in &self.0 {
            *times.entry(seq).or_default() += 1;
            ids.entry(seq).or_default().insert(id);
        }
        let renamed: Vec<_> = ids.iter().filter(|(_, ids)| ids.len() > 1).collect();
        assert!(
            !one_id || renamed.is_empty(),
            "events delivered under several webhook-ids: {renamed:?}"
        );
        let duplicates: usize = times.values().map(|n| n - 1).sum();
        let max = times.values().copied().max().unwrap_or(0);
        assert!(max <= most, "one event reached the endpoint {max} times");
        assert!(
            duplicates <= acked / 10,
            "{duplicates} duplicates for {acked} events"
        );
        duplicates
    }
}

/// The webhook of the kill tests on `host`: event `event`, its `seq` in a
/// JSON body; waits until every host of `others` has it.
async fn load_webhook(
    host: &HostProcess,
    others: &[&HostProcess],
    endpoint: &Endpoint,
    event: &str,
) {
    let definition = serde_json::json!({
        "event": event,
        "url": endpoint.url("/hook"),
        "json": { "seq": "{{seq}}" },
        "noDefaults": true,
    });
    let (status, body) = api(host, "POST", "/v1/webhooks", &definition.to_string()).await;
    assert_eq!(status, 201, "{body}");
    for other in others {
        until(other, "/v1/webhooks", |l| !ids(l).is_empty()).await;
    }
}

/// `name` on the `/metrics` of `host` (0 when it is not there).
async fn metric_or_zero(host: &HostProcess, name: &str) -> u64 {
    let (_, body) = http_get(host.api_addr, "/metrics", Some(TOKEN)).await;
    let text = body.as_str().unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Waits (at most `3 * WAIT`) until `host` sees JetStream up and the
/// shared consumer empty: nothing left undelivered.
async fn consumer_drained(host: &HostProcess) {
    let deadline = Instant::now() + 3 * WAIT;
    loop {
        let (_, body) = http_get(host.api_addr, "/metrics", Some(TOKEN)).await;
        let text = body.as_str().expect("metrics are text");
        let value = |name| crate::support::metric_in(text, name);
        if value("edgehook_jetstream_up") == 1
            && value("edgehook_jetstream_pending") + value("edgehook_jetstream_ack_pending") == 0
        {
            return;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_host_loses_no_acknowledged_event() {
    let cluster = NatsCluster::start(3).await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    // Slow enough answers that both hosts hold events when one is killed.
    endpoint.answer(200, "ok", Duration::from_millis(20));
    let (dir_a, dir_b) = (host_dir(), host_dir());
    let a = start_host(&cluster, dir_a.path()).await;
    let b = start_host(&cluster, dir_b.path()).await;
    load_webhook(&a, &[&b], &endpoint, "load").await;

    // Devices alternate: even ones on A, odd ones on B.
    let (acked, clients) = publish_under_load(
        &[broker(&a), broker(&b)],
        "load",
        DEVICES,
        EVENTS_PER_DEVICE,
    )
    .await;
    let mut arrived = Arrived::default();
    // Both hosts take events, and some are handed out and not yet done,
    // before the kill.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        arrived
            .take_for(&mut endpoint, Duration::from_millis(200))
            .await;
        let (took_a, took_b) = (
            metric_or_zero(&a, "edgehook_events_total").await,
            metric_or_zero(&b, "edgehook_events_total").await,
        );
        let held = metric_or_zero(&a, "edgehook_jetstream_ack_pending").await;
        if took_a > 20 && took_b > 20 && held > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hosts took too few events: {took_a} and {took_b} ({held} handed out)"
        );
    }
    let held = metric_or_zero(&b, "edgehook_jetstream_ack_pending").await;
    a.kill().await;
    let killed = Instant::now();

    // What A's devices had acknowledged is in JetStream: B delivers it
    // (what A held, after the ack wait of 5 s), and B's own devices go on.
    let on_b = |acked: &Acked| {
        acked
            .lock()
            .unwrap()
            .iter()
            .filter(|(d, _)| d % 2 == 1)
            .count()
    };
    let all_of_b = DEVICES / 2 * EVENTS_PER_DEVICE;
    while Instant::now() < killed + RECOVERY
        && !(arrived.missing(&acked).is_empty() && on_b(&acked) == all_of_b)
    {
        arrived.take_one(&mut endpoint).await;
    }
    for client in &clients {
        let _ = client.disconnect().await;
    }
    let missing = arrived.missing(&acked);
    let total = acked.lock().unwrap().len();
    if !missing.is_empty() {
        let backlog = backlog(&[&b]).await;
        let late = Instant::now() + LATE;
        while Instant::now() < late && !arrived.missing(&acked).is_empty() {
            arrived.take_one(&mut endpoint).await;
        }
        panic!(
            "{} of {total} acknowledged events did not reach the endpoint within {RECOVERY:?} \
             of the host's death, e.g. {:?}; JetStream up, pending, ack pending, redelivered \
             on the survivor then: {backlog:?}; {} of them still missing {LATE:?} later",
            missing.len(),
            &missing[..missing.len().min(10)],
            arrived.missing(&acked).len(),
        );
    }
    assert_eq!(
        on_b(&acked),
        all_of_b,
        "the devices of the surviving host did not get all their PUBACKs"
    );
    // The killed host's devices had events acknowledged: B delivered
    // those it had not.
    let of_a = total - on_b(&acked);
    assert!(
        of_a > 0,
        "no event of the killed host's devices was acknowledged"
    );
    // A duplicate is an event the killed host had sent and not yet
    // acknowledged to JetStream, sent again by the survivor.
    let duplicates = arrived.check_duplicates(total, 2, true);
    eprintln!(
        "a dead host: {total} acknowledged ({of_a} through the killed host), {} requests, \
         {duplicates} duplicates, {held} handed out at the kill, all delivered {:?} after it",
        arrived.0.len(),
        killed.elapsed()
    );
    let (status, body) = http_get(b.api_addr, "/healthz", None).await;
    assert_eq!(status, 200, "the survivor is unhealthy: {body}");
    consumer_drained(&b).await;
}

/// How long a failed kill test goes on watching for the events that did
/// not arrive in time, to say whether they were late or lost.
const LATE: Duration = Duration::from_secs(60);

/// What the hosts see of the shared consumer: JetStream up, pending, ack
/// pending and redelivered, by host.
async fn backlog(hosts: &[&HostProcess]) -> Vec<[u64; 4]> {
    let mut all = Vec::new();
    for host in hosts {
        let mut numbers = [0; 4];
        for (number, name) in numbers.iter_mut().zip([
            "edgehook_jetstream_up",
            "edgehook_jetstream_pending",
            "edgehook_jetstream_ack_pending",
            "edgehook_jetstream_redelivered",
        ]) {
            *number = metric_or_zero(host, name).await;
        }
        all.push(numbers);
    }
    all
}

/// `/healthz` answers of the hosts after a node's death: (since the death,
/// status) by host.
type Health = Vec<Vec<(Duration, u16)>>;

/// Asks every host of `hosts` for `/healthz`, noting the answer.
async fn probe(hosts: &[&HostProcess], since: Instant, health: &mut Health) {
    for (i, host) in hosts.iter().enumerate() {
        let (status, _) = http_get(host.api_addr, "/healthz", None).await;
        health[i].push((since.elapsed(), status));
    }
}

/// The spans (from, to) in which `answers` were not 200.
fn unhealthy_spans(answers: &[(Duration, u16)]) -> Vec<(Duration, Duration)> {
    let mut spans = Vec::new();
    let mut from = None;
    for &(at, status) in answers {
        match (status == 200, from) {
            (false, None) => from = Some(at),
            (true, Some(start)) => {
                spans.push((start, at));
                from = None;
            }
            _ => {}
        }
    }
    if let (Some(start), Some(&(end, _))) = (from, answers.last()) {
        spans.push((start, end));
    }
    spans
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_node_under_load_loses_no_acknowledged_event() {
    let mut cluster = NatsCluster::start(3).await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    let (dir_a, dir_b) = (host_dir(), host_dir());
    let a = start_host(&cluster, dir_a.path()).await;
    let b = start_host(&cluster, dir_b.path()).await;
    load_webhook(&a, &[&b], &endpoint, "node").await;

    // The node that leads the events stream dies: the stream has no
    // leader until the others elect one.
    let js = async_nats::jetstream::new(cluster.hosts_client().await);
    let mut stream = js
        .get_stream("EDGEHOOK_EVENTS")
        .await
        .expect("the hosts made the events stream");
    let info = stream.info().await.unwrap();
    let leader = info
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("the events stream has a leader");
    let node = cluster.node_index(&leader).expect("a node of the cluster");
    assert_eq!(
        info.config.num_replicas, 3,
        "the events stream must survive a node"
    );

    let (acked, devices) = publish_until_acked(
        &[broker(&a), broker(&b)],
        "node",
        DEVICES,
        EVENTS_PER_DEVICE,
    );
    let total = DEVICES * EVENTS_PER_DEVICE;
    let mut arrived = Arrived::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < total / 3 {
        arrived.take_one(&mut endpoint).await;
        assert!(
            Instant::now() < deadline,
            "only {} events acknowledged",
            acked.lock().unwrap().len()
        );
    }
    let before = acked.lock().unwrap().len();
    cluster.kill(node);
    let killed = Instant::now();

    let hosts = [&a, &b];
    let mut health: Health = vec![Vec::new(); hosts.len()];
    let mut next_probe = Instant::now();
    // Until every event is acknowledged (the devices send theirs again
    // until it is) and has arrived.
    while Instant::now() < killed + RECOVERY
        && !(acked.lock().unwrap().len() == total && arrived.missing(&acked).is_empty())
    {
        if Instant::now() >= next_probe {
            probe(&hosts, killed, &mut health).await;
            next_probe += Duration::from_millis(250);
        }
        arrived.take_one(&mut endpoint).await;
    }
    let missing = arrived.missing(&acked);
    let acknowledged = acked.lock().unwrap().len();
    if !missing.is_empty() {
        // Late or lost: what the hosts say, and whether they come.
        let backlog = backlog(&hosts).await;
        let late = Instant::now() + LATE;
        while Instant::now() < late && !arrived.missing(&acked).is_empty() {
            arrived.take_one(&mut endpoint).await;
        }
        panic!(
            "{} of {acknowledged} acknowledged events did not reach the endpoint within \
             {RECOVERY:?} of the death of node {leader} ({before} acknowledged before it), \
             e.g. {:?}; JetStream up, pending, ack pending, redelivered by host then: \
             {backlog:?}; {} of them still missing {LATE:?} later",
            missing.len(),
            &missing[..missing.len().min(10)],
            arrived.missing(&acked).len(),
        );
    }
    // The devices got every PUBACK by then: the hosts took events again
    // once the stream had its new leader.
    assert_eq!(
        acknowledged, total,
        "the devices got {acknowledged} of {total} PUBACKs within {RECOVERY:?} of the \
         death of node {leader}"
    );
    // The hosts are healthy again by then (they may never have said
    // otherwise).
    while health
        .iter()
        .any(|answers| answers.last().is_none_or(|(_, status)| *status != 200))
    {
        assert!(
            Instant::now() < killed + RECOVERY,
            "a host's /healthz was not 200 within {RECOVERY:?} of the node's death: {:?}",
            health.iter().map(|h| h.last()).collect::<Vec<_>>()
        );
        probe(&hosts, killed, &mut health).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for device in &devices {
        device.abort();
    }
    // An event JetStream stored but whose PUBACK was lost with the node
    // is sent again by its device, and stored again (under another
    // webhook-id); an acknowledgement to JetStream lost with the node has
    // an event delivered again.
    let duplicates = arrived.check_duplicates(acknowledged, 3, false);
    eprintln!(
        "a dead node ({leader}, the events stream's leader): {acknowledged} of {total} \
         acknowledged ({before} before the death), {} requests, {duplicates} duplicates, \
         done {:?} after it; /healthz not 200: A {:?}, B {:?}",
        arrived.0.len(),
        killed.elapsed(),
        unhealthy_spans(&health[0]),
        unhealthy_spans(&health[1]),
    );
    for host in hosts {
        consumer_drained(host).await;
    }

    // Two nodes of three go on taking events; the third comes back, and
    // the cluster goes on. A device sends its event again until a PUBACK
    // comes (at most until `by`), and the event reaches the endpoint
    // within WAIT of it.
    let arrives = async |endpoint: &mut Endpoint, host: &HostProcess, seq: &str, by: Instant| {
        let start = Instant::now();
        let payload = format!(r#"{{"seq":"{seq}"}}"#);
        while !publish_acked(broker(host), seq, "node", &payload).await {
            assert!(
                Instant::now() < by,
                "{seq}: no PUBACK in {:?} of trying",
                start.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let acked_after = start.elapsed();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(seen) = tokio::time::timeout_at(deadline, endpoint.next()).await
                && event_and_id(&seen).0 == seq
            {
                break;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{seq}: acknowledged after {acked_after:?}, and not at the endpoint \
                     {WAIT:?} later; JetStream up, pending, ack pending, redelivered by \
                     host: {:?}",
                    backlog(&[&a, &b]).await
                );
            }
        }
    };
    arrives(&mut endpoint, &a, "with-a-node-down", killed + RECOVERY).await;
    cluster.restart(node).await;
    let back = Instant::now();
    arrives(&mut endpoint, &b, "after-its-return", back + WAIT).await;
}

/// Publishes `payload` as event `event` of device `id` on `broker` (a
/// clean MQTT 3.1.1 session); whether the PUBACK came within [`WAIT`]
/// (a host closes the connection of a device whose event it could not
/// store).
async fn publish_acked(broker: SocketAddr, id: &str, event: &str, payload: &str) -> bool {
    let mut opts = MqttOptions::new(id, broker.ip().to_string(), broker.port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 4);
    client
        .publish(
            format!("devices/{id}/events/{event}"),
            QoS::AtLeastOnce,
            false,
            payload.to_owned(),
        )
        .await
        .unwrap();
    let acked = tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    let _ = client.disconnect().await;
    acked
}

/// Devices `{name}-{d}` spread over `brokers` that publish their events
/// `devices/{name}-{d}/events/{name}` (body `{"seq":"{d}-{n}"}`) one at a
/// time, as firmware does: each is sent again on a new connection until
/// its PUBACK comes, then the next. What
/// was acknowledged is recorded; dropping the returned tasks' handles does
/// not stop them: abort them.
fn publish_until_acked(
    brokers: &[SocketAddr],
    name: &str,
    devices: usize,
    events: usize,
) -> (Acked, Vec<tokio::task::JoinHandle<()>>) {
    let acked: Acked = Acked::default();
    let tasks = (0..devices)
        .map(|d| {
            let broker = brokers[d % brokers.len()];
            let mut opts = MqttOptions::new(
                format!("{name}-{d}"),
                broker.ip().to_string(),
                broker.port(),
            );
            opts.set_keep_alive(Duration::from_secs(30));
            let topic = format!("devices/{name}-{d}/events/{name}");
            let acked = acked.clone();
            tokio::spawn(async move {
                let (client, mut eventloop) = AsyncClient::new(opts, 4);
                let mut cut_off = false;
                for n in 0..events {
                    let body = format!(r#"{{"seq":"{d}-{n}"}}"#);
                    let send = || client.publish(&topic, QoS::AtLeastOnce, false, body.clone());
                    send().await.unwrap();
                    loop {
                        match eventloop.poll().await {
                            Ok(Event::Incoming(Packet::PubAck(_))) => break,
                            // A new clean session: rumqttc dropped what was
                            // in flight, so the device sends it again.
                            Ok(Event::Incoming(Packet::ConnAck(_))) if cut_off => {
                                cut_off = false;
                                send().await.unwrap();
                            }
                            Ok(_) => {}
                            // Refused (a host closes the connection of a
                            // device whose event it could not store) or
                            // cut off: connect again.
                            Err(_) => {
                                cut_off = true;
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                    acked.lock().unwrap().insert((d, n));
                }
                let _ = client.disconnect().await;
                while eventloop.poll().await.is_ok() {}
            })
        })
        .collect();
    (acked, tasks)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_away_when_its_answer_is_published_gets_it_on_return() {
    let mut cluster = NatsCluster::start(3).await;
    let endpoint = Endpoint::start(200, "welcome back").await;
    let (dir_a, dir_b) = (host_dir(), host_dir());
    let a = start_host(&cluster, dir_a.path()).await;
    let b = start_host(&cluster, dir_b.path()).await;
    let definition = serde_json::json!({ "event": "hello", "url": endpoint.url("/hook") });
    let (status, body) = api(&a, "POST", "/v1/webhooks", &definition.to_string()).await;
    assert_eq!(status, 201, "{body}");
    until(&b, "/v1/webhooks", |l| !ids(l).is_empty()).await;

    // The device keeps a session on host A, subscribes, publishes and goes
    // away before the answer can come; either host may deliver it.
    let addr = broker(&a);
    let options = || {
        let mut o = MqttOptions::new("away-1", addr.ip().to_string(), addr.port());
        o.set_clean_session(false);
        o.set_keep_alive(Duration::from_secs(30));
        o
    };
    endpoint.answer(200, "welcome back", Duration::from_millis(500));
    let (client, mut eventloop) = AsyncClient::new(options(), 16);
    client
        .subscribe("devices/away-1/hook-response/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    client
        .publish("devices/away-1/events/hello", QoS::AtLeastOnce, false, "hi")
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(WAIT, eventloop.poll())
            .await
            .unwrap()
            .unwrap()
        {
            Event::Incoming(Packet::PubAck(_)) => break,
            _ => continue,
        }
    }
    client.disconnect().await.unwrap();
    while !matches!(
        eventloop.poll().await,
        Err(_) | Ok(Event::Outgoing(Outgoing::Disconnect))
    ) {}
    drop(eventloop);

    // A host answers while the device is away.
    let deadline = Instant::now() + WAIT;
    while metric_or_zero(&a, "edgehook_delivery_seconds_count").await
        + metric_or_zero(&b, "edgehook_delivery_seconds_count").await
        == 0
    {
        assert!(Instant::now() < deadline, "no host answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (_client, mut eventloop) = AsyncClient::new(options(), 16);
    let deadline = Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, eventloop.poll())
            .await
            .expect("the answer kept for the session came back")
            .unwrap();
        if let Event::Incoming(Packet::Publish(p)) = event {
            assert_eq!(p.topic, "devices/away-1/hook-response/hello/0");
            assert_eq!(&p.payload[..], b"welcome back");
            break;
        }
    }

    // Without NATS a host says it is unhealthy, and why.
    for node in 0..3 {
        cluster.kill(node);
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = http_get(a.api_addr, "/healthz", None).await;
        if status == 503 {
            let text = body.to_string();
            assert!(
                text.contains("NATS") || text.contains("JetStream"),
                "{body}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still healthy without NATS: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_disabled_on_one_host_is_disabled_on_all_until_replaced() {
    let cluster = NatsCluster::start(3).await;
    let endpoint = Endpoint::start(500, "down").await;
    let (dir_a, dir_b) = (host_dir(), host_dir());
    let more = ["--disable-after", "3"];
    let a = start_host_with(&cluster, dir_a.path(), &more).await;
    let b = start_host_with(&cluster, dir_b.path(), &more).await;
    let definition = serde_json::json!({ "event": "fail", "url": endpoint.url("/hook") });
    let (status, body) = api(&a, "POST", "/v1/webhooks", &definition.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    until(&b, "/v1/webhooks", |l| ids(l).contains(&id.as_str())).await;
    let disabled = async |host: &HostProcess| host.metric("edgehook_webhooks_disabled").await == 1;
    assert!(!disabled(&a).await && !disabled(&b).await);

    // Failures in a row on whichever host takes the events.
    let device = crate::support::Device::connect(broker(&b), "flaky").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !disabled(&a).await && !disabled(&b).await {
        assert!(Instant::now() < deadline, "no host disabled the webhook");
        device.publish("fail", "x").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Both hosts have it disabled.
    for host in [&a, &b] {
        let start = Instant::now();
        while !disabled(host).await {
            assert!(start.elapsed() < SPREAD, "disabled on one host only");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The auto-disable is shared as a record in the definitions bucket.
    let jetstream = async_nats::jetstream::new(cluster.hosts_client().await);
    let definitions = jetstream
        .get_key_value("EDGEHOOK_DEFINITIONS")
        .await
        .unwrap();
    let trip = format!("disabled.webhook/{id}");
    assert!(definitions.get(&trip).await.unwrap().is_some());
    // Replacing it on one host enables it on both.
    let (status, body) = api(
        &b,
        "PUT",
        &format!("/v1/webhooks/{id}"),
        &definition.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for host in [&a, &b] {
        let start = Instant::now();
        while disabled(host).await {
            assert!(start.elapsed() < SPREAD, "still disabled after the replace");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The record went with the replace: a host that starts later does not
    // take it up again.
    assert_eq!(definitions.get(&trip).await.unwrap(), None);
}

/// A device on a host's embedded broker logged in with a registry key,
/// as firmware does (client id = device id, MQTT 3.1.1): what it receives.
struct KeyedDevice {
    id: String,
    client: AsyncClient,
    packets: mpsc::UnboundedReceiver<Packet>,
}

impl KeyedDevice {
    /// Logs in at `addr` as user `user` with `key` under client id
    /// `client_id`; the device once the broker accepts it, or the CONNACK
    /// code (or why the connection ended) when it refuses.
    async fn login(
        addr: SocketAddr,
        client_id: &str,
        user: &str,
        key: &str,
    ) -> Result<Self, String> {
        let mut opts = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        opts.set_credentials(user, key);
        opts.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(opts, 16);
        let (tx, mut packets) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(packet)) => {
                        if tx.send(packet).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(_)) => {}
                    // rumqttc makes a refusing CONNACK an error: it is
                    // handed on as the CONNACK it was. Either way the
                    // connection is over: no reconnecting.
                    Err(ConnectionError::ConnectionRefused(code)) => {
                        let _ = tx.send(Packet::ConnAck(rumqttc::ConnAck::new(code, false)));
                        return;
                    }
                    Err(_) => return,
                }
            }
        });
        let connack = tokio::time::timeout(WAIT, packets.recv())
            .await
            .expect("the broker answered the login in time");
        match connack {
            Some(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => Ok(Self {
                id: client_id.to_owned(),
                client,
                packets,
            }),
            Some(Packet::ConnAck(ack)) => Err(format!("{:?}", ack.code)),
            other => Err(format!("no CONNACK: {other:?}")),
        }
    }

    /// Logs in as device `id` with `key` (client id `id`), trying again
    /// until the host knows the device (at most [`SPREAD`]: it may have
    /// been made through another host a moment ago), and subscribes to
    /// `devices/{id}/#`.
    async fn connect(addr: SocketAddr, id: &str, key: &str) -> Self {
        let start = Instant::now();
        let mut device = loop {
            match Self::login(addr, id, id, key).await {
                Ok(device) => break device,
                Err(refused) => assert!(
                    start.elapsed() < SPREAD,
                    "device {id} made on another host could not log in within {SPREAD:?}: {refused}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let filter = format!("devices/{id}/#");
        assert!(device.subscribe(&filter).await, "{filter} refused");
        device
    }

    /// Subscribes to `filter`; whether the broker granted it.
    async fn subscribe(&mut self, filter: &str) -> bool {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        loop {
            if let Packet::SubAck(ack) = self.next_packet().await {
                return !matches!(ack.return_codes[0], SubscribeReasonCode::Failure);
            }
        }
    }

    async fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.to_owned())
            .await
            .unwrap();
    }

    async fn next_packet(&mut self) -> Packet {
        tokio::time::timeout(WAIT, self.packets.recv())
            .await
            .expect("the broker sent something in time")
            .expect("the connection is up")
    }

    /// The next message sent to the device (its own publishes, echoed by
    /// its subscription, skipped): (topic, text).
    async fn next_message(&mut self) -> (String, String) {
        let own = format!("devices/{}/", self.id);
        loop {
            if let Packet::Publish(p) = self.next_packet().await {
                let rest = p.topic.strip_prefix(&own).unwrap_or_default();
                if ["events/", "command-output/", "command-done/"]
                    .iter()
                    .any(|prefix| rest.starts_with(prefix))
                {
                    continue;
                }
                return (p.topic, String::from_utf8_lossy(&p.payload).into_owned());
            }
        }
    }
}

/// Registers device `id` through `host`'s API; its key.
async fn register(host: &HostProcess, id: &str) -> String {
    let (status, body) = api(host, "POST", "/v1/devices", &format!(r#"{{"id":"{id}"}}"#)).await;
    assert_eq!(status, 201, "{body}");
    body["key"].as_str().expect("the device's key").to_owned()
}

/// Two hosts with device logins on `cluster`.
async fn hosts_with_logins(
    cluster: &NatsCluster,
) -> (
    HostProcess,
    HostProcess,
    tempfile::TempDir,
    tempfile::TempDir,
) {
    let (dir_a, dir_b) = (host_dir(), host_dir());
    let more = ["--mqtt-auth", "devices"];
    let a = start_host_with(cluster, dir_a.path(), &more).await;
    let b = start_host_with(cluster, dir_b.path(), &more).await;
    (a, b, dir_a, dir_b)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_made_on_one_host_logs_in_at_another_and_gets_its_answers_there() {
    let cluster = NatsCluster::start(3).await;
    let (a, b, _dir_a, _dir_b) = hosts_with_logins(&cluster).await;
    let endpoint = Endpoint::start(200, "noted").await;
    let definition = serde_json::json!({ "event": "temp", "url": endpoint.url("/hook") });
    let (status, body) = api(&a, "POST", "/v1/webhooks", &definition.to_string()).await;
    assert_eq!(status, 201, "{body}");
    until(&b, "/v1/webhooks", |l| !ids(l).is_empty()).await;
    let key = register(&a, "sensor-1").await;
    let mut device = KeyedDevice::connect(broker(&b), "sensor-1", &key).await;

    // One event after the other, each answered at B, until host A has
    // delivered some of them (its answers crossed to B's broker) and B
    // some (its own).
    let delivered =
        async |host: &HostProcess| metric_or_zero(host, "edgehook_delivery_seconds_count").await;
    let mut sent = 0;
    while delivered(&a).await == 0 || delivered(&b).await == 0 {
        assert!(
            sent < 40,
            "of {sent} events, host A delivered {} and host B {}: the answers of one \
             host to a device on another were never seen",
            delivered(&a).await,
            delivered(&b).await
        );
        device
            .publish("devices/sensor-1/events/temp", &format!("21.{sent}"))
            .await;
        sent += 1;
        assert_eq!(
            device.next_message().await,
            ("devices/sensor-1/hook-sent/temp".to_owned(), String::new())
        );
        assert_eq!(
            device.next_message().await,
            (
                "devices/sensor-1/hook-response/temp/0".to_owned(),
                "noted".to_owned()
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_sent_through_one_host_reaches_a_device_on_another_and_its_answer_comes_back() {
    let cluster = NatsCluster::start(3).await;
    let (a, b, _dir_a, _dir_b) = hosts_with_logins(&cluster).await;
    let key = register(&a, "pump-2").await;
    let mut device = KeyedDevice::connect(broker(&b), "pump-2", &key).await;

    let (status, body) = api(
        &a,
        "POST",
        "/v1/devices/pump-2/commands",
        r#"{"command":"uptime"}"#,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = body["request_id"].as_str().unwrap().to_owned();
    let (topic, text) = device.next_message().await;
    assert_eq!(topic, "devices/pump-2/commands");
    let sent: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"request_id": id, "command": "uptime", "stream_output": false})
    );

    // The device answers at B; A, which sent the command, has the answer.
    device
        .publish(
            &format!("devices/pump-2/command-output/{id}"),
            r#"{"chunk":"up 3 days\n","fd":"stdout"}"#,
        )
        .await;
    device
        .publish(
            &format!("devices/pump-2/command-done/{id}"),
            r#"{"exit_code":0}"#,
        )
        .await;
    let deadline = Instant::now() + WAIT;
    let record = loop {
        let (status, record) = api(&a, "GET", &format!("/v1/commands/{id}"), "").await;
        assert_eq!(status, 200, "{record}");
        if record["state"] == "done" {
            break record;
        }
        assert!(Instant::now() < deadline, "never done on host A: {record}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        record["output"],
        serde_json::json!([{"chunk": "up 3 days\n", "fd": "stdout"}])
    );
    assert_eq!(record["done"], serde_json::json!({"exit_code": 0}));
    assert_eq!(record["device_id"], "pump-2");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_devices_key_client_id_or_topics_are_refused_at_another_host() {
    let cluster = NatsCluster::start(3).await;
    let (a, b, _dir_a, _dir_b) = hosts_with_logins(&cluster).await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    for event in ["open", "marker"] {
        let definition =
            serde_json::json!({ "event": event, "url": endpoint.url(&format!("/{event}")) });
        let (status, body) = api(&a, "POST", "/v1/webhooks", &definition.to_string()).await;
        assert_eq!(status, 201, "{body}");
    }
    until(&b, "/v1/webhooks", |l| ids(l).len() == 2).await;
    let key_1 = register(&a, "valve-1").await;
    let key_2 = register(&a, "valve-2").await;
    // B knows both devices: valve-2 logs in there with its own key.
    let mut valve_2 = KeyedDevice::connect(broker(&b), "valve-2", &key_2).await;
    assert_ne!(key_1, key_2);

    // valve-1's name with valve-2's key: bad user name or password.
    let refused = KeyedDevice::login(broker(&b), "valve-1", "valve-1", &key_2).await;
    assert_eq!(
        refused.err().as_deref(),
        Some("BadUserNamePassword"),
        "valve-1 with valve-2's key at host B"
    );
    // valve-2's own login under valve-1's client id: not authorized.
    let refused = KeyedDevice::login(broker(&b), "valve-1", "valve-2", &key_2).await;
    assert_eq!(
        refused.err().as_deref(),
        Some("NotAuthorized"),
        "valve-2's login under valve-1's client id at host B"
    );
    // Logged in, valve-2 may neither subscribe to valve-1's topics nor
    // publish its events: of what it publishes, only its own marker
    // arrives.
    assert!(
        !valve_2.subscribe("devices/valve-1/#").await,
        "valve-2 subscribed to valve-1's topics at host B"
    );
    valve_2
        .publish("devices/valve-1/events/open", "forged")
        .await;
    valve_2.publish("devices/valve-2/events/marker", "").await;
    let forged = endpoint.before_marker(is_marker).await;
    assert!(
        forged.is_empty(),
        "an event in valve-1's name reached the endpoint: {:?}",
        forged.iter().map(|s| &s.body).collect::<Vec<_>>()
    );
}
