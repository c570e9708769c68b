//! The queue's log: an append-only log in `data/queue/` holding every
//! acknowledged event until all its webhooks are done with it; its commits
//! and its compaction. Its parts: the [frames](super::frame) of a commit,
//! the [segment files](super::segment), the [state](super::state) a
//! segment replays into, what a start [recovers](super::recovery), and
//! the [record](super::record) of one event.
//!
//! A commit is one [frame] appended to the active segment
//! and one `fdatasync`: a single write of the batch's bytes, where a
//! B-tree database rewrote several pages and its header per commit. A
//! frame cut short by a crash fails its CRC; the log ends before it (that
//! commit was never acknowledged).
//!
//! A commit whose write or `fdatasync` fails (a full or failing disk) is
//! not acknowledged either: the segment is cut back to the end of the
//! last whole commit before the next one is written, so that nothing of
//! the failed one is ever read back after a later commit.
//!
//! A segment grows ahead of its commits by [`ZERO_AHEAD`] bytes of zeros
//! at a time: a commit then overwrites blocks the file already has, and
//! its `fdatasync` flushes the data alone, without a journal commit of the
//! file system for the file's new size (one such commit per
//! [`ZERO_AHEAD`], not one per commit). Zeros read as the end of the log.
//!
//! Every segment starts with a checkpoint: the whole state of the queue
//! (the events still held, the webhooks done with each, and the origins of
//! the last stored events, see [`super::origins`]). Once the active segment
//! has grown past [`ROTATE_AT`] and twice its checkpoint, the next
//! segment is written with a fresh checkpoint, made durable, and the old
//! one deleted: the log stays a small multiple of what it holds, and the
//! copying is paid once per that much writing. The host does the same at
//! start. A crash during that leaves a newer segment without a whole
//! checkpoint, which the next start ignores.

use std::fs::{self, File};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::error::{JournalError, io_error};
use super::frame::{self, Entry, FrameKind};
use super::origins::StoredOrigin;
use super::recovery::{Recovered, from_legacy, legacy_of, newest_whole, recover, replay_segment};
use super::segment::{segment_path, segments, write_segment};
use super::state::{Replay, State, replay};
use crate::origin::Origin;

/// A segment is rewritten once it has grown past this and past twice its
/// checkpoint.
pub const ROTATE_AT: u64 = 8 << 20;

/// How far a segment's zeros reach past its last commit, at most.
pub const ZERO_AHEAD: u64 = 1 << 20;

/// One change to the queue, applied in a batch.
#[derive(Debug)]
pub enum Change {
    /// Keep this event (already encoded with [`encode`](super::encode)).
    Put(u64, Vec<u8>),
    /// This webhook is done with the event; others are not yet.
    Done(u64, Arc<str>),
    /// Every webhook is done with the event: forget it.
    Remove(u64),
    /// A stored event came from this origin.
    Remember(Origin, StoredOrigin),
    /// Forget the origin of the event of this sequence number.
    Forget(u64),
}

/// The open queue: its directory and the segment commits go to.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    max_origins: usize,
    rotate_at: u64,
    active: Mutex<Active>,
    /// Failures a test makes the commits' writes meet.
    #[cfg(any(test, feature = "fault-injection"))]
    faults: super::DiskFaults,
}

#[derive(Debug)]
struct Active {
    file: File,
    number: u64,
    /// Where the next frame goes: the end of the last whole one.
    len: u64,
    /// The size of the segment's checkpoint.
    checkpoint: u64,
    /// The end of what was written to the segment, commits then zeros.
    zeroed: u64,
    /// The last commit failed: what lies past `len` is a frame cut short
    /// or one not known to be durable, and is cut off before the next
    /// commit, so that nothing of it is ever read back after a later
    /// frame.
    torn: bool,
    /// The frame being written, kept for its capacity.
    buf: Vec<u8>,
}

impl Journal {
    /// Opens (or creates) the queue in `data_dir/queue/`, keeping the
    /// origins of the last `max_origins` stored events. Events queued by an
    /// earlier version in `data_dir/queue.redb` are taken over.
    pub fn open(data_dir: &Path, max_origins: usize) -> Result<(Self, Recovered), JournalError> {
        let dir = data_dir.join("queue");
        crate::files::create_private_dir(&dir).map_err(io_error(&dir))?;
        let numbers = segments(&dir).map_err(io_error(&dir))?;
        let found = newest_whole(&dir, &numbers)?;
        let legacy = legacy_of(data_dir, found.is_some())?;
        if found.is_none() && !numbers.is_empty() {
            return Err(JournalError::Unusable {
                path: dir.display().to_string(),
                reason: "no segment holds a whole checkpoint",
            });
        }
        let mut state = match (&legacy, &found) {
            (Some(legacy), _) => from_legacy(legacy),
            (None, Some((number, bytes))) => replay_segment(&dir, *number, bytes)?,
            (None, None) => State::default(),
        };
        state.trim_origins(max_origins);
        let recovered = recover(&state, &dir)?;
        let number = numbers.last().map_or(1, |n| n + 1);
        let (file, len) = write_segment(&dir, number, &state)?;
        for old in numbers {
            let path = segment_path(&dir, old);
            fs::remove_file(&path).map_err(io_error(&path))?;
        }
        if legacy.is_some() {
            let old = data_dir.join(super::legacy::FILE);
            fs::remove_file(&old).map_err(io_error(&old))?;
            tracing::info!(
                "event queue: {} event(s) taken over from {}, which is now deleted",
                recovered.pending.len(),
                old.display()
            );
        }
        let journal = Self {
            dir,
            max_origins,
            rotate_at: ROTATE_AT,
            active: Mutex::new(Active {
                file,
                number,
                len,
                checkpoint: len,
                zeroed: len,
                torn: false,
                buf: Vec::new(),
            }),
            #[cfg(any(test, feature = "fault-injection"))]
            faults: super::DiskFaults::default(),
        };
        Ok((journal, recovered))
    }

