//! The external broker's client: a handle ([`Client`]) that asks for
//! publishes, subscriptions and acknowledgements, and the [`EventLoop`]
//! that owns the connection. Each turn of the loop takes every request
//! waiting (letting the tasks that are ready add theirs first) and writes
//! them in one write: the PUBACKs of a commit, and the answers sent
//! meanwhile, cost one system call instead of one each. The packets come
//! from rumqttc's codecs for the version spoken ([`super::v311`],
//! [`super::v5`]); the rest of [`super`], and so the pipeline, never
//! knows which version is in use.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::session::Session;
use super::wire::{In, NETWORK_TIMEOUT, Out, Wire};
use crate::config::MqttVersion;

/// How often the client shows the broker it is alive, and the longest it
/// waits for the answer.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// Most requests written in one turn of the loop.
const MAX_GATHER: usize = 256;

/// What either version's client is set up with.
#[derive(Clone)]
pub struct Connect {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Stable client id, so the persistent session survives restarts.
    pub client_id: String,
    /// A session that ends with the connection (nothing is owed to it).
    pub clean_session: bool,
    /// User name and password from the URL.
    pub credentials: Option<(String, String)>,
    /// TLS with the host's rustls configuration, or plain TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Largest packet taken from the broker: an event of the largest size
    /// allowed, with room for its topic and properties.
    pub max_packet_bytes: usize,
}

impl Connect {
    /// The keep-alive the CONNECT announces, in seconds.
    pub fn keep_alive_secs() -> u16 {
        KEEP_ALIVE.as_secs() as u16
    }
}

/// What the loop is asked to send.
#[derive(Debug)]
enum Request {
    /// A QoS 1 publish.
    Publish { topic: String, payload: Bytes },
    /// The PUBACK for a message received on connection `generation`.
    Ack { generation: u64, pkid: u16 },
    /// A QoS 1 subscription.
    Subscribe(String),
    /// A clean goodbye.
    Disconnect,
}

/// A client handle, cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    requests: mpsc::Sender<Request>,
}

/// What the event loop saw.
#[derive(Debug)]
pub enum Incoming {
    /// The broker accepted the connection.
    ConnAck {
        /// Whether the broker kept our session (and so our subscription).
        session_present: bool,
        /// The publishes a new session lost (never acknowledged).
        lost: usize,
    },
    /// A message on a subscribed topic.
    Publish(Message),
    /// The broker acknowledged one of the host's publishes.
    PubAck,
    /// The broker answered one of the host's subscriptions.
    SubAck,
}

/// A message from the broker, and the acknowledgement owed for it.
#[derive(Debug)]
pub struct Message {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
    /// Its packet id (QoS 1) and DUP flag: the broker resends what the
    /// host's session did not acknowledge with the same id and DUP=1.
    pub packet: Option<(u16, bool)>,
    /// The PUBACK to send once it is safe.
    pub ack: PendingAck,
}

/// The acknowledgement owed for one message (nothing for QoS 0).
#[derive(Debug)]
pub struct PendingAck {
    requests: mpsc::Sender<Request>,
    generation: u64,
    pkid: Option<u16>,
}

impl PendingAck {
    /// Sends the PUBACK, on the connection the message came on: after a
    /// reconnection the broker sends the message again, to be
    /// acknowledged again.
    pub async fn ack(self) {
        let Some(pkid) = self.pkid else { return };
        let ack = Request::Ack {
            generation: self.generation,
            pkid,
        };
        if self.requests.send(ack).await.is_err() {
            tracing::warn!("cannot acknowledge an event to the broker: the client has stopped");
        }
    }
}

impl Client {
    /// Publishes with QoS 1, not retained.
    pub async fn publish(&self, topic: String, payload: Bytes) -> Result<(), String> {
        self.requests
            .send(Request::Publish { topic, payload })
            .await
            .map_err(|_| "the MQTT client has stopped".to_owned())
    }

    /// Asks for a QoS 1 subscription to `filter`, without waiting.
    pub fn subscribe(&self, filter: &str) -> Result<(), String> {
        self.requests
            .try_send(Request::Subscribe(filter.to_owned()))
            .map_err(|e| e.to_string())
    }

