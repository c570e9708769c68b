//! The buckets in native unit tests: in memory, per thread, on the clock of
//! [`crate::testing::advance`]; the same limits as the host's.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::{Error, Result};

const MAX_KEY: usize = 256;
const MAX_VALUE: usize = 64 << 10;

#[derive(Default)]
struct Memory {
    /// (bucket, key) → (value, expiry on the test clock, ms).
    entries: BTreeMap<(String, String), (Vec<u8>, Option<u64>)>,
    now_ms: u64,
    device: Option<String>,
}

thread_local! {
    static MEMORY: RefCell<Memory> = RefCell::default();
}

pub(crate) fn set_device(device: &str) {
    MEMORY.with(|m| m.borrow_mut().device = Some(device.to_owned()));
}

pub(crate) fn advance(ms: u64) {
    MEMORY.with(|m| m.borrow_mut().now_ms += ms);
}

pub(crate) fn clear() {
    MEMORY.with(|m| *m.borrow_mut() = Memory::default());
}

#[derive(Debug)]
pub struct Bucket(String);

fn checked(key: &str, value: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY {
        return Err(Error::new(format!(
            "key of {} bytes: the most is {MAX_KEY}",
            key.len()
        )));
    }
    if value.len() > MAX_VALUE {
        return Err(Error::new(format!(
            "value of {} bytes: the most is {MAX_VALUE}",
            value.len()
        )));
    }
    Ok(())
}

impl Bucket {
    pub fn open(name: &str) -> Result<Self> {
        match name {
            "" => Ok(Self(String::new())),
            "device" => MEMORY.with(|m| {
                let device = m.borrow().device.clone().unwrap_or_else(|| "dev-1".into());
                Ok(Self(format!("device/{device}")))
            }),
            _ => Err(Error::new("no such key-value bucket")),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Memory, (String, String)) -> T, key: &str) -> T {
        MEMORY.with(|m| {
            let mut m = m.borrow_mut();
            let id = (self.0.clone(), key.to_owned());
            let now = m.now_ms;
            if m.entries
                .get(&id)
                .is_some_and(|(_, exp)| exp.is_some_and(|e| e <= now))
            {
                m.entries.remove(&id);
            }
            f(&mut m, id)
        })
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.with(|m, id| m.entries.get(&id).map(|(v, _)| v.clone()), key))
    }

    pub fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        checked(key, value)?;
        self.with(|m, id| m.entries.insert(id, (value.to_vec(), None)), key);
        Ok(())
    }

    pub fn set_for(&self, key: &str, value: &[u8], ttl_ms: u64) -> Result<()> {
        checked(key, value)?;
        self.with(
            |m, id| {
                let expiry = m.now_ms.saturating_add(ttl_ms);
                m.entries.insert(id, (value.to_vec(), Some(expiry)))
            },
            key,
        );
        Ok(())
    }

    pub fn delete(&self, key: &str) -> Result<()> {
        self.with(|m, id| m.entries.remove(&id), key);
        Ok(())
    }

    pub fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    pub fn increment(&self, key: &str, delta: i64) -> Result<i64> {
        checked(key, b"")?;
        self.with(
            |m, id| {
                let (value, expiry) = m.entries.get(&id).cloned().unwrap_or_default();
                let now: i64 = if value.is_empty() {
                    0
                } else {
                    std::str::from_utf8(&value)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| Error::new(format!("key {}: not a number", id.1)))?
                };
                let sum = now
                    .checked_add(delta)
                    .ok_or_else(|| Error::new(format!("key {}: the sum overflows", id.1)))?;
                m.entries.insert(id, (sum.to_string().into_bytes(), expiry));
                Ok(sum)
            },
            key,
        )
    }

    pub fn keys(&self) -> Result<Vec<String>> {
        let now = MEMORY.with(|m| m.borrow().now_ms);
        Ok(MEMORY.with(|m| {
            m.borrow()
                .entries
                .iter()
                .filter(|((b, _), (_, exp))| *b == self.0 && exp.is_none_or(|e| e > now))
                .map(|((_, k), _)| k.clone())
                .collect()
        }))
    }
}