    /// Appends `changes` as one commit; returns once they are on disk.
    pub fn apply(&self, changes: &[Change]) -> Result<(), JournalError> {
        let mut guard = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        let active = &mut *guard;
        let number = active.number;
        let path = || segment_path(&self.dir, number);
        let io = |source| JournalError::Io {
            path: path().display().to_string(),
            source,
        };
        if active.torn {
            active.file.set_len(active.len).map_err(io)?;
            active.zeroed = active.len;
            active.torn = false;
        }
        active.buf.clear();
        frame::write(
            &mut active.buf,
            FrameKind::Commit,
            changes.iter().map(Entry::from),
        )
        .map_err(|reason| JournalError::Unusable {
            path: path().display().to_string(),
            reason,
        })?;
        if let Err(source) = self.append(&active.file, &active.buf, active.len, &mut active.zeroed)
        {
            active.torn = true;
            return Err(io(source));
        }
        active.len += active.buf.len() as u64;
        if active.buf.capacity() > 1 << 20 {
            active.buf = Vec::new();
        }
        if active.len > self.rotate_at.max(2 * active.checkpoint)
            && let Err(err) = self.rotate(active)
        {
            // The commit is durable; compaction waits for the segment to
            // double again.
            tracing::warn!("{err}; the queue's segment goes on growing");
            active.checkpoint = active.len;
        }
        Ok(())
    }

    /// Writes one commit's `frame` at `at` and makes it durable: one
    /// `pwrite` and one `fdatasync`, and once per [`ZERO_AHEAD`] one more
    /// `pwrite` of zeros past it (`zeroed` is where they end).
    fn append(&self, file: &File, frame: &[u8], at: u64, zeroed: &mut u64) -> std::io::Result<()> {
        #[cfg(any(test, feature = "fault-injection"))]
        if let Some(struck) = self.faults.strike(file, frame, at) {
            return struck;
        }
        file.write_all_at(frame, at)?;
        let end = at + frame.len() as u64;
        if end > *zeroed {
            file.write_all_at(&vec![0; ZERO_AHEAD as usize], end)?;
            *zeroed = end + ZERO_AHEAD;
        }
        file.sync_data()
    }

    /// The switch that makes this queue's commits fail (tests).
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn faults(&self) -> super::DiskFaults {
        self.faults.clone()
    }

    /// Writes the next segment with a checkpoint of the active one, and
    /// deletes the active one.
    fn rotate(&self, active: &mut Active) -> Result<(), JournalError> {
        let path = segment_path(&self.dir, active.number);
        let len = usize::try_from(active.len).map_err(|_| JournalError::Unusable {
            path: path.display().to_string(),
            reason: "a segment larger than memory",
        })?;
        let mut bytes = vec![0; len];
        active
            .file
            .read_exact_at(&mut bytes, 0)
            .map_err(io_error(&path))?;
        let Replay::Whole(mut state, _) =
            replay(&bytes).map_err(|(offset, reason)| JournalError::Damaged {
                path: path.display().to_string(),
                offset,
                reason,
            })?
        else {
            return Err(JournalError::Unusable {
                path: path.display().to_string(),
                reason: "the active segment lost its checkpoint",
            });
        };
        state.trim_origins(self.max_origins);
        let next = active.number + 1;
        let (file, len) = write_segment(&self.dir, next, &state).inspect_err(|_| {
            // Half written, or whole but its name not durable: either way
            // not to be found at the next start, ahead of this segment's
            // later commits.
            let _ = fs::remove_file(segment_path(&self.dir, next));
        })?;
        active.file = file;
        active.number += 1;
        active.len = len;
        active.checkpoint = len;
        active.zeroed = len;
        // Should this fail, the next start finds the newer segment anyway.
        if let Err(err) = fs::remove_file(&path) {
            tracing::warn!("event queue {}: not deleted: {err}", path.display());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
