//! Recording every attempt in the delivery history: deliveries hand their
//! attempts to a [`Recorder`] (a bounded channel, never waited on), and
//! one writer task gathers them for [`GATHER`] (or up to [`BATCH`]) and
//! appends them in one write, so the history costs one `fsync` a second
//! at light load, a few under load, and no delivery waits for the disk.
//! An attempt that finds the channel full is counted and not kept: the
//! history must never hold up a delivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::DeliveryPolicy;
use crate::event::Event;
use crate::exchange::{HookRequest, HookResponse};
use crate::stores::History;
use crate::stores::history::{Attempt, Outcome, Received, SentRequest};

/// Attempts waiting for the writer, at most.
const WAITING: usize = 16_384;

/// Attempts one write takes, at most.
const BATCH: usize = 4_096;

/// How long the writer gathers attempts after the first of a write: a
/// write (and its `fsync`) costs about as much for one attempt as for a
/// thousand, and each delays the queue's commits running beside it (the
/// same disk), so one a second touches a tenth of the events that ten
/// would. What a crash can lose of the history is what was gathered.
const GATHER: Duration = Duration::from_secs(1);

/// How often the writer lets go of what is past the retention when no
/// attempt comes.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// One attempt for the writer, with its event when the history may not
/// have it yet.
#[derive(Debug)]
struct Item {
    event: Option<Event>,
    attempt: Attempt,
}

/// What the history's writer did, for `/metrics`.
#[derive(Debug, Default)]
pub struct RecordStats {
    /// Attempts not kept: the writer was too far behind.
    pub dropped: AtomicU64,
    /// Writes that failed (their attempts are not kept).
    pub failures: AtomicU64,
}

/// Where deliveries hand their attempts.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Item>,
    stats: Arc<RecordStats>,
    /// Its `history.max_bytes` of 0 keeps no history at all.
    policy: Arc<ArcSwap<DeliveryPolicy>>,
}

/// An attempt as a delivery knows it, before its outcome is decided.
#[derive(Debug, Clone, Copy)]
pub(super) struct Made<'a> {
    /// Its number: 1 for an event's first attempt through the webhook (a
    /// delivery numbers its attempts when it records them).
    pub number: u32,
    /// When it started.
    pub at: SystemTime,
    /// How long it took.
    pub took: Duration,
    /// What was sent, if anything was.
    pub request: Option<&'a HookRequest>,
}

impl Made<'_> {
    /// An attempt that sent nothing, now, not numbered yet.
    pub fn unsent() -> Self {
        Made {
            number: 0,
            at: SystemTime::now(),
            took: Duration::ZERO,
            request: None,
        }
    }
}

impl Recorder {
    /// A recorder and its writer, which appends to `history` with the
    /// retention of `policy` until `done` (the pipeline has ended: no
    /// delivery records anything any more), and then what is left.
    pub fn start(
        history: Arc<dyn History>,
        policy: Arc<ArcSwap<DeliveryPolicy>>,
        done: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::channel(WAITING);
        let stats = Arc::new(RecordStats::default());
        let writer = Writer {
            history,
            policy: policy.clone(),
            rx,
            stats: stats.clone(),
        }
        .run(done);
        (Self { tx, stats, policy }, writer)
    }

    /// The writer's counters.
    pub fn stats(&self) -> &Arc<RecordStats> {
        &self.stats
    }

    /// Records an attempt of `webhook` for `event`: `made`, and the
    /// response or the error, as it ended. `first` hands the event along
    /// (the first attempt a delivery records).
    pub(super) fn attempt(
        &self,
        webhook: &str,
        event: &Event,
        first: bool,
        made: Made<'_>,
        answer: Result<&HookResponse, &str>,
        outcome: Outcome,
    ) {
        if self.policy.load().history.max_bytes == 0 {
            return;
        }
        let (response, error) = match answer {
            Ok(r) => (
                Some(Received::masked(r)),
                (outcome != Outcome::Delivered).then(|| format!("status {}", r.status)),
            ),
            Err(why) => (None, Some(why.to_owned())),
        };
        let attempt = Attempt {
            event_id: event.id.clone(),
            webhook: webhook
                .strip_prefix("webhook/")
                .unwrap_or(webhook)
                .to_owned(),
            device: event.device.as_str().to_owned(),
            event: event.name.as_str().to_owned(),
            number: made.number,
            at: made.at,
            request: made.request.map(SentRequest::masked),
            response,
            error,
            duration: made.took,
            outcome,
        };
        let item = Item {
            event: first.then(|| event.clone()),
            attempt,
        };
        if self.tx.try_send(item).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The writer's side of the channel.
struct Writer {
    history: Arc<dyn History>,
    policy: Arc<ArcSwap<DeliveryPolicy>>,
    rx: mpsc::Receiver<Item>,
    stats: Arc<RecordStats>,
}

impl Writer {
    /// Appends what came meanwhile, and prunes now and then, until `done`;
    /// then appends what is left.
    async fn run(mut self, done: CancellationToken) {
        let mut items = Vec::with_capacity(BATCH);
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                n = self.rx.recv_many(&mut items, BATCH) => if n == 0 {
                    return;
                } else {
                    self.gather(&mut items, &done).await;
                },
                _ = prune.tick() => {
                    self.retain();
                    if let Err(err) = self.history.prune().await {
                        tracing::warn!("{err}");
                    }
                    continue;
                }
                () = done.cancelled() => {
                    while let Ok(item) = self.rx.try_recv() {
                        items.push(item);
                    }
                    self.append(&mut items).await;
                    return;
                }
            }
            self.append(&mut items).await;
        }
    }

    /// Adds to `items` what comes within [`GATHER`], up to [`BATCH`].
    async fn gather(&mut self, items: &mut Vec<Item>, done: &CancellationToken) {
        let until = tokio::time::Instant::now() + GATHER;
        while items.len() < BATCH {
            tokio::select! {
                n = self.rx.recv_many(items, BATCH - items.len()) => if n == 0 {
                    return;
                },
                () = tokio::time::sleep_until(until) => return,
                () = done.cancelled() => return,
            }
        }
    }

    /// Hands the history the retention in force now (a reload may have
    /// changed it while the writer waited).
    fn retain(&self) {
        self.history.retain(self.policy.load().history);
    }

    /// Appends `items` in one write, leaving it empty.
    async fn append(&self, items: &mut Vec<Item>) {
        if items.is_empty() {
            return;
        }
        let mut events = Vec::new();
        let attempts = items
            .drain(..)
            .map(|item| {
                events.extend(item.event);
                item.attempt
            })
            .collect::<Vec<_>>();
        let n = attempts.len();
        self.retain();
        if let Err(err) = self.history.append(events, attempts).await {
            self.stats.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("{n} attempt(s) not kept: {err}");
        }
    }
}
