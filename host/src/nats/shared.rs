//! Definitions shared by every host: a key-value bucket per family,
//! [`super::DEFINITIONS_BUCKET`] for webhooks and [`super::REGISTRY_BUCKET`]
//! for the device registry, a key `{kind}.{id}` per definition
//! (`webhooks.…`, `iottly.…`, `mainflux.…`, `groups.…`, `devices.…`), its
//! value the JSON the local store would keep. Every host writes its API's
//! changes there and follows everyone's through a watch, so a change made
//! on any host is in force on all of them within moments.

use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;

use async_nats::jetstream::kv;

use super::{DEFINITIONS_BUCKET, Nats, NatsError, REGISTRY_BUCKET, patiently};
use crate::stores::{Record, RecordChange, Records};

/// The definitions of one kind in the shared bucket.
#[derive(Clone)]
pub struct Shared {
    kv: std::sync::Arc<kv::Store>,
    kind: &'static str,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("kind", &self.kind).finish()
    }
}

impl Shared {
    /// The webhook definitions of `kind` (a key prefix without dots).
    pub async fn open(nats: &Nats, kind: &'static str) -> Result<Self, NatsError> {
        Ok(Self {
            kv: nats.bucket(DEFINITIONS_BUCKET).await?.into(),
            kind,
        })
    }

    /// The registry entries of `kind` (`groups` or `devices`).
    pub async fn registry(nats: &Nats, kind: &'static str) -> Result<Self, NatsError> {
        Ok(Self {
            kv: nats.bucket(REGISTRY_BUCKET).await?.into(),
            kind,
        })
    }

    fn io(&self, err: impl std::fmt::Display) -> std::io::Error {
        std::io::Error::other(format!("{} {}: {err}", self.kv.name, self.kind))
    }

    fn key(&self, id: &str) -> String {
        format!("{}.{id}", self.kind)
    }

    async fn all(&self) -> std::io::Result<Vec<Record>> {
        let prefix = format!("{}.", self.kind);
        let mut keys = self.kv.keys().await.map_err(|e| self.io(e))?;
        let mut out = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| self.io(e))?;
            let Some(id) = key.strip_prefix(&prefix) else {
                continue;
            };
            if let Some(entry) = self.kv.entry(key.as_str()).await.map_err(|e| self.io(e))?
                && entry.operation == kv::Operation::Put
            {
                out.push((id.to_owned(), entry.value, entry.revision));
            }
        }
        Ok(out)
    }

    /// Every definition of the kind as it is now (deleted ones as
    /// deletions), then each change as any host (this one included) makes
    /// it. The stream ends when the watch fails; watching again misses
    /// nothing, since it starts with the state of every key.
    async fn watch(&self) -> std::io::Result<BoxStream<'static, RecordChange>> {
        let prefix = format!("{}.", self.kind);
        let watch = self
            .kv
            .watch_with_history(format!("{}.>", self.kind))
            .await
            .map_err(|e| self.io(e))?;
        Ok(watch
            .take_while(|entry| {
                if let Err(err) = entry {
                    tracing::warn!("shared definitions: watch failed: {err}");
                }
                std::future::ready(entry.is_ok())
            })
            .filter_map(move |entry| {
                let change = entry.ok().and_then(|entry| {
                    let id = entry.key.strip_prefix(&prefix)?.to_owned();
                    Some(match entry.operation {
                        kv::Operation::Put => (id, Some(entry.value), entry.revision),
                        _ => (id, None, entry.revision),
                    })
                });
                std::future::ready(change)
            })
            .boxed())
    }
}

#[async_trait::async_trait]
impl Records for Shared {
    async fn load_all(&self) -> std::io::Result<Vec<Record>> {
        // A cluster that just started may not answer at once (seen in CI:
        // "EDGEHOOK_REGISTRY groups: timed out" at a host's start).
        patiently(|| self.all(), |_| false).await
    }

    async fn put(&self, id: &str, json: Bytes) -> std::io::Result<u64> {
        let key = self.key(id);
        // A key the bucket does not take is the only failure for good.
        patiently(
            || self.kv.put(key.as_str(), json.clone()),
            |e: &kv::PutError| e.kind() == kv::PutErrorKind::InvalidKey,
        )
        .await
        .map_err(|e| self.io(e))
    }

    async fn delete(&self, id: &str) -> std::io::Result<()> {
        let key = self.key(id);
        patiently(
            || self.kv.delete(key.as_str()),
            |e: &kv::DeleteError| e.kind() == kv::DeleteErrorKind::InvalidKey,
        )
        .await
        .map_err(|e| self.io(e))
    }

    async fn changes(&self) -> Option<std::io::Result<BoxStream<'static, RecordChange>>> {
        Some(self.watch().await)
    }
}
