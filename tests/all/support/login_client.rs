//! An MQTT 3.1.1 client that logs in with a user name and password (a
//! device's key, the operator's token) and never reconnects by itself:
//! every packet, refusal or close is reported, for the tests of who may
//! speak on the embedded broker.

use std::net::SocketAddr;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS,
    SubscribeReasonCode,
};
use tokio::sync::mpsc;

use super::WAIT;

/// What a raw MQTT 3.1.1 client sees.
#[derive(Debug)]
pub enum Heard {
    /// A packet from the broker.
    Packet(Packet),
    /// The broker refused the login or closed the connection.
    Closed(String),
}

/// A client that does not reconnect by itself: what happens is reported.
#[derive(Debug)]
pub struct LoginClient {
    client: AsyncClient,
    seen: mpsc::UnboundedReceiver<Heard>,
}

impl LoginClient {
    pub async fn connect(addr: SocketAddr, id: &str, login: Option<(&str, &str)>) -> Self {
        let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        if let Some((user, password)) = login {
            opts.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(opts, 16);
        let (tx, seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let event = match eventloop.poll().await {
                    Ok(Event::Incoming(packet)) => Heard::Packet(packet),
                    Ok(Event::Outgoing(_)) => continue,
                    Err(err) => Heard::Closed(describe(&err)),
                };
                let closed = matches!(event, Heard::Closed(_));
                if tx.send(event).is_err() || closed {
                    return;
                }
            }
        });
        Self { client, seen }
    }

    pub async fn next(&mut self) -> Heard {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("the broker answered in time")
            .expect("the client task runs")
    }

    /// The login's outcome: `Ok` on CONNACK success, the reason otherwise.
    pub async fn login(&mut self) -> Result<(), String> {
        match self.next().await {
            Heard::Packet(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => Ok(()),
            other => Err(format!("{other:?}")),
        }
    }

    /// Subscribes and returns whether the broker granted it.
    pub async fn subscribe(&mut self, filter: &str) -> bool {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        loop {
            if let Heard::Packet(Packet::SubAck(ack)) = self.next().await {
                return !matches!(ack.return_codes[0], SubscribeReasonCode::Failure);
            }
        }
    }

    pub async fn publish(&self, topic: &str, data: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, data.as_bytes().to_vec())
            .await
            .unwrap();
    }

    /// The next message published to this client: (topic, text).
    pub async fn message(&mut self) -> (String, String) {
        loop {
            match self.next().await {
                Heard::Packet(Packet::Publish(p)) => {
                    return (p.topic, String::from_utf8_lossy(&p.payload).into_owned());
                }
                Heard::Closed(why) => panic!("closed while waiting for a message: {why}"),
                Heard::Packet(_) => {}
            }
        }
    }

    /// Waits for the connection to close; why.
    pub async fn closed(&mut self) -> String {
        loop {
            if let Heard::Closed(why) = self.next().await {
                return why;
            }
        }
    }
}

fn describe(err: &ConnectionError) -> String {
    match err {
        ConnectionError::ConnectionRefused(code) => format!("refused: {code:?}"),
        other => other.to_string(),
    }
}

/// Logs in as a device would: the broker may still be ending an earlier
/// session of this client id, and says "server unavailable" meanwhile;
/// then the device tries again. The first other answer.
pub async fn login_settled(
    addr: SocketAddr,
    id: &str,
    login: (&str, &str),
) -> Result<LoginClient, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut client = LoginClient::connect(addr, id, Some(login)).await;
        match client.login().await {
            Err(why) if why.contains("ServiceUnavailable") => {
                assert!(tokio::time::Instant::now() < deadline, "{why}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(why) => return Err(why),
            Ok(()) => return Ok(client),
        }
    }
}
