//! What a host finds at start, in order: its directories and API token,
//! the device registry (and the cluster, when it joins one), the plugins
//! and webhooks in force and the stores they are kept in, and the queue of
//! events not yet delivered; then the watchers that follow their changes.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::cluster;
use crate::api;
use crate::config::Config;
use crate::dialects::{Particle, Webhooks};
use crate::fleet::Fleet;
use crate::hooks::Registry;
use crate::plugins::{Installer, PluginDir};
use crate::queue::{Opened, Queue};
use crate::runtime::{DefaultLimits, EngineOptions, WasmEngine};
use crate::stores::KeyValue;
use crate::watch::{self, Scan as _};
use crate::webhooks::{Builtin, Runner, WebhookDir};

/// What a host finds at start: the device registry (and the cluster, when
/// it joins one), the plugins and webhooks in force, the stores they are
/// kept in, and the queue of events not yet delivered.
pub(super) struct Found {
    pub(super) fleet: Arc<Fleet>,
    pub(super) registry: Arc<Registry>,
    pub(super) installer: Installer,
    /// The plugins' default limits, which a reload changes for all of them.
    pub(super) plugin_limits: DefaultLimits,
    /// The plugins' key-value buckets.
    pub(super) kv: Arc<dyn KeyValue>,
    pub(super) webhooks: Arc<Webhooks>,
    pub(super) opened: Opened,
    pub(super) following: Following,
}

/// Where changes come from while the host runs: the plugins and webhooks
/// directories, and on a cluster the shared stores.
pub(super) struct Following {
    pub(super) nats: Option<crate::nats::Nats>,
    pub(super) adapters: cluster::Adapters,
    pub(super) plugin_dir: PluginDir,
    pub(super) webhook_dir: WebhookDir<Particle>,
}

impl Found {
    /// Opens every store `cfg` names and loads what they hold.
    pub(super) async fn open(cfg: &Config) -> anyhow::Result<Self> {
        let fleet = Fleet::open(&cfg.data_dir).context("opening the device registry")?;
        let (fleet, nats) = cluster::join(cfg, fleet).await?;
        let plugin_limits = DefaultLimits::new(cfg.limits);
        let kv = cluster::plugin_state(cfg, nats.as_ref()).await?;
        let (engine, registry, plugin_dir) = load_plugins(cfg, &plugin_limits, &kv).await?;
        let adapters = cluster::adapters(cfg, nats.as_ref(), &plugin_dir).await?;
        let installer = Installer::new(
            engine.clone(),
            (plugin_limits.clone(), cfg.max_plugin_memory),
            adapters.plugin_files.clone(),
            adapters.flags.clone(),
        );
        let runner = Runner {
            registry: registry.clone(),
            builtin: Arc::new(Builtin::new(engine, plugin_limits.clone())),
            flags: adapters.flags.clone(),
        };
        let (webhooks, webhook_dir) = load_webhooks(cfg, &adapters, &runner).await?;
        let opened = Queue::open(&cfg.data_dir, cfg.queue).context("opening the event queue")?;
        Ok(Self {
            fleet,
            registry,
            installer,
            plugin_limits,
            kv,
            webhooks,
            opened,
            following: Following {
                nats,
                adapters,
                plugin_dir,
                webhook_dir,
            },
        })
    }
}

impl Following {
    /// Watches the plugins and webhooks directories and, on a cluster, the
    /// shared stores, keeping `in_step` with what they hold; the watchers
    /// look again at once when the returned handle says so.
    pub(super) fn start(
        self,
        cfg: &Config,
        in_step: (&Arc<Registry>, &Arc<Fleet>, &Arc<Webhooks>),
        tasks: &mut JoinSet<()>,
        shutdown: &CancellationToken,
    ) -> watch::Rescan {
        let rescan = watch::Rescan::default();
        let stop = || shutdown.clone().cancelled_owned();
        tasks.spawn(watch::poll(self.plugin_dir, rescan.subscribe(), stop()));
        tasks.spawn(watch::poll(self.webhook_dir, rescan.subscribe(), stop()));
        cluster::follow(
            tasks,
            (cfg, self.nats.as_ref(), self.adapters),
            in_step,
            shutdown,
        );
        rescan
    }
}

/// The data, plugins and webhooks directories made, the API token read or
/// made; the token.
pub(super) fn prepare(cfg: &Config) -> anyhow::Result<String> {
    crate::files::open_data_dir(&cfg.data_dir)
        .with_context(|| format!("creating the data directory {}", cfg.data_dir.display()))?;
    for (what, dir) in [
        ("plugins", &cfg.plugins_dir),
        ("webhooks", &cfg.webhooks_dir),
    ] {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the {what} directory {}", dir.display()))?;
        }
    }
    api::auth::load_or_create(cfg.api_token.as_deref(), &cfg.data_dir)
        .with_context(|| format!("keeping the API token in {}", cfg.data_dir.display()))
}

/// The wasm engine, the table of webhooks in force, and the plugins
/// directory's plugins loaded in it.
async fn load_plugins(
    cfg: &Config,
    limits: &DefaultLimits,
    kv: &Arc<dyn KeyValue>,
) -> anyhow::Result<(WasmEngine, Arc<Registry>, PluginDir)> {
    let engine = WasmEngine::new(&EngineOptions {
        instances: cfg.plugin_instances,
        max_memory: cfg.max_plugin_memory,
        cache_dir: Some(cfg.data_dir.join("cache")),
        kv: Some(kv.clone()),
    })
    .context("setting up the wasm engine")?;
    let registry = Arc::new(Registry::default());
    let mut plugin_dir = PluginDir::new(
        cfg.plugins_dir.clone(),
        engine.clone(),
        limits.clone(),
        cfg.max_plugin_memory,
        registry.clone(),
    );
    plugin_dir.scan(false).await;
    Ok((engine, registry, plugin_dir))
}

/// The webhooks of every dialect and of the webhooks directory, in force
/// through `runner`.
async fn load_webhooks(
    cfg: &Config,
    adapters: &cluster::Adapters,
    runner: &Runner,
) -> anyhow::Result<(Arc<Webhooks>, WebhookDir<Particle>)> {
    let webhooks = Arc::new(
        Webhooks::open(adapters.stores.clone(), runner)
            .await
            .context("loading the stored webhooks")?,
    );
    let mut webhook_dir = WebhookDir::new(cfg.webhooks_dir.clone(), webhooks.particle.clone());
    webhook_dir.scan(false).await;
    Ok((webhooks, webhook_dir))
}
