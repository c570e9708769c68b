//! The host's own bounds, as a fleet meets them over real sockets:
//! `queue_max_events` (a full queue holds the PUBACK, refuses nothing and
//! drops nothing) and `max_in_flight` (requests in progress at once, where
//! waiting for a retry or for a busy host holds no slot).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use edgehook::config::Settings;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::support::{Device, Endpoint, HostUnderTest, Scripted, Step, TestHost, WAIT};

/// A real HTTP server on 127.0.0.1 that holds every request until the test
/// lets it go ([`Gate::release`]), then answers `200 done`; it counts the
/// requests in progress and keeps the most it ever had at once.
struct Gate {
    addr: SocketAddr,
    /// (path, body) of each request, as it arrives.
    arrivals: mpsc::UnboundedReceiver<(String, Bytes)>,
    open: Arc<Semaphore>,
    in_progress: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct GateState {
    arrivals: mpsc::UnboundedSender<(String, Bytes)>,
    open: Arc<Semaphore>,
    in_progress: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

/// Counts a request in progress until dropped (also when the client gives
/// up on it).
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn held(State(gate): State<GateState>, uri: Uri, body: Bytes) -> &'static str {
    let now = gate.in_progress.fetch_add(1, Ordering::SeqCst) + 1;
    let _counted = Counted(gate.in_progress.clone());
    gate.peak.fetch_max(now, Ordering::SeqCst);
    let _ = gate.arrivals.send((uri.path().to_owned(), body));
    gate.open.acquire().await.unwrap().forget();
    "done"
}

impl Gate {
    async fn start() -> Self {
        let (tx, arrivals) = mpsc::unbounded_channel();
        let state = GateState {
            arrivals: tx,
            open: Arc::new(Semaphore::new(0)),
            in_progress: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
        };
        let app = axum::Router::new().fallback(held).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            addr,
            arrivals,
            open: state.open,
            in_progress: state.in_progress,
            peak: state.peak,
        }
    }

    /// `http://localhost:PORT{path}`: a host name of its own, throttled
    /// apart from `127.0.0.1`.
    fn localhost_url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.addr.port())
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request to arrive: (path, body as text); panics after
    /// [`WAIT`].
    async fn next(&mut self) -> (String, String) {
        let (path, body) = tokio::time::timeout(WAIT, self.arrivals.recv())
            .await
            .expect("a request reached the gate in time")
            .unwrap();
        (path, String::from_utf8_lossy(&body).into_owned())
    }

    /// Lets `n` held (or future) requests be answered.
    fn release(&self, n: usize) {
        self.open.add_permits(n);
    }

    /// Answers every request from now on at once.
    fn open_wide(&self) {
        self.open.add_permits(Semaphore::MAX_PERMITS / 2);
    }

    fn in_progress(&self) -> usize {
        self.in_progress.load(Ordering::SeqCst)
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// Polls the counter or gauge `name` until it reads `value`, or panics.
async fn wait_for_metric(host: &TestHost, name: &str, value: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = host.metric(name).await;
        if now == value {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stayed at {now}, never {value}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An MQTT 5 client whose PUBACKs are reported with the moment each came:
/// (packet id, reason, when).
async fn acked_client(
    addr: SocketAddr,
    id: &str,
) -> (
    AsyncClient,
    mpsc::UnboundedReceiver<(u16, PubAckReason, Instant)>,
) {
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    let (tx, acks) = mpsc::unbounded_channel();
    let (connected, connack) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut connected = Some(connected);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Some(tx) = connected.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if tx.send((ack.pkid, ack.reason, Instant::now())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(err) => panic!("the publishing client lost its connection: {err}"),
            }
        }
    });
    tokio::time::timeout(WAIT, connack)
        .await
        .expect("connected in time")
        .unwrap();
    (client, acks)
}

