//! This host's delivery history: `data/history.redb`. Attempts are keyed
//! by the microsecond they were kept (made unique), so the oldest are
//! first to go and a page is a range read backwards; each starts with the
//! fields the filters test (outcome, time, webhook, device, event id), so
//! a filter reads no JSON it does not return. Beside them: the attempts
//! of each event, the events themselves (for replays), and the dead
//! letters, by their attempt and by (webhook, event).
//!
//! One append is one transaction, durable when it returns; the writer
//! task batches, so it is one `fsync` for however many attempts came
//! meanwhile. Retention is enforced by every append and every prune:
//! attempts older than `max_age` go, then the oldest until the bytes held
//! are within `max_bytes`; an event goes with its last attempt.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use redb::backends::FileBackend;
use redb::{
    Database, MultimapTableDefinition, ReadableDatabase as _, ReadableMultimapTable as _,
    ReadableTable as _, TableDefinition, WriteTransaction,
};

use super::history::{
    Attempt, Filter, Held, History, HistoryError, Outcome, Page, Retention, Target,
};
use crate::event::Event;

/// Key → header (see [`Header`]) then the attempt as JSON.
const ATTEMPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("attempts");
/// Event id → the keys of its attempts.
const BY_EVENT: MultimapTableDefinition<&str, u64> = MultimapTableDefinition::new("by_event");
/// Event id → the event, encoded.
const EVENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("events");
/// Key of an attempt that gave up and is the last of its (webhook, event).
const DEAD: TableDefinition<u64, ()> = TableDefinition::new("dead");
/// (webhook, event id) → the key in `DEAD`.
const DEAD_PAIRS: TableDefinition<(&str, &str), u64> = TableDefinition::new("dead_pairs");
/// `bytes`, `attempts` → the totals held.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// redb's page cache for the history: it is written far more than read,
/// and the default (1 GiB) would grow the host by what it writes.
const CACHE_BYTES: usize = 4 << 20;

/// Most attempts one append or prune lets go of; the rest go next time,
/// so that no write transaction grows without bound.
const PRUNE_MAX: usize = 20_000;

/// Attempts a page, the dead letters or a replay look at, at most, before
/// answering with what they found (and a cursor to go on from).
const SCAN_MAX: usize = 200_000;

fn store(e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Store(e.to_string())
}

/// The delivery history in a redb file.
#[derive(Debug, Clone)]
pub struct HistoryFile {
    db: Arc<Database>,
    retention: Arc<ArcSwap<Retention>>,
    /// The last key given.
    last: Arc<AtomicU64>,
    held: Arc<[AtomicU64; 2]>,
}

/// The fields a filter tests, before an attempt's JSON.
struct Header<'a> {
    outcome: Outcome,
    at: SystemTime,
    webhook: &'a str,
    device: &'a str,
    event_id: &'a str,
    json: &'a [u8],
}

impl<'a> Header<'a> {
    fn encode(a: &Attempt) -> Result<Vec<u8>, HistoryError> {
        let json = serde_json::to_vec(a).map_err(store)?;
        let mut out = Vec::with_capacity(json.len() + 64);
        out.push(a.outcome.code());
        out.extend_from_slice(&micros(a.at).to_le_bytes());
        for text in [&a.webhook, &a.device, &a.event_id] {
            let n = u16::try_from(text.len()).map_err(store)?;
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(&json);
        Ok(out)
    }

    fn decode(bytes: &'a [u8]) -> Option<Self> {
        let (&outcome, rest) = bytes.split_first()?;
        let (at, mut rest) = rest.split_first_chunk::<8>()?;
        let mut text = || -> Option<&'a str> {
            let (n, tail) = rest.split_first_chunk::<2>()?;
            let n = usize::from(u16::from_le_bytes(*n));
            let (text, tail) = tail.split_at_checked(n)?;
            rest = tail;
            std::str::from_utf8(text).ok()
        };
        let (webhook, device, event_id) = (text()?, text()?, text()?);
        Some(Self {
            outcome: Outcome::of_code(outcome)?,
            at: UNIX_EPOCH + Duration::from_micros(u64::from_le_bytes(*at)),
            webhook,
            device,
            event_id,
            json: rest,
        })
    }

