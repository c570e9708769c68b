//! The path of one event: taken from the ingress, matched against the
//! webhooks, run through each matching plugin, sent, and answered.
//!
//! One task per (event, webhook) delivery, bounded by `max_in_flight`: a
//! slow endpoint holds its own task, never the others. A suspended plugin
//! (see [`crate::runtime::PluginStats`]) is not called: its events get a
//! hook-error that says why.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::delivery::{DeliveryError, HttpSender};
use crate::event::Event;
use crate::exchange::{Outcome, Reply};
use crate::ingress::Inbound;
use crate::plugins::{Hook, Registry};
use crate::respond::Responder;
use crate::stream::EventStream;

/// Everything a delivery needs, shared by all of them.
#[derive(Debug)]
pub struct Pipeline {
    registry: Arc<Registry>,
    sender: HttpSender,
    responder: Responder,
    stream: EventStream,
    in_flight: Arc<Semaphore>,
    max_in_flight: u32,
}

impl Pipeline {
    /// A pipeline with at most `max_in_flight` deliveries at once.
    pub fn new(
        registry: Arc<Registry>,
        sender: HttpSender,
        responder: Responder,
        stream: EventStream,
        max_in_flight: usize,
    ) -> Arc<Self> {
        let max_in_flight = u32::try_from(max_in_flight).unwrap_or(u32::MAX);
        Arc::new(Self {
            registry,
            sender,
            responder,
            stream,
            in_flight: Arc::new(Semaphore::new(max_in_flight as usize)),
            max_in_flight,
        })
    }

    /// Takes events until `shutdown` is cancelled or the ingress closes,
    /// then waits for the deliveries in progress.
    pub async fn run(
        self: Arc<Self>,
        mut inbound: mpsc::Receiver<Inbound>,
        shutdown: CancellationToken,
    ) {
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => break,
                next = inbound.recv() => next,
            };
            let Some(Inbound { event, ack }) = next else {
                break;
            };
            ack.ack().await;
            self.stream.device_event(&event);
            self.dispatch(event).await;
        }
        // Every permit back means every delivery finished.
        let _all = self.in_flight.acquire_many(self.max_in_flight).await;
    }

    /// Starts one delivery per matching webhook; waits only for a free slot.
    pub async fn dispatch(self: &Arc<Self>, event: Event) {
        for unloaded in self.registry.unloaded_matching(&event) {
            let message = unloaded.message();
            tracing::warn!(device = %event.device, event = %event.name, "{message}");
            let responder = self.responder.clone();
            let event = event.clone();
            tokio::spawn(async move { responder.replies(&event, &[Reply::error(message)]).await });
        }
        let hooks = self.registry.matching(&event);
        if hooks.is_empty() {
            tracing::debug!(device = %event.device, event = %event.name, "no webhook matches");
            return;
        }
        for hook in hooks {
            let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                return;
            };
            let this = self.clone();
            let event = event.clone();
            tokio::spawn(async move {
                this.deliver(&hook, &event).await;
                drop(permit);
            });
        }
    }

    async fn deliver(&self, hook: &Hook, event: &Event) {
        let called = match hook.plugin.suspended() {
            // A plugin in a crash loop is not called; the device is told why.
            Some(reason) => Err(reason),
            None => hook.plugin.on_event(event).await.map_err(|e| e.to_string()),
        };
        let request = match called {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(why) => {
                tracing::warn!(device = %event.device, event = %event.name, "{why}");
                let reply = Reply::error(why.clone());
                hook.log.record(event, None, Outcome::Failed(why));
                self.responder.replies(event, &[reply]).await;
                return;
            }
        };
        let host = request.url.host_str().unwrap_or_default();
        let outcome = if !hook.allows_host(host) {
            Outcome::Failed(format!(
                "destination {host} refused: not in the allowed_hosts of plugin {}",
                hook.name
            ))
        } else {
            match self.sender.send(&request, &event.id, &hook.send).await {
                Ok(response) => {
                    self.responder.hook_sent(event).await;
                    Outcome::Response(response)
                }
                Err(err @ DeliveryError::Refused(_)) => Outcome::Failed(err.to_string()),
                Err(err) => {
                    self.responder.hook_sent(event).await;
                    Outcome::Failed(err.to_string())
                }
            }
        };
        if let Outcome::Failed(why) = &outcome {
            tracing::info!(device = %event.device, event = %event.name, plugin = %hook.name, "{why}");
        }
        let replies = match hook.plugin.on_response(event, &outcome).await {
            Ok(replies) => replies,
            Err(err) => {
                tracing::warn!(device = %event.device, event = %event.name, "{err}");
                vec![Reply::error(err.to_string())]
            }
        };
        hook.log.record(event, Some(request), outcome);
        self.responder.replies(event, &replies).await;
    }
}
