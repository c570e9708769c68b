//! The path of one event: taken from the ingress, matched against the
//! webhooks, stored in the durable queue, acknowledged to the broker, and
//! delivered by each matching webhook (see [`deliver`]).
//!
//! The intake is a group commit: it takes every event waiting on the
//! ingress channel (up to [`MAX_BATCH`]), writes them with the deletions
//! of finished events in one transaction, and only then acknowledges them.
//! Deletions alone wait up to [`REMOVAL_DELAY`] for events to ride with:
//! at a steady rate, every commit is one that a new event needed anyway.
//! When events come faster than commits, a commit waits up to
//! [`COMMIT_WAIT`] for more of them; a lone event is committed at once.
//! An event no webhook matches is acknowledged at once and never stored.
//! When the queue is full the intake waits, and the broker holds the rest.
//!
//! The intake also owns the [`Origins`] of stored events: a resent message
//! (DUP, a known session and packet id, the same content) is acknowledged
//! — once the event it repeats is stored — and neither counted, streamed
//! nor delivered again. Its origin is written with the event, in the same
//! transaction: no extra commit, and no lock (one task owns it).
//!
//! One task per (event, webhook) delivery. Only plugin calls and requests
//! count against `max_in_flight`; waiting for a host (its concurrency, its
//! rate, a `Retry-After`) or for a retry holds no slot, so a slow or
//! failing endpoint never holds up the others.

mod deliver;
pub mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::delivery::HttpSender;
use crate::event::Event;
use crate::exchange::Reply;
use crate::fleet::{Fleet, GroupId};
use crate::hooks::{Hook, Registry};
use crate::ingress::device_limits::Share;
use crate::ingress::{Ack, Inbound};
use crate::origin::Sent;
use crate::queue::{Change, Origins, Pending, Queue, Room, Ticket, Unwritten, encode, encoded_len};
use crate::respond::Responder;
use crate::stores::Flags;
use crate::stream::EventStream;
use crate::throttle::{RetrySchedule, Throttle};
pub use stats::DeliveryStats;

/// Most events written in one commit.
pub const MAX_BATCH: usize = 1024;

/// Longest a commit waits for more events when they come faster than
/// commits (events were already waiting when the last one ended). At
/// 1,000 events/s a commit then carries about twice as many events, and
/// an `fsync` costs about half as much per event; a lone event never waits.
pub const COMMIT_WAIT: Duration = Duration::from_millis(1);

/// Longest the removal of a finished event waits to ride on the commit of
/// new events before it is written on its own. Under a steady flow of
/// events it never waits this long, and removals cost no commit of their
/// own; a crash forgets at most this much of them, whose events are then
/// delivered again (never lost).
pub const REMOVAL_DELAY: Duration = Duration::from_secs(2);

/// What happens to deliveries that fail.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Delays before each retry of a failed request.
    pub retry: RetrySchedule,
    /// Delays before each new attempt of a request skipped because its
    /// host was sleeping.
    pub skip_retry: RetrySchedule,
    /// Events older than this are dropped instead of tried again.
    pub ttl: Duration,
    /// Failed deliveries in a row after which a webhook is disabled (0: never).
    pub disable_after: u32,
}

/// Everything a delivery needs, shared by all of them.
#[derive(Debug)]
pub struct Pipeline {
    registry: Arc<Registry>,
    fleet: Arc<Fleet>,
    sender: HttpSender,
    responder: Responder,
    stream: EventStream,
    queue: Arc<Queue>,
    throttle: Throttle,
    policy: Arc<ArcSwap<DeliveryPolicy>>,
    stats: Arc<DeliveryStats>,
    in_flight: Arc<Semaphore>,
    /// Every delivery task, waited for at shutdown.
    deliveries: tokio_util::task::TaskTracker,
    flags: Arc<dyn Flags>,
    liveness: crate::service::Liveness,
    shutdown: CancellationToken,
    /// Debug builds only: the event name of `EDGEHOOK_TEST_CRASH_AFTER_COMMIT`,
    /// after whose commit the process aborts before any ack, as a crash
    /// between the queue's commit and the PUBACK would (tests only).
    #[cfg(debug_assertions)]
    crash_after_commit: Option<String>,
}

