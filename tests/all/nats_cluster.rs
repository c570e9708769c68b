//! The NATS cluster of the tests of several hosts: each node answers on
//! its client URL, and an MQTT message published on one node's listener
//! reaches a subscriber on another's, also with a node killed and after it
//! is back.

use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::support::{NatsCluster, WAIT};

/// The filter of the subscriber, as a host subscribes to the answers.
const FILTER: &str = "devices/+/hook-response/#";
/// Where the publisher publishes.
const TOPIC: &str = "devices/d1/hook-response/x/0";
/// How long the cluster may take to replace the leaders it lost with a
/// node: a Raft follower waits 4 to 9 s for a lost leader before it
/// campaigns, and an election can take a second round.
const FAILOVER: Duration = Duration::from_secs(20);

/// An MQTT 3.1.1 client on one node's listener; the packets it receives.
struct Client {
    client: AsyncClient,
    incoming: mpsc::UnboundedReceiver<Packet>,
}

impl Client {
    /// Connects to `addr` as `id` and waits for the CONNACK.
    async fn connect(addr: SocketAddr, id: &str) -> Self {
        let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        opts.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(opts, 16);
        let (tx, incoming) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(packet)) => {
                        if tx.send(packet).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(_)) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        let mut client = Self { client, incoming };
        client
            .next(Instant::now() + WAIT, |p| {
                matches!(p, Packet::ConnAck(_)).then_some(())
            })
            .await
            .unwrap_or_else(|| panic!("no CONNACK for {id} from {addr}"));
        client
    }

    /// The first packet `pick` makes something of by `deadline`; the
    /// packets before it are dropped.
    async fn next<T>(
        &mut self,
        deadline: Instant,
        pick: impl Fn(&Packet) -> Option<T>,
    ) -> Option<T> {
        loop {
            let packet = tokio::time::timeout_at(deadline, self.incoming.recv())
                .await
                .ok()??;
            if let Some(picked) = pick(&packet) {
                return Some(picked);
            }
        }
    }

    /// Subscribes to [`FILTER`] at QoS 1 and waits for the SUBACK granting it.
    async fn subscribe(&mut self) {
        self.client
            .subscribe(FILTER, QoS::AtLeastOnce)
            .await
            .unwrap();
        let granted = self
            .next(Instant::now() + WAIT, |p| match p {
                Packet::SubAck(ack) => Some(ack.return_codes.clone()),
                _ => None,
            })
            .await
            .expect("a SUBACK in time");
        assert_eq!(granted, [SubscribeReasonCode::Success(QoS::AtLeastOnce)]);
    }

    /// Publishes `payload` on [`TOPIC`] at QoS 1.
    async fn send(&self, payload: &str) {
        self.client
            .publish(TOPIC, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }

    /// Publishes `payload` on [`TOPIC`] at QoS 1 and waits for the PUBACK,
    /// which nats-server sends once JetStream stored the message.
    async fn publish(&mut self, payload: &str) {
        self.send(payload).await;
        self.next(Instant::now() + WAIT, |p| {
            matches!(p, Packet::PubAck(_)).then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("no PUBACK for {payload:?} in time"));
    }

    /// The payload of the first message on [`TOPIC`] that `wanted` accepts,
    /// if one comes by `deadline`.
    async fn message(
        &mut self,
        deadline: Instant,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<String> {
        self.next(deadline, |p| match p {
            Packet::Publish(publish) if publish.topic == TOPIC => {
                let payload = String::from_utf8_lossy(&publish.payload).into_owned();
                wanted(&payload).then_some(payload)
            }
            _ => None,
        })
        .await
    }
}

/// The `INFO` a NATS server greets a client at `url` with.
async fn info(url: &str) -> serde_json::Value {
    let addr = url.strip_prefix("nats://").expect("a nats:// URL");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut lines = BufReader::new(stream).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("INFO in time")
        .unwrap()
        .expect("a line");
    let json = line.strip_prefix("INFO ").expect("an INFO line");
    serde_json::from_str(json).unwrap()
}

/// The last lines node `i` of `cluster` logged, for a failure.
fn tail(cluster: &NatsCluster, i: usize) -> String {
    let log = cluster.log(i);
    log[log.len().saturating_sub(20)..].join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt_messages_cross_the_cluster_with_a_node_killed_and_restarted() {
    let mut cluster = NatsCluster::start(3).await;
    let urls = cluster.client_urls();
    assert_eq!(cluster.nats_url_arg(), urls.join(","));
    for (i, url) in urls.iter().enumerate() {
        let info = info(url).await;
        assert_eq!(info["server_name"], format!("n{}", i + 1), "{info}");
        assert_eq!(info["cluster"], "edgehook-test", "{info}");
        assert_eq!(info["jetstream"], true, "{info}");
    }
    let mqtt = cluster.mqtt_addrs();
    let mqtt_urls: Vec<String> = mqtt.iter().map(|addr| format!("mqtt://{addr}")).collect();
    assert_eq!(cluster.mqtt_url_arg(), mqtt_urls.join(","));

    let mut subscriber = Client::connect(mqtt[0], "sub-on-n1").await;
    subscriber.subscribe().await;
    let mut publisher = Client::connect(mqtt[2], "pub-on-n3").await;
    publisher.publish("across").await;
    let across = subscriber
        .message(Instant::now() + WAIT, |p| p == "across")
        .await;
    assert!(
        across.is_some(),
        "the message from n3 never reached n1; n1 logged:\n{}\nn3 logged:\n{}",
        tail(&cluster, 0),
        tail(&cluster, 2)
    );

    // Without n2, whatever it led (the meta group, an MQTT stream, the
    // subscriber's consumer) needs a new leader. Until it has one a message
    // waits, or gets no PUBACK: nats-server closes a publisher whose
    // message JetStream did not ack within 5 s, and the client, on a clean
    // session, does not send it again. So the publisher goes on until one
    // arrives.
    cluster.kill(1);
    let deadline = Instant::now() + FAILOVER;
    let mut sent = 0;
    loop {
        sent += 1;
        publisher.send(&format!("without-n2-{sent}")).await;
        let next = (Instant::now() + Duration::from_millis(500)).min(deadline);
        let arrived = subscriber
            .message(next, |p| p.starts_with("without-n2-"))
            .await;
        if arrived.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "none of {sent} messages from n3 reached n1 without n2; n1 logged:\n{}\nn3 logged:\n{}",
            tail(&cluster, 0),
            tail(&cluster, 2)
        );
    }

    // Back on its store, n2 carries messages again.
    cluster.restart(1).await;
    let mut republisher = Client::connect(mqtt[1], "pub-on-n2").await;
    republisher.publish("from-n2").await;
    let from_n2 = subscriber
        .message(Instant::now() + WAIT, |p| p == "from-n2")
        .await;
    assert!(
        from_n2.is_some(),
        "the message from the restarted n2 never reached n1; n2 logged:\n{}",
        tail(&cluster, 1)
    );
}
