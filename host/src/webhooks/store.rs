//! Webhooks created through the API, kept in the data directory so they
//! survive a restart: `data/webhooks/{id}.json` (the Iottly and Mainflux
//! dialects: `data/iottly/`, `data/mainflux/`), one file per webhook,
//! written to a temporary file, flushed and renamed into place so that a
//! crash leaves either the old or the new version, never half of one.
//! With `--nats-url` they live in the bucket every host shares instead
//! ([`crate::nats::shared`]).

use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use futures::stream::BoxStream;
use serde_json::{Map, Value};

use crate::nats::shared::Shared;

/// The directory under the data directory.
const DIR: &str = "webhooks";

/// One stored webhook: the definition as given, with the id and creation
/// time the host gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
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

impl Stored {
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

/// Where the webhooks of one dialect are kept: files in the data directory
/// of this host, or the definitions bucket every host shares (`--nats-url`).
#[derive(Debug, Clone)]
pub enum Store {
    /// `data/{name}/{id}.json`.
    Files(Files),
    /// The shared bucket.
    Shared(Shared),
}

impl Store {
    /// Opens (creating) `data_dir/webhooks`.
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        Files::open(data_dir, DIR).map(Self::Files)
    }

    /// Opens (creating) `data_dir/{name}`.
    pub fn open_named(data_dir: &Path, name: &str) -> std::io::Result<Self> {
        Files::open(data_dir, name).map(Self::Files)
    }

    /// Every stored webhook, oldest first. One that cannot be read is
    /// reported and left in place, untouched, for the operator to look at.
    pub async fn load_all(&self) -> std::io::Result<Vec<Stored>> {
        let mut out = match self {
            Self::Files(files) => {
                let files = files.clone();
                tokio::task::spawn_blocking(move || files.load_all())
                    .await
                    .map_err(std::io::Error::other)??
            }
            Self::Shared(shared) => shared
                .load_all()
                .await?
                .into_iter()
                .filter_map(|(id, value, revision)| match parse(&value) {
                    Ok(stored) => Some(Stored { revision, ..stored }),
                    Err(err) => {
                        tracing::error!(webhook = %id, "shared webhook not loaded: {err}");
                        None
                    }
                })
                .collect(),
        };
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Writes `stored` durably; the shared store's revision of it (0 in
    /// files).
    pub async fn save(&self, stored: &Stored) -> std::io::Result<u64> {
        match self {
            Self::Files(files) => {
                let (files, stored) = (files.clone(), stored.clone());
                tokio::task::spawn_blocking(move || files.save(&stored))
                    .await
                    .map_err(std::io::Error::other)??;
                Ok(0)
            }
            Self::Shared(shared) => {
                let bytes = serde_json::to_vec(&stored.view())?;
                shared.put(&stored.id, bytes.into()).await
            }
        }
    }

    /// Deletes the webhook `id`; deleting one that is not there is no error.
    pub async fn delete(&self, id: &str) -> std::io::Result<()> {
        match self {
            Self::Files(files) => {
                let (files, id) = (files.clone(), id.to_owned());
                tokio::task::spawn_blocking(move || files.delete(&id))
                    .await
                    .map_err(std::io::Error::other)?
            }
            Self::Shared(shared) => shared.delete(id).await,
        }
    }

    /// The changes other hosts make (and this one's, seen again), when the
    /// store is shared; `None` for files, which only this host changes.
    pub async fn changes(&self) -> Option<std::io::Result<BoxStream<'static, Remote>>> {
        let Self::Shared(shared) = self else {
            return None;
        };
        Some(shared.changes().await.map(|changes| {
            changes
                .filter_map(|(id, value, revision)| {
                    let parsed = value.as_deref().map(parse).transpose();
                    std::future::ready(match parsed {
                        Ok(stored) => Some(Remote {
                            id,
                            stored: stored.map(|s| Stored { revision, ..s }),
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
    pub stored: Option<Stored>,
    /// The shared store's revision of the change.
    pub revision: u64,
}

/// A stored webhook from the JSON of its view.
fn parse(bytes: &[u8]) -> Result<Stored, String> {
    serde_json::from_slice(bytes)
        .map_err(|e| e.to_string())
        .and_then(|view| {
            Stored::from_view(view).ok_or_else(|| "not a stored webhook with an id".into())
        })
}

/// The webhooks directory of the data directory.
#[derive(Debug, Clone)]
pub struct Files {
    dir: PathBuf,
}

impl Files {
    /// Opens (creating) `data_dir/{name}`.
    fn open(data_dir: &Path, name: &str) -> std::io::Result<Self> {
        let dir = data_dir.join(name);
        crate::files::create_private_dir(&dir)?;
        Ok(Self { dir })
    }

    fn load_all(&self) -> std::io::Result<Vec<Stored>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| parse(&bytes));
            match parsed {
                Ok(stored) => out.push(stored),
                Err(err) => {
                    tracing::error!(file = %path.display(), "stored webhook not loaded: {err}")
                }
            }
        }
        Ok(out)
    }

    fn save(&self, stored: &Stored) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(&stored.view())?;
        bytes.push(b'\n');
        crate::files::replace_durably(&self.path(&stored.id), &bytes)
    }

    fn delete(&self, id: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(id)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn saved_webhooks_come_back_and_deleted_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let stored = |id: &str, at: &str| Stored {
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

        let again = Store::open(dir.path()).unwrap();
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
