//! State the host keeps for the plugin between events, in key-value
//! buckets: the plugin's own ([`Bucket::plugin`]) and one per device
//! ([`Bucket::device`]: the device of the event being handled; a plugin
//! never reaches another device's). Every write is durable when it returns.
//! Keys hold at most 256 bytes, values at most 64 KiB, a bucket at most the
//! manifest's `[limits] kv_max_keys` keys (default 10,000); a write beyond
//! a limit fails with an error that names it, and nothing is evicted.
//!
//! A count per device:
//!
//! ```
//! use edgehook_guest::kv::Bucket;
//! # edgehook_guest::testing::set_device("dev-1");
//! let seen = Bucket::device()?.increment("events", 1)?;
//! # assert_eq!(seen, 1);
//! # assert_eq!(Bucket::device()?.increment("events", 1)?, 2);
//! # Ok::<(), edgehook_guest::Error>(())
//! ```
//!
//! Skipping an event already seen in the last ten minutes (devices that
//! publish the same reading again after a reconnect):
//!
//! ```
//! use std::time::Duration;
//! use edgehook_guest::kv::Bucket;
//! use edgehook_guest::{Event, testing};
//!
//! /// Whether `event` is new; remembers it for ten minutes.
//! fn first_time(event: &Event) -> edgehook_guest::Result<bool> {
//!     let bucket = Bucket::plugin()?;
//!     let key = format!("seen/{}/{}", event.device_id, event.text()?);
//!     if bucket.exists(&key)? {
//!         return Ok(false);
//!     }
//!     bucket.set_for(&key, b"", Duration::from_secs(600))?;
//!     Ok(true)
//! }
//!
//! let event = testing::event("dev-1", "reading", b"r-17");
//! assert!(first_time(&event)?);
//! assert!(!first_time(&event)?);
//! testing::advance(Duration::from_secs(601));
//! assert!(first_time(&event)?);
//! # Ok::<(), edgehook_guest::Error>(())
//! ```
//!
//! A one-minute average, sent by the first event after the minute:
//!
//! ```
//! use edgehook_guest::kv::Bucket;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct Minute {
//!     minute: u64,
//!     sum: f64,
//!     count: u32,
//! }
//!
//! /// Adds `reading`, taken at `now` (seconds); the average of the minute
//! /// before, once a reading of a later minute comes.
//! fn average(reading: f64, now: u64) -> edgehook_guest::Result<Option<f64>> {
//!     let bucket = Bucket::device()?;
//!     let mut m: Minute = bucket.get_json("minute")?.unwrap_or_default();
//!     let mut done = None;
//!     if m.count > 0 && m.minute != now / 60 {
//!         done = Some(m.sum / f64::from(m.count));
//!         m = Minute::default();
//!     }
//!     m.minute = now / 60;
//!     m.sum += reading;
//!     m.count += 1;
//!     bucket.set_json("minute", &m)?;
//!     Ok(done)
//! }
//!
//! # edgehook_guest::testing::set_device("dev-1");
//! assert_eq!(average(20.0, 600)?, None);
//! assert_eq!(average(22.0, 630)?, None);
//! assert_eq!(average(30.0, 660)?, Some(21.0));
//! # Ok::<(), edgehook_guest::Error>(())
//! ```

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

#[cfg(not(target_arch = "wasm32"))]
#[path = "kv/native.rs"]
pub(crate) mod imp;
#[cfg(target_arch = "wasm32")]
#[path = "kv/wasm.rs"]
pub(crate) mod imp;

/// A bucket of keys and values kept by the host.
#[derive(Debug)]
pub struct Bucket(imp::Bucket);

impl Bucket {
    /// The plugin's own bucket, shared by the events of every device.
    pub fn plugin() -> Result<Self> {
        imp::Bucket::open("").map(Self)
    }

    /// The plugin's bucket for the device of the event being handled.
    pub fn device() -> Result<Self> {
        imp::Bucket::open("device").map(Self)
    }

    /// The value of `key`; `None` when it has none (or it expired).
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.0.get(key)
    }

    /// The value of `key` read as JSON.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get(key)?
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| Error::new(format!("key {key}: {e}")))
            })
            .transpose()
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.0.set(key, value)
    }

    /// Sets `key` to `value` written as JSON.
    pub fn set_json<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        self.set(key, &serde_json::to_vec(value)?)
    }

    /// Sets `key` to `value` for `ttl`; after that it reads as absent.
    pub fn set_for(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        self.0.set_for(key, value, ms)
    }

    /// Removes `key`; removing an absent key is no error.
    pub fn delete(&self, key: &str) -> Result<()> {
        self.0.delete(key)
    }

    /// Whether `key` has a value.
    pub fn exists(&self, key: &str) -> Result<bool> {
        self.0.exists(key)
    }

    /// Adds `delta` to the number at `key` (absent: 0) and returns the sum,
    /// as one step: concurrent events never lose a count.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        self.0.increment(key, delta)
    }

    /// Every key of the bucket, in no promised order.
    pub fn keys(&self) -> Result<Vec<String>> {
        self.0.keys()
    }
}
