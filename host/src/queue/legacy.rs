//! The queue file of versions before the log: `data/queue.redb`, a redb
//! database. Read once, when the log does not exist yet, so that events
//! queued by an older version are delivered after the upgrade; the log's
//! first checkpoint takes them over and the old file is deleted.
//!
//! Its three tables: `events` (sequence number → encoded event), `done`
//! ((sequence number, webhook name) → ()), `origins` (sequence number →
//! (session, packet id, fingerprint)).

use std::path::Path;

use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};

/// The old queue file's name in the data directory.
pub const FILE: &str = "queue.redb";

pub(super) const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
pub(super) const DONE: TableDefinition<(u64, &str), ()> = TableDefinition::new("done");
pub(super) const ORIGINS: TableDefinition<u64, (&str, u16, u64)> = TableDefinition::new("origins");

/// What an old queue file held.
#[derive(Debug, Default)]
pub struct Legacy {
    /// Sequence number and encoded event.
    pub events: Vec<(u64, Vec<u8>)>,
    /// Sequence number and the name of a webhook done with it.
    pub done: Vec<(u64, String)>,
    /// Sequence number, session, packet id, fingerprint.
    pub origins: Vec<(u64, String, u16, u64)>,
}

/// Reads the old queue file at `path`.
pub fn read(path: &Path) -> Result<Legacy, redb::Error> {
    let db = Database::open(path)?;
    let tx = db.begin_read()?;
    let mut legacy = Legacy::default();
    // A table never written is missing: nothing in it.
    let missing = |e: &redb::TableError| matches!(e, redb::TableError::TableDoesNotExist(_));
    match tx.open_table(EVENTS) {
        Ok(table) => {
            for row in table.iter()? {
                let (k, v) = row?;
                legacy.events.push((k.value(), v.value().to_vec()));
            }
        }
        Err(e) if missing(&e) => {}
        Err(e) => return Err(e.into()),
    }
    match tx.open_table(DONE) {
        Ok(table) => {
            for row in table.iter()? {
                let (key, _) = row?;
                let (seq, hook) = key.value();
                legacy.done.push((seq, hook.to_owned()));
            }
        }
        Err(e) if missing(&e) => {}
        Err(e) => return Err(e.into()),
    }
    match tx.open_table(ORIGINS) {
        Ok(table) => {
            for row in table.iter()? {
                let (k, v) = row?;
                let (session, packet_id, fingerprint) = v.value();
                legacy
                    .origins
                    .push((k.value(), session.to_owned(), packet_id, fingerprint));
            }
        }
        Err(e) if missing(&e) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(legacy)
}
