//! What edgehook keeps on the NATS cluster of several hosts (CONTRACT
//! sections 11 and 12), read back from a real 3-node cluster
//! ([`NatsCluster`]) with a NATS client of the hosts' login:
//!
//! - the cluster of the tests has TLS and the hosts' login on: a client
//!   without TLS, or without a login, is refused;
//! - the first host makes the events stream (`edgehook.events.<device>`,
//!   work-queue retention, each device's share kept by the stream), its
//!   shared consumer (the ack wait the host was given), the stream of what
//!   hosts send devices (`edgehook.to-devices.<device>`), the key-value
//!   buckets and the object store, each on all three nodes, so that any
//!   one node may die.

use std::time::Duration;

use async_nats::jetstream;

use crate::support::{HostProcess, NatsCluster};

/// Every stream the hosts make: their own two, and those under the
/// key-value buckets and the object store.
const STREAMS: [&str; 5] = [
    "EDGEHOOK_EVENTS",
    "EDGEHOOK_TO_DEVICES",
    "KV_EDGEHOOK_DEFINITIONS",
    "KV_EDGEHOOK_REGISTRY",
    "OBJ_EDGEHOOK_PLUGINS",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_of_the_tests_takes_only_tls_and_the_hosts_login() {
    let cluster = NatsCluster::start(3).await;
    let url = cluster.client_urls()[0].clone();
    // Plain text: the node demands TLS, and a client that does not trust
    // its CA cannot speak it.
    let plain = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url.as_str())
        .await;
    assert!(plain.is_err(), "a client without the CA connected");
    // TLS without a login.
    let flags = cluster.host_flags();
    let ca = &flags[flags.iter().position(|f| f == "--nats-ca-file").unwrap() + 1];
    let anonymous = async_nats::ConnectOptions::new()
        .add_root_certificates(ca.into())
        .require_tls(true)
        .connect(url.as_str())
        .await
        .unwrap_err();
    assert_eq!(
        anonymous.kind(),
        async_nats::ConnectErrorKind::AuthorizationViolation,
        "{anonymous}"
    );
    // The hosts' login.
    let hosts = cluster.hosts_client().await;
    hosts.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_makes_its_streams_and_stores_on_every_node() {
    let cluster = NatsCluster::start(3).await;
    let dir = tempfile::tempdir().unwrap();
    let flags = cluster.host_flags();
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend([
        "--mqtt-listen",
        "127.0.0.1:0",
        "--nats-ack-wait",
        "7s",
        "--device-max-queued",
        "123",
    ]);
    let host = HostProcess::start(dir.path(), &args).await;
    assert!(
        host.mqtt_addr.is_some(),
        "a host on a cluster runs its embedded broker"
    );

    let js = jetstream::new(cluster.hosts_client().await);
    for name in STREAMS {
        let mut stream = js
            .get_stream(name)
            .await
            .unwrap_or_else(|e| panic!("stream {name}: {e}"));
        let info = stream.info().await.unwrap();
        assert_eq!(info.config.num_replicas, 3, "{name}: {:?}", info.config);
        let replicas = info
            .cluster
            .as_ref()
            .map(|c| c.replicas.len())
            .unwrap_or_default();
        assert_eq!(replicas, 2, "{name} besides its leader: {:?}", info.cluster);
        assert_eq!(
            info.config.storage,
            jetstream::stream::StorageType::File,
            "{name}"
        );
    }

    let mut events = js.get_stream("EDGEHOOK_EVENTS").await.unwrap();
    let config = events.info().await.unwrap().config.clone();
    assert_eq!(config.subjects, ["edgehook.events.*"]);
    assert_eq!(
        config.retention,
        jetstream::stream::RetentionPolicy::WorkQueue
    );
    // Each device's share, as --device-max-queued says; beyond it a
    // device's events are refused, not older ones dropped.
    assert_eq!(config.max_messages_per_subject, 123, "{config:?}");
    assert!(config.discard_new_per_subject, "{config:?}");
    let consumer: jetstream::consumer::PullConsumer = events
        .get_consumer("edgehook")
        .await
        .expect("the shared consumer");
    let consumer = consumer.cached_info().config.clone();
    assert_eq!(consumer.durable_name.as_deref(), Some("edgehook"));
    assert_eq!(
        consumer.ack_policy,
        jetstream::consumer::AckPolicy::Explicit
    );
    assert_eq!(consumer.ack_wait, Duration::from_secs(7));

    let mut to_devices = js.get_stream("EDGEHOOK_TO_DEVICES").await.unwrap();
    let config = to_devices.info().await.unwrap().config.clone();
    assert_eq!(config.subjects, ["edgehook.to-devices.*"]);
}
