//! The queue's files: an append-only log in `data/queue/` holding every
//! acknowledged event until all its webhooks are done with it.
//!
//! A commit is one [frame](super::frame) appended to the active segment
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
//! Every segment starts with a checkpoint: the whole state of the queue
//! (the events still held, the webhooks done with each, and the origins of
//! the last stored events, see [`super::origins`]). Once the active segment
//! has grown past [`ROTATE_AT`] and twice its checkpoint, the next
//! segment is written with a fresh checkpoint, made durable, and the old
//! one deleted: the log stays a small multiple of what it holds, and the
//! copying is paid once per that much writing. The host does the same at
//! start. A crash during that leaves a newer segment without a whole
//! checkpoint, which the next start ignores.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use super::frame::{self, Entry, FrameError, Kind};
use super::legacy::{self, Legacy};
use super::origins::Stored;
use crate::event::Event;
use crate::origin::Origin;
use crate::topic::{DeviceId, EventName};

/// The first bytes of a segment.
const MAGIC: &[u8; 8] = b"EHQLOG01";

/// A segment is rewritten once it has grown past this and past twice its
/// checkpoint.
pub const ROTATE_AT: u64 = 8 << 20;

/// Why the queue's files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading or writing failed.
    #[error("event queue {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// A stored event does not decode: the file was changed by something
    /// other than edgehook.
    #[error("event queue {path}: stored event {seq} is corrupt: {reason}")]
    Corrupt {
        /// The segment.
        path: String,
        /// Its sequence number.
        seq: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A whole frame that edgehook did not write.
    #[error(
        "event queue {path}: {reason} at byte {offset}; the file was changed by something other than edgehook"
    )]
    Damaged {
        /// The segment.
        path: String,
        /// Where the frame starts.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The queue cannot hold this, or its directory holds no usable
    /// segment.
    #[error("event queue {path}: {reason}")]
    Unusable {
        /// The directory or segment.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// The queue file of an earlier version does not read.
    #[error("event queue {path} (left by an earlier version): {source}")]
    Legacy {
        /// The old file.
        path: String,
        /// redb's error.
        source: redb::Error,
    },
}

/// One change to the queue, applied in a batch.
#[derive(Debug)]
pub enum Change {
    /// Keep this event (already encoded with [`encode`]).
    Put(u64, Vec<u8>),
    /// This webhook is done with the event; others are not yet.
    Done(u64, Arc<str>),
    /// Every webhook is done with the event: forget it.
    Remove(u64),
    /// A stored event came from this origin.
    Remember(Origin, Stored),
    /// Forget the origin of the event of this sequence number.
    Forget(u64),
}

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
    pub origins: Vec<(Origin, Stored)>,
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
    /// The last commit failed: what lies past `len` is a frame cut short
    /// or one not known to be durable, and is cut off before the next
    /// commit, so that nothing of it is ever read back after a later
    /// frame.
    torn: bool,
    /// The frame being written, kept for its capacity.
    buf: Vec<u8>,
}

/// The queue's state as a segment describes it, borrowing its bytes.
#[derive(Debug, Default)]
struct State<'a> {
    /// Sequence number → encoded event and the webhooks done with it.
    events: BTreeMap<u64, (&'a [u8], Vec<&'a str>)>,
    /// Sequence number → session, packet id, fingerprint.
    origins: BTreeMap<u64, (&'a str, u16, u64)>,
}

