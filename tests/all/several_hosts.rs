//! Several hosts on one NATS JetStream cluster (CONTRACT section 11): a
//! real 3-node `nats-server` cluster on loopback, with JetStream and an
//! MQTT listener on every node, and edgehook hosts as separate processes.
//! Definitions made on one host are in force on the others; the hosts
//! share the events; killing a host and then a NATS node under load loses
//! no event a device had its PUBACK for; a device away when its answer is
//! published gets it when it comes back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use tokio::time::Instant;

use crate::support::{
    Endpoint, HostProcess, NatsCluster, Seen, TOKEN, WAIT, edgehook_binary, forward_manifest,
    http_get, http_request, publish_under_load,
};

/// How soon a change made on one host must be in force on the others.
const SPREAD: Duration = Duration::from_secs(2);

/// A host's data, plugins and webhooks directories.
fn host_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["data", "plugins", "webhooks"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    dir
}

/// Starts a host on `dir` that talks to node `node` first, the others
/// after it.
async fn start_host(cluster: &NatsCluster, node: usize, dir: &Path) -> HostProcess {
    start_host_with(cluster, node, dir, &[]).await
}

/// [`start_host`] with more flags.
async fn start_host_with(
    cluster: &NatsCluster,
    node: usize,
    dir: &Path,
    more: &[&str],
) -> HostProcess {
    let first = |mut all: Vec<String>| {
        all.rotate_left(node);
        all.join(",")
    };
    let nats = first(cluster.client_urls());
    let mqtt = first(
        cluster
            .mqtt_addrs()
            .iter()
            .map(|a| format!("mqtt://{a}"))
            .collect(),
    );
    let mut args = vec![
        "--nats-url",
        &nats,
        "--mqtt-url",
        &mqtt,
        "--nats-ack-wait",
        "5s",
    ];
    args.extend_from_slice(more);
    HostProcess::start(dir, &args).await
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

fn ids(list: &serde_json::Value) -> Vec<&str> {
    list.as_array()
        .map(|a| a.iter().filter_map(|v| v["id"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn definitions_registry_and_plugins_reach_every_host() {
    let cluster = NatsCluster::start(3).await;
    let (dir_a, dir_b) = (host_dir(), host_dir());
    let a = start_host(&cluster, 0, dir_a.path()).await;
    let b = start_host(&cluster, 1, dir_b.path()).await;

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
        wait_for(host, "/v1/plugins", running).await;
    }
    let dir_c = host_dir();
    let c = start_host(&cluster, 2, dir_c.path()).await;
    wait_for(&c, "/v1/plugins", running).await;
    // Removed through another host's API: gone from every host.
    plugin(&b, &["remove".as_ref(), "pushed".as_ref()]);
    for host in [&a, &b, &c] {
        wait_for(host, "/v1/plugins", |l| !running(l)).await;
    }
    let (_, list) = http_get(c.api_addr, "/v1/projects/line-1/webhooks", Some(TOKEN)).await;
    assert!(ids(&list).contains(&iottly.as_str()), "{list}");
}

/// Waits (at most [`WAIT`]) until `GET path` satisfies `ok`.
async fn wait_for(host: &HostProcess, path: &str, ok: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = http_get(host.api_addr, path, Some(TOKEN)).await;
        if status == 200 && ok(&body) {
            return;
        }
        assert!(Instant::now() < deadline, "GET {path}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const DEVICES: usize = 6;
const EVENTS_PER_DEVICE: usize = 500;

/// A request's event (`seq` of its body) and its `webhook-id`.
fn seq_of(seen: &Seen) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(&seen.body).expect("JSON body");
    let id = seen.headers["webhook-id"].to_str().unwrap().to_owned();
    (v["seq"].as_str().expect("seq").to_owned(), id)
}

/// Takes what reached the endpoint until `done` holds or `limit` passes.
async fn collect(
    endpoint: &mut Endpoint,
    seen: &mut Vec<(String, String)>,
    limit: Duration,
    done: impl Fn(&[(String, String)]) -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done(seen) && Instant::now() < deadline {
        if let Ok(s) = tokio::time::timeout(Duration::from_millis(100), endpoint.next()).await {
            seen.push(seq_of(&s));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_host_and_a_dead_node_lose_no_acknowledged_event() {
    let mut cluster = NatsCluster::start(3).await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    // Slow enough answers that both hosts hold events when one is killed.
    endpoint.answer(200, "ok", Duration::from_millis(20));
    let (dir_a, dir_b) = (host_dir(), host_dir());
    let a = start_host(&cluster, 0, dir_a.path()).await;
    let b = start_host(&cluster, 1, dir_b.path()).await;
    let definition = serde_json::json!({
        "event": "load",
        "url": endpoint.url("/hook"),
        "json": { "seq": "{{seq}}" },
        "noDefaults": true,
    });
    let (status, body) = api(&a, "POST", "/v1/webhooks", &definition.to_string()).await;
    assert_eq!(status, 201, "{body}");
    until(&b, "/v1/webhooks", |l| !ids(l).is_empty()).await;

    let (acked, clients) =
        publish_under_load(&cluster.mqtt_addrs(), "load", DEVICES, EVENTS_PER_DEVICE).await;
    let mut seen = Vec::new();
    // Both hosts take part before the kill.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        collect(&mut endpoint, &mut seen, Duration::from_millis(200), |_| {
            false
        })
        .await;
        let (took_a, took_b) = (
            a.metric("edgehook_events_total").await,
            b.metric("edgehook_events_total").await,
        );
        if took_a > 20 && took_b > 20 && a.queue_depth().await > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hosts took too few events: {took_a} and {took_b}"
        );
    }
    let held_by_a = a.queue_depth().await;
    a.kill().await;
    let killed_host = Instant::now();
    // The dead host's events go to the survivor after the ack wait (5 s).
    collect(&mut endpoint, &mut seen, Duration::from_secs(6), |_| false).await;
    // Then a NATS node (not the survivor's) dies under load too.
    cluster.kill(2);
    let total = acked.lock().unwrap().len();
    let everything = |seen: &[(String, String)]| {
        let got: BTreeSet<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
        acked
            .lock()
            .unwrap()
            .iter()
            .all(|(d, n)| got.contains(format!("{d}-{n}").as_str()))
    };
    // The devices of the living nodes finish publishing.
    collect(&mut endpoint, &mut seen, Duration::from_secs(90), |seen| {
        acked.lock().unwrap().len() >= total && everything(seen)
    })
    .await;
    for client in &clients {
        let _ = client.disconnect().await;
    }
    let acked = acked.lock().unwrap().clone();
    let got: BTreeSet<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
    let missing: Vec<_> = acked
        .iter()
        .filter(|(d, n)| !got.contains(format!("{d}-{n}").as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events never reached the endpoint, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(10)]
    );
    let mut times: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ids: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (seq, id) in &seen {
        *times.entry(seq).or_default() += 1;
        ids.entry(seq).or_default().insert(id);
    }
    // Whichever host delivers an event, it carries the same webhook-id.
    let renamed: Vec<_> = ids.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        renamed.is_empty(),
        "events delivered under several webhook-ids: {renamed:?}"
    );
    let duplicates: usize = times.values().map(|n| n - 1).sum();
    let most = times.values().copied().max().unwrap_or(0);
    eprintln!(
        "several hosts: {} acknowledged, {} requests, {duplicates} duplicates ({:.1} per 1000), \
         {held_by_a} held by the killed host, all delivered {:?} after its kill",
        acked.len(),
        seen.len(),
        duplicates as f64 * 1000.0 / acked.len() as f64,
        killed_host.elapsed()
    );
    // A duplicate is an event the killed host had sent and not yet
    // acknowledged to JetStream, sent again by the survivor; a node's
    // death can lose an acknowledgement in flight too. Never more than
    // once per death.
    assert!(most <= 3, "one event reached the endpoint {most} times");
    assert!(
        duplicates <= acked.len() / 10,
        "{duplicates} duplicates for {} events",
        acked.len()
    );
    let (status, body) = http_get(b.api_addr, "/healthz", None).await;
    assert_eq!(status, 200, "the survivor is unhealthy: {body}");
    // The consumer answers again once its new leader is elected (NATS
    // takes seconds), and nothing is left in it.
    let deadline = Instant::now() + 3 * WAIT;
    loop {
        let (_, body) = http_get(b.api_addr, "/metrics", Some(TOKEN)).await;
        let text = body.as_str().expect("metrics are text");
        let value = |name| crate::support::metric_in(text, name);
        if value("edgehook_jetstream_up") == 1
            && value("edgehook_jetstream_pending") + value("edgehook_jetstream_ack_pending") == 0
        {
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_away_when_its_answer_is_published_gets_it_on_return() {
    let mut cluster = NatsCluster::start(3).await;
    let endpoint = Endpoint::start(200, "welcome back").await;
    let dir = host_dir();
    let host = start_host(&cluster, 0, dir.path()).await;
    let definition = serde_json::json!({ "event": "hello", "url": endpoint.url("/hook") });
    let (status, body) = api(&host, "POST", "/v1/webhooks", &definition.to_string()).await;
    assert_eq!(status, 201, "{body}");

    // The device keeps a session on node 2, subscribes, publishes and goes
    // away before the answer can come.
    let node = cluster.mqtt_addrs()[1];
    let options = || {
        let mut o = MqttOptions::new("away-1", node.ip().to_string(), node.port());
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

    // The host answers while the device is away.
    let deadline = Instant::now() + WAIT;
    while host.metric("edgehook_delivery_seconds_count").await == 0 {
        assert!(Instant::now() < deadline, "the host never answered");
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

    // Without NATS the host says it is unhealthy, and why.
    for node in 0..3 {
        cluster.kill(node);
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = http_get(host.api_addr, "/healthz", None).await;
        if status == 503 {
            assert!(
                body.to_string().contains("NATS") || body.to_string().contains("MQTT"),
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
    let a = start_host_with(&cluster, 0, dir_a.path(), &more).await;
    let b = start_host_with(&cluster, 1, dir_b.path(), &more).await;
    let definition = serde_json::json!({ "event": "fail", "url": endpoint.url("/hook") });
    let (status, body) = api(&a, "POST", "/v1/webhooks", &definition.to_string()).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    until(&b, "/v1/webhooks", |l| ids(l).contains(&id.as_str())).await;
    let disabled = async |host: &HostProcess| host.metric("edgehook_webhooks_disabled").await == 1;
    assert!(!disabled(&a).await && !disabled(&b).await);

    // Failures in a row on whichever host takes the events.
    let device = crate::support::Device::connect(cluster.mqtt_addrs()[2], "flaky").await;
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
}
