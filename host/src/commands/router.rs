//! Commands to devices: publishes each on `devices/{id}/commands` (QoS 1)
//! and routes what the device answers on `command-output/{request_id}` and
//! `command-done/{request_id}` to whoever asked: a WebSocket connection, or
//! the [`KeptCommands`] records of the HTTP route.
//!
//! A command waits at most the command timeout for each word from its
//! device (every output chunk starts the wait again); then it ends with a
//! failure. Nothing here waits on a reader: a connection whose queue is
//! full is told to close (it is too slow), and the answers of a connection
//! that is gone are dropped with a log line.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::kept::{KeptCommands, Record};
use crate::event::CommandReply;
use crate::ingress::{IngressError, Publisher};
use crate::topic::{CommandReport, DeviceId, RequestId, commands_topic};

/// Commands waiting for their device at once, over all connections.
pub const MAX_PENDING: usize = 10_000;

/// Longest command text, in bytes.
pub const MAX_COMMAND_BYTES: usize = 16 << 10;

/// A command to send.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    /// Where it goes.
    pub device: DeviceId,
    /// The client's id for it; one is generated when absent.
    pub request_id: Option<RequestId>,
    /// What the device should run (the device decides what it accepts).
    pub command: String,
    /// Whether the device should send output as it comes.
    pub stream_output: bool,
}

/// What a device said about a command, for the connection that sent it.
#[derive(Debug, Clone)]
pub enum Update {
    /// A chunk of output, `{"chunk", "fd"}`.
    Output(RequestId, Value),
    /// The end, `{"exit_code"}`.
    Done(RequestId, Value),
    /// The command ended without an answer.
    Failed(RequestId, String),
}

/// A WebSocket connection's side of its commands.
#[derive(Debug, Clone)]
pub struct SocketSink {
    /// The connection's queue of updates.
    pub updates: mpsc::Sender<Update>,
    /// Cancelled when that queue is full: the connection is too slow.
    pub overflow: CancellationToken,
}

/// Who waits for a command's answers.
#[derive(Debug, Clone)]
pub enum Sink {
    /// A WebSocket connection.
    Socket(SocketSink),
    /// The kept records of `GET /v1/commands/{request_id}`.
    Kept,
}

/// Why a command was not sent.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The request id is already waiting for its device.
    #[error("request_id {0:?} is already in use by a command in progress")]
    InUse(RequestId),
    /// [`MAX_PENDING`] commands are in progress.
    #[error("{MAX_PENDING} commands are in progress (the most at once); try again later")]
    Full,
    /// The command text is over [`MAX_COMMAND_BYTES`].
    #[error("command of {0} bytes is over the limit of {MAX_COMMAND_BYTES}")]
    TooLong(usize),
    /// The broker did not take it.
    #[error("{0}")]
    Publish(#[from] IngressError),
}

struct Pending {
    device: DeviceId,
    sink: Sink,
    deadline: Instant,
}

/// The command router; one per host.
pub struct Commands {
    publisher: Publisher,
    timeout: Duration,
    pending: Mutex<HashMap<RequestId, Pending>>,
    kept: Mutex<KeptCommands>,
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commands")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Commands {
    /// A router publishing through `publisher`, giving up on a device
    /// silent for `timeout`.
    pub fn new(publisher: Publisher, timeout: Duration) -> Self {
        Self {
            publisher,
            timeout,
            pending: Mutex::default(),
            kept: Mutex::default(),
        }
    }

    /// Publishes `request` to its device; its answers go to `sink`.
    pub async fn send(
        &self,
        request: CommandRequest,
        sink: Sink,
    ) -> Result<RequestId, CommandError> {
        if request.command.len() > MAX_COMMAND_BYTES {
            return Err(CommandError::TooLong(request.command.len()));
        }
        let id = request.request_id.unwrap_or_else(RequestId::generate);
        {
            let mut pending = self.pending();
            if pending.len() >= MAX_PENDING {
                return Err(CommandError::Full);
            }
            if pending.contains_key(&id) {
                return Err(CommandError::InUse(id));
            }
            if matches!(sink, Sink::Kept) {
                self.kept()
                    .start(id.clone(), request.device.clone(), request.command.clone());
            }
            pending.insert(
                id.clone(),
                Pending {
                    device: request.device.clone(),
                    sink,
                    deadline: Instant::now() + self.timeout,
                },
            );
        }
        let payload = json!({
            "request_id": id,
            "command": request.command,
            "stream_output": request.stream_output,
        })
        .to_string();
        let topic = commands_topic(&request.device);
        if let Err(err) = self.publisher.publish(topic, Bytes::from(payload)).await {
            self.pending().remove(&id);
            self.kept().finish(&id, None, Instant::now());
            return Err(err.into());
        }
        Ok(id)
    }