impl<'a> State<'a> {
    fn apply(&mut self, entry: Entry<'a>) {
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
    fn trim_origins(&mut self, max: usize) {
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
    fn entries(&self) -> impl Iterator<Item = Entry<'a>> + '_ {
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
enum Replay<'a> {
    /// Its state, and where its last whole frame ends.
    Whole(State<'a>, usize),
    /// It has no whole checkpoint: a rotation was cut short.
    NoCheckpoint,
}

/// Replays the segment `bytes`.
fn replay(bytes: &[u8]) -> Result<Replay<'_>, (usize, &'static str)> {
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
        if (kind == Kind::Checkpoint) != first {
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

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:016}.log"))
}

/// The segment numbers in `dir`, in ascending order.
fn segments(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse().ok())
        {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes segment `number` of `dir` holding a checkpoint of `state`, and
/// makes it durable (the file and its name).
fn write_segment(dir: &Path, number: u64, state: &State<'_>) -> Result<(File, u64), JournalError> {
    let path = segment_path(dir, number);
    let mut buf = MAGIC.to_vec();
    frame::write(&mut buf, Kind::Checkpoint, state.entries()).map_err(|reason| {
        JournalError::Unusable {
            path: path.display().to_string(),
            reason,
        }
    })?;
    let file = crate::files::private_options()
        .truncate(true)
        .open(&path)
        .and_then(|file| {
            file.write_all_at(&buf, 0)?;
            file.sync_all()?;
            Ok(file)
        })
        .map_err(io_error(&path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))?;
    Ok((file, buf.len() as u64))
}

impl Journal {
    /// Opens (or creates) the queue in `data_dir/queue/`, keeping the
    /// origins of the last `max_origins` stored events. Events queued by an
    /// earlier version in `data_dir/queue.redb` are taken over.
    pub fn open(data_dir: &Path, max_origins: usize) -> Result<(Self, Recovered), JournalError> {
        let dir = data_dir.join("queue");
        crate::files::create_private_dir(&dir).map_err(io_error(&dir))?;
        let numbers = segments(&dir).map_err(io_error(&dir))?;
        // The newest segment with a whole checkpoint; newer ones are
        // rotations cut short.
        let mut found = None;
        for &number in numbers.iter().rev() {
            let path = segment_path(&dir, number);
            let bytes = fs::read(&path).map_err(io_error(&path))?;
            let whole = bytes
                .strip_prefix(MAGIC)
                .and_then(|b| frame::read(b).ok())
                .is_some_and(|(kind, _, _)| kind == Kind::Checkpoint);
            if whole {
                found = Some((number, bytes));
                break;
            }
            tracing::warn!(
                "event queue {}: no whole checkpoint (a compaction cut short by a crash); ignored",
                path.display()
            );
        }
        let old = data_dir.join(legacy::FILE);
        let legacy = match (&found, old.exists()) {
            (None, true) => Some(legacy::read(&old).map_err(|source| JournalError::Legacy {
                path: old.display().to_string(),
                source,
            })?),
            _ => None,
        };
        if found.is_none() && !numbers.is_empty() {
            return Err(JournalError::Unusable {
                path: dir.display().to_string(),
                reason: "no segment holds a whole checkpoint",
            });
        }
        let mut state = State::default();
        if let Some((number, bytes)) = &found {
            let path = segment_path(&dir, *number);
            let damaged = |(offset, reason)| JournalError::Damaged {
                path: path.display().to_string(),
                offset,
                reason,
            };
            let Replay::Whole(read, end) = replay(bytes).map_err(damaged)? else {
                unreachable!("its checkpoint was checked whole")
            };
            if end < bytes.len() {
                tracing::warn!(
                    "event queue {}: {} byte(s) after the last whole commit dropped (a write cut short by a crash; it was not acknowledged)",
                    path.display(),
                    bytes.len() - end
                );
            }
            state = read;
        }
        if let Some(legacy) = &legacy {
            state = from_legacy(legacy);
        }
        state.trim_origins(max_origins);
        let recovered = recover(&state, &dir)?;
        let number = numbers.last().map_or(1, |n| n + 1);
        let (file, len) = write_segment(&dir, number, &state)?;
        for old in numbers {
            let path = segment_path(&dir, old);
            fs::remove_file(&path).map_err(io_error(&path))?;
        }
        if legacy.is_some() {
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
            active.torn = false;
        }
        active.buf.clear();
        frame::write(
            &mut active.buf,
            Kind::Commit,
            changes.iter().map(Entry::from),
        )
        .map_err(|reason| JournalError::Unusable {
            path: path().display().to_string(),
            reason,
        })?;
        if let Err(source) = self.append(&active.file, &active.buf, active.len) {
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
    /// `pwrite` and one `fdatasync`.
    fn append(&self, file: &File, frame: &[u8], at: u64) -> std::io::Result<()> {
        #[cfg(any(test, feature = "fault-injection"))]
        if let Some(struck) = self.faults.strike(file, frame, at) {
            return struck;
        }
        file.write_all_at(frame, at)?;
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
        // Should this fail, the next start finds the newer segment anyway.
        if let Err(err) = fs::remove_file(&path) {
            tracing::warn!("event queue {}: not deleted: {err}", path.display());
        }
        Ok(())
    }
}

/// The state an old queue file describes.
fn from_legacy(legacy: &Legacy) -> State<'_> {
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
fn recover(state: &State<'_>, dir: &Path) -> Result<Recovered, JournalError> {
    let mut pending = Vec::with_capacity(state.events.len());
    for (&seq, (bytes, done)) in &state.events {
        let event = decode(bytes).map_err(|reason| JournalError::Corrupt {
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
                Stored { seq, fingerprint },
            )
        })
        .collect();
    Ok(Recovered { pending, origins })
}

fn fields(event: &Event) -> [&str; 4] {
    [
        event.id.as_str(),
        event.published_at.as_str(),
        event.device.as_str(),
        event.name.as_str(),
    ]
}

/// The size of `event` in the queue, as [`encode`] writes it.
pub fn encoded_len(event: &Event) -> usize {
    fields(event).iter().map(|f| 4 + f.len()).sum::<usize>() + event.data.len()
}

/// Encodes an event for the queue: four length-prefixed strings (id,
/// published_at, device, name), then the data as is.
pub fn encode(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(event));
    for field in fields(event) {
        let n = u32::try_from(field.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(&event.data);
    debug_assert_eq!(out.len(), encoded_len(event));
    out
}

fn decode(bytes: &[u8]) -> Result<Event, &'static str> {
    let mut rest = bytes;
    let mut field = || -> Result<&str, &'static str> {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or("truncated")?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return Err("truncated");
        }
        let (text, tail) = tail.split_at(len);
        rest = tail;
        std::str::from_utf8(text).map_err(|_| "not UTF-8")
    };
    let id = field()?.to_owned();
    let published_at = field()?.to_owned();
    let device = DeviceId::try_from(field()?).map_err(|_| "bad device id")?;
    let name = EventName::try_from(field()?).map_err(|_| "bad event name")?;
    Ok(Event {
        id,
        device,
        name,
        data: Bytes::copy_from_slice(rest),
        published_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn event(name: &str, data: &'static [u8]) -> Event {
        Event::received(
            DeviceId::try_from("dev-1").unwrap(),
            EventName::try_from(name).unwrap(),
            Bytes::from_static(data),
        )
    }

    fn stored(seq: u64) -> Stored {
        Stored {
            seq,
            fingerprint: seq * 10,
        }
    }

    fn open(dir: &Path) -> (Journal, Recovered) {
        Journal::open(dir, 8).unwrap()
    }

    fn seqs(recovered: &Recovered) -> Vec<u64> {
        recovered.pending.iter().map(|p| p.seq).collect()
    }

    /// The only segment of `dir`.
    fn segment(dir: &Path) -> PathBuf {
        let numbers = segments(&dir.join("queue")).unwrap();
        assert_eq!(numbers.len(), 1, "one segment: {numbers:?}");
        segment_path(&dir.join("queue"), numbers[0])
    }

    #[test]
    fn events_survive_reopening_with_their_done_webhooks_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let a = event("temp/room", b"{\"t\":21.5}");
        let b = event("hum", b"\x00\xffbinary");
        {
            let (journal, recovered) = open(dir.path());
            assert!(recovered.pending.is_empty());
            journal
                .apply(&[Change::Put(1, encode(&a)), Change::Put(2, encode(&b))])
                .unwrap();
            journal
                .apply(&[Change::Done(2, "webhook/x".into()), Change::Remove(1)])
                .unwrap();
        }
        let (journal, recovered) = open(dir.path());
        assert_eq!(seqs(&recovered), [2]);
        let p = &recovered.pending[0];
        assert_eq!(p.event.id, b.id);
        assert_eq!(p.event.name.as_str(), "hum");
        assert_eq!(p.event.device.as_str(), "dev-1");
        assert_eq!(p.event.published_at, b.published_at);
        assert_eq!(&p.event.data[..], b"\x00\xffbinary");
        assert_eq!(p.done, ["webhook/x"]);
        assert_eq!(p.bytes, encode(&b).len());

        journal.apply(&[Change::Remove(2)]).unwrap();
        drop(journal);
        let (journal, recovered) = open(dir.path());
        assert!(recovered.pending.is_empty());
        // Removing an event also forgets its `done` rows.
        journal.apply(&[Change::Put(2, encode(&b))]).unwrap();
        drop(journal);
        assert!(open(dir.path()).1.pending[0].done.is_empty());
    }

    #[test]
    fn origins_survive_reopening_and_outlive_their_events() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (journal, _) = open(dir.path());
            journal
                .apply(&[
                    Change::Put(1, encode(&event("a", b"1"))),
                    Change::Remember(Origin::device("d1", 7), stored(1)),
                    Change::Remember(Origin::device("d1", 8), stored(2)),
                ])
                .unwrap();
            journal
                .apply(&[
                    Change::Remove(1),
                    Change::Forget(2),
                    Change::Forget(1),
                    Change::Remember(Origin::device("d1", 7), stored(3)),
                    Change::Remember(Origin::device("d2", 7), stored(4)),
                    Change::Remember(Origin::device("d3", 7), stored(5)),
                ])
                .unwrap();
        }
        let (journal, recovered) = open(dir.path());
        assert!(recovered.pending.is_empty());
        assert_eq!(
            recovered.origins,
            [
                (Origin::device("d1", 7), stored(3)),
                (Origin::device("d2", 7), stored(4)),
                (Origin::device("d3", 7), stored(5)),
            ]
        );
        // Beyond the bound, or named again by a newer row: dropped.
        journal
            .apply(&[Change::Remember(Origin::device("d2", 7), stored(6))])
            .unwrap();
        drop(journal);
        let (_, recovered) = Journal::open(dir.path(), 2).unwrap();
        assert_eq!(
            recovered.origins,
            [
                (Origin::device("d3", 7), stored(5)),
                (Origin::device("d2", 7), stored(6)),
            ]
        );
        assert_eq!(open(dir.path()).1.origins.len(), 2);
    }

    #[test]
    fn a_commit_cut_short_is_dropped_and_the_log_goes_on_after_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (journal, _) = open(dir.path());
            journal
                .apply(&[Change::Put(1, encode(&event("a", b"1")))])
                .unwrap();
            journal
                .apply(&[Change::Put(2, encode(&event("b", b"2")))])
                .unwrap();
        }
        // A crash in the middle of writing the second commit.
        let path = segment(dir.path());
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        {
            let (journal, recovered) = open(dir.path());
            assert_eq!(seqs(&recovered), [1]);
            journal
                .apply(&[Change::Put(3, encode(&event("c", b"3")))])
                .unwrap();
        }
        assert_eq!(seqs(&open(dir.path()).1), [1, 3]);
    }

    #[test]
    fn a_failed_commit_is_cut_off_and_the_next_one_follows_the_last_whole_one() {
        use crate::queue::DiskFault;
        for (fault, errno) in [(DiskFault::Full, 28), (DiskFault::SyncFails, 5)] {
            let dir = tempfile::tempdir().unwrap();
            {
                let (journal, _) = open(dir.path());
                journal
                    .apply(&[Change::Put(1, encode(&event("a", b"1")))])
                    .unwrap();
                let good = fs::metadata(segment(dir.path())).unwrap().len();
                journal.faults().inject(Some(fault));
                // Even half of it is longer than the commit after it.
                let big = event("b", &[b'x'; 256]);
                for _ in 0..2 {
                    let err = journal.apply(&[Change::Put(2, encode(&big))]).unwrap_err();
                    let JournalError::Io { source, .. } = &err else {
                        panic!("{err}")
                    };
                    assert_eq!(source.raw_os_error(), Some(errno), "{fault:?}: {err}");
                    // Its bytes are on the file, as far as the disk took them.
                    assert!(fs::metadata(segment(dir.path())).unwrap().len() > good);
                }
                journal.faults().inject(None);
                journal
                    .apply(&[Change::Put(3, encode(&event("c", b"3")))])
                    .unwrap();
                // Nothing of the failed commits is left after the last one.
                let bytes = fs::read(segment(dir.path())).unwrap();
                let Ok(Replay::Whole(_, end)) = replay(&bytes) else {
                    panic!("{fault:?}: the segment does not replay")
                };
                assert_eq!(end, bytes.len(), "{fault:?}");
            }
            assert_eq!(seqs(&open(dir.path()).1), [1, 3], "{fault:?}");
        }
    }

    #[test]
    fn segments_are_rewritten_with_what_is_still_held() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = open(dir.path());
        journal.rotate_at = 4096;
        let first = segment(dir.path());
        for seq in 1..=200 {
            let mut changes = vec![
                Change::Put(seq, encode(&event("e", b"0123456789abcdef"))),
                Change::Remember(Origin::device("d1", seq as u16), stored(seq)),
            ];
            if seq % 10 != 0 {
                changes.push(Change::Remove(seq));
            }
            journal.apply(&changes).unwrap();
        }
        let last = segment(dir.path());
        assert_ne!(first, last, "the log was rewritten");
        assert!(fs::metadata(&last).unwrap().len() < 8192);
        drop(journal);
        let (_, recovered) = open(dir.path());
        assert_eq!(
            seqs(&recovered),
            (1..=20).map(|n| n * 10).collect::<Vec<_>>()
        );
        let origins: Vec<u64> = recovered.origins.iter().map(|(_, s)| s.seq).collect();
        assert_eq!(origins, (193..=200).collect::<Vec<_>>());
    }

