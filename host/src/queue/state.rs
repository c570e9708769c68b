//! The queue's state as a segment describes it: the events still held, the
//! webhooks done with each, and the origins of the last stored events. A
//! segment replays into it (its checkpoint, then its commits), and a
//! checkpoint writes it back whole.

use std::collections::{BTreeMap, HashSet};

use super::frame::{self, Entry, FrameError, FrameKind};
use super::segment::MAGIC;

/// The queue's state as a segment describes it, borrowing its bytes.
#[derive(Debug, Default)]
pub(super) struct State<'a> {
    /// Sequence number → encoded event and the webhooks done with it.
    pub(super) events: BTreeMap<u64, (&'a [u8], Vec<&'a str>)>,
    /// Sequence number → session, packet id, fingerprint.
    pub(super) origins: BTreeMap<u64, (&'a str, u16, u64)>,
}

impl<'a> State<'a> {
    pub(super) fn apply(&mut self, entry: Entry<'a>) {
        match entry {
            Entry::Put(seq, bytes) => {
                self.events.insert(seq, (bytes, Vec::new()));
            }
            Entry::Done(seq, hook) => {
                if let Some((_, done)) = self.events.get_mut(&seq) {
                    done.push(hook);
                }
            }
            Entry::Remove(seq) => {
                self.events.remove(&seq);
            }
            Entry::Remember {
                seq,
                session,
                packet_id,
                fingerprint,
            } => {
                self.origins.insert(seq, (session, packet_id, fingerprint));
            }
            Entry::Forget(seq) => {
                self.origins.remove(&seq);
            }
        }
    }

    /// Keeps the origins of the last `max` events, and of those only the
    /// newest for each origin.
    pub(super) fn trim_origins(&mut self, max: usize) {
        let mut seen = HashSet::new();
        let mut kept = BTreeMap::new();
        for (&seq, &row) in self.origins.iter().rev() {
            if kept.len() == max {
                break;
            }
            if seen.insert((row.0, row.1)) {
                kept.insert(seq, row);
            }
        }
        self.origins = kept;
    }

    /// The entries of a checkpoint that recreates this state.
    pub(super) fn entries(&self) -> impl Iterator<Item = Entry<'a>> + '_ {
        let events = self.events.iter().flat_map(|(&seq, (bytes, done))| {
            std::iter::once(Entry::Put(seq, bytes))
                .chain(done.iter().map(move |h| Entry::Done(seq, h)))
        });
        let origins =
            self.origins.iter().map(
                |(&seq, &(session, packet_id, fingerprint))| Entry::Remember {
                    seq,
                    session,
                    packet_id,
                    fingerprint,
                },
            );
        events.chain(origins)
    }
}

/// How a segment reads.
pub(super) enum Replay<'a> {
    /// Its state, and where its last whole frame ends.
    Whole(State<'a>, usize),
    /// It has no whole checkpoint: a rotation was cut short.
    NoCheckpoint,
}

/// Replays the segment `bytes`.
pub(super) fn replay(bytes: &[u8]) -> Result<Replay<'_>, (usize, &'static str)> {
    let Some(body) = bytes.strip_prefix(MAGIC) else {
        return Ok(Replay::NoCheckpoint);
    };
    let mut state = State::default();
    let mut at = MAGIC.len();
    let mut rest = body;
    let mut first = true;
    loop {
        let (kind, entries, len) = match frame::read(rest) {
            Ok(frame) => frame,
            Err(FrameError::Torn) if first => return Ok(Replay::NoCheckpoint),
            Err(FrameError::Torn) => break,
            Err(FrameError::Invalid(reason)) => return Err((at, reason)),
        };
        if (kind == FrameKind::Checkpoint) != first {
            return Err((at, "a checkpoint out of place"));
        }
        for entry in entries {
            state.apply(entry.map_err(|e| match e {
                FrameError::Invalid(reason) => (at, reason),
                FrameError::Torn => (at, "a change cut short"),
            })?);
        }
        first = false;
        at += len;
        rest = &rest[len..];
    }
    Ok(Replay::Whole(state, at))
}
