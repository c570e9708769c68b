//! The client's event loop: connects (and reconnects), subscribes when the
//! broker has no session for the host, hands messages on, and re-opens the
//! session when the pipeline refused events.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::client::{Client, EventLoop, Incoming};
use super::confirm::Confirmations;
use super::messages::{take, take_reply};
use super::nodes::Nodes;
use super::reopen::{self, Refusals};
use crate::event::CommandReply;
use crate::ingress::Inbound;
use crate::topic::{COMMAND_REPLY_FILTERS, is_command_reply_topic};

/// What the event loop hands events to.
pub(super) struct Link {
    pub(super) client: Client,
    /// The host's session on the broker, the origin of every message.
    pub(super) session: Arc<str>,
    /// The events filter.
    pub(super) filter: String,
    pub(super) inbound: mpsc::Sender<Inbound>,
    pub(super) replies: mpsc::Sender<CommandReply>,
    pub(super) max_event_bytes: usize,
    pub(super) confirmations: Arc<Confirmations>,
    /// Events the pipeline refused, which re-open the session.
    pub(super) refusals: Arc<Refusals>,
    /// Why the last connection attempt failed, for the start-up error.
    pub(super) last_error: Arc<std::sync::Mutex<Option<String>>>,
}

/// The client's event loop: connects (and reconnects), subscribes when the
/// broker has no session for us, and turns event publishes into [`Inbound`].
pub(super) async fn run(
    (mut eventloop, mut nodes): (EventLoop, Nodes),
    link: Link,
    connected: Arc<AtomicBool>,
    ready: oneshot::Sender<()>,
) {
    let refusals = link.refusals.clone();
    let mut state = State {
        link,
        connected,
        ready: Some(ready),
        subscribing: 0,
        backoff: Duration::from_millis(100),
        failing: false,
    };
    // Kept across polls: its wait for a refusal is registered once.
    let mut reopen = std::pin::pin!(refusals.due());
    loop {
        let polled = tokio::select! {
            polled = eventloop.poll() => polled,
            () = &mut reopen => {
                say_reopening(&refusals);
                // The poll cut short is made good by dropping the
                // connection: what it was sending goes out again.
                eventloop.reopen();
                reopen.set(refusals.due());
                continue;
            }
        };
        let link = &state.link;
        match polled {
            Ok(Incoming::ConnAck {
                session_present,
                lost,
            }) => state.connected(session_present, lost),
            Ok(Incoming::SubAck) => state.subscribed(),
            Ok(Incoming::Publish(message)) if is_command_reply_topic(&message.topic) => {
                take_reply(message, &link.replies, link.max_event_bytes);
            }
            Ok(Incoming::Publish(message)) => {
                if !take(
                    message,
                    &link.session,
                    &link.refusals,
                    &link.inbound,
                    link.max_event_bytes,
                ) {
                    return;
                }
            }
            Ok(Incoming::PubAck) => link.confirmations.acked(),
            Err(err) => {
                state.failed(&err).await;
                nodes.next(&mut eventloop);
            }
        }
    }
}

/// Says that the session is re-opened for refused events; loud the first
/// time of a run of refusals.
fn say_reopening(refusals: &Refusals) {
    if refusals.reopening() {
        tracing::warn!(
            "re-opening the MQTT session, so that the broker sends again the events the host could not store (again while they are refused, at most every {} s)",
            reopen::MAX.as_secs()
        );
    } else {
        tracing::debug!("re-opening the MQTT session again");
    }
}

/// The event loop's own state across polls.
struct State {
    link: Link,
    /// Whether the broker connection is up, for `/healthz`.
    connected: Arc<AtomicBool>,
    /// Fired once the first connection has its subscriptions.
    ready: Option<oneshot::Sender<()>>,
    /// Subscriptions asked for and not yet acknowledged.
    subscribing: usize,
    /// The wait before the next reconnection.
    backoff: Duration,
    /// Whether the connection is down (said once per outage).
    failing: bool,
}

impl State {
    /// The broker accepted the connection: subscribe when it kept no
    /// session, and to the command answers every time.
    fn connected(&mut self, session_present: bool, lost: usize) {
        if self.failing {
            tracing::info!("connected to the MQTT broker again");
        }
        self.failing = false;
        self.connected.store(true, Ordering::Relaxed);
        if lost > 0 {
            self.link.confirmations.lost(lost as u64);
            tracing::warn!(
                "the MQTT broker started a new session: {lost} message(s) to devices it had not acknowledged are lost"
            );
        }
        self.backoff = Duration::from_millis(100);
        // Ready once the broker has answered every subscription:
        // before, a device's event could find no subscriber.
        let mut asked = 0;
        let client = &self.link.client;
        if !session_present {
            let filter = &self.link.filter;
            match client.subscribe(filter) {
                Ok(()) => asked += 1,
                Err(err) => tracing::error!("cannot subscribe to {filter}: {err}"),
            }
        }
        // Every time: a session kept from a version without commands
        // lacks these, and subscribing again changes nothing.
        for reply_filter in COMMAND_REPLY_FILTERS {
            match client.subscribe(reply_filter) {
                Ok(()) => asked += 1,
                Err(err) => tracing::error!("cannot subscribe to {reply_filter}: {err}"),
            }
        }
        self.subscribing = asked;
        self.ready_when_subscribed();
    }

    /// The broker answered one subscription.
    fn subscribed(&mut self) {
        self.subscribing = self.subscribing.saturating_sub(1);
        self.ready_when_subscribed();
    }

    fn ready_when_subscribed(&mut self) {
        if self.subscribing == 0
            && let Some(tx) = self.ready.take()
        {
            let _ = tx.send(());
        }
    }

    /// The connection failed or dropped: say so once, wait, back off.
    async fn failed(&mut self, err: &str) {
        self.link.refusals.disconnected();
        self.connected.store(false, Ordering::Relaxed);
        *self
            .link
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(err.to_owned());
        if !self.failing {
            tracing::warn!("MQTT broker connection: {err}; reconnecting");
            self.failing = true;
        }
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(Duration::from_secs(10));
    }
}
