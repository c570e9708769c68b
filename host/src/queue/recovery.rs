//! What a start finds in the queue's directory: the newest segment with a
//! whole checkpoint (newer ones are rotations cut short by a crash), or the
//! queue file of an earlier version, replayed into the queue's state and
//! decoded into the events still to deliver and the origins of the last
//! stored events.

use std::fs;
use std::path::Path;

use super::error::{JournalError, io_error};
use super::frame::{self, Entry, FrameKind};
use super::legacy::{self, Legacy};
use super::origins::StoredOrigin;
use super::segment::{MAGIC, segment_path};
use super::state::{Replay, State, replay};
use crate::event::Event;
use crate::origin::Origin;

/// An event found in the queue at start, with the webhooks already done with it.
#[derive(Debug)]
pub struct Pending {
    /// Its sequence number.
    pub seq: u64,
    /// The event as it was received.
    pub event: Event,
    /// Names of the webhooks that finished it before the restart.
    pub done: Vec<String>,
    /// Its encoded size, as counted against the disk budget.
    pub bytes: usize,
}

/// What the queue held when it was opened.
#[derive(Debug)]
pub struct Recovered {
    /// The events a previous run left, oldest first.
    pub pending: Vec<Pending>,
    /// The origins of the last stored events, oldest first, one per
    /// origin.
    pub origins: Vec<(Origin, StoredOrigin)>,
}

/// The newest of the segments `numbers` of `dir` that starts with a whole
/// checkpoint, and its bytes; newer ones are rotations cut short.
pub(super) fn newest_whole(
    dir: &Path,
    numbers: &[u64],
) -> Result<Option<(u64, Vec<u8>)>, JournalError> {
    for &number in numbers.iter().rev() {
        let path = segment_path(dir, number);
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        let whole = bytes
            .strip_prefix(MAGIC)
            .and_then(|b| frame::read(b).ok())
            .is_some_and(|(kind, _, _)| kind == FrameKind::Checkpoint);
        if whole {
            return Ok(Some((number, bytes)));
        }
        tracing::warn!(
            "event queue {}: no whole checkpoint (a compaction cut short by a crash); ignored",
            path.display()
        );
    }
    Ok(None)
}

/// The queue file of an earlier version in `data_dir`, read when no
/// segment was `found` and it exists.
pub(super) fn legacy_of(data_dir: &Path, found: bool) -> Result<Option<Legacy>, JournalError> {
    let old = data_dir.join(legacy::FILE);
    if found || !old.exists() {
        return Ok(None);
    }
    legacy::read(&old)
        .map(Some)
        .map_err(|source| JournalError::Legacy {
            path: old.display().to_string(),
            source,
        })
}

/// The state segment `number` of `dir`, whose checkpoint is whole,
/// describes; what follows its last whole commit is dropped.
pub(super) fn replay_segment<'a>(
    dir: &Path,
    number: u64,
    bytes: &'a [u8],
) -> Result<State<'a>, JournalError> {
    let path = segment_path(dir, number);
    let damaged = |(offset, reason)| JournalError::Damaged {
        path: path.display().to_string(),
        offset,
        reason,
    };
    let Replay::Whole(state, end) = replay(bytes).map_err(damaged)? else {
        unreachable!("its checkpoint was checked whole")
    };
    let torn = torn_bytes(&bytes[end..]);
    if torn > 0 {
        tracing::warn!(
            "event queue {}: {torn} byte(s) after the last whole commit dropped (a write cut short by a crash; it was not acknowledged)",
            path.display(),
        );
    }
    Ok(state)
}

/// How much of what follows the last whole commit is a write cut short:
/// up to its last byte that is not zero (the zeros are the room a segment
/// keeps ahead of its commits).
fn torn_bytes(tail: &[u8]) -> usize {
    tail.iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1)
}

/// The state an old queue file describes.
pub(super) fn from_legacy(legacy: &Legacy) -> State<'_> {
    let mut state = State::default();
    for (seq, bytes) in &legacy.events {
        state.apply(Entry::Put(*seq, bytes));
    }
    for (seq, hook) in &legacy.done {
        state.apply(Entry::Done(*seq, hook));
    }
    for (seq, session, packet_id, fingerprint) in &legacy.origins {
        state.apply(Entry::Remember {
            seq: *seq,
            session,
            packet_id: *packet_id,
            fingerprint: *fingerprint,
        });
    }
    state
}

/// The events and origins of `state`, decoded.
pub(super) fn recover(state: &State<'_>, dir: &Path) -> Result<Recovered, JournalError> {
    let mut pending = Vec::with_capacity(state.events.len());
    for (&seq, (bytes, done)) in &state.events {
        let event = crate::event::Event::decode(bytes).map_err(|reason| JournalError::Corrupt {
            path: dir.display().to_string(),
            seq,
            reason,
        })?;
        pending.push(Pending {
            seq,
            event,
            done: done.iter().map(|h| (*h).to_owned()).collect(),
            bytes: bytes.len(),
        });
    }
    let origins = state
        .origins
        .iter()
        .map(|(&seq, &(session, packet_id, fingerprint))| {
            (
                Origin {
                    session: session.into(),
                    packet_id,
                },
                StoredOrigin { seq, fingerprint },
            )
        })
        .collect();
    Ok(Recovered { pending, origins })
}
