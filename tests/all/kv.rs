//! Plugin state (README "Keeping state"): a plugin built with the guest
//! SDK keeps counters and values in the host's key-value buckets, per
//! device and its own; they survive a kill -9, increments from parallel
//! events are exact, a plugin cannot reach another device's bucket, keys
//! expire, every limit is refused with a message that names it, and an
//! operator reads and clears the plugin's bucket over the API.

use std::path::Path;

use edgehook_tests::STATEFUL;
use serde_json::json;

use crate::support::{
    Device, Endpoint, HostProcess, HostUnderTest, NatsCluster, TOKEN, host_dir, http_get,
    http_request, install, wait_for,
};

const EMBEDDED: &[&str] = &["--mqtt-listen", "127.0.0.1:0"];

/// Installs the `stateful` fixture on `kv/…` events, posting to `url`,
/// with `limits` (TOML lines) and `config` (TOML lines).
fn install_stateful(dir: &Path, url: &str, config: &str, limits: &str) {
    let manifest = format!(
        "event = \"kv/\"\nallowed_hosts = [\"127.0.0.1\"]\n[config]\nurl = \"{url}\"\n{config}\n[limits]\n{limits}\n"
    );
    install(&dir.join("plugins"), "stateful", STATEFUL, &manifest);
}

/// The body of the next request the endpoint gets.
async fn next_body(endpoint: &mut Endpoint) -> String {
    String::from_utf8_lossy(&endpoint.next().await.body).into_owned()
}

/// The device's next `hook-error` for `event`, skipping its other messages.
async fn hook_error(device: &mut Device, id: &str, event: &str) -> String {
    let topic = format!("devices/{id}/hook-error/{event}/0");
    loop {
        let (got, text) = device.next_text().await;
        if got == topic {
            return text;
        }
    }
}

