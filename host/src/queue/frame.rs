//! The queue log's frames: one frame per commit, so that a commit is on
//! disk whole or not at all.
//!
//! A frame is `len: u32 | crc: u32 | kind: u8 | entries`, little endian,
//! where `len` counts the kind and the entries and `crc` (CRC-32) covers
//! them. A write cut short by a crash leaves a frame that is short or fails
//! its CRC: reading stops there, and the commit it held was never
//! acknowledged. An entry is a tag byte and a sequence number (u64), then:
//!
//! | tag | entry | then |
//! | --- | --- | --- |
//! | 1 | put | the encoded event (u32 length, bytes) |
//! | 2 | done | the webhook's name (u32 length, UTF-8) |
//! | 3 | remove | nothing |
//! | 4 | remember | packet id (u16), fingerprint (u64), session (u32 length, UTF-8) |
//! | 5 | forget | nothing |

use super::journal::Change;

/// Bytes before a frame's entries: length, CRC and kind.
pub const HEADER: usize = 9;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// The whole state of the queue: the first frame of every segment.
    Checkpoint = 1,
    /// The changes of one commit.
    Commit = 2,
}

/// One change, borrowed from a [`Change`] or from the bytes of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    /// Keep the encoded event.
    Put(u64, &'a [u8]),
    /// This webhook is done with the event.
    Done(u64, &'a str),
    /// Every webhook is done with the event.
    Remove(u64),
    /// The event came from this session and packet id, with this
    /// fingerprint.
    Remember {
        /// The event's sequence number.
        seq: u64,
        /// The sender's session.
        session: &'a str,
        /// The packet id it gave the message.
        packet_id: u16,
        /// The content fingerprint.
        fingerprint: u64,
    },
    /// Forget the origin of this event.
    Forget(u64),
}

impl<'a> From<&'a Change> for Entry<'a> {
    fn from(change: &'a Change) -> Self {
        match change {
            Change::Put(seq, bytes) => Entry::Put(*seq, bytes),
            Change::Done(seq, hook) => Entry::Done(*seq, hook),
            Change::Remove(seq) => Entry::Remove(*seq),
            Change::Remember(origin, stored) => Entry::Remember {
                seq: stored.seq,
                session: &origin.session,
                packet_id: origin.packet_id,
                fingerprint: stored.fingerprint,
            },
            Change::Forget(seq) => Entry::Forget(*seq),
        }
    }
}

/// Why a frame cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Short, or its CRC does not match: a write cut short, where the log
    /// ends.
    #[error("a frame cut short")]
    Torn,
    /// Whole (its CRC matches) but not something edgehook writes: the file
    /// was changed by something else.
    #[error("{0}")]
    Invalid(&'static str),
}

/// Appends a frame of `kind` holding `entries` to `out`.
///
/// # Errors
/// When the frame would pass 4 GiB (the length field's bound).
pub fn write<'a>(
    out: &mut Vec<u8>,
    kind: FrameKind,
    entries: impl IntoIterator<Item = Entry<'a>>,
) -> Result<(), &'static str> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    out[start + 8] = kind as u8;
    for entry in entries {
        put_entry(out, entry)?;
    }
    let len = u32::try_from(out.len() - start - 8).map_err(|_| "a commit of more than 4 GiB")?;
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn put_entry(out: &mut Vec<u8>, entry: Entry<'_>) -> Result<(), &'static str> {
    let (tag, seq) = match entry {
        Entry::Put(seq, _) => (1, seq),
        Entry::Done(seq, _) => (2, seq),
        Entry::Remove(seq) => (3, seq),
        Entry::Remember { seq, .. } => (4, seq),
        Entry::Forget(seq) => (5, seq),
    };
    out.push(tag);
    out.extend_from_slice(&seq.to_le_bytes());
    match entry {
        Entry::Put(_, bytes) => put_bytes(out, bytes),
        Entry::Done(_, hook) => put_bytes(out, hook.as_bytes()),
        Entry::Remember {
            session,
            packet_id,
            fingerprint,
            ..
        } => {
            out.extend_from_slice(&packet_id.to_le_bytes());
            out.extend_from_slice(&fingerprint.to_le_bytes());
            put_bytes(out, session.as_bytes())
        }
        Entry::Remove(_) | Entry::Forget(_) => Ok(()),
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), &'static str> {
    let len = u32::try_from(bytes.len()).map_err(|_| "a value of more than 4 GiB")?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// The frame at the start of `bytes`: its kind, its entries, and its whole
/// length.
pub fn read(bytes: &[u8]) -> Result<(FrameKind, Entries<'_>, usize), FrameError> {
    let (head, rest) = bytes.split_first_chunk::<8>().ok_or(FrameError::Torn)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let body = rest.get(..len).ok_or(FrameError::Torn)?;
    if len == 0 || crc32fast::hash(body) != crc {
        return Err(FrameError::Torn);
    }
    let kind = match body[0] {
        1 => FrameKind::Checkpoint,
        2 => FrameKind::Commit,
        _ => return Err(FrameError::Invalid("unknown frame kind")),
    };
    Ok((kind, Entries { rest: &body[1..] }, 8 + len))
}

/// The entries of a frame, in order.
#[derive(Debug)]
pub struct Entries<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let entry = self.entry();
        if entry.is_err() {
            self.rest = &[];
        }
        Some(entry)
    }
}