    /// Hands a device's answer to whoever waits for it.
    pub fn route(&self, reply: CommandReply) {
        let CommandReply {
            device,
            request_id,
            kind,
            payload,
        } = reply;
        let mut pending = self.pending();
        let Some(entry) = pending.get_mut(&request_id) else {
            // Another host's command (replies are not shared), or one that
            // ended already.
            tracing::debug!(%device, %request_id, "answer to no command in progress; dropped");
            return;
        };
        if entry.device != device {
            tracing::warn!(%device, %request_id, owner = %entry.device, "answer from another device than the command's; dropped");
            return;
        }
        entry.deadline = Instant::now() + self.timeout;
        let (update, last) = match kind {
            CommandReport::Output => (Update::Output(request_id.clone(), output(&payload)), false),
            CommandReport::Done => (Update::Done(request_id.clone(), done(&payload)), true),
        };
        let delivered = self.deliver(&entry.sink, update);
        if last || !delivered {
            pending.remove(&request_id);
        }
    }

    /// Ends the commands whose device has been silent too long.
    pub fn expire(&self, now: Instant) {
        let mut pending = self.pending();
        let late: Vec<RequestId> = pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in late {
            let Some(entry) = pending.remove(&id) else {
                continue;
            };
            let message = format!(
                "device {} did not answer command {id} within {}",
                entry.device,
                humantime::format_duration(self.timeout)
            );
            tracing::info!("{message}");
            self.deliver(&entry.sink, Update::Failed(id, message));
        }
        drop(pending);
        self.kept().expire(now);
    }

    /// A command sent through the HTTP route, unless forgotten.
    pub fn kept_record(&self, id: &RequestId) -> Option<Record> {
        self.kept().get(id, Instant::now())
    }

    /// Routes answers from `replies` and expires silent commands until
    /// `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        mut replies: mpsc::Receiver<CommandReply>,
        shutdown: CancellationToken,
    ) {
        // Often enough that a command ends within a tenth of its timeout
        // after it.
        let period = (self.timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                reply = replies.recv() => match reply {
                    Some(reply) => self.route(reply),
                    None => return,
                },
                _ = tick.tick() => self.expire(Instant::now()),
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Gives `update` to `sink`; false when nobody will take more.
    fn deliver(&self, sink: &Sink, update: Update) -> bool {
        match sink {
            Sink::Kept => {
                let mut kept = self.kept();
                match update {
                    Update::Output(id, chunk) => kept.output(&id, chunk),
                    Update::Done(id, done) => kept.finish(&id, Some(done), Instant::now()),
                    Update::Failed(id, _) => kept.finish(&id, None, Instant::now()),
                }
                true
            }
            Sink::Socket(socket) => match socket.updates.try_send(update) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(update)) => {
                    tracing::warn!(request_id = %request_of(&update), "a WebSocket client reads too slowly for its command's output; closing it");
                    socket.overflow.cancel();
                    false
                }
                Err(mpsc::error::TrySendError::Closed(update)) => {
                    tracing::info!(request_id = %request_of(&update), "the connection that sent this command is gone; its output is dropped");
                    false
                }
            },
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, KeptCommands> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn request_of(update: &Update) -> &RequestId {
    match update {
        Update::Output(id, _) | Update::Done(id, _) | Update::Failed(id, _) => id,
    }
}

/// `{"chunk", "fd"}` as the device sent it, or its bytes as stdout text.
fn output(payload: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(payload) {
        Ok(value @ Value::Object(_)) => value,
        _ => json!({ "chunk": String::from_utf8_lossy(payload), "fd": "stdout" }),
    }
}

/// `{"exit_code"}` as the device sent it, or a bare number as the code.
fn done(payload: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(payload) {
        Ok(value @ Value::Object(_)) => value,
        Ok(code @ Value::Number(_)) => json!({ "exit_code": code }),
        _ => json!({ "exit_code": null }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_that_are_not_objects_get_the_contract_shape() {
        assert_eq!(
            output(b"{\"chunk\":\"a\",\"fd\":\"stderr\"}"),
            json!({"chunk": "a", "fd": "stderr"})
        );
        assert_eq!(output(b"plain"), json!({"chunk": "plain", "fd": "stdout"}));
        assert_eq!(done(b"{\"exit_code\":3}"), json!({"exit_code": 3}));
        assert_eq!(done(b"0"), json!({"exit_code": 0}));
        assert_eq!(done(b""), json!({"exit_code": null}));
    }
}
