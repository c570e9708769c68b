//! The plugins' key-value buckets (README "Keeping state"): the seam
//! between the runtime's `wasi:keyvalue` and where the buckets are kept
//! (`data/kv.redb` on one host, [`super::KvFile`]).
//!
//! The runtime checks the named limits before any adapter is called; an
//! adapter checks the one only it can, the keys of a bucket.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::topic::DeviceId;

/// Longest key a plugin may use, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Largest value a plugin may store, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Now, in milliseconds since the epoch: what expiries are kept in.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// When a value written now with `ttl` expires, in milliseconds since the
/// epoch; 0: never.
pub fn expiry(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |ttl| {
        now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
    })
}

/// Whether a value that expires at `expiry` (0: never) is alive at `now`.
pub fn alive(expiry: u64, now: u64) -> bool {
    expiry == 0 || expiry > now
}

/// `atomics.increment`'s rule, the same in every adapter: the counter at
/// `key` holds `was` (`None`: absent, 0), the decimal text of an `i64`;
/// the sum with `delta`.
pub fn sum(key: &str, was: Option<&[u8]>, delta: i64) -> Result<i64, KvError> {
    let refused = |reason| KvError::NotCounter {
        key: key.to_owned(),
        reason,
    };
    let was = match was {
        None => 0,
        Some(value) => std::str::from_utf8(value)
            .ok()
            .and_then(|text| text.parse::<i64>().ok())
            .ok_or_else(|| refused("its value is not the decimal text of an integer"))?,
    };
    was.checked_add(delta)
        .ok_or_else(|| refused("the sum is out of range"))
}

/// Whose bucket: a plugin's own, or the one it keeps for a device.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bucket {
    /// The plugin, by name.
    pub plugin: Arc<str>,
    /// `None`: the plugin's own bucket (`open("")`); `Some`: its bucket for
    /// this device (`open("device")`, the event's device).
    pub device: Option<DeviceId>,
}

impl Bucket {
    /// The bucket's name in a store: `PLUGIN` or `PLUGIN/DEVICE` (a
    /// plugin's name has no `/`).
    pub fn name(&self) -> String {
        match &self.device {
            None => self.plugin.to_string(),
            Some(device) => format!("{}/{}", self.plugin, device.as_str()),
        }
    }
}

/// A value with the store's revision of it: what a compare-and-swap
/// compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value as stored.
    pub value: Bytes,
    /// The store's revision of the key, new with every write.
    pub revision: u64,
}

/// How a write is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    /// Gone after this long (`edgehook:webhook/kv-ttl`); `None`: kept.
    pub ttl: Option<Duration>,
    /// Most keys the bucket may hold (`[limits] kv_max_keys`): a write that
    /// would add a key beyond it fails with [`KvError::Full`]; nothing is
    /// ever evicted to make room.
    pub max_keys: usize,
}

/// One page of a bucket's keys (`store.list-keys`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// The keys, in byte order.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` after the last.
    pub cursor: Option<String>,
}

/// What a compare-and-swap did (`atomics.swap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swapped {
    /// Written.
    Done,
    /// The key changed since the `cas` was made: what it holds now
    /// (`None`: absent), for the guest's next `cas` (`cas-failed`).
    Changed(Option<Entry>),
}

/// Why a key-value operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The bucket holds as many keys as it may.
    #[error("the bucket holds {max} keys, the most it may (kv_max_keys)")]
    Full {
        /// The limit.
        max: usize,
    },
    /// `atomics.increment` on a value that is not the decimal text of an
    /// integer, or a sum out of range.
    #[error("key {key:?}: {reason}")]
    NotCounter {
        /// The key.
        key: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The store could not be read or written.
    #[error("the key-value store: {0}")]
    Store(String),
}

/// The plugins' key-value buckets. Every write is durable when it returns
/// — so before the delivery of the event that made it is done, and
/// through a kill -9 — and every read sees this host's writes. An expired
/// key reads as absent and counts against no limit.
#[async_trait::async_trait]
pub trait KeyValue: std::fmt::Debug + Send + Sync {
    /// `store.get`: the value of `key` with its revision; `None` when
    /// absent.
    async fn get(&self, bucket: &Bucket, key: &str) -> Result<Option<Entry>, KvError>;

    /// `store.set`: writes `value`.
    async fn set(
        &self,
        bucket: &Bucket,
        key: &str,
        value: Bytes,
        how: Write,
    ) -> Result<(), KvError>;

    /// `store.delete`: deleting a key that is not there is no error.
    async fn delete(&self, bucket: &Bucket, key: &str) -> Result<(), KvError>;

    /// `store.list-keys`: the page of keys after `cursor`.
    async fn keys(&self, bucket: &Bucket, cursor: Option<&str>) -> Result<Keys, KvError>;
    /// How many keys `bucket` holds (expired ones until they are purged).
    async fn size(&self, bucket: &Bucket) -> Result<u64, KvError>;

    /// `atomics.swap`: writes `value` only if `key` is still at `revision`
    /// (`None`: still absent), as one indivisible step.
    async fn swap(
        &self,
        bucket: &Bucket,
        key: &str,
        revision: Option<u64>,
        value: Bytes,
        how: Write,
    ) -> Result<Swapped, KvError>;

    /// `atomics.increment`: adds `delta` to the counter at `key` (absent:
    /// 0; kept as the decimal text of an `i64`) and returns the sum, as one
    /// indivisible step.
    async fn increment(
        &self,
        bucket: &Bucket,
        key: &str,
        delta: i64,
        how: Write,
    ) -> Result<i64, KvError>;

    /// Removes every key of `bucket` (the operator's `DELETE
    /// /v1/plugins/{name}/kv`).
    async fn clear(&self, bucket: &Bucket) -> Result<(), KvError>;
}