    #[test]
    fn a_rewrite_cut_short_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (journal, _) = open(dir.path());
            journal
                .apply(&[Change::Put(1, encode(&event("a", b"1")))])
                .unwrap();
        }
        let path = segment(dir.path());
        let number = segments(&dir.path().join("queue")).unwrap()[0];
        // A crash while the next segment's checkpoint was being written.
        let mut next = MAGIC.to_vec();
        frame::write(&mut next, Kind::Checkpoint, [Entry::Remove(9)]).unwrap();
        next.truncate(next.len() - 1);
        fs::write(segment_path(&dir.path().join("queue"), number + 1), next).unwrap();
        let (_, recovered) = open(dir.path());
        assert_eq!(seqs(&recovered), [1]);
        assert!(!path.exists());
        segment(dir.path());
    }

    #[test]
    fn a_whole_frame_that_edgehook_did_not_write_is_named() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()));
        let path = segment(dir.path());
        let mut bytes = fs::read(&path).unwrap();
        let at = bytes.len();
        frame::write(&mut bytes, Kind::Checkpoint, []).unwrap();
        fs::write(&path, bytes).unwrap();
        let err = Journal::open(dir.path(), 8).unwrap_err().to_string();
        assert!(err.contains("a checkpoint out of place"), "{err}");
        assert!(err.contains(&format!("at byte {at}")), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn events_queued_by_an_earlier_version_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(legacy::FILE);
        let a = event("a", b"1");
        {
            let db = redb::Database::create(&old).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut events = tx.open_table(legacy::EVENTS).unwrap();
                events.insert(4, encode(&a).as_slice()).unwrap();
                let mut done = tx.open_table(legacy::DONE).unwrap();
                done.insert((4, "webhook/x"), ()).unwrap();
                let mut origins = tx.open_table(legacy::ORIGINS).unwrap();
                origins.insert(4, ("device/d1", 7, 40)).unwrap();
            }
            tx.commit().unwrap();
        }
        let (journal, recovered) = open(dir.path());
        assert_eq!(seqs(&recovered), [4]);
        assert_eq!(recovered.pending[0].event.id, a.id);
        assert_eq!(recovered.pending[0].done, ["webhook/x"]);
        assert_eq!(recovered.origins, [(Origin::device("d1", 7), stored(4))]);
        assert!(!old.exists(), "the old file is deleted once taken over");
        journal.apply(&[Change::Remove(4)]).unwrap();
        drop(journal);
        assert!(open(dir.path()).1.pending.is_empty());
    }

    #[test]
    fn a_corrupt_event_is_named() {
        assert_eq!(decode(b"\x05\x00\x00\x00ab").unwrap_err(), "truncated");
        let mut bytes = encode(&event("e", b""));
        bytes[40] = 0xff;
        assert!(decode(&bytes).is_err());
    }
}