/// The parts a [`Pipeline`] is made of.
#[derive(Debug)]
pub struct Parts {
    /// The webhooks in force.
    pub registry: Arc<Registry>,
    /// The device registry: the group of each event's device.
    pub fleet: Arc<Fleet>,
    /// The HTTP client.
    pub sender: HttpSender,
    /// Publishes device events.
    pub responder: Responder,
    /// The live event stream.
    pub stream: EventStream,
    /// The durable queue.
    pub queue: Arc<Queue>,
    /// Per-host and per-device throttling.
    pub throttle: Throttle,
    /// Retries, TTL, auto-disable; a reload swaps them.
    pub policy: Arc<ArcSwap<DeliveryPolicy>>,
    /// Counters for the metrics.
    pub stats: Arc<DeliveryStats>,
    /// Plugin calls and requests at once.
    pub max_in_flight: usize,
    /// Where auto-disable is shared with other hosts (`--nats-url`).
    pub flags: Arc<dyn Flags>,
    /// Stamped each time the loop goes round, for the watchdog.
    pub liveness: crate::service::Liveness,
}

/// One stored event on its way through its webhooks.
#[derive(Debug)]
struct Job {
    event: Event,
    /// The group of the event's device when it was taken: the plugins see
    /// it (Particle's `PRODUCT_ID`).
    group: Option<GroupId>,
    ticket: Arc<Ticket>,
    /// When the host took it (or found it in the queue at start).
    since: Instant,
    /// Its place in its device's share of the queue, until every webhook
    /// is done with it.
    _share: Share,
}

/// An event taken in a batch, before its commit.
#[derive(Debug)]
struct Taken {
    event: Event,
    group: Option<GroupId>,
    ack: Ack,
    /// Its origin, remembered before the commit: forgotten if it fails.
    sent: Option<Sent>,
    hooks: Vec<Arc<Hook>>,
    seq: u64,
    room: Room,
    share: Share,
}

/// What one commit writes and then acknowledges.
#[derive(Debug, Default)]
struct Batch {
    /// The events to store, in the order taken.
    taken: Vec<Taken>,
    /// The changes of the transaction: these events and their origins, and
    /// finished events.
    changes: Vec<Change>,
    /// Acks of resends of events of this batch, fired once it is stored.
    resends: Vec<Ack>,
}

