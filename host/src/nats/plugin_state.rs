//! The plugins' key-value buckets shared by every host: one JetStream
//! key-value bucket, [`super::PLUGIN_STATE_BUCKET`], a key
//! `{plugin}.{owner}.{key}` per entry (`owner` is `_` for the plugin's own
//! bucket, `d` and the device id for a device's; the id and the key
//! base64url-encoded, as a key's tokens take few characters), and a key
//! `{plugin}.{owner}` per bucket holding its count of keys. A value is
//! kept behind its expiry (8 bytes, little-endian milliseconds since the
//! epoch, 0: never), so an expired key reads as absent on every host at
//! once. A swap is JetStream's update on the entry's revision; an
//! increment, a swap tried again until it holds.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{BufMut as _, Bytes, BytesMut};
use futures::StreamExt as _;

use async_nats::jetstream::kv;

use super::{Nats, NatsError, PLUGIN_STATE_BUCKET};
use crate::stores::kv::{
    Bucket, Entry, KeyValue, Keys, KvError, Swapped, Write, alive, expiry, now_ms, sum,
};

/// Keys in one page of `list-keys`.
const PAGE: usize = 1000;

/// Tries of a swap that loses to other hosts' writes before it gives up.
const TRIES: usize = 1000;

/// The buckets in JetStream.
#[derive(Clone)]
pub struct SharedState {
    kv: Arc<kv::Store>,
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedState")
            .field("bucket", &self.kv.name)
            .finish()
    }
}

/// A live entry: its value, its revision.
type Live = Option<Entry>;

fn store(e: impl std::fmt::Display) -> KvError {
    KvError::Store(format!("{PLUGIN_STATE_BUCKET}: {e}"))
}

/// Whether a write failed because another came first. A server of 2.11
/// answers a write expecting no entry yet (revision 0) that finds one with
/// error code 10164, which the client does not map to its
/// `WrongLastRevision`; both say "wrong last sequence".
fn lost(err: &impl std::fmt::Display) -> bool {
    err.to_string().contains("wrong last sequence")
}

/// The subject tokens of `bucket`: `{plugin}.{owner}`.
fn prefix(bucket: &Bucket) -> String {
    match &bucket.device {
        None => format!("{}._", bucket.plugin),
        Some(device) => format!(
            "{}.d{}",
            bucket.plugin,
            URL_SAFE_NO_PAD.encode(device.as_str())
        ),
    }
}

/// The key of `key` in `bucket` (`k` first: an empty key is a token too).
fn key_of(bucket: &Bucket, key: &str) -> String {
    format!("{}.k{}", prefix(bucket), URL_SAFE_NO_PAD.encode(key))
}

/// The plugin's key back from the last token of a key.
fn decode(token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token.strip_prefix('k')?).ok()?;
    String::from_utf8(bytes).ok()
}

fn stored(value: &[u8], how: Write) -> Bytes {
    let mut out = BytesMut::with_capacity(8 + value.len());
    out.put_u64_le(expiry(how.ttl));
    out.put_slice(value);
    out.freeze()
}

/// What `entry` holds for a plugin: `None` when deleted or expired.
fn live(entry: &kv::Entry) -> Live {
    if entry.operation != kv::Operation::Put {
        return None;
    }
    let expires = u64::from_le_bytes(entry.value.get(..8)?.try_into().ok()?);
    alive(expires, now_ms()).then(|| Entry {
        value: entry.value.slice(8..),
        revision: entry.revision,
    })
}

impl SharedState {
    /// The shared bucket, created when missing.
    pub async fn open(nats: &Nats) -> Result<Self, NatsError> {
        Ok(Self {
            kv: nats.bucket(PLUGIN_STATE_BUCKET).await?.into(),
        })
    }

    /// The latest entry of `key`, whatever its operation.
    async fn entry(&self, key: &str) -> Result<Option<kv::Entry>, KvError> {
        self.kv.entry(key).await.map_err(store)
    }

