//! Plugin files shared through the object store [`super::PLUGINS_BUCKET`]:
//! `edgehook plugin push FILE.wasm FILE.toml` puts the pair there under the
//! plugin's name, and every host copies each pair into its own plugins
//! directory, where the directory's hot reload loads it, with the same
//! rules as a file copied there by hand. A host that joins later gets
//! every pair at start.
//!
//! Each file is written beside its place and renamed into it, so the
//! directory never shows half a file; the manifest goes last, so that a
//! changed pair never loads a new manifest with an old module.

use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;

use super::{Nats, NatsError, PLUGINS_BUCKET};

/// The largest plugin module taken from the store.
const MAX_OBJECT_BYTES: usize = 64 << 20;

/// Why a push or a copy failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginsError {
    /// The NATS side.
    #[error(transparent)]
    Nats(#[from] NatsError),
    /// A file named is not a plugin file.
    #[error("{0}")]
    Invalid(String),
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

/// Puts the plugin of `wasm` and its manifest `manifest` in the store, as
/// `NAME.wasm` and `NAME.toml` (`NAME`: the module's file name); its name.
pub async fn push(nats: &Nats, wasm: &Path, manifest: &Path) -> Result<String, PluginsError> {
    let name = match (wasm.extension(), wasm.file_stem()) {
        (Some(ext), Some(stem)) if ext == "wasm" => stem.to_string_lossy().into_owned(),
        _ => {
            return Err(PluginsError::Invalid(format!(
                "{} is not a .wasm file",
                wasm.display()
            )));
        }
    };
    if manifest.extension().is_none_or(|e| e != "toml") {
        return Err(PluginsError::Invalid(format!(
            "{} is not a .toml manifest",
            manifest.display()
        )));
    }
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| PluginsError::Io {
            path: path.display().to_string(),
            source,
        })
    };
    let (module, text) = (read(wasm)?, read(manifest)?);
    // Checked here, where the pusher sees the error; each host checks the
    // rest against its own limits, as for a file copied by hand.
    std::str::from_utf8(&text)
        .map_err(|e| e.to_string())
        .and_then(|t| t.parse::<toml::Table>().map_err(|e| e.to_string()))
        .map_err(|e| PluginsError::Invalid(format!("{}: {e}", manifest.display())))?;
    let store = nats.objects(PLUGINS_BUCKET).await?;
    for (object, bytes) in [
        (format!("{name}.wasm"), module),
        (format!("{name}.toml"), text),
    ] {
        store
            .put(object.as_str(), &mut bytes.as_slice())
            .await
            .map_err(|e| store_error(&object, e))?;
    }
    // A new version starts a new run of failures on every host.
    let trips = nats.bucket(super::DEFINITIONS_BUCKET).await?;
    trips
        .delete(super::trips::key(&name))
        .await
        .map_err(|e| store_error(&name, e))?;
    Ok(name)
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

/// Copies what the store holds now into `dir`.
pub async fn copy_all(nats: &Nats, dir: &Path) -> Result<(), PluginsError> {
    let store = nats.objects(PLUGINS_BUCKET).await?;
    let mut list = store.list().await.map_err(|e| store_error("list", e))?;
    let mut names = Vec::new();
    while let Some(info) = list.next().await {
        let info = info.map_err(|e| store_error("list", e))?;
        if !info.deleted {
            names.push(info.name);
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
    store: &async_nats::jetstream::object_store::ObjectStore,
    dir: &Path,
    name: &str,
) -> Result<(), PluginsError> {
    let Some(file) = file_name(name) else {
        tracing::warn!("shared plugins: {name:?} is not a plugin file name; left in the store");
        return Ok(());
    };
    let mut object = store.get(name).await.map_err(|e| store_error(name, e))?;
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
    let tmp = dir.join(format!(".{file}.part"));
    std::fs::write(&tmp, &bytes).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
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
