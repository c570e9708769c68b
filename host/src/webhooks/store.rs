//! The webhooks of one dialect as records of a [`Records`] store: this
//! host's files (`data/webhooks/{id}.json` for Particle-style ones,
//! `data/iottly/`, `data/mainflux/`), or the definitions every host
//! shares (`--nats-url`). Each record is the webhook's view: its definition
//! with the id and creation time the host gave it.

use std::sync::Arc;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use serde_json::{Map, Value};

use crate::stores::Records;

/// One stored webhook: the definition as given, with the id and creation
/// time the host gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredWebhook {
    /// The webhook's id.
    pub id: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// The Particle-style definition, without `id` and `created_at`.
    pub definition: Map<String, Value>,
    /// The shared store's revision of it (0 in files): a change seen with
    /// a later revision is someone's new version, even when it reads the
    /// same.
    pub revision: u64,
}

impl StoredWebhook {
    /// The definition with `id` and `created_at`, as the API shows it and
    /// the file keeps it.
    pub fn view(&self) -> Value {
        let mut out = Map::with_capacity(self.definition.len() + 2);
        out.insert("id".into(), Value::String(self.id.clone()));
        out.extend(self.definition.iter().map(|(k, v)| (k.clone(), v.clone())));
        out.insert("created_at".into(), Value::String(self.created_at.clone()));
        Value::Object(out)
    }

    fn from_view(view: Value) -> Option<Self> {
        let Value::Object(mut definition) = view else {
            return None;
        };
        let Some(Value::String(id)) = definition.remove("id") else {
            return None;
        };
        let created_at = match definition.remove("created_at") {
            Some(Value::String(at)) => at,
            _ => String::new(),
        };
        Some(Self {
            id,
            created_at,
            definition,
            revision: 0,
        })
    }
}

/// Where the webhooks of one dialect are kept.
#[derive(Debug, Clone)]
pub struct Store(Arc<dyn Records>);

impl Store {
    /// The webhooks kept in `records`.
    pub fn new(records: Arc<dyn Records>) -> Self {
        Self(records)
    }

    /// Every stored webhook, oldest first. One that cannot be read is
    /// reported and left in place, untouched, for the operator to look at.
    pub async fn load_all(&self) -> std::io::Result<Vec<StoredWebhook>> {
        let mut out: Vec<StoredWebhook> = self
            .0
            .load_all()
            .await?
            .into_iter()
            .filter_map(|(id, json, revision)| match parse(&json) {
                Ok(stored) => Some(StoredWebhook { revision, ..stored }),
                Err(err) => {
                    tracing::error!(webhook = %id, "stored webhook not loaded: {err}");
                    None
                }
            })
            .collect();
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Writes `stored` durably; the store's revision of it (0 in files).
    pub async fn save(&self, stored: &StoredWebhook) -> std::io::Result<u64> {
        let mut json = serde_json::to_vec_pretty(&stored.view())?;
        json.push(b'\n');
        self.0.put(&stored.id, json.into()).await
    }

    /// Deletes the webhook `id`; deleting one that is not there is no error.
    pub async fn delete(&self, id: &str) -> std::io::Result<()> {
        self.0.delete(id).await
    }

    /// The changes other hosts make (and this one's, seen again), when the
    /// store is shared; `None` for files, which only this host changes.
    pub async fn changes(&self) -> Option<std::io::Result<BoxStream<'static, Remote>>> {
        Some(self.0.changes().await?.map(|changes| {
            changes
                .filter_map(|(id, value, revision)| {
                    let parsed = value.as_deref().map(parse).transpose();
                    std::future::ready(match parsed {
                        Ok(stored) => Some(Remote {
                            id,
                            stored: stored.map(|s| StoredWebhook { revision, ..s }),
                            revision,
                        }),
                        Err(err) => {
                            tracing::error!(webhook = %id, "shared webhook not loaded: {err}");
                            None
                        }
                    })
                })
                .boxed()
        }))
    }
}

/// A change of a shared webhook.
#[derive(Debug)]
pub struct Remote {
    /// The webhook's id.
    pub id: String,
    /// Its definition now; `None` once deleted.
    pub stored: Option<StoredWebhook>,
    /// The shared store's revision of the change.
    pub revision: u64,
}

/// A stored webhook from the JSON of its view.
fn parse(bytes: &[u8]) -> Result<StoredWebhook, String> {
    serde_json::from_slice(bytes)
        .map_err(|e| e.to_string())
        .and_then(|view| {
            StoredWebhook::from_view(view).ok_or_else(|| "not a stored webhook with an id".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::JsonFiles;

    #[tokio::test]
    async fn saved_webhooks_come_back_and_deleted_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let files = JsonFiles::open(dir.path().join("webhooks")).unwrap();
            Store::new(Arc::new(files))
        };
        let store = open();
        let stored = |id: &str, at: &str| StoredWebhook {
            id: id.into(),
            created_at: at.into(),
            definition: serde_json::json!({"event": "t", "url": "https://x.test"})
                .as_object()
                .unwrap()
                .clone(),
            revision: 0,
        };
        store
            .save(&stored("b", "2026-01-02T00:00:00.000Z"))
            .await
            .unwrap();
        store
            .save(&stored("a", "2026-01-01T00:00:00.000Z"))
            .await
            .unwrap();
        std::fs::write(dir.path().join("webhooks/broken.json"), "{not json").unwrap();

        let again = open();
        let all = again.load_all().await.unwrap();
        assert_eq!(
            all,
            [
                stored("a", "2026-01-01T00:00:00.000Z"),
                stored("b", "2026-01-02T00:00:00.000Z")
            ]
        );
        assert!(
            dir.path().join("webhooks/broken.json").exists(),
            "a broken file is left alone"
        );

        again.delete("a").await.unwrap();
        again.delete("a").await.unwrap();
        assert_eq!(again.load_all().await.unwrap().len(), 1);
    }
}
