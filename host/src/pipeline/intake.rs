//! The intake: the one task that takes events from the ingress and commits
//! them in batches, a group commit (see the module doc of [`super`]). It
//! owns the [`Origins`] of stored events and the changes of finished
//! deliveries waiting to ride on the next commit.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::batch::Batch;
use super::parts::Pipeline;
use crate::ingress::Inbound;
use crate::queue::{Change, Origins, Pending};
use crate::service::Liveness;

/// Most events written in one commit.
pub const MAX_BATCH: usize = 1024;

/// Events in one commit from which the next commit waits for company: at
/// this many, events come faster than commits (about 2,000 events/s and
/// up on this project's machine; at 1,000 a commit carries one), and
/// waiting up to [`COMMIT_WAIT`] makes each `fsync` carry several times
/// as many. Below it a commit takes what is already waiting and never
/// waits, so a lone event is written at once.
pub const CROWD: usize = 4;

/// Longest a commit waits for more events once they come in a crowd.
pub const COMMIT_WAIT: Duration = Duration::from_millis(1);

/// Longest the removal of a finished event waits to ride on the commit of
/// new events before it is written on its own. Under a steady flow of
/// events it never waits this long, and removals cost no commit of their
/// own; a crash forgets at most this much of them, whose events are then
/// delivered again (never lost).
pub const REMOVAL_DELAY: Duration = Duration::from_secs(2);

/// The intake's state between commits.
struct Intake {
    inbound: mpsc::Receiver<Inbound>,
    finished: mpsc::UnboundedReceiver<Change>,
    origins: Origins,
    /// The event that found the queue full: the first of the next batch.
    held: Option<Inbound>,
    /// Changes of finished deliveries, waiting to ride on the next commit
    /// of events...
    deferred: Vec<Change>,
    /// ... and when they are written even if none comes.
    due: Option<Instant>,
    /// Idle is alive: the watchdog hears of it.
    beat: Interval,
    /// The last commit carried a [`CROWD`] of events.
    crowded: bool,
}

/// Why the intake has no event to take this time round.
enum Idle {
    /// Go round again.
    Again,
    /// Shutdown, or the ingress closed.
    Stop,
}

impl Pipeline {
    /// Delivers what a previous run left in the queue, then takes events
    /// until shutdown or until the ingress closes, committing `finished`
    /// changes along with them and recognising resends by `origins`; then
    /// waits for the plugin calls and requests in progress.
    pub async fn run(
        self: Arc<Self>,
        inbound: mpsc::Receiver<Inbound>,
        finished: mpsc::UnboundedReceiver<Change>,
        pending: Vec<Pending>,
        origins: Origins,
    ) {
        self.replay(pending).await;
        let mut beat = tokio::time::interval(Liveness::BEAT);
        beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut intake = Intake {
            inbound,
            finished,
            origins,
            held: None,
            deferred: Vec::new(),
            due: None,
            beat,
            crowded: false,
        };
        while !self.shutdown.is_cancelled() {
            self.liveness.beat();
            let first = match self.first(&mut intake).await {
                Ok(first) => first,
                Err(Idle::Again) => continue,
                Err(Idle::Stop) => break,
            };
            let mut batch = Batch {
                changes: std::mem::take(&mut intake.deferred),
                ..Batch::default()
            };
            self.take(first, None, &mut intake.origins, &mut batch)
                .await;
            self.fill(&mut intake, &mut batch).await;
            if batch.taken.is_empty() && batch.resends.is_empty() {
                // Events no webhook matches: nothing to store, and the
                // changes go on waiting.
                intake.deferred = batch.changes;
                if !intake.deferred.is_empty() && intake.due.is_none() {
                    intake.due = Some(Instant::now() + REMOVAL_DELAY);
                }
                continue;
            }
            intake.due = None;
            self.write(&mut intake, batch).await;
        }
        self.close(intake).await;
        // Every delivery finished, or stopped short by shutdown.
        self.deliveries.close();
        self.deliveries.wait().await;
    }

    /// The first event of the next batch: one held or waiting already, or
    /// the next to come. While none comes, the changes of finished
    /// deliveries are collected, and written once they are due.
    async fn first(self: &Arc<Self>, intake: &mut Intake) -> Result<Inbound, Idle> {
        if let Some(first) = intake.held.take() {
            return Ok(first);
        }
        if let Ok(first) = intake.inbound.try_recv() {
            return Ok(first);
        }
        let until = intake.due.unwrap_or_else(Instant::now);
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => Err(Idle::Stop),
            next = intake.inbound.recv() => match next {
                Some(first) => Ok(first),
                None => Err(Idle::Stop),
            },
            _ = intake.beat.tick() => Err(Idle::Again),
            Some(change) = intake.finished.recv(), if intake.due.is_none() => {
                intake.deferred.push(change);
                intake.due = Some(Instant::now() + REMOVAL_DELAY);
                Err(Idle::Again)
            }
            () = tokio::time::sleep_until(until), if intake.due.is_some() => {
                intake.due = None;
                let batch = Batch {
                    changes: std::mem::take(&mut intake.deferred),
                    ..Batch::default()
                };
                self.write(intake, batch).await;
                Err(Idle::Again)
            }
        }
    }

    /// Adds the events already waiting to `batch`, up to [`MAX_BATCH`]; in
    /// a crowd, waits up to [`COMMIT_WAIT`] for more. An event that finds
    /// the queue full is held for the next batch.
    async fn fill(self: &Arc<Self>, intake: &mut Intake, batch: &mut Batch) {
        let company = intake.crowded.then(|| Instant::now() + COMMIT_WAIT);
        while batch.taken.len() < MAX_BATCH {
            let next = match (intake.inbound.try_recv(), company) {
                (Ok(next), _) => next,
                (Err(_), Some(until)) if !batch.taken.is_empty() => tokio::select! {
                    biased;
                    () = self.shutdown.cancelled() => break,
                    next = intake.inbound.recv() => match next {
                        Some(next) => next,
                        None => break,
                    },
                    () = tokio::time::sleep_until(until) => break,
                },
                (Err(_), _) => break,
            };
            let Some(room) = self.queue.try_reserve(next.event.encoded_len()) else {
                // Full: commit what we have, then wait for room.
                intake.held = Some(next);
                break;
            };
            self.take(next, Some(room), &mut intake.origins, batch)
                .await;
        }
    }

    /// Commits `batch` with the changes of the deliveries finished since;
    /// the changes it could not write wait for a later commit.
    async fn write(self: &Arc<Self>, intake: &mut Intake, mut batch: Batch) {
        intake.crowded = batch.taken.len() >= CROWD;
        drain(&mut intake.finished, &mut batch.changes);
        intake.deferred = self.commit(batch, &mut intake.origins).await;
        if !intake.deferred.is_empty() {
            intake.due = Some(Instant::now() + REMOVAL_DELAY);
        }
    }

    /// At shutdown: writes the changes still waiting, when it can.
    async fn close(self: &Arc<Self>, mut intake: Intake) {
        let mut batch = Batch {
            changes: intake.deferred,
            ..Batch::default()
        };
        drain(&mut intake.finished, &mut batch.changes);
        if !batch.changes.is_empty() && !self.commit(batch, &mut intake.origins).await.is_empty() {
            tracing::warn!(
                "the queue cannot write: events finished since the last commit are delivered again at the next start"
            );
        }
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Change>, into: &mut Vec<Change>) {
    while let Ok(change) = rx.try_recv() {
        into.push(change);
    }
}
