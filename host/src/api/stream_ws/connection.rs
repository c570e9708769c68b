//! One WebSocket connection: a task that reads the client, the telemetry
//! and its commands' answers, and a writer task that sends frames from a
//! bounded queue.
//!
//! Nothing the connection does waits on the client: frames go into a
//! queue of [`OUTBOUND_FRAMES`]; when it is full, or the connection falls
//! more than the event stream's backlog behind, or its commands' answers
//! pile up, the client is too slow and is closed (`1008`, with the reason)
//! — the pipeline and the other clients never wait for it. A ping goes out
//! every ping interval; no pong within the pong timeout closes the
//! connection (`1008`). Shutdown closes it with `1001`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use futures::stream::SplitSink;
use futures::{SinkExt as _, StreamExt as _};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::StreamHub;
use super::frame::{self, Request};
use crate::commands::{CommandRequest, Sink, SocketSink, Update};
use crate::stream::{Source, StreamEvent};
use crate::topic::DeviceId;

/// Frames waiting to be written to one client.
pub const OUTBOUND_FRAMES: usize = 1024;

/// Subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS: usize = 64;

/// Command answers waiting for one connection's task.
const COMMAND_UPDATES: usize = 256;

/// How long the last frame (the close) and the closing handshake may take.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// One subscription of a connection.
#[derive(Debug)]
struct Subscription {
    id: String,
    device: DeviceId,
    streams: Option<std::collections::HashSet<String>>,
}

/// The connection's state, owned by its task.
struct Connection {
    hub: StreamHub,
    frames: mpsc::Sender<Message>,
    subscriptions: Vec<Subscription>,
    next_subscription: u64,
    /// The event stream, while there is a subscription.
    events: Option<broadcast::Receiver<Arc<StreamEvent>>>,
    commands: SocketSink,
    /// When the unanswered ping must have its pong.
    pong_due: Option<Instant>,
}

/// Why the server ends a connection.
type Close = (u16, String);

/// Serves one upgraded connection until either side ends it.
pub async fn run(socket: WebSocket, hub: StreamHub, _slot: OwnedSemaphorePermit) {
    let (sink, mut incoming) = socket.split();
    let (frames, queued) = mpsc::channel(OUTBOUND_FRAMES);
    let (last_tx, last) = oneshot::channel();
    let writer = tokio::spawn(write(sink, queued, last));
    let (updates_tx, mut updates) = mpsc::channel(COMMAND_UPDATES);
    let mut connection = Connection {
        hub,
        frames,
        subscriptions: Vec::new(),
        next_subscription: 1,
        events: None,
        commands: SocketSink {
            updates: updates_tx,
            overflow: CancellationToken::new(),
        },
        pong_due: None,
    };
    let close = connection.serve(&mut incoming, &mut updates).await;
    drop(connection);
    if let Some((code, reason)) = close {
        if code != close_code::AWAY {
            tracing::info!(code, "closing a WebSocket connection: {reason}");
        }
        let _ = last_tx.send(CloseFrame {
            code,
            reason: reason.into(),
        });
        // The closing handshake: the client answers with its own close
        // (reading also lets its library send what it owes, pongs).
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(message)) = incoming.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    let _ = writer.await;
}

