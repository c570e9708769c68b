//! The plugins' buckets on one host: `data/kv.redb`, one table of entries
//! keyed by (bucket, key), one of each bucket's number of keys. Every write
//! is one redb transaction, durable when it returns (so a kill -9 keeps
//! it); transactions are serial, so a swap or an increment is exact.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use redb::backends::{FileBackend, InMemoryBackend};
use redb::{
    Database, ReadableDatabase as _, ReadableTable as _, Table, TableDefinition, WriteTransaction,
};

use super::kv::{
    Bucket, Entry, KeyValue, Keys, KvError, Swapped, Write, alive, expiry, now_ms, sum,
};

/// (bucket, key) → revision (8 bytes LE), expiry in ms since the epoch (8
/// bytes LE, 0: none), the value.
const ENTRIES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("entries");
/// Bucket → its rows in `ENTRIES` (expired ones until they are purged).
const COUNTS: TableDefinition<&str, u64> = TableDefinition::new("counts");
/// `revision` → the last revision given.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Keys in one page of `list-keys`.
const PAGE: usize = 1000;

/// The buckets in a redb file (or in memory, for `edgehook plugin test`).
#[derive(Debug, Clone)]
pub struct KvFile {
    db: Arc<Database>,
}

fn store(e: impl std::fmt::Display) -> KvError {
    KvError::Store(e.to_string())
}

/// A stored row.
struct Row {
    revision: u64,
    expires: u64,
    value: Bytes,
}

impl Row {
    fn decode(bytes: &[u8]) -> Option<Self> {
        let revision = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let expires = u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?);
        Some(Self {
            revision,
            expires,
            value: Bytes::copy_from_slice(&bytes[16..]),
        })
    }

    fn encode(revision: u64, how: Write, value: &[u8]) -> Vec<u8> {
        let expires = expiry(how.ttl);
        let mut out = Vec::with_capacity(16 + value.len());
        out.extend_from_slice(&revision.to_le_bytes());
        out.extend_from_slice(&expires.to_le_bytes());
        out.extend_from_slice(value);
        out
    }

    fn live(&self, now: u64) -> bool {
        alive(self.expires, now)
    }

    fn entry(self) -> Entry {
        Entry {
            value: self.value,
            revision: self.revision,
        }
    }
}

impl KvFile {
    /// Opens (or creates) `data/kv.redb` in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, KvError> {
        let path = data_dir.join("kv.redb");
        let file = crate::files::private_options()
            .open(&path)
            .map_err(|e| store(format!("{}: {e}", path.display())))?;
        let db = FileBackend::new(file)
            .and_then(|backend| Database::builder().create_with_backend(backend))
            .map_err(|e| store(format!("{}: {e}", path.display())))?;
        Self::ready(db)
    }

    /// Buckets in memory, gone with the process.
    pub fn in_memory() -> Result<Self, KvError> {
        let db = Database::builder()
            .create_with_backend(InMemoryBackend::new())
            .map_err(store)?;
        Self::ready(db)
    }

    fn ready(db: Database) -> Result<Self, KvError> {
        let tx = db.begin_write().map_err(store)?;
        tx.open_table(ENTRIES).map_err(store)?;
        tx.open_table(COUNTS).map_err(store)?;
        tx.open_table(META).map_err(store)?;
        tx.commit().map_err(store)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Runs `f` on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, KvError> + Send + 'static,
    ) -> Result<T, KvError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(store)?
    }

    /// Runs `f` in one write transaction and commits it.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, KvError> + Send + 'static,
    ) -> Result<T, KvError> {
        self.blocking(move |db| {
            let tx = db.begin_write().map_err(store)?;
            let out = f(&tx)?;
            tx.commit().map_err(store)?;
            Ok(out)
        })
        .await
    }
}

