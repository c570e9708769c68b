//! The webhooks directory: one Particle-style webhook per `NAME.json`, its
//! id the file's stem, watched by polling so that adding, changing or
//! removing a file takes effect without a restart. A file that does not
//! validate is reported, and its previous version keeps running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::collection::{Collection, Dialect};
use crate::watch::{self, FileChange, Scan, Settle, Stamp};

/// Loads webhook files into a [`Collection`] (the Particle-style one).
#[derive(Debug)]
pub struct WebhookDir<D: Dialect> {
    dir: PathBuf,
    collection: Arc<Collection<D>>,
    settle: Settle<Stamp>,
}

impl<D: Dialect> WebhookDir<D> {
    /// A loader for `dir`; nothing is read until [`Self::scan`].
    pub fn new(dir: PathBuf, collection: Arc<Collection<D>>) -> Self {
        Self {
            dir,
            collection,
            settle: Settle::default(),
        }
    }

    async fn load(&self, id: &str) {
        let path = self.dir.join(format!("{id}.json"));
        let result = match tokio::fs::read(&path).await {
            Ok(bytes) => self
                .collection
                .put_file(id, &path, &bytes)
                .await
                .map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        match result {
            Ok(()) => tracing::info!(webhook = %id, file = %path.display(), "webhook loaded"),
            Err(err) => {
                tracing::error!(webhook = %id, "webhook file {} not loaded: {err}", path.display())
            }
        }
    }
}

impl<D: Dialect> Scan for WebhookDir<D> {
    async fn scan(&mut self, settle: bool) {
        let now = match read_dir(&self.dir).await {
            Ok(now) => now,
            Err(err) => {
                tracing::warn!(dir = %self.dir.display(), "cannot read the webhooks directory: {err}");
                return;
            }
        };
        for change in self.settle.changes(now, settle) {
            match change {
                FileChange::Gone(id) => {
                    tracing::info!(webhook = %id, "webhook file removed");
                    self.collection.remove_file(&id);
                }
                FileChange::Changed(id, _) => self.load(&id).await,
            }
        }
    }
}

async fn read_dir(dir: &Path) -> std::io::Result<BTreeMap<String, Stamp>> {
    Ok(watch::files(dir, &["json"])
        .await?
        .into_iter()
        .map(|(stem, _, stamp)| (stem, stamp))
        .collect())
}
