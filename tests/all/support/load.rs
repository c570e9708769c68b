//! Devices publishing under load, for the tests that kill something in
//! the middle: each PUBACK a device receives is recorded, so that a test
//! can demand every acknowledged event at the endpoint.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

/// Which events a broker acknowledged: (device, n).
pub type Acked = Arc<Mutex<BTreeSet<(usize, usize)>>>;

/// Starts `devices` devices `{name}-{d}`, spread over `brokers`, each
/// publishing `events` events `devices/{name}-{d}/events/{name}` with QoS 1
/// and the body `{"seq":"{d}-{n}"}`, recording every PUBACK. Returns the
/// record and the clients (disconnecting them ends their publishing).
pub async fn publish_under_load(
    brokers: &[SocketAddr],
    name: &str,
    devices: usize,
    events: usize,
) -> (Acked, Vec<AsyncClient>) {
    let acked: Acked = Arc::default();
    let mut clients = Vec::new();
    for d in 0..devices {
        let broker = brokers[d % brokers.len()];
        let mut opts = MqttOptions::new(
            format!("{name}-{d}"),
            broker.ip().to_string(),
            broker.port(),
        );
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_inflight(64);
        let (client, mut eventloop) = AsyncClient::new(opts, events + 8);
        let acked = acked.clone();
        tokio::spawn(async move {
            // rumqttc hands out packet ids in publish order: the n-th
            // outgoing publish is event n.
            let (mut sent, mut by_pkid) = (0, HashMap::new());
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        by_pkid.insert(pkid, sent);
                        sent += 1;
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        if let Some(n) = by_pkid.remove(&ack.pkid) {
                            acked.lock().unwrap().insert((d, n));
                        }
                    }
                    Ok(_) => {}
                    // The broker went away (killed with its host, or a
                    // node killed): what it acknowledged stays counted.
                    Err(_) => return,
                }
            }
        });
        for n in 0..events {
            client
                .publish(
                    format!("devices/{name}-{d}/events/{name}"),
                    QoS::AtLeastOnce,
                    false,
                    format!(r#"{{"seq":"{d}-{n}"}}"#),
                )
                .await
                .unwrap();
        }
        clients.push(client);
    }
    (acked, clients)
}