/// The live row at (bucket, key) in `tx`.
fn current(tx: &WriteTransaction, bucket: &str, key: &str) -> Result<Option<Row>, KvError> {
    let entries = tx.open_table(ENTRIES).map_err(store)?;
    let row = entries
        .get((bucket, key))
        .map_err(store)?
        .and_then(|v| Row::decode(v.value()));
    Ok(row.filter(|r| r.live(now_ms())))
}

/// Writes `value` at (bucket, key) in `tx`, counting a new key against
/// `how.max_keys` (expired keys of the bucket are purged first when it is
/// full).
fn put(
    tx: &WriteTransaction,
    (bucket, key): (&str, &str),
    value: &[u8],
    how: Write,
) -> Result<(), KvError> {
    let mut meta = tx.open_table(META).map_err(store)?;
    let revision = meta
        .get("revision")
        .map_err(store)?
        .map_or(0, |v| v.value())
        + 1;
    meta.insert("revision", revision).map_err(store)?;
    let mut entries = tx.open_table(ENTRIES).map_err(store)?;
    let row = Row::encode(revision, how, value);
    let had = entries
        .insert((bucket, key), row.as_slice())
        .map_err(store)?
        .is_some();
    if had {
        return Ok(());
    }
    let mut counts = tx.open_table(COUNTS).map_err(store)?;
    let mut count = counts.get(bucket).map_err(store)?.map_or(0, |v| v.value());
    if count >= how.max_keys as u64 {
        let now = now_ms();
        count -= remove_where(&mut entries, bucket, |row| {
            Row::decode(row).is_some_and(|r| !r.live(now))
        })?;
        if count >= how.max_keys as u64 {
            return Err(KvError::Full { max: how.max_keys });
        }
    }
    counts.insert(bucket, count + 1).map_err(store)?;
    Ok(())
}

/// Removes the rows of `bucket` that `gone` picks (by their stored
/// bytes); how many.
fn remove_where(
    entries: &mut Table<'_, (&'static str, &'static str), &'static [u8]>,
    bucket: &str,
    gone: impl Fn(&[u8]) -> bool,
) -> Result<u64, KvError> {
    let mut picked = Vec::new();
    for row in entries.range((bucket, "")..).map_err(store)? {
        let (k, v) = row.map_err(store)?;
        let (of, key) = k.value();
        if of != bucket {
            break;
        }
        if gone(v.value()) {
            picked.push(key.to_owned());
        }
    }
    for key in &picked {
        entries.remove((bucket, key.as_str())).map_err(store)?;
    }
    Ok(picked.len() as u64)
}