impl Pipeline {
    /// A pipeline that stops its waiting deliveries when `shutdown` is
    /// cancelled (their events stay queued for the next start).
    pub fn new(parts: Parts, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            registry: parts.registry,
            fleet: parts.fleet,
            sender: parts.sender,
            responder: parts.responder,
            stream: parts.stream,
            queue: parts.queue,
            throttle: parts.throttle,
            policy: parts.policy,
            stats: parts.stats,
            in_flight: Arc::new(Semaphore::new(parts.max_in_flight)),
            deliveries: tokio_util::task::TaskTracker::new(),
            flags: parts.flags,
            liveness: parts.liveness,
            shutdown,
            #[cfg(debug_assertions)]
            crash_after_commit: std::env::var("EDGEHOOK_TEST_CRASH_AFTER_COMMIT").ok(),
        })
    }

    /// Delivers what a previous run left in the queue, then takes events
    /// until shutdown or until the ingress closes, committing `finished`
    /// changes along with them and recognising resends by `origins`; then
    /// waits for the plugin calls and requests in progress.
    pub async fn run(
        self: Arc<Self>,
        mut inbound: mpsc::Receiver<Inbound>,
        mut finished: mpsc::UnboundedReceiver<Change>,
        pending: Vec<Pending>,
        mut origins: Origins,
    ) {
        self.replay(pending).await;
        let mut held = None;
        // Changes of finished deliveries, waiting to ride on the next
        // commit of events, and when they are written even if none comes.
        let mut deferred = Vec::new();
        let mut due = None;
        let mut beat = tokio::time::interval(crate::service::Liveness::BEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.shutdown.is_cancelled() {
            self.liveness.beat();
            // Events waiting already: they come faster than commits, and
            // this commit waits a moment for more of them.
            let mut flowing = true;
            let first = match held.take() {
                Some(first) => first,
                None if let Ok(first) = inbound.try_recv() => first,
                None => {
                    flowing = false;
                    let until = due.unwrap_or_else(tokio::time::Instant::now);
                    tokio::select! {
                        biased;
                        () = self.shutdown.cancelled() => break,
                        next = inbound.recv() => match next {
                            Some(first) => first,
                            None => break,
                        },
                        // Idle is alive: the watchdog hears of it.
                        _ = beat.tick() => continue,
                        Some(change) = finished.recv(), if due.is_none() => {
                            deferred.push(change);
                            due = Some(tokio::time::Instant::now() + REMOVAL_DELAY);
                            continue;
                        }
                        () = tokio::time::sleep_until(until), if due.is_some() => {
                            due = None;
                            let mut batch = Batch { changes: std::mem::take(&mut deferred), ..Batch::default() };
                            drain(&mut finished, &mut batch.changes);
                            deferred = self.commit(batch, &mut origins).await;
                            if !deferred.is_empty() {
                                due = Some(tokio::time::Instant::now() + REMOVAL_DELAY);
                            }
                            continue;
                        }
                    }
                }
            };
            let mut batch = Batch {
                changes: std::mem::take(&mut deferred),
                ..Batch::default()
            };
            self.take(first, None, &mut origins, &mut batch).await;
            let company = flowing.then(|| tokio::time::Instant::now() + COMMIT_WAIT);
            while batch.taken.len() < MAX_BATCH {
                let next = match (inbound.try_recv(), company) {
                    (Ok(next), _) => next,
                    (Err(_), Some(until)) if !batch.taken.is_empty() => tokio::select! {
                        biased;
                        () = self.shutdown.cancelled() => break,
                        next = inbound.recv() => match next {
                            Some(next) => next,
                            None => break,
                        },
                        () = tokio::time::sleep_until(until) => break,
                    },
                    (Err(_), _) => break,
                };
                let Some(room) = self.queue.try_reserve(encoded_len(&next.event)) else {
                    // Full: commit what we have, then wait for room.
                    held = Some(next);
                    break;
                };
                self.take(next, Some(room), &mut origins, &mut batch).await;
            }
            if batch.taken.is_empty() && batch.resends.is_empty() {
                // Events no webhook matches: nothing to store, and the
                // changes go on waiting.
                deferred = batch.changes;
                if !deferred.is_empty() && due.is_none() {
                    due = Some(tokio::time::Instant::now() + REMOVAL_DELAY);
                }
                continue;
            }
            due = None;
            drain(&mut finished, &mut batch.changes);
            deferred = self.commit(batch, &mut origins).await;
            if !deferred.is_empty() {
                due = Some(tokio::time::Instant::now() + REMOVAL_DELAY);
            }
        }
        let mut batch = Batch {
            changes: deferred,
            ..Batch::default()
        };
        drain(&mut finished, &mut batch.changes);
        if !batch.changes.is_empty() && !self.commit(batch, &mut origins).await.is_empty() {
            tracing::warn!(
                "the queue cannot write: events finished since the last commit are delivered again at the next start"
            );
        }
        // Every delivery finished, or stopped short by shutdown.
        self.deliveries.close();
        self.deliveries.wait().await;
    }

    /// The group of the event's device, when it is registered in one.
    fn group_of(&self, event: &Event) -> Option<GroupId> {
        self.fleet
            .snapshot()
            .devices
            .get(event.device.as_str())
            .and_then(|d| d.group.clone())
    }

    /// Adds one event to `batch`: a resend of a stored event is only
    /// acknowledged (once that event is stored); any other is counted and
    /// streamed, answered for plugins that are not running, acknowledged
    /// at once when no webhook matches, and otherwise given its room in the
    /// queue and added with its origin.
    async fn take(
        self: &Arc<Self>,
        inbound: Inbound,
        room: Option<Room>,
        origins: &mut Origins,
        batch: &mut Batch,
    ) {
        let Inbound {
            event,
            ack,
            sent,
            claim,
            share,
        } = inbound;
        if let Some(seq) = sent.as_ref().and_then(|s| origins.resend_of(s)) {
            self.stats
                .resends
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(
                device = %event.device,
                event = %event.name,
                "a resend of an event already stored: acknowledged, not delivered again"
            );
            if origins.is_committed(seq) {
                ack.ack().await;
            } else {
                batch.resends.push(ack);
            }
            return;
        }
        self.stats
            .events_in
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.stream.device_event(&event);
        let group = self.group_of(&event);
        for unloaded in self.registry.unloaded_matching(&event, group.as_ref()) {
            let message = unloaded.message();
            tracing::warn!(device = %event.device, event = %event.name, "{message}");
            let responder = self.responder.clone();
            let event = event.clone();
            tokio::spawn(async move { responder.replies(&event, &[Reply::error(message)]).await });
        }
        let hooks = self.registry.matching(&event, group.as_ref());
        if hooks.is_empty() {
            tracing::debug!(device = %event.device, event = %event.name, "no webhook matches");
            if let Some(claim) = claim {
                claim.finish();
            }
            if let Some(sent) = &sent {
                origins.reused(&sent.origin, &mut batch.changes);
            }
            ack.ack().await;
            return;
        }
        let room = match room {
            Some(room) => room,
            None => self.queue.reserve(encoded_len(&event)).await,
        };
        if let Some(claim) = claim {
            // Stored elsewhere already: nothing to commit here.
            let ticket = self.queue.claimed_ticket(claim, hooks.len(), room);
            let since = Instant::now();
            self.start(
                Job {
                    event,
                    group,
                    ticket,
                    since,
                    _share: share,
                },
                hooks,
            );
            return;
        }
        let seq = self.queue.next_seq();
        batch.changes.push(Change::Put(seq, encode(&event)));
        if let Some(sent) = &sent {
            origins.remember(sent, seq, &mut batch.changes);
        }
        batch.taken.push(Taken {
            seq,
            event,
            group,
            ack,
            sent,
            hooks,
            room,
            share,
        });
    }

    /// Writes the batch's changes; then acknowledges and delivers its
    /// events and acknowledges their resends. When the write fails nothing
    /// is acknowledged: the acks are dropped, so the broker sends the
    /// events again (the embedded broker closes the device's connection
    /// without a PUBACK; the external client re-opens its session), their
    /// origins are forgotten, and the changes of finished deliveries are
    /// returned, to be written with a later commit.
    async fn commit(self: &Arc<Self>, batch: Batch, origins: &mut Origins) -> Vec<Change> {
        let Batch {
            taken: batch,
            changes,
            resends,
        } = batch;
        self.stats
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Err(unwritten) = self.queue.commit(changes).await {
            for taken in &batch {
                if let Some(sent) = &taken.sent {
                    origins.forget_stored(&sent.origin, taken.seq);
                }
            }
            tracing::debug!(
                "{} event(s) and {} resend(s) not acknowledged: the queue cannot write",
                batch.len(),
                resends.len()
            );
            let Unwritten { mut changes, .. } = *unwritten;
            changes
                .retain(|c| matches!(c, Change::Done(..) | Change::Remove(_) | Change::Forget(_)));
            return changes;
        }
        origins.committed();
        #[cfg(debug_assertions)]
        if let Some(name) = &self.crash_after_commit
            && batch.iter().any(|t| t.event.name.as_str() == name)
        {
            std::process::abort();
        }
        for ack in resends {
            ack.ack().await;
        }
        let since = Instant::now();
        for taken in batch {
            taken.ack.ack().await;
            let ticket = self.queue.ticket(taken.seq, taken.hooks.len(), taken.room);
            self.start(
                Job {
                    event: taken.event,
                    group: taken.group,
                    ticket,
                    since,
                    _share: taken.share,
                },
                taken.hooks,
            );
        }
        Vec::new()
    }

    /// Delivers the events a previous run left in the queue, to the
    /// webhooks that match them now and had not finished them.
    async fn replay(self: &Arc<Self>, pending: Vec<Pending>) {
        if pending.is_empty() {
            return;
        }
        tracing::info!(
            "delivering {} event(s) left in the queue by the last run",
            pending.len()
        );
        for p in pending {
            let room = self.queue.reserve(p.bytes).await;
            let group = self.group_of(&p.event);
            let hooks: Vec<_> = self
                .registry
                .matching(&p.event, group.as_ref())
                .into_iter()
                .filter(|h| !p.done.iter().any(|d| **d == *h.name))
                .collect();
            if hooks.is_empty() {
                self.queue.ticket(p.seq, 1, room).finish(&Arc::from(""));
                continue;
            }
            let ticket = self.queue.ticket(p.seq, hooks.len(), room);
            self.start(
                Job {
                    event: p.event,
                    group,
                    ticket,
                    since: Instant::now(),
                    _share: Share::none(),
                },
                hooks,
            );
        }
    }

    fn start(self: &Arc<Self>, job: Job, hooks: Vec<Arc<Hook>>) {
        let job = Arc::new(job);
        for hook in hooks {
            let this = self.clone();
            let job = job.clone();
            self.deliveries
                .spawn(async move { this.deliver(&hook, &job).await });
        }
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Change>, into: &mut Vec<Change>) {
    while let Ok(change) = rx.try_recv() {
        into.push(change);
    }
}