    /// Writes `value` at `key` if its latest entry is still `revision`
    /// (0: none); whether it held.
    async fn write_at(&self, key: &str, value: Bytes, revision: u64) -> Result<bool, KvError> {
        match self.kv.update(key, value, revision).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision || lost(&e) => Ok(false),
            Err(e) => Err(store(e)),
        }
    }

    /// Changes the count of keys of `bucket` to what `next` makes of it,
    /// as one step; `false` when `next` refuses (`None`).
    async fn recount(
        &self,
        bucket: &Bucket,
        next: impl Fn(u64) -> Option<u64>,
    ) -> Result<bool, KvError> {
        let key = prefix(bucket);
        for _ in 0..TRIES {
            let (now, revision) = counted(self.entry(&key).await?.as_ref());
            let Some(next) = next(now) else {
                return Ok(false);
            };
            if self
                .write_at(&key, next.to_string().into(), revision)
                .await?
            {
                return Ok(true);
            }
        }
        Err(store("the count of keys kept changing under this host"))
    }

    /// The count of keys of `bucket`.
    async fn counted(&self, bucket: &Bucket) -> Result<u64, KvError> {
        Ok(counted(self.entry(&prefix(bucket)).await?.as_ref()).0)
    }

    /// Counts a key out of `bucket`.
    async fn count_out(&self, bucket: &Bucket) -> Result<(), KvError> {
        self.recount(bucket, |n| Some(n.saturating_sub(1)))
            .await
            .map(drop)
    }

    /// Counts a new key into `bucket` if it holds fewer than `max` (after
    /// removing its expired keys, when it does not).
    async fn count_in(&self, bucket: &Bucket, max: usize) -> Result<(), KvError> {
        let max = max as u64;
        let room = |n: u64| (n < max).then_some(n + 1);
        if self.recount(bucket, room).await? {
            return Ok(());
        }
        self.purge_expired(bucket).await?;
        if self.recount(bucket, room).await? {
            return Ok(());
        }
        Err(KvError::Full {
            max: usize::try_from(max).unwrap_or(usize::MAX),
        })
    }

    /// The keys (as stored) of `bucket` with their latest entries.
    async fn entries(&self, bucket: &Bucket) -> Result<Vec<(String, kv::Entry)>, KvError> {
        let filter = format!("{}{}.>", self.kv.prefix, prefix(bucket));
        let mut subjects = self
            .kv
            .stream
            .info_with_subjects(filter)
            .await
            .map_err(store)?;
        let mut keys = Vec::new();
        while let Some(subject) = subjects.next().await {
            let (subject, _) = subject.map_err(store)?;
            if let Some(key) = subject.strip_prefix(&self.kv.prefix) {
                keys.push(key.to_owned());
            }
        }
        keys.sort_unstable();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(entry) = self.entry(&key).await? {
                out.push((key, entry));
            }
        }
        Ok(out)
    }

    /// Deletes the expired keys of `bucket`, counting them out.
    async fn purge_expired(&self, bucket: &Bucket) -> Result<(), KvError> {
        for (key, entry) in self.entries(bucket).await? {
            if entry.operation == kv::Operation::Put && live(&entry).is_none() {
                self.remove(bucket, &key, entry.revision).await?;
            }
        }
        Ok(())
    }

    /// Deletes `key` if it is still at `revision`, and counts it out.
    async fn remove(&self, bucket: &Bucket, key: &str, revision: u64) -> Result<(), KvError> {
        match self.kv.delete_expect_revision(key, Some(revision)).await {
            Ok(()) => self.count_out(bucket).await,
            Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision || lost(&e) => Ok(()),
            Err(e) => Err(store(e)),
        }
    }

    /// Writes `value` at `key` of `bucket` if the key is still as `read`
    /// (its latest entry; `None`: never written): a key that was absent
    /// (never written, deleted) is counted in first.
    async fn put_over(
        &self,
        bucket: &Bucket,
        key: &str,
        read: Option<&kv::Entry>,
        value: &[u8],
        how: Write,
    ) -> Result<bool, KvError> {
        let counted = read.is_some_and(|e| e.operation == kv::Operation::Put);
        if !counted {
            self.count_in(bucket, how.max_keys).await?;
        }
        let revision = read.map_or(0, |e| e.revision);
        let held = self.write_at(key, stored(value, how), revision).await?;
        if !held && !counted {
            self.count_out(bucket).await?;
        }
        Ok(held)
    }
}

