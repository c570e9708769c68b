//! What the pipeline is made of ([`Parts`]), the [`Pipeline`] every
//! delivery shares, and the [`Job`] of one stored event on its way through
//! its webhooks: started for each matching webhook once the event is
//! stored, or at start for what the last run left in the queue.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::record::Recorder;
use super::stats::DeliveryStats;
use crate::config::DeliveryPolicy;
use crate::delivery::HttpSender;
use crate::event::Event;
use crate::fleet::{Fleet, GroupId};
use crate::hooks::{Hook, Registry};
use crate::ingress::device_limits::Share;
use crate::queue::{Pending, Queue, Ticket};
use crate::respond::Responder;
use crate::stores::Flags;
use crate::stream::EventStream;
use crate::throttle::Throttle;
use crate::traces::{Span, Traces};

/// Everything a delivery needs, shared by all of them.
#[derive(Debug)]
pub struct Pipeline {
    pub(super) registry: Arc<Registry>,
    pub(super) fleet: Arc<Fleet>,
    pub(super) sender: HttpSender,
    pub(super) responder: Responder,
    pub(super) stream: EventStream,
    pub(super) queue: Arc<Queue>,
    pub(super) throttle: Throttle,
    pub(super) policy: Arc<ArcSwap<DeliveryPolicy>>,
    pub(super) stats: Arc<DeliveryStats>,
    pub(super) in_flight: Arc<Semaphore>,
    /// Every delivery task, waited for at shutdown.
    pub(super) deliveries: tokio_util::task::TaskTracker,
    pub(super) flags: Arc<dyn Flags>,
    pub(super) recorder: Recorder,
    pub(super) traces: Traces,
    pub(super) liveness: crate::service::Liveness,
    pub(super) shutdown: CancellationToken,
    /// Stops the deliveries still in progress where they are.
    pub(super) abandon: CancellationToken,
    /// Debug builds only: the event name of `EDGEHOOK_TEST_CRASH_AFTER_COMMIT`,
    /// after whose commit the process aborts before any ack, as a crash
    /// between the queue's commit and the PUBACK would (tests only).
    #[cfg(debug_assertions)]
    pub(super) crash_after_commit: Option<String>,
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
    /// Where every attempt goes, for the delivery history.
    pub recorder: Recorder,
    /// Where each event's trace goes (`--otlp-endpoint`), if anywhere.
    pub traces: Traces,
    /// Stamped each time the loop goes round, for the watchdog.
    pub liveness: crate::service::Liveness,
    /// Cancelled when a stop's drain timeout has passed: the deliveries
    /// still in progress stop where they are (their events stay queued)
    /// and let go of what they hold.
    pub abandon: CancellationToken,
}

/// One stored event on its way through its webhooks.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) event: Event,
    /// The group of the event's device when it was taken: the plugins see
    /// it (Particle's `PRODUCT_ID`).
    pub(super) group: Option<GroupId>,
    pub(super) ticket: Arc<Ticket>,
    /// When the host took it (or found it in the queue at start).
    pub(super) since: Instant,
    /// Attempts the history has of it already: a replay counts on.
    pub(super) attempts_before: u32,
    /// The root span of its trace, ended when the last webhook is done
    /// with it (the job is dropped).
    pub(super) trace: Span,
    /// Its place in its device's share of the queue, until every webhook
    /// is done with it.
    pub(super) _share: Share,
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
            recorder: parts.recorder,
            traces: parts.traces,
            liveness: parts.liveness,
            abandon: parts.abandon,
            shutdown,
            #[cfg(debug_assertions)]
            crash_after_commit: std::env::var("EDGEHOOK_TEST_CRASH_AFTER_COMMIT").ok(),
        })
    }

    /// The group of the event's device, when it is registered in one.
    pub(super) fn group_of(&self, event: &Event) -> Option<GroupId> {
        self.fleet
            .snapshot()
            .group_of(event.device.as_str())
            .cloned()
    }

    /// Delivers the events a previous run left in the queue, to the
    /// webhooks that match them now and had not finished them.
    pub(super) async fn replay(self: &Arc<Self>, pending: Vec<Pending>) {
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
            let trace = self.trace(&p.event, SystemTime::now());
            self.start(
                Job {
                    event: p.event,
                    group,
                    ticket,
                    since: Instant::now(),
                    attempts_before: 0,
                    trace,
                    _share: Share::none(),
                },
                hooks,
            );
        }
    }

    /// The root span of `event`'s trace, started at `at`.
    pub(super) fn trace(&self, event: &Event, at: SystemTime) -> Span {
        self.traces
            .event(&event.id, event.device.as_str(), event.name.as_str(), at)
    }

    /// Starts one delivery task per webhook of `hooks` for `job`.
    pub(super) fn start(self: &Arc<Self>, job: Job, hooks: Vec<Arc<Hook>>) {
        let job = Arc::new(job);
        for hook in hooks {
            let this = self.clone();
            let job = job.clone();
            let abandon = self.abandon.clone();
            self.deliveries.spawn(async move {
                tokio::select! {
                    () = this.deliver(&hook, &job) => {}
                    () = abandon.cancelled() => {}
                }
            });
        }
    }
}
