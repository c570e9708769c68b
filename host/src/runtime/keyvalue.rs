//! `wasi:keyvalue` and `edgehook:webhook/kv-ttl` as plugins see them
//! (README "Keeping state"): `open("")` is the plugin's bucket,
//! `open("device")` its bucket for the event's device, nothing else opens.
//! Keys and values are checked against their limits here, before the
//! store ([`crate::stores::KeyValue`]) is called.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use wasmtime::component::Resource;

use super::bindings::v0_3::edgehook::webhook0_3_0::kv_ttl;
use super::bindings::v0_3::wasi::keyvalue::{atomics, batch, store};
use super::plugin::PluginStats;
use super::state::HostState;
use crate::stores::KeyValue;
use crate::stores::kv::{Bucket, KvError, MAX_KEY_BYTES, MAX_VALUE_BYTES, Swapped, Write};
use crate::topic::DeviceId;

/// Most keys in one `batch` call.
const MAX_BATCH: usize = 1000;

/// What one event's instance may reach: its plugin's buckets, and the
/// event's device's.
#[derive(Debug, Clone)]
pub struct KvAccess {
    /// Where the buckets are kept.
    pub store: Arc<dyn KeyValue>,
    /// The plugin.
    pub plugin: Arc<str>,
    /// The event's device.
    pub device: DeviceId,
    /// `[limits] kv_max_keys`.
    pub max_keys: usize,
    /// The plugin's counters.
    pub stats: Arc<PluginStats>,
}

/// Which counter an operation counts in.
#[derive(Debug, Clone, Copy)]
enum Op {
    Read,
    Write,
}

/// An open bucket.
#[derive(Debug)]
pub struct KvBucket(Bucket);

/// A key as read for a swap.
#[derive(Debug)]
pub struct KvCas {
    bucket: Bucket,
    key: String,
    /// The revision read; `None`: absent.
    revision: Option<u64>,
    value: Option<Bytes>,
}

fn other(e: impl std::fmt::Display) -> store::Error {
    store::Error::Other(e.to_string())
}

fn check_key(key: &str) -> Result<(), store::Error> {
    if key.len() > MAX_KEY_BYTES {
        return Err(other(format!(
            "a key of {} bytes exceeds the limit of {MAX_KEY_BYTES} bytes",
            key.len()
        )));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), store::Error> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(other(format!(
            "a value of {} bytes exceeds the limit of {MAX_VALUE_BYTES} bytes",
            value.len()
        )));
    }
    Ok(())
}

fn check_batch(n: usize) -> Result<(), store::Error> {
    if n > MAX_BATCH {
        return Err(other(format!(
            "a batch of {n} keys exceeds the limit of {MAX_BATCH}"
        )));
    }
    Ok(())
}

