//! What keeps a host in step with the others: one task per shared store
//! (the webhooks of each dialect, the registry's groups and devices, the
//! plugins, the auto-disabled webhooks), each applying every host's
//! changes to this host's copy as they come, and watching again when a
//! watch ends.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::stream::BoxStream;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Nats;
use super::shared::Shared;
use super::trips::Trips;
use crate::dialects::Webhooks;
use crate::dialects::all::Stores;
use crate::fleet::{Fleet, Half};
use crate::hooks::Registry;
use crate::stores::{JsonFiles, Records};
use crate::webhooks::builtin::BuiltinPlugin;
use crate::webhooks::{Collection, Dialect, Store};

/// Where the webhooks of each dialect are kept: the bucket every host
/// shares when `nats` is given, else files of `data_dir`.
pub async fn open_stores(data_dir: &Path, nats: Option<&Nats>) -> anyhow::Result<Stores> {
    let open = |kind: &'static str| async move {
        let records: Arc<dyn Records> =
            match nats {
                Some(nats) => Arc::new(Shared::open(nats, kind).await?),
                None => Arc::new(JsonFiles::open(data_dir.join(kind)).with_context(|| {
                    format!("opening the {kind} store in {}", data_dir.display())
                })?),
            };
        anyhow::Ok(Store::new(records))
    };
    Ok(Stores {
        particle: open("webhooks").await?,
        iottly: open(BuiltinPlugin::Iottly.name()).await?,
        mainflux: open(BuiltinPlugin::Mainflux.name()).await?,
    })
}

/// Everything that follows the shared stores.
#[derive(Debug)]
pub struct Followers {
    /// The connection.
    pub nats: Nats,
    /// Where shared plugins are copied.
    pub plugins_dir: PathBuf,
    /// Auto-disable, shared.
    pub trips: Option<Trips>,
    /// The webhooks in force.
    pub registry: Arc<Registry>,
    /// The device registry.
    pub fleet: Arc<Fleet>,
    /// The webhook stores.
    pub stores: Stores,
    /// The webhooks of every dialect.
    pub webhooks: Arc<Webhooks>,
}

/// Starts one task per shared store in `tasks`, each until `shutdown`.
pub fn spawn(tasks: &mut JoinSet<()>, f: Followers, shutdown: &CancellationToken) {
    tasks.spawn(super::plugins::follow(
        f.nats,
        f.plugins_dir,
        shutdown.clone(),
    ));
    if let Some(trips) = f.trips {
        tasks.spawn(trips.follow(f.registry, shutdown.clone()));
    }
    for half in [Half::Groups, Half::Devices] {
        let (fleet, stop) = (f.fleet.clone(), shutdown.clone());
        tasks.spawn(async move {
            let Some(bucket) = fleet.bucket(half) else {
                return;
            };
            let watch = || bucket.changes();
            follow(watch, stop, |changes| fleet.follow(half, changes)).await;
        });
    }
    let webhooks = &f.webhooks;
    spawn_webhooks(tasks, f.stores.particle, &webhooks.particle, shutdown);
    spawn_webhooks(tasks, f.stores.iottly, &webhooks.iottly, shutdown);
    spawn_webhooks(tasks, f.stores.mainflux, &webhooks.mainflux, shutdown);
}

fn spawn_webhooks<D: Dialect>(
    tasks: &mut JoinSet<()>,
    store: Store,
    webhooks: &Arc<Collection<D>>,
    shutdown: &CancellationToken,
) {
    let (webhooks, stop) = (webhooks.clone(), shutdown.clone());
    tasks.spawn(async move {
        let watch = || store.changes();
        follow(watch, stop, |changes| webhooks.follow(changes)).await;
    });
}

/// Applies the changes of a shared store with `apply` until `shutdown`,
/// watching again (`watch`) when a watch ends; `watch` gives `None` for a
/// store that is not shared.
async fn follow<T, W, WF, A, AF>(watch: W, shutdown: CancellationToken, apply: A)
where
    W: Fn() -> WF,
    WF: Future<Output = Option<std::io::Result<BoxStream<'static, T>>>>,
    A: Fn(BoxStream<'static, T>) -> AF,
    AF: Future<Output = ()>,
{
    loop {
        let changes = match watch().await {
            None => return,
            Some(Ok(changes)) => changes,
            Some(Err(err)) => {
                tracing::warn!("shared definitions: {err}; watching again");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = apply(changes) => {}
        }
    }
}
