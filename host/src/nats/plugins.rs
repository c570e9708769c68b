//! Plugin files shared through the object store [`super::PLUGINS_BUCKET`]:
//! a host's API (`PUT /v1/plugins/{name}`, which `edgehook plugin push`
//! calls) puts the checked pair there under the plugin's name, and every
//! host copies each pair into its own plugins
//! directory, where the directory's hot reload loads it, with the same
//! rules as a file copied there by hand. A host that joins later gets
//! every pair at start.
//!
//! Each file is written beside its place and renamed into it, so the
//! directory never shows half a file; the manifest goes last, so that a
//! changed pair never loads a new manifest with an old module.

use std::path::{Path, PathBuf};

use async_nats::jetstream::object_store;
use futures::StreamExt as _;
use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;

use super::{Nats, NatsError, PLUGINS_BUCKET, patiently};
use crate::stores::PluginFiles;

/// The largest plugin module taken from the store.
const MAX_OBJECT_BYTES: usize = 64 << 20;

/// How long listing the store may take.
const LIST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Why a put, a removal or a copy failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginsError {
    /// The NATS side.
    #[error(transparent)]
    Nats(#[from] NatsError),
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The object store refused.
    #[error("{PLUGINS_BUCKET} {name}: {reason}")]
    Store {
        /// The object.
        name: String,
        /// What the server said.
        reason: String,
    },
}

fn store_error(name: &str, err: impl std::fmt::Display) -> PluginsError {
    PluginsError::Store {
        name: name.to_owned(),
        reason: err.to_string(),
    }
}

/// The plugin files installed over the API, in the object store: every
/// host copies them into its own plugins directory.
#[derive(Debug, Clone)]
pub struct SharedPlugins(pub Nats);

#[async_trait::async_trait]
impl PluginFiles for SharedPlugins {
    async fn put(&self, name: &str, wasm: Vec<u8>, manifest: Vec<u8>) -> std::io::Result<bool> {
        put(&self.0, name, wasm, manifest).await.map_err(io)
    }

    async fn remove(&self, name: &str) -> std::io::Result<bool> {
        remove_pair(&self.0, name).await.map_err(io)
    }
}

fn io(err: PluginsError) -> std::io::Error {
    std::io::Error::other(err.to_string())
}

/// Puts plugin `name` in the store, checked by the API's installer, as
/// `NAME.wasm` then `NAME.toml` (a host copies a manifest after its
/// module); whether the store had a file of that name.
async fn put(
    nats: &Nats,
    name: &str,
    wasm: Vec<u8>,
    manifest: Vec<u8>,
) -> Result<bool, PluginsError> {
    let store = nats.objects(PLUGINS_BUCKET).await?;
    let replaced = holds_pair(&store, name).await?;
    for (object, bytes) in [
        (format!("{name}.wasm"), wasm),
        (format!("{name}.toml"), manifest),
    ] {
        let put = || async {
            let mut reader = bytes.as_slice();
            store.put(object.as_str(), &mut reader).await
        };
        patiently(put, |_| false)
            .await
            .map_err(|e| store_error(&object, e))?;
    }
    Ok(replaced)
}

/// Takes plugin `name` out of the store (every host removes its copy);
/// whether the store had a file of that name.
async fn remove_pair(nats: &Nats, name: &str) -> Result<bool, PluginsError> {
    let store = nats.objects(PLUGINS_BUCKET).await?;
    let mut existed = false;
    // The manifest first: a module without one is not loaded.
    for object in [format!("{name}.toml"), format!("{name}.wasm")] {
        if holds(&store, &object).await? {
            existed = true;
            store
                .delete(object.as_str())
                .await
                .map_err(|e| store_error(&object, e))?;
        }
    }
    Ok(existed)
}

/// Whether the store holds `NAME.wasm` or `NAME.toml`.
async fn holds_pair(store: &object_store::ObjectStore, name: &str) -> Result<bool, PluginsError> {
    Ok(holds(store, &format!("{name}.wasm")).await?
        || holds(store, &format!("{name}.toml")).await?)
}

/// Whether the store holds `object`, not deleted.
async fn holds(store: &object_store::ObjectStore, object: &str) -> Result<bool, PluginsError> {
    match store.info(object).await {
        Ok(info) => Ok(!info.deleted),
        Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => Ok(false),
        Err(e) => Err(store_error(object, e)),
    }
}

/// Copies every plugin of the store into `dir`, then keeps copying what is
/// pushed until `shutdown`.
pub async fn follow(nats: Nats, dir: PathBuf, shutdown: CancellationToken) {
    loop {
        let copied = tokio::select! {
            () = shutdown.cancelled() => return,
            copied = copy_all_then_watch(&nats, &dir) => copied,
        };
        if let Err(err) = copied {
            tracing::warn!("shared plugins: {err}; trying again");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
}

/// Copies what the store holds now into `dir`, and removes from `dir` the
/// files the store holds as deleted (removed while this host was not
/// watching). Files the store never held are the host's own and stay.
pub async fn copy_all(nats: &Nats, dir: &Path) -> Result<(), PluginsError> {
    let store = nats.objects(PLUGINS_BUCKET).await?;
    // The list leaves deleted objects out. It ends at the message the
    // store had last when it began; an object removed meanwhile takes that
    // message away, and the list then waits for good (seen: a host started
    // as a plugin was removed kept it), so it is bounded, and the follower
    // tries again.
    let listed = tokio::time::timeout(LIST_TIMEOUT, async {
        let mut list = store.list().await.map_err(|e| store_error("list", e))?;
        let mut names = Vec::new();
        while let Some(info) = list.next().await {
            names.push(info.map_err(|e| store_error("list", e))?.name);
        }
        Ok::<_, PluginsError>(names)
    })
    .await;
    let mut names = listed.map_err(|_| {
        store_error(
            "list",
            format!("not done within {} s", LIST_TIMEOUT.as_secs()),
        )
    })??;
    let here = std::fs::read_dir(dir).map_err(|source| PluginsError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    for entry in here.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file_name(&file).is_none() || names.contains(&file) {
            continue;
        }
        match store.info(file.as_str()).await {
            Ok(info) if info.deleted => remove(dir, &file)?,
            Ok(_) => {}
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => {}
            Err(e) => return Err(store_error(&file, e)),
        }
    }
    // Modules before manifests: a manifest loads the module beside it.
    names.sort_by_key(|n| n.ends_with(".toml"));
    for name in names {
        copy(&store, dir, &name).await?;
    }
    Ok(())
}

async fn copy_all_then_watch(nats: &Nats, dir: &Path) -> Result<(), PluginsError> {
    let store = nats.objects(PLUGINS_BUCKET).await?;
    let mut watch = store.watch().await.map_err(|e| store_error("watch", e))?;
    copy_all(nats, dir).await?;
    while let Some(info) = watch.next().await {
        let info = info.map_err(|e| store_error("watch", e))?;
        if info.deleted {
            remove(dir, &info.name)?;
        } else {
            copy(&store, dir, &info.name).await?;
        }
    }
    Err(store_error("watch", "ended"))
}

/// A file name of the plugins directory, or `None` for anything else.
fn file_name(name: &str) -> Option<&str> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && (name.ends_with(".wasm") || name.ends_with(".toml"));
    ok.then_some(name)
}

async fn copy(
    store: &object_store::ObjectStore,
    dir: &Path,
    name: &str,
) -> Result<(), PluginsError> {
    let Some(file) = file_name(name) else {
        tracing::warn!("shared plugins: {name:?} is not a plugin file name; left in the store");
        return Ok(());
    };
    let mut object = match store.get(name).await {
        Ok(object) => object,
        // Removed since it was announced: gone here too. (An object being
        // replaced can look missing for a moment: only one the store holds
        // as deleted is removed; otherwise the follower copies everything
        // again.)
        Err(err) if err.kind() == object_store::GetErrorKind::NotFound => {
            return match holds(store, name).await? {
                false => remove(dir, name),
                true => Err(store_error(name, "changed while it was copied")),
            };
        }
        Err(err) => return Err(store_error(name, err)),
    };
    let mut bytes = Vec::new();
    (&mut object)
        .take(MAX_OBJECT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| store_error(name, e))?;
    if bytes.len() > MAX_OBJECT_BYTES {
        return Err(store_error(
            name,
            format!("larger than {MAX_OBJECT_BYTES} bytes"),
        ));
    }
    let path = dir.join(file);
    if std::fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let io = |source| PluginsError::Io {
        path: path.display().to_string(),
        source,
    };
    crate::files::replace_durably(&path, &bytes).map_err(io)?;
    tracing::info!("shared plugins: copied {file}");
    Ok(())
}

fn remove(dir: &Path, name: &str) -> Result<(), PluginsError> {
    let Some(file) = file_name(name) else {
        return Ok(());
    };
    let path = dir.join(file);
    match std::fs::remove_file(&path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(PluginsError::Io {
            path: path.display().to_string(),
            source: err,
        }),
        _ => Ok(()),
    }
}