    /// Sends a DISCONNECT.
    pub async fn disconnect(&self) {
        // Gone already is as good as disconnected.
        let _ = self.requests.send(Request::Disconnect).await;
    }
}

/// The event loop that owns the connection.
pub struct EventLoop {
    version: MqttVersion,
    target: Connect,
    requests: mpsc::Receiver<Request>,
    /// For the acknowledgements handed out with messages.
    sender: mpsc::Sender<Request>,
    wire: Option<Wire>,
    session: Session,
    /// What the broker sent, not handed on yet.
    incoming: VecDeque<Incoming>,
    /// Counts connections: an acknowledgement is for the one its message
    /// came on.
    generation: u64,
    /// A publish taken while the broker's window was full.
    held: Option<(String, Bytes)>,
    next_ping: Instant,
    awaiting_pong: bool,
}

/// What woke a turn of the loop.
enum Woken {
    Read(Result<(), String>),
    Request(Option<Request>),
    Ping,
}

impl EventLoop {
    /// A client and its event loop for `target`, not connected yet; the
    /// client's requests wait in a channel of `capacity`.
    pub fn new(version: MqttVersion, target: Connect, capacity: usize) -> (Client, Self) {
        let (sender, requests) = mpsc::channel(capacity);
        let client = Client {
            requests: sender.clone(),
        };
        let eventloop = Self {
            version,
            target,
            requests,
            sender,
            wire: None,
            session: Session::default(),
            incoming: VecDeque::new(),
            generation: 0,
            held: None,
            next_ping: Instant::now(),
            awaiting_pong: false,
        };
        (client, eventloop)
    }

    /// The next thing that happened on the connection; an error means the
    /// connection is down (the next poll reconnects).
    pub async fn poll(&mut self) -> Result<Incoming, String> {
        loop {
            if let Some(incoming) = self.incoming.pop_front() {
                return Ok(incoming);
            }
            let result = match self.wire {
                None => self.connect().await,
                Some(_) => self.turn().await,
            };
            if let Err(err) = result {
                self.reopen();
                return Err(err);
            }
        }
    }

    /// Connects to `c` from the next connection on; what the session owes
    /// (unacknowledged publishes, subscriptions asked for) carries over.
    pub fn point_at(&mut self, c: &Connect) {
        self.target = c.clone();
    }

    /// Drops the connection, keeping the session: the next poll connects
    /// again, the broker sends what the host has not acknowledged, and the
    /// host's own unacknowledged publishes go out again.
    pub fn reopen(&mut self) {
        self.wire = None;
        self.incoming.clear();
    }

    /// Connects, sends again what a kept session owes, and has the
    /// CONNACK handed on.
    async fn connect(&mut self) -> Result<(), String> {
        let target = &self.target;
        let (mut wire, connack) =
            tokio::time::timeout(NETWORK_TIMEOUT, Wire::open(target, self.version))
                .await
                .map_err(|_| {
                    format!(
                        "no CONNACK from {}:{} within {} s",
                        target.host,
                        target.port,
                        NETWORK_TIMEOUT.as_secs()
                    )
                })??;
        if let Some(why) = connack.refused {
            return Err(format!("the broker refused the connection: {why}"));
        }
        self.generation += 1;
        let lost = self
            .session
            .resume(connack.session_present, connack.receive_maximum);
        for message in self.session.unacked() {
            wire.push(&Out::Publish { message, dup: true })?;
        }
        self.wire = Some(wire);
        // A new session has room for what waited for the old one's window.
        if let Some((topic, payload)) = self.held.take() {
            self.publish(topic, payload)?;
        }
        self.wire.as_mut().expect("just connected").flush().await?;
        self.next_ping = Instant::now() + KEEP_ALIVE;
        self.awaiting_pong = false;
        self.incoming.push_back(Incoming::ConnAck {
            session_present: connack.session_present,
            lost,
        });
        Ok(())
    }