impl<'a> Entries<'a> {
    fn entry(&mut self) -> Result<Entry<'a>, FrameError> {
        let tag = self.take::<1>()?[0];
        let seq = u64::from_le_bytes(*self.take::<8>()?);
        Ok(match tag {
            1 => Entry::Put(seq, self.bytes()?),
            2 => Entry::Done(seq, self.text()?),
            3 => Entry::Remove(seq),
            4 => {
                let packet_id = u16::from_le_bytes(*self.take::<2>()?);
                let fingerprint = u64::from_le_bytes(*self.take::<8>()?);
                Entry::Remember {
                    seq,
                    session: self.text()?,
                    packet_id,
                    fingerprint,
                }
            }
            5 => Entry::Forget(seq),
            _ => return Err(FrameError::Invalid("unknown change")),
        })
    }

    fn take<const N: usize>(&mut self) -> Result<&'a [u8; N], FrameError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(FrameError::Invalid("a change cut short"))?;
        self.rest = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], FrameError> {
        let len = u32::from_le_bytes(*self.take::<4>()?) as usize;
        if self.rest.len() < len {
            return Err(FrameError::Invalid("a change cut short"));
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(bytes)
    }

    fn text(&mut self) -> Result<&'a str, FrameError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| FrameError::Invalid("a name not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [Entry<'static>; 5] {
        [
            Entry::Put(1, b"\x00event\xff"),
            Entry::Done(1, "webhook/a"),
            Entry::Remove(2),
            Entry::Remember {
                seq: 3,
                session: "device/d1",
                packet_id: 7,
                fingerprint: 0xdead_beef,
            },
            Entry::Forget(4),
        ]
    }

    #[test]
    fn frames_read_back_as_written_one_after_another() {
        let mut out = Vec::new();
        write(&mut out, FrameKind::Checkpoint, []).unwrap();
        write(&mut out, FrameKind::Commit, sample()).unwrap();
        let (kind, entries, len) = read(&out).unwrap();
        assert_eq!(
            (kind, entries.count(), len),
            (FrameKind::Checkpoint, 0, HEADER)
        );
        let (kind, entries, len) = read(&out[HEADER..]).unwrap();
        assert_eq!(kind, FrameKind::Commit);
        assert_eq!(len, out.len() - HEADER);
        let read: Vec<Entry> = entries.collect::<Result<_, _>>().unwrap();
        assert_eq!(read, sample());
    }

    #[test]
    fn a_frame_cut_short_or_changed_is_torn() {
        let mut out = Vec::new();
        write(&mut out, FrameKind::Commit, sample()).unwrap();
        for cut in [0, 4, 8, out.len() - 1] {
            assert_eq!(
                read(&out[..cut]).unwrap_err(),
                FrameError::Torn,
                "cut at {cut}"
            );
        }
        let mut flipped = out.clone();
        flipped[20] ^= 1;
        assert_eq!(read(&flipped).unwrap_err(), FrameError::Torn);
        assert_eq!(read(&[0; 16]).unwrap_err(), FrameError::Torn);
    }

    #[test]
    fn a_whole_frame_with_an_unknown_change_is_invalid() {
        let mut out = Vec::new();
        write(&mut out, FrameKind::Commit, [Entry::Remove(1)]).unwrap();
        out[HEADER] = 9;
        let crc = crc32fast::hash(&out[8..]);
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        let (_, mut entries, _) = read(&out).unwrap();
        assert_eq!(
            entries.next(),
            Some(Err(FrameError::Invalid("unknown change")))
        );
        assert_eq!(entries.next(), None);
    }
}