impl HostState {
    /// Counts `result` of an operation of kind `op` for the plugin.
    fn counted<T, E>(&self, op: Op, result: Result<T, E>) -> Result<T, E> {
        if let Some(kv) = &self.kv {
            let counter = match (op, &result) {
                (_, Err(_)) => &kv.stats.kv_errors,
                (Op::Read, Ok(_)) => &kv.stats.kv_reads,
                (Op::Write, Ok(_)) => &kv.stats.kv_writes,
            };
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    fn kv(&self) -> Result<&KvAccess, store::Error> {
        self.kv
            .as_ref()
            .ok_or_else(|| other("key-value state is not available to this call"))
    }

    fn bucket(
        &self,
        bucket: &Resource<KvBucket>,
    ) -> Result<(Arc<dyn KeyValue>, Bucket, Write), store::Error> {
        let kv = self.kv()?;
        let open = self.table.get(bucket).map_err(other)?;
        let how = Write {
            ttl: None,
            max_keys: kv.max_keys,
        };
        Ok((kv.store.clone(), open.0.clone(), how))
    }
}

impl From<KvError> for store::Error {
    fn from(e: KvError) -> Self {
        other(e)
    }
}

impl store::Host for HostState {
    async fn open(&mut self, identifier: String) -> Result<Resource<KvBucket>, store::Error> {
        let kv = self.kv()?;
        let device = match identifier.as_str() {
            "" => None,
            "device" => Some(kv.device.clone()),
            _ => return Err(store::Error::NoSuchStore),
        };
        let bucket = Bucket {
            plugin: kv.plugin.clone(),
            device,
        };
        self.table.push(KvBucket(bucket)).map_err(other)
    }
}

impl store::HostBucket for HostState {
    async fn get(
        &mut self,
        bucket: Resource<KvBucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, store::Error> {
        let this = &mut *self;
        let result = async move {
            check_key(&key)?;
            let (kv, bucket, _) = this.bucket(&bucket)?;
            Ok(kv.get(&bucket, &key).await?.map(|e| e.value.to_vec()))
        }
        .await;
        self.counted(Op::Read, result)
    }

    async fn set(
        &mut self,
        bucket: Resource<KvBucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), store::Error> {
        let this = &mut *self;
        let result = async move {
            check_key(&key)?;
            check_value(&value)?;
            let (kv, bucket, how) = this.bucket(&bucket)?;
            Ok(kv.set(&bucket, &key, value.into(), how).await?)
        }
        .await;
        self.counted(Op::Write, result)
    }

    async fn delete(
        &mut self,
        bucket: Resource<KvBucket>,
        key: String,
    ) -> Result<(), store::Error> {
        let this = &mut *self;
        let result = async move {
            check_key(&key)?;
            let (kv, bucket, _) = this.bucket(&bucket)?;
            Ok(kv.delete(&bucket, &key).await?)
        }
        .await;
        self.counted(Op::Write, result)
    }

    async fn exists(
        &mut self,
        bucket: Resource<KvBucket>,
        key: String,
    ) -> Result<bool, store::Error> {
        let this = &mut *self;
        let result = async move {
            check_key(&key)?;
            let (kv, bucket, _) = this.bucket(&bucket)?;
            Ok(kv.get(&bucket, &key).await?.is_some())
        }
        .await;
        self.counted(Op::Read, result)
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<KvBucket>,
        cursor: Option<String>,
    ) -> Result<store::KeyResponse, store::Error> {
        let this = &mut *self;
        let result = async move {
            let (kv, bucket, _) = this.bucket(&bucket)?;
            let page = kv.keys(&bucket, cursor.as_deref()).await?;
            Ok(store::KeyResponse {
                keys: page.keys,
                cursor: page.cursor,
            })
        }
        .await;
        self.counted(Op::Read, result)
    }

    async fn drop(&mut self, bucket: Resource<KvBucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(
        &mut self,
        bucket: Resource<KvBucket>,
        key: String,
        delta: i64,
    ) -> Result<i64, store::Error> {
        let this = &mut *self;
        let result = async move {
            check_key(&key)?;
            let (kv, bucket, how) = this.bucket(&bucket)?;
            Ok(kv.increment(&bucket, &key, delta, how).await?)
        }
        .await;
        self.counted(Op::Write, result)
    }

    async fn swap(
        &mut self,
        cas: Resource<KvCas>,
        value: Vec<u8>,
    ) -> Result<(), atomics::CasError> {
        let this = &mut *self;
        let swapped = async move {
            check_value(&value)?;
            let kv = this.kv()?;
            let (store, max_keys) = (kv.store.clone(), kv.max_keys);
            let cas = this.table.delete(cas).map_err(other)?;
            let how = Write {
                ttl: None,
                max_keys,
            };
            let swapped = store
                .swap(&cas.bucket, &cas.key, cas.revision, value.into(), how)
                .await?;
            Ok((cas, swapped))
        }
        .await;
        // A swap that lost to another write is a write tried, not an error.
        match self.counted(Op::Write, swapped) {
            Err(err) => Err(atomics::CasError::StoreError(err)),
            Ok((_, Swapped::Done)) => Ok(()),
            Ok((cas, Swapped::Changed(now))) => {
                let again = KvCas {
                    revision: now.as_ref().map(|e| e.revision),
                    value: now.map(|e| e.value),
                    ..cas
                };
                let again = self
                    .table
                    .push(again)
                    .map_err(|e| atomics::CasError::StoreError(other(e)))?;
                Err(atomics::CasError::CasFailed(again))
            }
        }
    }
}

impl atomics::HostCas for HostState {
    async fn new(
        &mut self,
        bucket: Resource<KvBucket>,
        key: String,
    ) -> Result<Resource<KvCas>, store::Error> {
        let this = &mut *self;
        let result = async move {
            check_key(&key)?;
            let (kv, bucket, _) = this.bucket(&bucket)?;
            let now = kv.get(&bucket, &key).await?;
            let cas = KvCas {
                bucket,
                key,
                revision: now.as_ref().map(|e| e.revision),
                value: now.map(|e| e.value),
            };
            this.table.push(cas).map_err(other)
        }
        .await;
        self.counted(Op::Read, result)
    }

    async fn current(&mut self, cas: Resource<KvCas>) -> Result<Option<Vec<u8>>, store::Error> {
        let cas = self.table.get(&cas).map_err(other)?;
        Ok(cas.value.as_ref().map(|v| v.to_vec()))
    }

    async fn drop(&mut self, cas: Resource<KvCas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        bucket: Resource<KvBucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, store::Error> {
        let this = &mut *self;
        let result = async move {
            check_batch(keys.len())?;
            keys.iter().try_for_each(|k| check_key(k))?;
            let (kv, bucket, _) = this.bucket(&bucket)?;
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let value = kv.get(&bucket, &key).await?;
                out.push(value.map(|e| (key, e.value.to_vec())));
            }
            Ok(out)
        }
        .await;
        self.counted(Op::Read, result)
    }

    async fn set_many(
        &mut self,
        bucket: Resource<KvBucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), store::Error> {
        let this = &mut *self;
        let result = async move {
            check_batch(key_values.len())?;
            for (key, value) in &key_values {
                check_key(key)?;
                check_value(value)?;
            }
            let (kv, bucket, how) = this.bucket(&bucket)?;
            for (key, value) in key_values {
                kv.set(&bucket, &key, value.into(), how).await?;
            }
            Ok(())
        }
        .await;
        self.counted(Op::Write, result)
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<KvBucket>,
        keys: Vec<String>,
    ) -> Result<(), store::Error> {
        let this = &mut *self;
        let result = async move {
            check_batch(keys.len())?;
            keys.iter().try_for_each(|k| check_key(k))?;
            let (kv, bucket, _) = this.bucket(&bucket)?;
            for key in keys {
                kv.delete(&bucket, &key).await?;
            }
            Ok(())
        }
        .await;
        self.counted(Op::Write, result)
    }
}

impl kv_ttl::Host for HostState {
    async fn set_with_ttl(
        &mut self,
        bucket: Resource<KvBucket>,
        key: String,
        value: Vec<u8>,
        ttl_ms: u64,
    ) -> Result<(), store::Error> {
        let this = &mut *self;
        let result = async move {
            check_key(&key)?;
            check_value(&value)?;
            if ttl_ms == 0 {
                return Err(other("a time to live of 0 ms: it must be at least 1"));
            }
            let (kv, bucket, mut how) = this.bucket(&bucket)?;
            how.ttl = Some(Duration::from_millis(ttl_ms));
            Ok(kv.set(&bucket, &key, value.into(), how).await?)
        }
        .await;
        self.counted(Op::Write, result)
    }
}
