//! Running as a service (CONTRACT section 13): SIGTERM stops the intake,
//! lets the deliveries in progress finish for up to `--drain-timeout`,
//! keeps the rest queued for the next start, and exits 0; nothing
//! acknowledged is lost either way. Under systemd (`NOTIFY_SOCKET`) the
//! host says `READY=1` once it serves, pings the watchdog while its
//! pipeline goes round, and says `STOPPING=1` when a stop begins.

use std::time::Duration;

use tokio::time::Instant;

use crate::support::{Device, Endpoint, HostProcess, HostUnderTest, WAIT};

/// A host on `dir` with its broker on a free port and `drain` as its drain
/// timeout, forwarding `temp` events to `endpoint`.
async fn host(dir: &std::path::Path, drain: &str, endpoint: &Endpoint) -> HostProcess {
    let host = HostProcess::start(
        dir,
        &["--mqtt-listen", "127.0.0.1:0", "--drain-timeout", drain],
    )
    .await;
    host.create_webhook(serde_json::json!({"event": "temp", "url": endpoint.url("/hook")}))
        .await;
    host
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_delivery_in_progress_finish_and_exits_zero() {
    let mut endpoint = Endpoint::start(200, "noted").await;
    endpoint.answer(200, "noted", Duration::from_secs(2));
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path(), "30s", &endpoint).await;
    let mut device = Device::connect(host.mqtt_addr.unwrap(), "d1").await;
    device.publish("temp", "21").await;
    endpoint.next().await;

    // The endpoint holds its answer while the host is asked to stop.
    host.terminate();
    let stopped = host.exited().await;
    assert!(stopped.success(), "{stopped}");
    // The delivery was finished before the host went: its answer reached
    // the device.
    let heard = device
        .before_marker("devices/d1/hook-response/temp/0")
        .await;
    assert!(
        heard
            .iter()
            .any(|(topic, _)| topic == "devices/d1/hook-sent/temp"),
        "{heard:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_longer_than_the_drain_is_kept_for_the_next_start() {
    let mut endpoint = Endpoint::start(200, "noted").await;
    endpoint.answer(200, "noted", Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let first = host(dir.path(), "1s", &endpoint).await;
    let device = Device::connect(first.mqtt_addr.unwrap(), "d1").await;
    device.publish("temp", "kept").await;
    endpoint.next().await;

    let asked = Instant::now();
    first.terminate();
    let stopped = first.exited().await;
    assert!(stopped.success(), "{stopped}");
    assert!(
        asked.elapsed() < WAIT,
        "the host kept waiting for a delivery past its drain timeout"
    );
    drop(device);

    // The event was acknowledged to the device and stored: the next start
    // delivers it.
    endpoint.answer(200, "noted", Duration::ZERO);
    let _second = HostProcess::start(dir.path(), &["--mqtt-listen", "127.0.0.1:0"]).await;
    let again = endpoint.next().await;
    assert!(
        String::from_utf8_lossy(&again.body).contains("data=kept"),
        "{:?}",
        again.body
    );
}

/// A host told to notify the socket it is given (`NOTIFY_SOCKET`, a
/// watchdog of 400 ms: pings every 200 ms) with `env` besides; that socket.
async fn notified(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (HostProcess, tokio::net::UnixDatagram) {
    let path = dir.join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&path).unwrap();
    let path = path.display().to_string();
    let mut all = vec![
        ("NOTIFY_SOCKET", path.as_str()),
        ("WATCHDOG_USEC", "400000"),
    ];
    all.extend_from_slice(env);
    let host = HostProcess::start_with_env(dir, &["--mqtt-listen", "127.0.0.1:0"], &all).await;
    (host, socket)
}

/// The next datagram on `socket`, as text.
async fn datagram(socket: &tokio::net::UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(WAIT, socket.recv(&mut buf))
        .await
        .expect("a notification in time")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn systemd_hears_ready_then_watchdog_pings_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let (host, socket) = notified(dir.path(), &[]).await;
    assert_eq!(datagram(&socket).await, "READY=1");
    // An idle host is alive: the pings keep coming.
    for _ in 0..3 {
        assert_eq!(datagram(&socket).await, "WATCHDOG=1");
    }
    host.terminate();
    let mut heard = datagram(&socket).await;
    while heard == "WATCHDOG=1" {
        heard = datagram(&socket).await;
    }
    assert_eq!(heard, "STOPPING=1");
    assert!(host.exited().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watchdog_meant_for_another_process_is_not_pinged() {
    let dir = tempfile::tempdir().unwrap();
    let (host, socket) = notified(dir.path(), &[("WATCHDOG_PID", "1")]).await;
    assert_eq!(datagram(&socket).await, "READY=1");
    host.terminate();
    // The next word after READY is STOPPING: no ping came in between.
    assert_eq!(datagram(&socket).await, "STOPPING=1");
    assert!(host.exited().await.success());
}
