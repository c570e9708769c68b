//! The embedded broker end to end: the PUBACK waits for the event's ack, the host's own messages are not events, bad events are refused without a disconnect.

use std::time::Duration;

use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS as ClientQoS};

use super::*;

/// A device on the broker: what it receives, PUBACKs included.
async fn device(addr: SocketAddr, id: &str) -> (AsyncClient, mpsc::UnboundedReceiver<Packet>) {
    let mut opts = MqttOptions::new(id, "127.0.0.1", addr.port());
    opts.set_clean_session(false);
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(MqttEvent::Incoming(packet)) => {
                    if tx.send(packet).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                // Polling again reconnects, as a device would.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    (client, rx)
}

async fn next_matching(
    rx: &mut mpsc::UnboundedReceiver<Packet>,
    want: impl Fn(&Packet) -> bool,
) -> Packet {
    loop {
        let packet = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        if want(&packet) {
            return packet;
        }
    }
}

/// A broker on a free port and one device connected to it.
async fn broker_and_device(
    max_event_bytes: usize,
    id: &str,
) -> (
    Handle,
    mpsc::Receiver<Inbound>,
    AsyncClient,
    mpsc::UnboundedReceiver<Packet>,
) {
    let (tx, inbound) = mpsc::channel(8);
    let listen = "127.0.0.1:0".parse().unwrap();
    let broker = start(
        EmbeddedOptions {
            listen,
            max_event_bytes,
            auth: MqttAuth::Open,
            fleet: Arc::new(Fleet::open(tempfile::tempdir().unwrap().path()).unwrap()),
            operator_token: "not used in open mode".into(),
            replies: mpsc::channel(8).0,
            refusals: Arc::default(),
            limits: DeviceLimits::default(),
        },
        tx,
    )
    .await
    .unwrap();
    let (client, packets) = device(broker.local_addr(), id).await;
    (broker, inbound, client, packets)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_puback_waits_for_the_ack_and_host_messages_are_not_events() {
    let (broker, mut inbound, client, mut packets) = broker_and_device(1024, "d1").await;
    client
        .subscribe("devices/d1/#", ClientQoS::AtLeastOnce)
        .await
        .unwrap();
    next_matching(&mut packets, |p| matches!(p, Packet::SubAck(_))).await;

    client
        .publish(
            "devices/d1/events/a/b",
            ClientQoS::AtLeastOnce,
            false,
            "21.5",
        )
        .await
        .unwrap();
    let taken = tokio::time::timeout(Duration::from_secs(5), inbound.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.event.device.as_str(), "d1");
    assert_eq!(taken.event.name.as_str(), "a/b");
    assert_eq!(&taken.event.data[..], b"21.5");

    let early = tokio::time::timeout(
        Duration::from_millis(300),
        next_matching(&mut packets, |p| matches!(p, Packet::PubAck(_))),
    )
    .await;
    assert!(
        early.is_err(),
        "PUBACK sent before the event was acknowledged"
    );
    taken.ack.ack().await;
    next_matching(&mut packets, |p| matches!(p, Packet::PubAck(_))).await;

    broker
        .publish(
            "devices/d1/hook-response/a/b/0".into(),
            Bytes::from_static(b"ok"),
        )
        .await
        .unwrap();
    let Packet::Publish(reply) = next_matching(
        &mut packets,
        |p| matches!(p, Packet::Publish(p) if p.topic.contains("hook-response")),
    )
    .await
    else {
        unreachable!()
    };
    assert_eq!(&reply.payload[..], b"ok");
    broker
        .publish("devices/d1/events/loop".into(), Bytes::new())
        .await
        .unwrap();
    let none = tokio::time::timeout(Duration::from_millis(300), inbound.recv()).await;
    assert!(
        none.is_err(),
        "the host's own publish came back as an event"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_ack_means_no_puback_and_bad_events_are_refused_without_a_disconnect() {
    let (_broker, mut inbound, client, mut packets) = broker_and_device(8, "d2").await;

    client
        .publish(
            "devices/d2/events/x",
            ClientQoS::AtLeastOnce,
            false,
            vec![0u8; 9],
        )
        .await
        .unwrap();
    client
        .publish("devices//events/x", ClientQoS::AtLeastOnce, false, "1")
        .await
        .unwrap();
    client
        .publish("devices/d2/events/x", ClientQoS::AtLeastOnce, false, "ok")
        .await
        .unwrap();
    let taken = tokio::time::timeout(Duration::from_secs(5), inbound.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &taken.event.data[..],
        b"ok",
        "the refused events never reached the pipeline"
    );
    drop(taken);
    // The connection is closed without a PUBACK, so the device will resend.
    next_matching(&mut packets, |p| matches!(p, Packet::ConnAck(_))).await;
    let resent = tokio::time::timeout(Duration::from_secs(5), inbound.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&resent.event.data[..], b"ok");
    resent.ack.ack().await;
}
