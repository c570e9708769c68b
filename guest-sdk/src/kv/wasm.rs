//! The buckets as the host gives them: `wasi:keyvalue` and `kv-ttl`.

use crate::rt::edgehook::webhook0_3_0::kv_ttl;
use crate::rt::wasi::keyvalue::{atomics, store};
use crate::{Error, Result};

#[derive(Debug)]
pub struct Bucket(store::Bucket);

fn error(e: store::Error) -> Error {
    match e {
        store::Error::NoSuchStore => Error::new("no such key-value bucket"),
        store::Error::AccessDenied => Error::new("key-value bucket: access denied"),
        store::Error::Other(why) => Error::new(why),
    }
}

impl Bucket {
    pub fn open(name: &str) -> Result<Self> {
        store::open(name).map(Self).map_err(error)
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.0.get(key).map_err(error)
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.0.set(key, value).map_err(error)
    }

    pub fn set_for(&self, key: &str, value: &[u8], ttl_ms: u64) -> Result<()> {
        kv_ttl::set_with_ttl(&self.0, key, value, ttl_ms).map_err(error)
    }

    pub fn delete(&self, key: &str) -> Result<()> {
        self.0.delete(key).map_err(error)
    }

    pub fn exists(&self, key: &str) -> Result<bool> {
        self.0.exists(key).map_err(error)
    }

    pub fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        atomics::increment(&self.0, key, delta).map_err(error)
    }

    pub fn keys(&self) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.0.list_keys(cursor.as_deref()).map_err(error)?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }
}