    /// One turn: reads what came, or takes the requests waiting, or pings;
    /// then writes what that gathered.
    async fn turn(&mut self) -> Result<(), String> {
        let wire = self.wire.as_mut().expect("connected");
        let open = self.held.is_none();
        let woken = tokio::select! {
            read = wire.fill() => Woken::Read(read),
            request = self.requests.recv(), if open => Woken::Request(request),
            () = tokio::time::sleep_until(self.next_ping) => Woken::Ping,
        };
        match woken {
            Woken::Read(read) => {
                read?;
                self.read_packets()?;
            }
            Woken::Request(request) => {
                let request = request.expect("the loop holds a sender");
                self.send(request)?;
                // The tasks woken with this one (the deliveries of a
                // commit) add their requests before the write.
                tokio::task::yield_now().await;
                self.gather()?;
            }
            Woken::Ping => {
                if self.awaiting_pong {
                    return Err(format!(
                        "no PINGRESP from the broker within {} s",
                        KEEP_ALIVE.as_secs()
                    ));
                }
                self.push(&Out::PingReq)?;
                self.awaiting_pong = true;
                self.next_ping += KEEP_ALIVE;
            }
        }
        self.wire.as_mut().expect("connected").flush().await
    }

    fn push(&mut self, packet: &Out<'_>) -> Result<(), String> {
        self.wire.as_mut().expect("connected").push(packet)
    }

    /// Takes the requests waiting, as many as the broker's window allows.
    fn gather(&mut self) -> Result<(), String> {
        for _ in 0..MAX_GATHER {
            if self.held.is_some() {
                break;
            }
            match self.requests.try_recv() {
                Ok(request) => self.send(request)?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Adds `request` to the next write.
    fn send(&mut self, request: Request) -> Result<(), String> {
        match request {
            Request::Publish { topic, payload } => self.publish(topic, payload),
            Request::Ack { generation, pkid } if generation == self.generation => {
                self.push(&Out::PubAck(pkid))
            }
            // The broker sends that message again on this connection.
            Request::Ack { .. } => Ok(()),
            Request::Subscribe(filter) => {
                let pkid = self.session.subscribe();
                self.push(&Out::Subscribe {
                    pkid,
                    filter: &filter,
                })
            }
            Request::Disconnect => self.push(&Out::Disconnect),
        }
    }

    /// Sends a publish, or holds it while the broker's window is full.
    fn publish(&mut self, topic: String, payload: Bytes) -> Result<(), String> {
        if !self.session.has_room() {
            self.held = Some((topic, payload));
            return Ok(());
        }
        let message = self.session.publish(topic, payload);
        self.wire.as_mut().expect("connected").push(&Out::Publish {
            message,
            dup: false,
        })
    }

    /// Handles every whole packet read.
    fn read_packets(&mut self) -> Result<(), String> {
        while let Some(packet) = self.wire.as_mut().expect("connected").take()? {
            match packet {
                In::Publish {
                    topic,
                    payload,
                    pkid,
                    dup,
                } => self.incoming.push_back(Incoming::Publish(Message {
                    topic,
                    payload,
                    packet: pkid.map(|id| (id, dup)),
                    ack: PendingAck {
                        requests: self.sender.clone(),
                        generation: self.generation,
                        pkid,
                    },
                })),
                In::PubAck { pkid, refused } => {
                    if let Some(why) = refused {
                        tracing::warn!("the MQTT broker refused a message of the host's: {why}");
                    }
                    if self.session.acked(pkid) {
                        self.incoming.push_back(Incoming::PubAck);
                        if let Some((topic, payload)) = self.held.take() {
                            self.publish(topic, payload)?;
                        }
                    }
                }
                In::SubAck { pkid, granted } => {
                    self.session.subacked(pkid);
                    if !granted {
                        tracing::error!("the MQTT broker refused one of the host's subscriptions");
                    }
                    self.incoming.push_back(Incoming::SubAck);
                }
                In::PingResp => self.awaiting_pong = false,
                In::ConnAck(_) => return Err("the broker sent a second CONNACK".to_owned()),
                In::Unexpected(what) => return Err(format!("the broker sent {what}")),
            }
        }
        Ok(())
    }
}
