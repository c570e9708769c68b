//! Replays: an event the delivery history keeps runs again through one of
//! its webhooks — plugin, throttle, retries, answer to the device — as a
//! live event does, under its original id (so its `webhook-id`), its
//! attempts numbered on from the history's.
//!
//! The history is where a replayed event is stored meanwhile, as a
//! cluster's stream is for a claimed one: it is not written to the queue
//! again. A dead letter stays one until the replay's attempt is recorded,
//! so a replay cut short by a stop leaves it to be replayed again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::parts::{Job, Pipeline};
use crate::event::Event;
use crate::hooks::Hook;
use crate::ingress::device_limits::Share;
use crate::queue::Room;
use crate::stores::history::{Filter, HistoryError, MAX_REPLAY, Target};
use crate::stores::{Claim, History};
use crate::webhooks::ids::hook_name;

/// Why a replay could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The history has no attempt of this event (never seen, or past the
    /// retention).
    #[error("event {0} is not in the delivery history")]
    Unknown(String),
    /// The history could not be read.
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// Starts replays from the history into the pipeline.
#[derive(Debug, Clone)]
pub struct Replays {
    pipeline: Arc<Pipeline>,
    history: Arc<dyn History>,
}

/// The history's hold on a replayed event: nothing to give up when its
/// delivery is done (the recorded attempt says so).
#[derive(Debug)]
struct InHistory;

impl Claim for InHistory {
    fn finish(&self) {}
}

impl Replays {
    /// Replays from `history` into `pipeline`.
    pub fn new(pipeline: Arc<Pipeline>, history: Arc<dyn History>) -> Self {
        Self { pipeline, history }
    }

    /// The history replays read.
    pub fn history(&self) -> &Arc<dyn History> {
        &self.history
    }

    /// Replays event `event_id` through every webhook that made an attempt
    /// of it; how many.
    pub async fn event(&self, event_id: &str) -> Result<usize, ReplayError> {
        let attempts = self.history.of_event(event_id.to_owned()).await?;
        let mut targets: Vec<Target> = Vec::new();
        for a in attempts.into_iter().rev() {
            if !targets.iter().any(|t| t.webhook == a.webhook) {
                targets.push(Target {
                    event_id: a.event_id,
                    webhook: a.webhook,
                    attempts: a.number,
                });
            }
        }
        if targets.is_empty() {
            return Err(ReplayError::Unknown(event_id.to_owned()));
        }
        let n = targets.len();
        self.start(targets).await;
        Ok(n)
    }

    /// Replays each (event, webhook) that has an attempt `filter` selects,
    /// judged by its newest attempt, at most [`MAX_REPLAY`]; how many. They
    /// are started in the background, as room in the queue allows.
    pub async fn matching(&self, filter: Filter) -> Result<usize, ReplayError> {
        let targets = self.history.targets(filter, MAX_REPLAY).await?;
        let n = targets.len();
        let this = self.clone();
        self.pipeline
            .deliveries
            .spawn(async move { this.start(targets).await });
        Ok(n)
    }

    /// Sends `event`, made up for the purpose, through webhook `hook` (its
    /// registry name) as a live event goes: its attempts are recorded in
    /// the history under its id. `false` when no such webhook is in force.
    pub async fn test(&self, hook: &str, event: Event) -> bool {
        let hooks = self.pipeline.registry.hooks();
        let Some(hook) = hooks.iter().find(|h| *h.name == *hook) else {
            return false;
        };
        let room = self.pipeline.queue.reserve(event.encoded_len()).await;
        self.start_one(event, hook, room, 0);
        true
    }

    /// Starts the delivery of `event`, kept by the history, through `hook`,
    /// its attempts numbered after `attempts_before`.
    fn start_one(&self, event: Event, hook: &Arc<Hook>, room: Room, attempts_before: u32) {
        let pipeline = &self.pipeline;
        let job = Job {
            group: pipeline.group_of(&event),
            trace: pipeline.trace(&event, SystemTime::now()),
            event,
            ticket: pipeline.queue.claimed_ticket(Box::new(InHistory), 1, room),
            since: Instant::now(),
            attempts_before,
            _share: Share::none(),
        };
        pipeline.start(job, vec![Arc::clone(hook)]);
    }

    /// Starts the delivery of each target, oldest first, each when the
    /// queue has room for it (its bound holds replays too).
    async fn start(&self, mut targets: Vec<Target>) {
        targets.reverse();
        let hooks: Arc<Vec<Arc<Hook>>> = self.pipeline.registry.hooks();
        let by_name: HashMap<&str, &Arc<Hook>> = hooks.iter().map(|h| (&*h.name, h)).collect();
        for target in targets {
            let named = hook_name(&target.webhook);
            let Some(hook) = by_name
                .get(named.as_str())
                .or_else(|| by_name.get(target.webhook.as_str()))
            else {
                tracing::warn!(
                    "replay of event {} skipped: webhook {} is gone",
                    target.event_id,
                    target.webhook
                );
                continue;
            };
            let event = match self.history.event(target.event_id.clone()).await {
                Ok(Some(event)) => event,
                Ok(None) => continue,
                Err(err) => {
                    tracing::warn!("replay of event {}: {err}", target.event_id);
                    continue;
                }
            };
            let pipeline = &self.pipeline;
            let room = tokio::select! {
                room = pipeline.queue.reserve(event.encoded_len()) => room,
                () = pipeline.shutdown.cancelled() => return,
            };
            self.start_one(event, hook, room, target.attempts);
        }
    }
}
