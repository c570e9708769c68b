//! The queue's handle: its bounds, the room each event takes, the ticket
//! each stored event's deliveries share, and opening it (with what a crash
//! left in it).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::error::JournalError;
use super::health;
use super::journal::{Change, Journal};
use super::origins::{MAX_ORIGINS, Origins};
use super::recovery::Pending;
use super::writer::Writer;
use crate::stores::Claim;

pub use crate::config::QueueLimits;

/// The queue: its file, its bounds, and the changes waiting for the next
/// commit.
#[derive(Debug)]
pub struct Queue {
    #[cfg(any(test, feature = "fault-injection"))]
    journal: Arc<Journal>,
    writer: Writer,
    events: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    limits: QueueLimits,
    next_seq: AtomicU64,
    depth: AtomicUsize,
    finished: mpsc::UnboundedSender<Change>,
    writes: health::Writes,
}

/// A commit that could not be written: why, and its changes, of which the
/// caller keeps those that must still be written.
#[derive(Debug)]
pub struct Unwritten {
    /// Why.
    pub error: JournalError,
    /// The changes of the commit.
    pub changes: Vec<Change>,
}

/// Room for one event in the queue, taken before it is stored and given
/// back when every webhook is done with it.
#[derive(Debug)]
pub struct Room {
    _event: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

/// A queue just opened.
#[derive(Debug)]
pub struct Opened {
    /// The queue.
    pub queue: Arc<Queue>,
    /// The changes its tickets make, for the committer.
    pub finished: mpsc::UnboundedReceiver<Change>,
    /// The events a previous run left in it, oldest first.
    pub pending: Vec<Pending>,
    /// Where the last stored events came from, to recognise their resends.
    pub origins: Origins,
}

impl Queue {
    /// Opens the queue in `data_dir/queue/`.
    pub fn open(data_dir: &Path, limits: QueueLimits) -> Result<Opened, JournalError> {
        let (journal, recovered) = Journal::open(data_dir, MAX_ORIGINS)?;
        let pending = recovered.pending;
        let origins = Origins::new(MAX_ORIGINS, recovered.origins);
        let next_seq = pending.last().map_or(1, |p| p.seq + 1);
        let (finished, changes) = mpsc::unbounded_channel();
        let journal = Arc::new(journal);
        let writer = Writer::start(Arc::clone(&journal), data_dir)?;
        let queue = Arc::new(Self {
            #[cfg(any(test, feature = "fault-injection"))]
            journal,
            writer,
            events: Arc::new(Semaphore::new(limits.max_events)),
            bytes: Arc::new(Semaphore::new(limits.max_bytes)),
            limits,
            next_seq: AtomicU64::new(next_seq),
            depth: AtomicUsize::new(0),
            finished,
            writes: health::Writes::default(),
        });
        Ok(Opened {
            queue,
            finished: changes,
            pending,
            origins,
        })
    }

    /// Waits for room for an event of `bytes` encoded bytes. An event
    /// larger than the whole budget gets the whole budget.
    pub async fn reserve(&self, bytes: usize) -> Room {
        let want = self.permits(bytes);
        // The semaphores are never closed.
        let event = self.events.clone().acquire_owned().await;
        let bytes = self.bytes.clone().acquire_many_owned(want).await;
        match (event, bytes) {
            (Ok(e), Ok(b)) => Room {
                _event: e,
                _bytes: b,
            },
            _ => unreachable!("the queue's semaphores are never closed"),
        }
    }

    /// Room for an event, if there is some now.
    pub fn try_reserve(&self, bytes: usize) -> Option<Room> {
        let want = self.permits(bytes);
        let event = self.events.clone().try_acquire_owned().ok()?;
        let bytes = self.bytes.clone().try_acquire_many_owned(want).ok()?;
        Some(Room {
            _event: event,
            _bytes: bytes,
        })
    }

    /// The byte permits an event of `bytes` takes: at most the whole budget.
    fn permits(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.min(self.limits.max_bytes)).unwrap_or(u32::MAX)
    }

    /// A new sequence number.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Writes `changes` in one transaction, on the queue's own thread;
    /// returns once they are on disk, or with them when they could not be
    /// written.
    pub async fn commit(&self, changes: Vec<Change>) -> Result<(), Box<Unwritten>> {
        let written = self.writer.write(changes).await;
        match &written {
            Ok(()) => self.writes.written(),
            Err(unwritten) => self.writes.failed(&unwritten.error),
        }
        written
    }

    /// Why the queue cannot write, while its commits fail.
    pub fn write_fault(&self) -> Option<String> {
        self.writes.fault()
    }

    /// The switch that makes this queue's commits fail (tests).
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn faults(&self) -> super::DiskFaults {
        self.journal.faults()
    }

    /// Events held now.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// The ticket of a stored event that `hooks` webhooks will deliver.
    pub fn ticket(self: &Arc<Self>, seq: u64, hooks: usize, room: Room) -> Arc<Ticket> {
        self.depth.fetch_add(1, Ordering::Relaxed);
        Arc::new(Ticket {
            queue: self.clone(),
            seq,
            claim: None,
            remaining: AtomicUsize::new(hooks),
            _room: room,
        })
    }

    /// The ticket of an event stored elsewhere (the cluster's stream), not
    /// here: the last webhook done with it gives up `claim`.
    pub fn claimed_ticket(
        self: &Arc<Self>,
        claim: Box<dyn Claim>,
        hooks: usize,
        room: Room,
    ) -> Arc<Ticket> {
        self.depth.fetch_add(1, Ordering::Relaxed);
        Arc::new(Ticket {
            queue: self.clone(),
            seq: 0,
            claim: Some(claim),
            remaining: AtomicUsize::new(hooks),
            _room: room,
        })
    }
}

/// One stored event's claim on the queue, shared by its deliveries. Each
/// delivery calls [`Ticket::finish`] once it is done for good; the last one
/// removes the event (or acknowledges it to JetStream, which holds it). A
/// delivery that never finishes (the host stopped first) leaves the event
/// in the queue for the next start (or hands it back to JetStream).
#[derive(Debug)]
pub struct Ticket {
    queue: Arc<Queue>,
    seq: u64,
    claim: Option<Box<dyn Claim>>,
    remaining: AtomicUsize,
    _room: Room,
}

impl Ticket {
    /// Whether the event is stored elsewhere (and this host holds only a
    /// claim on it).
    pub fn is_claimed(&self) -> bool {
        self.claim.is_some()
    }

    /// Webhook `hook` is done with the event.
    pub fn finish(&self, hook: &Arc<str>) {
        let last = self.remaining.fetch_sub(1, Ordering::AcqRel) == 1;
        if last {
            self.queue.depth.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(claim) = &self.claim {
            // The cluster's stream keeps no record of single webhooks: an
            // event taken over by another host goes to all of them again.
            if last {
                claim.finish();
            }
            return;
        }
        let change = if last {
            Change::Remove(self.seq)
        } else {
            Change::Done(self.seq, hook.clone())
        };
        // The committer outlives every delivery but the ones cut short at
        // shutdown, whose events stay queued anyway.
        let _ = self.queue.finished.send(change);
    }
}