async fn next_ack(
    acks: &mut mpsc::UnboundedReceiver<(u16, PubAckReason, Instant)>,
) -> (u16, PubAckReason, Instant) {
    tokio::time::timeout(WAIT, acks.recv())
        .await
        .expect("a PUBACK in time")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_holds_the_puback_until_there_is_room_and_drops_nothing() {
    let mut gate = Gate::start().await;
    let host = TestHost::start(
        &[],
        Settings {
            queue_max_events: Some(2),
            // Each device's share is the whole queue: the queue's own
            // bound is what the third event meets.
            device_max_queued: Some(2),
            ..Settings::default()
        },
    )
    .await;
    host.create_webhook(
        json!({ "event": "job", "url": gate.url("/job"), "body": "{{PARTICLE_DEVICE_ID}}" }),
    )
    .await;
    let (client, mut acks) = acked_client(host.mqtt_addr(), "feeder").await;

    for device in ["q1", "q2", "q3"] {
        client
            .publish(
                format!("devices/{device}/events/job"),
                QoS::AtLeastOnce,
                false,
                "x",
            )
            .await
            .unwrap();
    }
    // Two fill the queue: stored, acknowledged, and held at the endpoint.
    let mut first = [next_ack(&mut acks).await, next_ack(&mut acks).await];
    first.sort_by_key(|a| a.0);
    assert_eq!(
        first.map(|(pkid, reason, _)| (pkid, reason)),
        [(1, PubAckReason::Success), (2, PubAckReason::Success)]
    );
    let mut taken = vec![gate.next().await.1, gate.next().await.1];
    taken.sort();
    assert_eq!(taken, ["q1", "q2"]);
    // The third has reached the host, which waits for room.
    wait_for_metric(&host, "edgehook_events_total", 3).await;
    assert_eq!(host.metric("edgehook_queue_depth").await, 2);
    assert!(
        acks.try_recv().is_err(),
        "the third event was acknowledged while the queue was full"
    );

    // One delivery ends: its room takes the third event.
    let released = Instant::now();
    gate.release(1);
    let (pkid, reason, at) = next_ack(&mut acks).await;
    assert_eq!(
        (pkid, reason),
        (3, PubAckReason::Success),
        "a full queue delays the PUBACK; it refuses nothing"
    );
    assert!(
        at >= released,
        "the PUBACK of the third came before there was room for it"
    );
    assert_eq!(
        gate.next().await.1,
        "q3",
        "the event held back is delivered"
    );
    gate.open_wide();
    wait_for_metric(&host, "edgehook_queue_depth", 0).await;
    assert_eq!(
        host.metric("edgehook_mqtt_refusals_total{reason=\"publish_share\"}")
            .await,
        0
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_more_than_max_in_flight_requests_are_in_progress_at_once() {
    let mut gate = Gate::start().await;
    let host = TestHost::start(
        &[],
        Settings {
            max_in_flight: Some(2),
            ..Settings::default()
        },
    )
    .await;
    host.create_webhook(json!({ "event": "job", "url": gate.url("/job") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    for i in 0..5 {
        device.publish("job", format!("{i}")).await;
    }
    gate.next().await;
    gate.next().await;
    // Every event is stored, and its delivery started with its commit.
    wait_for_metric(&host, "edgehook_queue_depth", 5).await;
    assert_eq!(gate.in_progress(), 2);
    // One request at a time is let go; the next is let go only once the
    // host has said so to the device (its hook-sent) and another request
    // took its place, so that two are held most of the time: had the host
    // sent more than two meanwhile, the gate would have counted them in
    // progress. (Not the answer: `on-response` is a plugin call, which
    // takes a slot too, and may wait for one of the requests held.)
    let mut answers = 0;
    let mut next_sent = async |device: &mut Device| loop {
        match device.next_text().await {
            (topic, _) if topic == "devices/d1/hook-sent/job" => return,
            (topic, text) => {
                assert_eq!(
                    (topic.as_str(), text.as_str()),
                    ("devices/d1/hook-response/job/0", "done")
                );
                answers += 1;
            }
        }
    };
    for _ in 0..3 {
        gate.release(1);
        next_sent(&mut device).await;
        gate.next().await;
        assert_eq!(gate.peak(), 2, "more than max_in_flight requests at once");
    }
    gate.open_wide();
    while answers < 5 {
        let (topic, text) = device.next_text().await;
        if topic == "devices/d1/hook-response/job/0" {
            assert_eq!(text, "done");
            answers += 1;
        }
    }
    assert_eq!(
        gate.peak(),
        2,
        "at most 2 requests at once, and the 2 were used"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_a_retry_or_for_a_busy_host_holds_no_in_flight_slot() {
    let mut flaky = Scripted::start(vec![Step::status(503, "busy")]).await;
    let mut gate = Gate::start().await;
    let mut free = Endpoint::start(200, "free").await;
    let host = TestHost::start(
        &[],
        Settings {
            max_in_flight: Some(2),
            host_concurrency: Some(1),
            // The retry is due long after the test.
            retry_delays: Some("1h".into()),
            ..Settings::default()
        },
    )
    .await;
    host.create_webhook(json!({ "event": "flaky", "url": flaky.url("/flaky") }))
        .await;
    host.create_webhook(json!({ "event": "held", "url": gate.localhost_url("/held"), "body": "{{PARTICLE_EVENT_VALUE}}" }))
        .await;
    host.create_webhook(
        json!({ "event": "free", "url": free.url("/free"), "body": "{{PARTICLE_EVENT_VALUE}}" }),
    )
    .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;

    // One delivery waits for its retry.
    device.publish("flaky", "1").await;
    flaky.next().await;
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/flaky");
    // One request is in progress (a slot), one more waits for its host
    // (`localhost` takes one request at a time).
    device.publish("held", "1").await;
    device.publish("held", "2").await;
    // Either may take the host's one slot first: the two deliveries start
    // together.
    let first = gate.next().await.1;
    let second = match first.as_str() {
        "1" => "2",
        "2" => "1",
        other => panic!("a request for neither event: {other:?}"),
    };
    // The three are stored, their deliveries started.
    wait_for_metric(&host, "edgehook_queue_depth", 3).await;

    // The second slot is free for another destination.
    device.publish("free", "now").await;
    assert_eq!(&free.next().await.body[..], b"now");
    assert_eq!(
        device.next_text().await,
        ("devices/d1/hook-sent/free".into(), String::new())
    );
    assert_eq!(
        device.next_text().await,
        ("devices/d1/hook-response/free/0".into(), "free".into())
    );
    assert_eq!(
        gate.in_progress(),
        1,
        "the second `held` waited for its host"
    );
    gate.open_wide();
    assert_eq!(gate.next().await.1, second);
    host.host.stop().await;
}