impl Connection {
    /// The connection's loop; the close frame to send, if the server ends it.
    async fn serve(
        &mut self,
        incoming: &mut futures::stream::SplitStream<WebSocket>,
        updates: &mut mpsc::Receiver<Update>,
    ) -> Option<Close> {
        let limits = self.hub.limits;
        let mut ping =
            tokio::time::interval_at(Instant::now() + limits.ping_interval, limits.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown = self.hub.shutdown.clone();
        let overflow = self.commands.overflow.clone();
        loop {
            let pong_due = self.pong_due;
            let result = tokio::select! {
                () = shutdown.cancelled() => {
                    return Some((close_code::AWAY, "the server is shutting down".into()));
                }
                () = overflow.cancelled() => Err((
                    close_code::POLICY,
                    format!("too slow: more than {COMMAND_UPDATES} command answers waiting"),
                )),
                message = incoming.next() => match message {
                    Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
                    Some(Ok(Message::Binary(_))) => {
                        self.send(frame::error(None, "binary messages are not taken; send JSON text"))
                    }
                    Some(Ok(Message::Pong(_))) => {
                        self.pong_due = None;
                        Ok(())
                    }
                    // Pings are answered by the library.
                    Some(Ok(Message::Ping(_))) => Ok(()),
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
                },
                event = next_event(&mut self.events) => match event {
                    Ok(event) => self.on_event(&event),
                    Err(RecvError::Lagged(n)) => Err((
                        close_code::POLICY,
                        format!("too slow: fell {n} events behind the telemetry"),
                    )),
                    Err(RecvError::Closed) => {
                        return Some((close_code::AWAY, "the server is shutting down".into()));
                    }
                },
                Some(update) = updates.recv() => self.send(frame::update(update)),
                _ = ping.tick() => {
                    if self.pong_due.is_none() {
                        self.pong_due = Some(Instant::now() + limits.pong_timeout);
                    }
                    self.queue(Message::Ping(Default::default()))
                }
                () = until(pong_due) => Err((
                    close_code::POLICY,
                    format!("no pong within {}", humantime::format_duration(limits.pong_timeout)),
                )),
            };
            if let Err(close) = result {
                return Some(close);
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), Close> {
        let incoming = frame::parse(text);
        let id = incoming.request_id.as_deref();
        match incoming.request {
            Err(message) => self.send(frame::error(id, &message)),
            Ok(Request::Subscribe { device, streams }) => {
                if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
                    let message = format!(
                        "{MAX_SUBSCRIPTIONS} subscriptions on this connection, the most; unsubscribe first"
                    );
                    return self.send(frame::error(id, &message));
                }
                let subscription_id = format!("sub_{}", self.next_subscription);
                self.next_subscription += 1;
                if self.events.is_none() {
                    self.events = Some(self.hub.events.subscribe());
                }
                self.subscriptions.push(Subscription {
                    id: subscription_id.clone(),
                    device,
                    streams,
                });
                let payload = serde_json::json!({ "subscription_id": subscription_id });
                self.send(frame::frame("subscribed", id, payload))
            }
            Ok(Request::Unsubscribe { subscription_id }) => {
                let before = self.subscriptions.len();
                self.subscriptions.retain(|s| s.id != subscription_id);
                if self.subscriptions.len() == before {
                    let message = format!("no subscription {subscription_id:?} on this connection");
                    return self.send(frame::error(id, &message));
                }
                if self.subscriptions.is_empty() {
                    self.events = None;
                }
                let payload = serde_json::json!({ "subscription_id": subscription_id });
                self.send(frame::frame("unsubscribed", id, payload))
            }
            Ok(Request::Command {
                device,
                command,
                stream_output,
            }) => {
                let request_id = match frame::command_id(id) {
                    Ok(request_id) => request_id,
                    Err(message) => return self.send(frame::error(id, &message)),
                };
                let request = CommandRequest {
                    device,
                    request_id,
                    command,
                    stream_output,
                };
                let sink = Sink::Socket(self.commands.clone());
                match self.hub.commands.send(request, sink).await {
                    Ok(_) => Ok(()),
                    Err(err) => self.send(frame::error(id, &err.to_string())),
                }
            }
        }
    }

    /// A `telemetry` frame for each subscription the event matches.
    fn on_event(&mut self, event: &StreamEvent) -> Result<(), Close> {
        if event.source != Source::Device {
            return Ok(());
        }
        let mut value = None;
        for i in 0..self.subscriptions.len() {
            let subscription = &self.subscriptions[i];
            let wanted = subscription.device == event.device
                && subscription
                    .streams
                    .as_ref()
                    .is_none_or(|s| s.contains(&event.name));
            if wanted {
                let value = value.get_or_insert_with(|| frame::value(event));
                let text = frame::telemetry(&subscription.id, event, value);
                self.send(text)?;
            }
        }
        Ok(())
    }

    fn send(&self, text: String) -> Result<(), Close> {
        self.queue(Message::Text(text.into()))
    }

    /// Queues a frame for the writer; a full queue means a slow client.
    fn queue(&self, message: Message) -> Result<(), Close> {
        match self.frames.try_send(message) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err((
                close_code::POLICY,
                format!("too slow: {OUTBOUND_FRAMES} frames waiting to be sent"),
            )),
        }
    }
}

/// The next event of the stream, or never when there is no subscription.
async fn next_event(
    events: &mut Option<broadcast::Receiver<Arc<StreamEvent>>>,
) -> Result<Arc<StreamEvent>, RecvError> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// Fires at `due`, or never.
async fn until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Writes queued frames until the queue ends or the last frame comes; the
/// last frame (a close) goes out even when the client was not reading the
/// frame in progress, within [`CLOSE_WAIT`].
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut frames: mpsc::Receiver<Message>,
    mut last: oneshot::Receiver<CloseFrame>,
) {
    let close = loop {
        tokio::select! {
            biased;
            close = &mut last => break close.ok(),
            frame = frames.recv() => {
                let Some(frame) = frame else { break None };
                tokio::select! {
                    sent = sink.send(frame) => if sent.is_err() { return },
                    close = &mut last => break close.ok(),
                }
            }
        }
    };
    if let Some(close) = close {
        let _ = tokio::time::timeout(CLOSE_WAIT, sink.send(Message::Close(Some(close)))).await;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, sink.close()).await;
}