/// Waits until the host has no event left to deliver.
async fn settled(host: &HostProcess) {
    while host.queue_depth().await > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn state_per_device_and_per_plugin_survives_a_kill_9() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let dir = host_dir();
    install_stateful(dir.path(), &endpoint.url("/in"), "", "");
    let host = HostProcess::start(dir.path(), EMBEDDED).await;
    // Devices that do not reconnect: none publishes again to the next host.
    let mut d1 = Device::login(host.mqtt_addr(), "d1", None).await;
    let mut d2 = Device::login(host.mqtt_addr(), "d2", None).await;
    d1.login_outcome().await.unwrap();
    d2.login_outcome().await.unwrap();
    let mut seen = Vec::new();
    for (device, event, data) in [
        (&d1, "kv/count", ""),
        (&d1, "kv/count", ""),
        (&d2, "kv/count", ""),
        (&d1, "kv/set", "k=v1"),
        (&d1, "kv/set-device", "k=d1's"),
    ] {
        device.publish(event, data).await;
        seen.push(next_body(&mut endpoint).await);
    }
    assert_eq!(
        seen,
        [
            "device=1 total=1",
            "device=2 total=2",
            "device=1 total=3",
            "set k",
            "set k"
        ]
    );

    host.kill().await;
    let host = HostProcess::start(dir.path(), EMBEDDED).await;
    // Events whose end was not on disk at the kill are delivered again,
    // and run their plugin again (at least once): let them finish.
    settled(&host).await;
    endpoint.received();
    let d1 = Device::connect(host.mqtt_addr(), "d1").await;
    for (event, data, answer) in [("kv/get", "k", "v1"), ("kv/get-device", "k", "d1's")] {
        d1.publish(event, data).await;
        assert_eq!(next_body(&mut endpoint).await, answer, "{event} {data}");
    }

    // The operator sees the plugin's own bucket, not the devices'.
    let (status, keys) = http_get(host.api_addr, "/v1/plugins/stateful/kv", Some(TOKEN)).await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(keys, json!({"keys": ["k", "total"], "cursor": null}));
    let (status, total) =
        http_get(host.api_addr, "/v1/plugins/stateful/kv/total", Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(total.as_u64().unwrap() >= 3, "{total}");
    let (status, _) = http_get(host.api_addr, "/v1/plugins/stateful/kv", None).await;
    assert_eq!(status, 401, "the buckets are behind the API token");

    let (status, body) = http_request(
        host.api_addr,
        "DELETE",
        "/v1/plugins/stateful/kv/k",
        Some(TOKEN),
        "",
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = http_get(host.api_addr, "/v1/plugins/stateful/kv/k", Some(TOKEN)).await;
    assert_eq!(status, 404);
    let (status, body) = http_request(
        host.api_addr,
        "DELETE",
        "/v1/plugins/stateful/kv",
        Some(TOKEN),
        "",
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, keys) = http_get(host.api_addr, "/v1/plugins/stateful/kv", Some(TOKEN)).await;
    assert_eq!(keys["keys"], json!([]));
    d1.publish("kv/count", "").await;
    let counted = next_body(&mut endpoint).await;
    let (device, total) = counted.split_once(' ').unwrap();
    assert_eq!(total, "total=1", "the plugin's bucket starts again");
    let device: u64 = device.trim_start_matches("device=").parse().unwrap();
    assert!(device >= 3, "the device's bucket is kept: {counted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn increments_from_parallel_events_are_exact() {
    const DEVICES: usize = 4;
    const EACH: usize = 25;
    let mut endpoint = Endpoint::start(200, "ok").await;
    let dir = host_dir();
    install_stateful(dir.path(), &endpoint.url("/in"), "", "");
    let host = HostProcess::start(dir.path(), EMBEDDED).await;
    let mut devices = Vec::new();
    for i in 0..DEVICES {
        devices.push(Device::connect(host.mqtt_addr(), &format!("p{i}")).await);
    }
    let publishing = devices.iter().map(|device| async move {
        for _ in 0..EACH {
            device.publish("kv/count", "").await;
        }
    });
    futures::future::join_all(publishing).await;
    let mut totals = Vec::new();
    for _ in 0..DEVICES * EACH {
        let body = next_body(&mut endpoint).await;
        let total: usize = body.rsplit('=').next().unwrap().parse().unwrap();
        totals.push(total);
    }
    totals.sort_unstable();
    let expected: Vec<usize> = (1..=DEVICES * EACH).collect();
    assert_eq!(totals, expected, "every increment saw a sum of its own");
    let (_, total) = http_get(host.api_addr, "/v1/plugins/stateful/kv/total", Some(TOKEN)).await;
    assert_eq!(total, json!(DEVICES * EACH));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_reaches_only_the_event_devices_bucket() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let dir = host_dir();
    install_stateful(dir.path(), &endpoint.url("/in"), "", "");
    let host = HostProcess::start(dir.path(), EMBEDDED).await;
    let d1 = Device::connect(host.mqtt_addr(), "d1").await;
    let mut d2 = Device::connect(host.mqtt_addr(), "d2").await;
    d1.publish("kv/set-device", "secret=s1").await;
    assert_eq!(next_body(&mut endpoint).await, "set secret");
    d2.publish("kv/get-device", "secret").await;
    assert_eq!(next_body(&mut endpoint).await, "absent");
    d1.publish("kv/get-device", "secret").await;
    assert_eq!(next_body(&mut endpoint).await, "s1");
    // A bucket named for another device, or anything but "" and "device",
    // does not open.
    for name in ["d1", "device/d1", "d1/secret"] {
        d2.publish("kv/open", name).await;
        let error = hook_error(&mut d2, "d2", "kv/open").await;
        assert!(error.contains(&format!("no bucket {name}")), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_limit_is_refused_with_its_name_and_nothing_is_evicted() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let dir = host_dir();
    install_stateful(dir.path(), &endpoint.url("/in"), "", "kv_max_keys = 2");
    let host = HostProcess::start(dir.path(), EMBEDDED).await;
    let mut d = Device::connect(host.mqtt_addr(), "d").await;
    for (event, text) in [
        (
            "kv/big-key",
            "a key of 257 bytes exceeds the limit of 256 bytes",
        ),
        (
            "kv/big-value",
            "a value of 65537 bytes exceeds the limit of 65536 bytes",
        ),
    ] {
        d.publish(event, "").await;
        let error = hook_error(&mut d, "d", event).await;
        assert!(error.contains(text), "{event}: {error}");
    }
    for kv in ["a=1", "b=2", "a=3"] {
        d.publish("kv/set", kv).await;
        next_body(&mut endpoint).await;
    }
    d.publish("kv/set", "c=4").await;
    let error = hook_error(&mut d, "d", "kv/set").await;
    assert!(
        error.contains("the bucket holds 2 keys, the most it may (kv_max_keys)"),
        "{error}"
    );
    let (_, keys) = http_get(host.api_addr, "/v1/plugins/stateful/kv", Some(TOKEN)).await;
    assert_eq!(keys["keys"], json!(["a", "b"]), "nothing was evicted");
    let errors = host
        .metric("edgehook_plugin_kv_errors_total{plugin=\"stateful\"}")
        .await;
    let writes = host
        .metric("edgehook_plugin_kv_operations_total{plugin=\"stateful\",kind=\"write\"}")
        .await;
    assert_eq!(
        (errors, writes),
        (3, 3),
        "refused: 2 sizes and 1 full bucket"
    );
    let size = host
        .metric("edgehook_plugin_kv_keys{plugin=\"stateful\"}")
        .await;
    assert_eq!(size, 2, "the bucket's keys");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_set_with_a_time_to_live_expires() {
    let mut endpoint = Endpoint::start(200, "ok").await;
    let dir = host_dir();
    install_stateful(dir.path(), &endpoint.url("/in"), "ttl_ms = 500", "");
    let host = HostProcess::start(dir.path(), EMBEDDED).await;
    let d = Device::connect(host.mqtt_addr(), "d").await;
    d.publish("kv/once", "t1").await;
    assert_eq!(next_body(&mut endpoint).await, "new t1");
    // Seen again while remembered: no request; the next token's request is
    // the marker that the first was skipped.
    d.publish("kv/once", "t1").await;
    d.publish("kv/once", "t2").await;
    assert_eq!(next_body(&mut endpoint).await, "new t2");
    wait_for(host.api_addr, TOKEN, "/v1/plugins/stateful/kv", |keys| {
        !keys["keys"].as_array().unwrap().contains(&json!("once/t1"))
    })
    .await;
    d.publish("kv/once", "t1").await;
    assert_eq!(next_body(&mut endpoint).await, "new t1");
}

/// Starts a host on `dir` on the cluster, with its embedded broker.
async fn on_cluster(cluster: &NatsCluster, dir: &Path) -> HostProcess {
    let flags = cluster.host_flags();
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend(EMBEDDED);
    HostProcess::start(dir, &args).await
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_of_a_cluster_share_the_buckets_and_count_exactly() {
    const EACH: usize = 20;
    let cluster = NatsCluster::start(3).await;
    let mut endpoint = Endpoint::start(200, "ok").await;
    let (one, two) = (host_dir(), host_dir());
    for dir in [&one, &two] {
        install_stateful(dir.path(), &endpoint.url("/in"), "", "");
    }
    let first = on_cluster(&cluster, one.path()).await;
    let second = on_cluster(&cluster, two.path()).await;
    let a = Device::connect(first.mqtt_addr(), "a").await;
    let b = Device::connect(second.mqtt_addr(), "b").await;

    // Written through one host, read through the other.
    a.publish("kv/set", "shared=from a").await;
    assert_eq!(next_body(&mut endpoint).await, "set shared");
    let (status, value) = http_get(
        second.api_addr,
        "/v1/plugins/stateful/kv/shared",
        Some(TOKEN),
    )
    .await;
    assert_eq!((status, value), (200, json!("from a")));

    // Events of both devices, run by whichever host pulls them.
    let publishing = [&a, &b].map(|device| async move {
        for _ in 0..EACH {
            device.publish("kv/count", "").await;
        }
    });
    futures::future::join_all(publishing).await;
    let mut totals = Vec::new();
    for _ in 0..2 * EACH {
        let body = next_body(&mut endpoint).await;
        totals.push(body.rsplit('=').next().unwrap().parse::<usize>().unwrap());
    }
    totals.sort_unstable();
    assert_eq!(totals, (1..=2 * EACH).collect::<Vec<_>>());
    for host in [&first, &second] {
        let (_, total) =
            http_get(host.api_addr, "/v1/plugins/stateful/kv/total", Some(TOKEN)).await;
        assert_eq!(total, json!(2 * EACH));
        // `shared` and `total`, counted in the shared store.
        let keys = host
            .metric("edgehook_plugin_kv_keys{plugin=\"stateful\"}")
            .await;
        assert_eq!(keys, 2);
    }
}