    fn selected_by(&self, filter: &Filter) -> bool {
        filter.selects(self.webhook, self.device, self.outcome, self.at)
    }

    fn attempt(&self) -> Result<Attempt, HistoryError> {
        serde_json::from_slice(self.json).map_err(store)
    }
}

fn micros(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn corrupt(key: u64) -> HistoryError {
    HistoryError::Store(format!("attempt {key} is corrupt"))
}

impl HistoryFile {
    /// Opens (or creates) `data/history.redb` in `data_dir`, keeping what
    /// `retention` allows.
    pub fn open(data_dir: &Path, retention: Retention) -> Result<Self, HistoryError> {
        let path = data_dir.join("history.redb");
        let named = |e: &dyn std::fmt::Display| store(format!("{}: {e}", path.display()));
        let file = crate::files::private_options()
            .open(&path)
            .map_err(|e| named(&e))?;
        let db = FileBackend::new(file)
            .and_then(|backend| {
                Database::builder()
                    .set_cache_size(CACHE_BYTES)
                    .create_with_backend(backend)
            })
            .map_err(|e| named(&e))?;
        let tx = db.begin_write().map_err(store)?;
        tx.open_multimap_table(BY_EVENT).map_err(store)?;
        tx.open_table(EVENTS).map_err(store)?;
        tx.open_table(DEAD).map_err(store)?;
        tx.open_table(DEAD_PAIRS).map_err(store)?;
        let last = tx
            .open_table(ATTEMPTS)
            .map_err(store)?
            .last()
            .map_err(store)?
            .map_or(0, |(k, _)| k.value());
        let totals = Totals::read(&tx)?;
        tx.commit().map_err(store)?;
        Ok(Self {
            db: Arc::new(db),
            retention: Arc::new(ArcSwap::from_pointee(retention)),
            last: Arc::new(AtomicU64::new(last)),
            held: Arc::new([
                AtomicU64::new(totals.attempts),
                AtomicU64::new(totals.bytes),
            ]),
        })
    }

    /// A key after every key given, at about the time now.
    fn next_key(&self) -> u64 {
        let now = micros(SystemTime::now());
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let key = now.max(last + 1);
            match self
                .last
                .compare_exchange(last, key, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return key,
                Err(seen) => last = seen,
            }
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, HistoryError> + Send + 'static,
    ) -> Result<T, HistoryError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(store)?
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction, &mut Totals) -> Result<T, HistoryError>,
    ) -> Result<T, HistoryError> {
        let tx = self.db.begin_write().map_err(store)?;
        let mut totals = Totals::read(&tx)?;
        let out = f(&tx, &mut totals)?;
        self.prune_in(&tx, &mut totals)?;
        totals.write(&tx)?;
        tx.commit().map_err(store)?;
        self.held[0].store(totals.attempts, Ordering::Relaxed);
        self.held[1].store(totals.bytes, Ordering::Relaxed);
        Ok(out)
    }

    fn append_in(
        &self,
        tx: &WriteTransaction,
        totals: &mut Totals,
        events: &[Event],
        attempts: &[Attempt],
    ) -> Result<(), HistoryError> {
        let mut events_t = tx.open_table(EVENTS).map_err(store)?;
        for event in events {
            if events_t.get(event.id.as_str()).map_err(store)?.is_none() {
                let bytes = event.encode();
                totals.bytes += bytes.len() as u64;
                events_t
                    .insert(event.id.as_str(), bytes.as_slice())
                    .map_err(store)?;
            }
        }
        let mut attempts_t = tx.open_table(ATTEMPTS).map_err(store)?;
        let mut by_event = tx.open_multimap_table(BY_EVENT).map_err(store)?;
        let mut dead = tx.open_table(DEAD).map_err(store)?;
        let mut pairs = tx.open_table(DEAD_PAIRS).map_err(store)?;
        for attempt in attempts {
            let key = self.next_key();
            let row = Header::encode(attempt)?;
            totals.bytes += row.len() as u64;
            totals.attempts += 1;
            attempts_t.insert(key, row.as_slice()).map_err(store)?;
            by_event
                .insert(attempt.event_id.as_str(), key)
                .map_err(store)?;
            let pair = (attempt.webhook.as_str(), attempt.event_id.as_str());
            if let Some(old) = pairs.remove(pair).map_err(store)? {
                dead.remove(old.value()).map_err(store)?;
            }
            if attempt.outcome == Outcome::GaveUp {
                pairs.insert(pair, key).map_err(store)?;
                dead.insert(key, ()).map_err(store)?;
            }
        }
        Ok(())
    }

    /// Lets go of the oldest attempts past the retention, at most
    /// [`PRUNE_MAX`] of them.
    fn prune_in(&self, tx: &WriteTransaction, totals: &mut Totals) -> Result<(), HistoryError> {
        let retention = **self.retention.load();
        let oldest_kept = micros(SystemTime::now())
            .saturating_sub(u64::try_from(retention.max_age.as_micros()).unwrap_or(u64::MAX));
        let mut attempts_t = tx.open_table(ATTEMPTS).map_err(store)?;
        let mut by_event = tx.open_multimap_table(BY_EVENT).map_err(store)?;
        let mut events_t = tx.open_table(EVENTS).map_err(store)?;
        let mut dead = tx.open_table(DEAD).map_err(store)?;
        let mut pairs = tx.open_table(DEAD_PAIRS).map_err(store)?;
        for _ in 0..PRUNE_MAX {
            let Some((key, row)) = attempts_t
                .first()
                .map_err(store)?
                .map(|(k, r)| (k.value(), r.value().to_vec()))
            else {
                break;
            };
            if key >= oldest_kept && totals.bytes <= retention.max_bytes {
                break;
            }
            attempts_t.remove(key).map_err(store)?;
            totals.attempts = totals.attempts.saturating_sub(1);
            totals.bytes = totals.bytes.saturating_sub(row.len() as u64);
            let Some(header) = Header::decode(&row) else {
                continue;
            };
            by_event.remove(header.event_id, key).map_err(store)?;
            if dead.remove(key).map_err(store)?.is_some() {
                pairs
                    .remove((header.webhook, header.event_id))
                    .map_err(store)?;
            }
            let orphan = by_event
                .get(header.event_id)
                .map_err(store)?
                .next()
                .is_none();
            if orphan && let Some(gone) = events_t.remove(header.event_id).map_err(store)? {
                totals.bytes = totals.bytes.saturating_sub(gone.value().len() as u64);
            }
        }
        Ok(())
    }

    /// Attempts `filter` selects, newest first, after `cursor`, up to
    /// `limit` of them; with `dead`, among the dead letters only.
    fn page_of(
        &self,
        filter: &Filter,
        dead: bool,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page, HistoryError> {
        let before = match cursor {
            None => u64::MAX,
            Some(c) => c
                .parse::<u64>()
                .map_err(|_| HistoryError::Cursor(c.to_owned()))?,
        };
        let tx = self.db.begin_read().map_err(store)?;
        let attempts_t = tx.open_table(ATTEMPTS).map_err(store)?;
        let mut page = Page::default();
        let mut scanned = 0;
        let mut last = None;
        let mut take = |key: u64, row: &[u8]| -> Result<bool, HistoryError> {
            scanned += 1;
            last = Some(key);
            let header = Header::decode(row).ok_or_else(|| corrupt(key))?;
            if header.selected_by(filter) {
                page.attempts.push(header.attempt()?);
            }
            Ok(page.attempts.len() < limit && scanned < SCAN_MAX)
        };
        let mut more = false;
        if dead {
            let dead_t = tx.open_table(DEAD).map_err(store)?;
            for entry in dead_t.range(..before).map_err(store)?.rev() {
                let key = entry.map_err(store)?.0.value();
                let Some(row) = attempts_t.get(key).map_err(store)? else {
                    continue;
                };
                if !take(key, row.value())? {
                    more = true;
                    break;
                }
            }
        } else {
            for entry in attempts_t.range(..before).map_err(store)?.rev() {
                let (key, row) = entry.map_err(store)?;
                if !take(key.value(), row.value())? {
                    more = true;
                    break;
                }
            }
        }
        page.next = more.then(|| last.map(|k| k.to_string())).flatten();
        Ok(page)
    }

    fn targets_of(&self, filter: &Filter, max: usize) -> Result<Vec<Target>, HistoryError> {
        let tx = self.db.begin_read().map_err(store)?;
        let attempts_t = tx.open_table(ATTEMPTS).map_err(store)?;
        // A pair is judged by its newest attempt, which comes first.
        let mut seen = std::collections::HashSet::<(String, String)>::new();
        let mut targets = Vec::new();
        for entry in attempts_t.iter().map_err(store)?.rev() {
            let (key, row) = entry.map_err(store)?;
            let header = Header::decode(row.value()).ok_or_else(|| corrupt(key.value()))?;
            let pair = (header.event_id.to_owned(), header.webhook.to_owned());
            if !seen.insert(pair.clone()) || !header.selected_by(filter) {
                continue;
            }
            if targets.len() == max {
                break;
            }
            targets.push(Target {
                event_id: pair.0,
                webhook: pair.1,
                attempts: header.attempt()?.number,
            });
        }
        Ok(targets)
    }
}

