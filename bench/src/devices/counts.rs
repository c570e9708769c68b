//! What the devices count: the run's progress, what each device saw (its
//! ledger), and the fleet's tally; the latency histogram they share.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use hdrhistogram::Histogram;

/// Answers not matched to an event, and hook-error texts, shown in the report.
pub(super) const NOTES_KEPT: usize = 5;

/// The longest latency the histogram tells apart: an hour, in
/// microseconds; longer ones count as an hour.
const LONGEST_LATENCY: u64 = 3_600_000_000;

/// A fresh latency histogram: microseconds, 3 significant figures.
pub(super) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LONGEST_LATENCY, 3).expect("valid histogram bounds")
}

/// Locks `mutex`, also after a panic elsewhere (the counts stay usable).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counts shared by every device, read while the run is under way.
#[derive(Debug, Default)]
pub struct Progress {
    pub(super) published: AtomicUsize,
    pub(super) answered: AtomicUsize,
}

impl Progress {
    /// Events published so far.
    pub fn published(&self) -> usize {
        self.published.load(Ordering::Relaxed)
    }

    /// Events answered so far, each counted once.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }
}

/// What one device saw.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// When each of its events was published, by local index.
    pub(super) sent: Vec<Option<Instant>>,
    /// Which of them were answered.
    pub(super) answered: Vec<bool>,
    pub(super) responses: usize,
    pub(super) hook_errors: usize,
    pub(super) duplicates: usize,
    pub(super) wrong_topics: usize,
    pub(super) last_publish: Option<Instant>,
    pub(super) last_answer: Option<Instant>,
    pub(super) notes: Vec<String>,
    pub(super) connection_lost: Option<String>,
}

impl Ledger {
    pub(super) fn new(share: usize) -> Self {
        Self {
            sent: vec![None; share],
            answered: vec![false; share],
            ..Self::default()
        }
    }

    pub(super) fn note(&mut self, note: String) {
        if self.notes.len() < NOTES_KEPT {
            self.notes.push(note);
        }
    }
}

/// What the fleet saw, added up.
#[derive(Debug)]
pub struct Tally {
    /// Events published.
    pub sent: usize,
    /// Events answered with a hook-response.
    pub responses: usize,
    /// Events answered with a hook-error.
    pub hook_errors: usize,
    /// Published events with no answer.
    pub losses: usize,
    /// Answers to an event already answered.
    pub duplicates: usize,
    /// Messages that answer no event this device published.
    pub wrong_topics: usize,
    /// Publish-to-response latencies, microseconds.
    pub latencies: Histogram<u64>,
    /// When the last event was published.
    pub last_publish: Option<Instant>,
    /// When the last answer came.
    pub last_answer: Option<Instant>,
    /// The first hook-errors and unexpected messages, and lost connections.
    pub notes: Vec<String>,
}

impl Tally {
    pub(super) fn note(&mut self, note: String) {
        if self.notes.len() < NOTES_KEPT {
            self.notes.push(note);
        }
    }
}
