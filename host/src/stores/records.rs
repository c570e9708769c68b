//! JSON records by id: [`Records`], and its adapter for this host's own
//! files, [`JsonFiles`] (`{dir}/{id}.json`, each written to a temporary
//! file, flushed and renamed into place so that a crash leaves either the
//! old or the new version, never half of one).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::stream::BoxStream;

/// One record: its id, its JSON and the store's revision of it (0 where
/// only this host writes).
pub type Record = (String, Bytes, u64);

/// One change seen on a shared store: the id, the new JSON (`None`:
/// deleted) and the store's revision of it.
pub type RecordChange = (String, Option<Bytes>, u64);

/// Where records of one family are kept.
#[async_trait::async_trait]
pub trait Records: std::fmt::Debug + Send + Sync {
    /// Every record. One that cannot be read is reported and left in
    /// place, for the operator to look at.
    async fn load_all(&self) -> std::io::Result<Vec<Record>>;

    /// Writes record `id` durably; the store's revision of it.
    async fn put(&self, id: &str, json: Bytes) -> std::io::Result<u64>;

    /// Deletes record `id`; deleting one that is not there is no error.
    async fn delete(&self, id: &str) -> std::io::Result<()>;

    /// Every record as it is now, then each change as any host (this one
    /// included) makes it, when the store is shared; `None` where only
    /// this host writes. The stream ends when the watch fails.
    async fn changes(&self) -> Option<std::io::Result<BoxStream<'static, RecordChange>>>;
}

/// Records as files of one directory, `{id}.json`.
#[derive(Debug, Clone)]
pub struct JsonFiles {
    dir: PathBuf,
}

impl JsonFiles {
    /// Opens (creating, the host user's alone) `dir`.
    pub fn open(dir: PathBuf) -> std::io::Result<Self> {
        crate::files::create_private_dir(&dir)?;
        Ok(Self { dir })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn read_all(dir: &Path) -> std::io::Result<Vec<Record>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(id) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .filter(|_| path.extension().is_some_and(|e| e == "json"))
            else {
                continue;
            };
            match std::fs::read(&path) {
                Ok(bytes) => out.push((id.to_owned(), bytes.into(), 0)),
                Err(err) => tracing::error!(file = %path.display(), "not read: {err}"),
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Records for JsonFiles {
    async fn load_all(&self) -> std::io::Result<Vec<Record>> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || Self::read_all(&dir))
            .await
            .map_err(std::io::Error::other)?
    }

    async fn put(&self, id: &str, json: Bytes) -> std::io::Result<u64> {
        let path = self.path(id);
        tokio::task::spawn_blocking(move || crate::files::replace_durably(&path, &json))
            .await
            .map_err(std::io::Error::other)??;
        Ok(0)
    }

    async fn delete(&self, id: &str) -> std::io::Result<()> {
        let path = self.path(id);
        tokio::task::spawn_blocking(move || match std::fs::remove_file(path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        })
        .await
        .map_err(std::io::Error::other)?
    }

    async fn changes(&self) -> Option<std::io::Result<BoxStream<'static, RecordChange>>> {
        None
    }
}