/// The totals kept in `META`.
struct Totals {
    bytes: u64,
    attempts: u64,
}

impl Totals {
    fn read(tx: &WriteTransaction) -> Result<Self, HistoryError> {
        let meta = tx.open_table(META).map_err(store)?;
        let get = |k| -> Result<u64, HistoryError> {
            Ok(meta.get(k).map_err(store)?.map_or(0, |v| v.value()))
        };
        Ok(Self {
            bytes: get("bytes")?,
            attempts: get("attempts")?,
        })
    }

    fn write(&self, tx: &WriteTransaction) -> Result<(), HistoryError> {
        let mut meta = tx.open_table(META).map_err(store)?;
        meta.insert("bytes", self.bytes).map_err(store)?;
        meta.insert("attempts", self.attempts).map_err(store)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl History for HistoryFile {
    async fn append(&self, events: Vec<Event>, attempts: Vec<Attempt>) -> Result<(), HistoryError> {
        self.blocking(move |this| {
            this.write(|tx, totals| this.append_in(tx, totals, &events, &attempts))
        })
        .await
    }

    async fn page(
        &self,
        filter: Filter,
        dead: bool,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<Page, HistoryError> {
        self.blocking(move |this| this.page_of(&filter, dead, limit, cursor.as_deref()))
            .await
    }

    async fn of_event(&self, event_id: String) -> Result<Vec<Attempt>, HistoryError> {
        self.blocking(move |this| {
            let tx = this.db.begin_read().map_err(store)?;
            let by_event = tx.open_multimap_table(BY_EVENT).map_err(store)?;
            let attempts_t = tx.open_table(ATTEMPTS).map_err(store)?;
            let mut out = Vec::new();
            for key in by_event.get(event_id.as_str()).map_err(store)? {
                let key = key.map_err(store)?.value();
                if let Some(row) = attempts_t.get(key).map_err(store)? {
                    let header = Header::decode(row.value()).ok_or_else(|| corrupt(key))?;
                    out.push(header.attempt()?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn targets(&self, filter: Filter, max: usize) -> Result<Vec<Target>, HistoryError> {
        self.blocking(move |this| this.targets_of(&filter, max))
            .await
    }

    async fn event(&self, event_id: String) -> Result<Option<Event>, HistoryError> {
        self.blocking(move |this| {
            let tx = this.db.begin_read().map_err(store)?;
            let events_t = tx.open_table(EVENTS).map_err(store)?;
            let Some(bytes) = events_t.get(event_id.as_str()).map_err(store)? else {
                return Ok(None);
            };
            Event::decode(bytes.value())
                .map(Some)
                .map_err(|why| store(format!("event {event_id}: {why}")))
        })
        .await
    }

    async fn prune(&self) -> Result<(), HistoryError> {
        self.blocking(|this| this.write(|_, _| Ok(()))).await
    }

    fn retain(&self, retention: Retention) {
        self.retention.store(Arc::new(retention));
    }

    fn held(&self) -> Held {
        Held {
            attempts: self.held[0].load(Ordering::Relaxed),
            bytes: self.held[1].load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
#[path = "history_file/tests.rs"]
mod tests;
