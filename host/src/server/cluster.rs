//! The cluster's side of the wiring: joining the NATS cluster at start
//! (the shared registry, the events stream, the shared plugins), choosing
//! each store's adapter once — this host's files, or the stores every
//! host shares — and starting the followers that keep this host in step.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Broker, Config};
use crate::dialects::Webhooks;
use crate::dialects::all::Stores;
use crate::fleet::Fleet;
use crate::hooks::Registry;
use crate::nats::followers::{self, Followers};
use crate::nats::plugin_state::SharedState;
use crate::nats::plugins::SharedPlugins;
use crate::nats::shared::Shared;
use crate::nats::trips::Trips;
use crate::nats::{self, Nats};
use crate::plugins::PluginDir;
use crate::plugins::install::Directory;
use crate::stores::{Cluster, Flags, KeyValue, KvFile, PluginFiles, Unshared};

/// How long start-up waits for a cluster's JetStream to take the events
/// stream (a cluster that just started elects its leaders first).
const JETSTREAM_READY: std::time::Duration = std::time::Duration::from_secs(30);

/// Connects to the cluster of `cfg`, if any: the registry of `fleet`
/// becomes the shared one, the events stream is made ready for this host's
/// devices, and the shared plugins are copied into the plugins directory.
pub async fn join(cfg: &Config, fleet: Fleet) -> anyhow::Result<(Arc<Fleet>, Option<Nats>)> {
    let Some(cluster) = &cfg.cluster else {
        return Ok((Arc::new(fleet), None));
    };
    let nats = Nats::connect(&cluster.urls, &cluster.auth)
        .await
        .context("connecting to the NATS cluster")?;
    let groups = Arc::new(Shared::registry(&nats, "groups").await?);
    let devices = Arc::new(Shared::registry(&nats, "devices").await?);
    let fleet = fleet
        .shared(groups, devices)
        .await
        .context("reading the shared device registry")?;
    // Devices' events are kept from now on, whatever else fails.
    let per_device = match &cfg.broker {
        Broker::Embedded { limits, .. } => limits.max_queued,
        Broker::External { .. } => cfg.queue.max_events,
    };
    let deadline = tokio::time::Instant::now() + JETSTREAM_READY;
    while let Err(err) = nats.keep_events(per_device).await {
        if tokio::time::Instant::now() >= deadline {
            return Err(err.into());
        }
        tracing::info!("JetStream not ready yet ({err}); trying again");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    if let Err(err) = nats::plugins::copy_all(&nats, &cfg.plugins_dir).await {
        tracing::error!("shared plugins not copied at start: {err}");
    }
    Ok((Arc::new(fleet), Some(nats)))
}

/// Where the plugins' key-value buckets are kept: in JetStream, shared by
/// every host, when `nats` is given, else in the data directory.
pub async fn plugin_state(cfg: &Config, nats: Option<&Nats>) -> anyhow::Result<Arc<dyn KeyValue>> {
    Ok(match nats {
        Some(nats) => Arc::new(
            SharedState::open(nats)
                .await
                .context("opening the plugins' shared key-value buckets")?,
        ),
        None => {
            Arc::new(KvFile::open(&cfg.data_dir).context("opening the plugins' key-value buckets")?)
        }
    })
}

/// The adapter of each store, chosen once.
#[derive(Debug)]
pub struct Adapters {
    /// The webhooks of each dialect.
    pub stores: Stores,
    /// Auto-disable as every host sees it.
    pub flags: Arc<dyn Flags>,
    /// Where plugins installed over the API go.
    pub plugin_files: Arc<dyn PluginFiles>,
    /// The shared stores as the API reports them, on a cluster.
    pub cluster: Option<Arc<dyn Cluster>>,
    trips: Option<Trips>,
}

/// The stores every host shares when `nats` is given, else this host's
/// files (in the data directory, and `plugin_dir`).
pub async fn adapters(
    cfg: &Config,
    nats: Option<&Nats>,
    plugin_dir: &PluginDir,
) -> anyhow::Result<Adapters> {
    let stores = followers::open_stores(&cfg.data_dir, nats).await?;
    Ok(match nats {
        Some(nats) => {
            let trips = Trips::open(nats).await?;
            Adapters {
                stores,
                flags: Arc::new(trips.clone()),
                plugin_files: Arc::new(SharedPlugins(nats.clone())),
                cluster: Some(Arc::new(nats.clone())),
                trips: Some(trips),
            }
        }
        None => {
            let (dir, lock) = plugin_dir.lock();
            Adapters {
                stores,
                flags: Arc::new(Unshared),
                plugin_files: Arc::new(Directory::new(dir, lock)),
                cluster: None,
                trips: None,
            }
        }
    })
}

/// Starts the followers of the shared stores in `tasks`, on a cluster.
pub fn follow(
    tasks: &mut JoinSet<()>,
    (cfg, nats, adapters): (&Config, Option<&Nats>, Adapters),
    (registry, fleet, webhooks): (&Arc<Registry>, &Arc<Fleet>, &Arc<Webhooks>),
    shutdown: &CancellationToken,
) {
    let Some(nats) = nats else {
        return;
    };
    followers::spawn(
        tasks,
        Followers {
            nats: nats.clone(),
            plugins_dir: cfg.plugins_dir.clone(),
            trips: adapters.trips,
            registry: registry.clone(),
            fleet: fleet.clone(),
            stores: adapters.stores,
            webhooks: webhooks.clone(),
        },
        shutdown,
    );
}
