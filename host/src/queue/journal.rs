//! The queue's file: a redb database in the data directory holding every
//! acknowledged event until all its webhooks are done with it.
//!
//! Three tables: `events` (sequence number → encoded event), `done`
//! ((sequence number, webhook name) → ()) for an event some of whose
//! webhooks have finished while others still retry, so that a restart does
//! not send it again to those that finished, and `origins` (sequence
//! number → (session, packet id, fingerprint)), where stored events came
//! from, so that a resend is recognised after a restart (see
//! [`super::origins`]); keyed by sequence number, so that a row is an
//! append and forgetting the oldest is cheap (the table is only read whole,
//! at start). Writes come in batches, one
//! transaction and one fsync each (group commit): the cost of durability
//! is shared by every event of the batch.

use std::path::Path;

use bytes::Bytes;
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};

use super::origins::Stored;
use crate::event::Event;
use crate::origin::Origin;
use crate::topic::{DeviceId, EventName};

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const DONE: TableDefinition<(u64, &str), ()> = TableDefinition::new("done");
const ORIGINS: TableDefinition<u64, (&str, u16, u64)> = TableDefinition::new("origins");

/// Why the queue file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// redb failed: the disk, the file, or a transaction.
    #[error("event queue {path}: {source}")]
    Store {
        /// The database file.
        path: String,
        /// redb's error.
        source: redb::Error,
    },
    /// A stored event does not decode: the file was changed by something
    /// other than edgehook.
    #[error("event queue {path}: stored event {seq} is corrupt: {reason}")]
    Corrupt {
        /// The database file.
        path: String,
        /// Its sequence number.
        seq: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// One change to the queue, applied in a batch.
#[derive(Debug)]
pub enum Change {
    /// Keep this event (already encoded with [`encode`]).
    Put(u64, Vec<u8>),
    /// This webhook is done with the event; others are not yet.
    Done(u64, std::sync::Arc<str>),
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

/// The open queue file.
#[derive(Debug)]
pub struct Journal {
    db: Database,
    path: String,
}

impl Journal {
    /// Opens (or creates) the queue file at `path`.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let shown = path.display().to_string();
        let store = |source: redb::Error| JournalError::Store {
            path: shown.clone(),
            source,
        };
        let db = Database::create(path).map_err(|e| store(e.into()))?;
        // Create the tables, so that reading an empty queue works.
        let tx = db.begin_write().map_err(|e| store(e.into()))?;
        tx.open_table(EVENTS).map_err(|e| store(e.into()))?;
        tx.open_table(DONE).map_err(|e| store(e.into()))?;
        tx.open_table(ORIGINS).map_err(|e| store(e.into()))?;
        tx.commit().map_err(|e| store(e.into()))?;
        Ok(Self { db, path: shown })
    }

    /// Applies `changes` in one transaction; returns once they are on disk.
    pub fn apply(&self, changes: &[Change]) -> Result<(), JournalError> {
        self.write(changes).map_err(|source| self.store(source))
    }

    fn write(&self, changes: &[Change]) -> Result<(), redb::Error> {
        let tx = self.db.begin_write()?;
        {
            let mut events = tx.open_table(EVENTS)?;
            let mut done = tx.open_table(DONE)?;
            let mut origins = tx.open_table(ORIGINS)?;
            for change in changes {
                match change {
                    Change::Put(seq, bytes) => {
                        events.insert(seq, bytes.as_slice())?;
                    }
                    Change::Done(seq, hook) => {
                        done.insert((*seq, hook.as_ref()), ())?;
                    }
                    Change::Remove(seq) => {
                        events.remove(seq)?;
                        // Most events have one webhook and no `done` rows.
                        let finished: Vec<String> = done
                            .range((*seq, "")..(seq + 1, ""))?
                            .map(|row| row.map(|(k, _)| k.value().1.to_owned()))
                            .collect::<Result<_, _>>()?;
                        for hook in &finished {
                            done.remove((*seq, hook.as_str()))?;
                        }
                    }
                    Change::Remember(origin, stored) => {
                        origins.insert(
                            stored.seq,
                            (
                                origin.session.as_ref(),
                                origin.packet_id,
                                stored.fingerprint,
                            ),
                        )?;
                    }
                    Change::Forget(seq) => {
                        origins.remove(seq)?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Every event still in the queue, oldest first.
    pub fn pending(&self) -> Result<Vec<Pending>, JournalError> {
        let (rows, done) = self.read().map_err(|source| self.store(source))?;
        let mut out = Vec::with_capacity(rows.len());
        for (seq, bytes) in rows {
            let event = decode(&bytes).map_err(|reason| JournalError::Corrupt {
                path: self.path.clone(),
                seq,
                reason,
            })?;
            out.push(Pending {
                seq,
                event,
                done: done
                    .iter()
                    .filter(|(s, _)| *s == seq)
                    .map(|(_, h)| h.clone())
                    .collect(),
                bytes: bytes.len(),
            });
        }
        Ok(out)
    }

    /// The origins of the last `max` stored events, oldest first, as the
    /// last run left them. Rows beyond those, or naming an origin that a
    /// newer row names too, are deleted.
    pub fn origins(&self, max: usize) -> Result<Vec<(Origin, Stored)>, JournalError> {
        self.read_origins(max).map_err(|source| self.store(source))
    }

    fn read_origins(&self, max: usize) -> Result<Vec<(Origin, Stored)>, redb::Error> {
        let rows: Vec<(u64, String, u16, u64)> = {
            let tx = self.db.begin_read()?;
            tx.open_table(ORIGINS)?
                .iter()?
                .map(|row| {
                    row.map(|(k, v)| {
                        let (session, packet_id, fingerprint) = v.value();
                        (k.value(), session.to_owned(), packet_id, fingerprint)
                    })
                })
                .collect::<Result<_, _>>()?
        };
        let mut kept = Vec::with_capacity(rows.len().min(max));
        let mut seen = std::collections::HashSet::new();
        let mut stale = Vec::new();
        for (seq, session, packet_id, fingerprint) in rows.into_iter().rev() {
            let origin = Origin {
                session: session.into(),
                packet_id,
            };
            if kept.len() < max && seen.insert(origin.clone()) {
                kept.push((origin, Stored { seq, fingerprint }));
            } else {
                stale.push(seq);
            }
        }
        if !stale.is_empty() {
            let tx = self.db.begin_write()?;
            {
                let mut origins = tx.open_table(ORIGINS)?;
                for seq in stale {
                    origins.remove(seq)?;
                }
            }
            tx.commit()?;
        }
        kept.reverse();
        Ok(kept)
    }

    #[expect(clippy::type_complexity, reason = "two plain row lists")]
    fn read(&self) -> Result<(Vec<(u64, Vec<u8>)>, Vec<(u64, String)>), redb::Error> {
        let tx = self.db.begin_read()?;
        let rows = tx
            .open_table(EVENTS)?
            .iter()?
            .map(|row| row.map(|(k, v)| (k.value(), v.value().to_vec())))
            .collect::<Result<_, _>>()?;
        let done = tx
            .open_table(DONE)?
            .iter()?
            .map(|row| {
                row.map(|(k, _)| {
                    let (seq, hook) = k.value();
                    (seq, hook.to_owned())
                })
            })
            .collect::<Result<_, _>>()?;
        Ok((rows, done))
    }

    fn store(&self, source: redb::Error) -> JournalError {
        JournalError::Store {
            path: self.path.clone(),
            source,
        }
    }
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

    fn event(name: &str, data: &'static [u8]) -> Event {
        Event::received(
            DeviceId::try_from("dev-1").unwrap(),
            EventName::try_from(name).unwrap(),
            Bytes::from_static(data),
        )
    }

    #[test]
    fn events_survive_reopening_with_their_done_webhooks_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue.redb");
        let a = event("temp/room", b"{\"t\":21.5}");
        let b = event("hum", b"\x00\xffbinary");
        {
            let journal = Journal::open(&path).unwrap();
            journal
                .apply(&[Change::Put(1, encode(&a)), Change::Put(2, encode(&b))])
                .unwrap();
            journal
                .apply(&[Change::Done(2, "webhook/x".into()), Change::Remove(1)])
                .unwrap();
        }
        let journal = Journal::open(&path).unwrap();
        let pending = journal.pending().unwrap();
        assert_eq!(pending.len(), 1);
        let p = &pending[0];
        assert_eq!(p.seq, 2);
        assert_eq!(p.event.id, b.id);
        assert_eq!(p.event.name.as_str(), "hum");
        assert_eq!(p.event.device.as_str(), "dev-1");
        assert_eq!(p.event.published_at, b.published_at);
        assert_eq!(&p.event.data[..], b"\x00\xffbinary");
        assert_eq!(p.done, ["webhook/x"]);
        assert_eq!(p.bytes, encode(&b).len());

        journal.apply(&[Change::Remove(2)]).unwrap();
        assert!(journal.pending().unwrap().is_empty());
        // Removing an event also forgets its `done` rows.
        journal.apply(&[Change::Put(2, encode(&b))]).unwrap();
        assert!(journal.pending().unwrap()[0].done.is_empty());
    }

    #[test]
    fn origins_survive_reopening_and_outlive_their_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue.redb");
        let stored = |seq| Stored {
            seq,
            fingerprint: seq * 10,
        };
        {
            let journal = Journal::open(&path).unwrap();
            let a = event("a", b"1");
            journal
                .apply(&[
                    Change::Put(1, encode(&a)),
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
        let journal = Journal::open(&path).unwrap();
        assert!(journal.pending().unwrap().is_empty());
        let origins = journal.origins(8).unwrap();
        assert_eq!(
            origins,
            [
                (Origin::device("d1", 7), stored(3)),
                (Origin::device("d2", 7), stored(4)),
                (Origin::device("d3", 7), stored(5)),
            ]
        );
        // Beyond the bound, or named again by a newer row: deleted.
        journal
            .apply(&[Change::Remember(Origin::device("d2", 7), stored(6))])
            .unwrap();
        assert_eq!(
            journal.origins(2).unwrap(),
            [
                (Origin::device("d3", 7), stored(5)),
                (Origin::device("d2", 7), stored(6)),
            ]
        );
        assert_eq!(journal.origins(8).unwrap().len(), 2);
    }

    #[test]
    fn a_corrupt_row_is_named() {
        assert_eq!(decode(b"\x05\x00\x00\x00ab").unwrap_err(), "truncated");
        let mut bytes = encode(&event("e", b""));
        bytes[40] = 0xff;
        assert!(decode(&bytes).is_err());
    }
}