#[async_trait::async_trait]
impl KeyValue for SharedState {
    async fn get(&self, bucket: &Bucket, key: &str) -> Result<Live, KvError> {
        Ok(self
            .entry(&key_of(bucket, key))
            .await?
            .as_ref()
            .and_then(live))
    }

    async fn set(
        &self,
        bucket: &Bucket,
        key: &str,
        value: Bytes,
        how: Write,
    ) -> Result<(), KvError> {
        let at = key_of(bucket, key);
        for _ in 0..TRIES {
            let read = self.entry(&at).await?;
            if self
                .put_over(bucket, &at, read.as_ref(), &value, how)
                .await?
            {
                return Ok(());
            }
        }
        Err(store(format!("key {key:?} kept changing under this host")))
    }

    async fn delete(&self, bucket: &Bucket, key: &str) -> Result<(), KvError> {
        let at = key_of(bucket, key);
        match self.entry(&at).await? {
            Some(entry) if entry.operation == kv::Operation::Put => {
                self.remove(bucket, &at, entry.revision).await
            }
            _ => Ok(()),
        }
    }

    async fn size(&self, bucket: &Bucket) -> Result<u64, KvError> {
        self.counted(bucket).await
    }

    async fn keys(&self, bucket: &Bucket, cursor: Option<&str>) -> Result<Keys, KvError> {
        let mut keys: Vec<String> = self
            .entries(bucket)
            .await?
            .into_iter()
            .filter(|(_, entry)| live(entry).is_some())
            .filter_map(|(key, _)| decode(key.rsplit('.').next()?))
            .filter(|key| cursor.is_none_or(|c| key.as_str() > c))
            .collect();
        keys.sort_unstable();
        let cursor = (keys.len() > PAGE).then(|| keys[PAGE - 1].clone());
        keys.truncate(PAGE);
        Ok(Keys { keys, cursor })
    }

    async fn swap(
        &self,
        bucket: &Bucket,
        key: &str,
        revision: Option<u64>,
        value: Bytes,
        how: Write,
    ) -> Result<Swapped, KvError> {
        let at = key_of(bucket, key);
        let read = self.entry(&at).await?;
        let now = read.as_ref().and_then(live);
        if now.as_ref().map(|e| e.revision) != revision {
            return Ok(Swapped::Changed(now));
        }
        if self
            .put_over(bucket, &at, read.as_ref(), &value, how)
            .await?
        {
            Ok(Swapped::Done)
        } else {
            Ok(Swapped::Changed(
                self.entry(&at).await?.as_ref().and_then(live),
            ))
        }
    }

    async fn increment(
        &self,
        bucket: &Bucket,
        key: &str,
        delta: i64,
        how: Write,
    ) -> Result<i64, KvError> {
        let at = key_of(bucket, key);
        for _ in 0..TRIES {
            let read = self.entry(&at).await?;
            let was = read.as_ref().and_then(live);
            let sum = sum(key, was.as_ref().map(|entry| &entry.value[..]), delta)?;
            let text = sum.to_string();
            if self
                .put_over(bucket, &at, read.as_ref(), text.as_bytes(), how)
                .await?
            {
                return Ok(sum);
            }
        }
        Err(store(format!("key {key:?} kept changing under this host")))
    }

    async fn clear(&self, bucket: &Bucket) -> Result<(), KvError> {
        for (key, entry) in self.entries(bucket).await? {
            if entry.operation == kv::Operation::Put {
                self.kv.delete(&key).await.map_err(store)?;
            }
        }
        self.kv.purge(prefix(bucket)).await.map_err(store)
    }
}

/// The count a bucket's count entry holds, and the entry's revision (0 when
/// there is none).
fn counted(entry: Option<&kv::Entry>) -> (u64, u64) {
    match entry {
        Some(e) if e.operation == kv::Operation::Put => (
            std::str::from_utf8(&e.value)
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0),
            e.revision,
        ),
        Some(e) => (0, e.revision),
        None => (0, 0),
    }
}
