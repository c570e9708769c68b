//! One commit's batch: the events taken from the ingress, the changes
//! written with them (their records and origins, and the removals of
//! finished events), and the acks fired once the commit is durable. A
//! resend of a stored event is only acknowledged; an event no webhook
//! matches is acknowledged at once and never stored.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use super::parts::{Job, Pipeline};
use crate::event::Event;
use crate::exchange::Reply;
use crate::fleet::GroupId;
use crate::hooks::Hook;
use crate::ingress::device_limits::Share;
use crate::ingress::{Ack, Inbound};
use crate::origin::Sent;
use crate::queue::{Change, Origins, Room, Unwritten};
use crate::traces::Span;

/// An event taken in a batch, before its commit.
#[derive(Debug)]
pub(super) struct Taken {
    pub(super) event: Event,
    pub(super) group: Option<GroupId>,
    pub(super) ack: Ack,
    /// Its origin, remembered before the commit: forgotten if it fails.
    pub(super) sent: Option<Sent>,
    pub(super) hooks: Vec<Arc<Hook>>,
    pub(super) seq: u64,
    pub(super) room: Room,
    pub(super) share: Share,
    /// The root span of its trace, and its `intake` span, which ends when
    /// the commit begins.
    pub(super) trace: (Span, Span),
}

/// What one commit writes and then acknowledges.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// The events to store, in the order taken.
    pub(super) taken: Vec<Taken>,
    /// The changes of the transaction: these events and their origins, and
    /// finished events.
    pub(super) changes: Vec<Change>,
    /// Acks of resends of events of this batch, fired once it is stored.
    pub(super) resends: Vec<Ack>,
}

impl Pipeline {
    /// Adds one event to `batch`: a resend of a stored event is only
    /// acknowledged (once that event is stored); any other is counted and
    /// streamed, answered for plugins that are not running, acknowledged
    /// at once when no webhook matches, and otherwise given its room in the
    /// queue and added with its origin.
    pub(super) async fn take(
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
            self.resent(&event, seq, ack, origins, batch).await;
            return;
        }
        let (group, hooks) = self.arrived(&event);
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
        let now = SystemTime::now();
        let trace = self.trace(&event, now);
        let room = match room {
            Some(room) => room,
            None => self.queue.reserve(event.encoded_len()).await,
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
                    attempts_before: 0,
                    trace,
                    _share: share,
                },
                hooks,
            );
            return;
        }
        let seq = self.queue.next_seq();
        batch.changes.push(Change::Put(seq, event.encode()));
        if let Some(sent) = &sent {
            origins.remember(sent, seq, &mut batch.changes);
        }
        let intake = trace.child_at("intake", now);
        batch.taken.push(Taken {
            seq,
            event,
            group,
            ack,
            sent,
            hooks,
            room,
            share,
            trace: (trace, intake),
        });
    }

    /// A resend of the stored event `seq`: counted, and acknowledged now
    /// if that event is committed, else with `batch`.
    async fn resent(
        &self,
        event: &Event,
        seq: u64,
        ack: Ack,
        origins: &Origins,
        batch: &mut Batch,
    ) {
        self.stats.resends.fetch_add(1, Ordering::Relaxed);
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
    }

    /// A new event: counted and streamed, a hook-error for each webhook
    /// that matches it but whose plugin is not running; its device's group
    /// and the webhooks that match it.
    fn arrived(&self, event: &Event) -> (Option<GroupId>, Vec<Arc<Hook>>) {
        self.stats.events_in.fetch_add(1, Ordering::Relaxed);
        self.stream.device_event(event);
        let group = self.group_of(event);
        for unloaded in self.registry.unloaded_matching(event, group.as_ref()) {
            let message = unloaded.message();
            tracing::warn!(device = %event.device, event = %event.name, "{message}");
            let responder = self.responder.clone();
            let event = event.clone();
            tokio::spawn(async move { responder.replies(&event, &[Reply::error(message)]).await });
        }
        let hooks = self.registry.matching(event, group.as_ref());
        (group, hooks)
    }

    /// Writes the batch's changes; then acknowledges and delivers its
    /// events and acknowledges their resends. When the write fails nothing
    /// is acknowledged: the acks are dropped, so the broker sends the
    /// events again (the embedded broker closes the device's connection
    /// without a PUBACK; the external client re-opens its session), their
    /// origins are forgotten, and the changes of finished deliveries are
    /// returned, to be written with a later commit.
    pub(super) async fn commit(
        self: &Arc<Self>,
        batch: Batch,
        origins: &mut Origins,
    ) -> Vec<Change> {
        let Batch {
            taken: mut batch,
            changes,
            resends,
        } = batch;
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        let began = SystemTime::now();
        for taken in &mut batch {
            std::mem::take(&mut taken.trace.1).end_at(began);
        }
        let committed = self.queue.commit(changes).await;
        for taken in &batch {
            let mut commit = taken.trace.0.child_at("commit", began);
            if committed.is_err() {
                commit.error("the queue could not write");
            }
            commit.end();
        }
        if let Err(unwritten) = committed {
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
            let (trace, _) = taken.trace;
            self.start(
                Job {
                    event: taken.event,
                    group: taken.group,
                    ticket,
                    since,
                    attempts_before: 0,
                    trace,
                    _share: taken.share,
                },
                taken.hooks,
            );
        }
        Vec::new()
    }
}