#[async_trait::async_trait]
impl KeyValue for KvFile {
    async fn get(&self, bucket: &Bucket, key: &str) -> Result<Option<Entry>, KvError> {
        let (bucket, key) = (bucket.name(), key.to_owned());
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(store)?;
            let entries = tx.open_table(ENTRIES).map_err(store)?;
            let row = entries
                .get((bucket.as_str(), key.as_str()))
                .map_err(store)?
                .and_then(|v| Row::decode(v.value()));
            Ok(row.filter(|r| r.live(now_ms())).map(Row::entry))
        })
        .await
    }

    async fn set(
        &self,
        bucket: &Bucket,
        key: &str,
        value: Bytes,
        how: Write,
    ) -> Result<(), KvError> {
        let (bucket, key) = (bucket.name(), key.to_owned());
        self.write(move |tx| put(tx, (&bucket, &key), &value, how))
            .await
    }

    async fn delete(&self, bucket: &Bucket, key: &str) -> Result<(), KvError> {
        let (bucket, key) = (bucket.name(), key.to_owned());
        self.write(move |tx| {
            let mut entries = tx.open_table(ENTRIES).map_err(store)?;
            if entries
                .remove((bucket.as_str(), key.as_str()))
                .map_err(store)?
                .is_some()
            {
                let mut counts = tx.open_table(COUNTS).map_err(store)?;
                let count = counts
                    .get(bucket.as_str())
                    .map_err(store)?
                    .map_or(0, |v| v.value());
                counts
                    .insert(bucket.as_str(), count.saturating_sub(1))
                    .map_err(store)?;
            }
            Ok(())
        })
        .await
    }

    async fn size(&self, bucket: &Bucket) -> Result<u64, KvError> {
        let name = bucket.name();
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(store)?;
            let counts = tx.open_table(COUNTS).map_err(store)?;
            Ok(counts
                .get(name.as_str())
                .map_err(store)?
                .map_or(0, |v| v.value()))
        })
        .await
    }

    async fn keys(&self, bucket: &Bucket, cursor: Option<&str>) -> Result<Keys, KvError> {
        let (bucket, cursor) = (bucket.name(), cursor.map(str::to_owned));
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(store)?;
            let entries = tx.open_table(ENTRIES).map_err(store)?;
            let from = cursor.as_deref().unwrap_or("");
            let now = now_ms();
            let mut keys = Vec::new();
            for row in entries.range((bucket.as_str(), from)..).map_err(store)? {
                let (k, v) = row.map_err(store)?;
                let (b, key) = k.value();
                if b != bucket {
                    break;
                }
                if cursor.as_deref() == Some(key)
                    || !Row::decode(v.value()).is_some_and(|r| r.live(now))
                {
                    continue;
                }
                if keys.len() == PAGE {
                    let cursor = keys.last().cloned();
                    return Ok(Keys { keys, cursor });
                }
                keys.push(key.to_owned());
            }
            Ok(Keys { keys, cursor: None })
        })
        .await
    }

    async fn swap(
        &self,
        bucket: &Bucket,
        key: &str,
        revision: Option<u64>,
        value: Bytes,
        how: Write,
    ) -> Result<Swapped, KvError> {
        let (bucket, key) = (bucket.name(), key.to_owned());
        self.write(move |tx| {
            let now = current(tx, &bucket, &key)?;
            if now.as_ref().map(|r| r.revision) != revision {
                return Ok(Swapped::Changed(now.map(Row::entry)));
            }
            put(tx, (&bucket, &key), &value, how)?;
            Ok(Swapped::Done)
        })
        .await
    }

    async fn increment(
        &self,
        bucket: &Bucket,
        key: &str,
        delta: i64,
        how: Write,
    ) -> Result<i64, KvError> {
        let (bucket, key) = (bucket.name(), key.to_owned());
        self.write(move |tx| {
            let was = current(tx, &bucket, &key)?;
            let sum = sum(&key, was.as_ref().map(|row| &row.value[..]), delta)?;
            put(tx, (&bucket, &key), sum.to_string().as_bytes(), how)?;
            Ok(sum)
        })
        .await
    }

    async fn clear(&self, bucket: &Bucket) -> Result<(), KvError> {
        let bucket = bucket.name();
        self.write(move |tx| {
            let mut entries = tx.open_table(ENTRIES).map_err(store)?;
            remove_where(&mut entries, &bucket, |_| true)?;
            tx.open_table(COUNTS)
                .map_err(store)?
                .remove(bucket.as_str())
                .map_err(store)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::topic::DeviceId;

    fn bucket(device: Option<&str>) -> Bucket {
        Bucket {
            plugin: "p".into(),
            device: device.map(|d| DeviceId::try_from(d).unwrap()),
        }
    }

    const KEEP: Write = Write {
        ttl: None,
        max_keys: 3,
    };

    #[tokio::test]
    async fn a_swap_holds_only_on_the_revision_it_read() {
        let kv = KvFile::in_memory().unwrap();
        let b = bucket(None);
        let absent = kv.swap(&b, "k", None, "1".into(), KEEP).await.unwrap();
        assert_eq!(absent, Swapped::Done);
        let read = kv.get(&b, "k").await.unwrap().unwrap();
        kv.set(&b, "k", "2".into(), KEEP).await.unwrap();
        let stale = kv
            .swap(&b, "k", Some(read.revision), "3".into(), KEEP)
            .await
            .unwrap();
        let Swapped::Changed(Some(now)) = stale else {
            panic!("{stale:?}")
        };
        assert_eq!(now.value, "2");
        let fresh = kv
            .swap(&b, "k", Some(now.revision), "3".into(), KEEP)
            .await
            .unwrap();
        assert_eq!(fresh, Swapped::Done);
        assert_eq!(kv.get(&b, "k").await.unwrap().unwrap().value, "3");
    }

    #[tokio::test]
    async fn buckets_are_apart_and_full_ones_refuse_new_keys_only() {
        let kv = KvFile::in_memory().unwrap();
        let (own, device) = (bucket(None), bucket(Some("d1")));
        for key in ["a", "b", "c"] {
            kv.set(&own, key, "v".into(), KEEP).await.unwrap();
        }
        assert!(matches!(
            kv.set(&own, "d", "v".into(), KEEP).await,
            Err(KvError::Full { max: 3 })
        ));
        kv.set(&own, "a", "again".into(), KEEP).await.unwrap();
        kv.set(&device, "d", "v".into(), KEEP).await.unwrap();
        assert_eq!(kv.get(&device, "a").await.unwrap(), None);
        kv.delete(&own, "a").await.unwrap();
        kv.set(&own, "d", "v".into(), KEEP).await.unwrap();
        assert_eq!(kv.keys(&own, None).await.unwrap().keys, ["b", "c", "d"]);
        kv.clear(&own).await.unwrap();
        assert!(kv.keys(&own, None).await.unwrap().keys.is_empty());
        assert_eq!(kv.keys(&device, None).await.unwrap().keys, ["d"]);
    }

    #[tokio::test]
    async fn expired_keys_read_as_absent_and_make_room() {
        let kv = KvFile::in_memory().unwrap();
        let b = bucket(None);
        let brief = Write {
            ttl: Some(Duration::from_millis(20)),
            ..KEEP
        };
        for key in ["a", "b", "c"] {
            kv.set(&b, key, "v".into(), brief).await.unwrap();
        }
        assert!(kv.get(&b, "a").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(kv.get(&b, "a").await.unwrap(), None);
        assert!(kv.keys(&b, None).await.unwrap().keys.is_empty());
        kv.set(&b, "d", "v".into(), KEEP).await.unwrap();
        assert_eq!(kv.increment(&b, "a", 5, KEEP).await.unwrap(), 5);
    }

    #[tokio::test]
    async fn increments_count_decimal_text_and_refuse_anything_else() {
        let kv = KvFile::in_memory().unwrap();
        let b = bucket(None);
        assert_eq!(kv.increment(&b, "n", 2, KEEP).await.unwrap(), 2);
        assert_eq!(kv.increment(&b, "n", -5, KEEP).await.unwrap(), -3);
        kv.set(&b, "text", "x".into(), KEEP).await.unwrap();
        assert!(matches!(
            kv.increment(&b, "text", 1, KEEP).await,
            Err(KvError::NotCounter { .. })
        ));
        kv.set(&b, "max", i64::MAX.to_string().into(), KEEP)
            .await
            .unwrap();
        assert!(matches!(
            kv.increment(&b, "max", 1, KEEP).await,
            Err(KvError::NotCounter { .. })
        ));
    }

    #[tokio::test]
    async fn keys_come_in_pages() {
        let kv = KvFile::in_memory().unwrap();
        let b = bucket(None);
        let many = Write {
            ttl: None,
            max_keys: 5000,
        };
        for i in 0..PAGE + 5 {
            kv.set(&b, &format!("k{i:05}"), "v".into(), many)
                .await
                .unwrap();
        }
        let first = kv.keys(&b, None).await.unwrap();
        assert_eq!(first.keys.len(), PAGE);
        let second = kv.keys(&b, first.cursor.as_deref()).await.unwrap();
        assert_eq!(second.keys.len(), 5);
        assert_eq!(second.cursor, None);
        assert!(!second.keys.contains(first.keys.last().unwrap()));
    }
}
