//! The running host: every stage built from a [`Config`] and started in
//! order (data directory, registry, cluster, plugins, webhooks, queue,
//! MQTT side, pipeline, watchers, API), reloaded live where it can be, and
//! stopped in order.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::broker::{self, Outlets, With};
use super::cluster;
use crate::api::stream_ws::StreamHub;
use crate::api::{self, ApiState};
use crate::commands::Commands;
use crate::config::{Broker, Config, in_force};
use crate::delivery::{ClientOptions, HttpSender};
use crate::dialects::{Particle, Webhooks};
use crate::event::CommandReply;
use crate::fleet::Fleet;
use crate::hooks::Registry;
use crate::ingress::refusals::Refusals;
use crate::ingress::tls_front::TlsFront;
use crate::ingress::{Inbound, Publisher, embedded};
use crate::pipeline::{DeliveryPolicy, DeliveryStats, Parts, Pipeline};
use crate::plugins::{Installer, PluginDir};
use crate::queue::{Opened, Queue};
use crate::respond::Responder;
use crate::runtime::{EngineOptions, WasmEngine};
use crate::stores::Flags;
use crate::stream::EventStream;
use crate::throttle::Throttle;
use crate::watch::{self, Scan as _};
use crate::webhooks::{Builtin, Runner, WebhookDir};

/// How long a stop waits at least for devices to take the last answers.
const SETTLE_AT_LEAST: std::time::Duration = std::time::Duration::from_millis(500);

/// How long shutdown waits for the WebSocket connections' close frames.
const STREAM_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A running host.
#[derive(Debug)]
pub struct Host {
    /// The embedded broker's bound address, when embedded.
    pub mqtt_addr: Option<SocketAddr>,
    /// The embedded broker's TLS listener's bound address, when it has one.
    pub mqtt_tls_addr: Option<SocketAddr>,
    /// The API's bound address.
    pub api_addr: SocketAddr,
    /// The API bearer token.
    pub api_token: String,
    /// The webhooks in force.
    pub registry: Arc<Registry>,
    /// The webhooks of every dialect.
    pub webhooks: Arc<Webhooks>,
    /// Makes the queue's commits fail, as a full or failing disk does.
    #[cfg(feature = "fault-injection")]
    pub disk_faults: crate::queue::DiskFaults,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    drain_timeout: std::time::Duration,
    pub(super) liveness: crate::service::Liveness,
    publisher: Publisher,
    embedded: Option<embedded::Handle>,
    tls_front: Option<TlsFront>,
    hub: StreamHub,
    /// The settings in force, as a reload changes them.
    config: Arc<ArcSwap<Config>>,
    policy: Arc<ArcSwap<DeliveryPolicy>>,
    throttle: Throttle,
    /// Tells the directory watchers to look again at once.
    rescan: watch::Rescan,
}

impl Host {
    /// Starts every stage; returns once the host takes events.
    pub async fn start(cfg: Config) -> anyhow::Result<Self> {
        let config = Arc::new(ArcSwap::from_pointee(cfg.clone()));
        let api_token = prepare(&cfg)?;
        let fleet = Fleet::open(&cfg.data_dir).context("opening the device registry")?;
        let (fleet, nats) = cluster::join(&cfg, fleet).await?;
        let (engine, registry, plugin_dir) = load_plugins(&cfg).await?;
        let adapters = cluster::adapters(&cfg, nats.as_ref(), &plugin_dir).await?;
        let installer = Installer::new(
            engine.clone(),
            (cfg.limits, cfg.max_plugin_memory),
            adapters.plugin_files.clone(),
            adapters.flags.clone(),
        );
        let runner = Runner {
            registry: registry.clone(),
            builtin: Arc::new(Builtin::new(engine, cfg.limits)),
            flags: adapters.flags.clone(),
        };
        let (webhooks, webhook_dir) = load_webhooks(&cfg, &adapters, &runner).await?;
        let opened = Queue::open(&cfg.data_dir, cfg.queue).context("opening the event queue")?;

        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let (events, events_rx) = mpsc::channel(broker::INBOUND_QUEUE);
        let (replies, replies_rx) = mpsc::channel(broker::REPLY_QUEUE);
        let refusals = Arc::new(Refusals::default());
        let with = With {
            cfg: &cfg,
            nats: nats.as_ref(),
            fleet: &fleet,
            api_token: &api_token,
            refusals: &refusals,
        };
        let mqtt = broker::start(with, Outlets { events, replies }, &mut tasks, &shutdown).await?;
        #[cfg(feature = "fault-injection")]
        let disk_faults = opened.queue.faults();
        let queue = opened.queue.clone();
        let core = Core::start(
            &cfg,
            (&registry, &fleet, &mqtt.publisher, adapters.flags.clone()),
            (opened, events_rx, replies_rx),
            &mut tasks,
            &shutdown,
        )?;
        let rescan = watch::Rescan::default();
        let stop = || shutdown.clone().cancelled_owned();
        tasks.spawn(watch::poll(plugin_dir, rescan.subscribe(), stop()));
        tasks.spawn(watch::poll(webhook_dir, rescan.subscribe(), stop()));
        let cluster = adapters.cluster.clone();
        let in_step = (&registry, &fleet, &webhooks);
        cluster::follow(
            &mut tasks,
            (&cfg, nats.as_ref(), adapters),
            in_step,
            &shutdown,
        );
        let state = ApiState {
            registry: registry.clone(),
            webhooks: webhooks.clone(),
            stream: core.stream.clone(),
            publisher: mqtt.publisher.clone(),
            stats: core.stats.clone(),
            queue,
            throttle: core.throttle.clone(),
            fleet,
            iottly_max_webhooks: cfg.iottly_max_webhooks,
            commands: core.commands.clone(),
            cluster,
            installer,
            refusals,
            config: config.clone(),
        };
        let (api_addr, hub) = serve_api(&cfg, state, &api_token, &mut tasks, &shutdown).await?;
        Ok(Self {
            mqtt_addr: mqtt.mqtt_addr,
            mqtt_tls_addr: mqtt.tls_front.as_ref().map(TlsFront::local_addr),
            tls_front: mqtt.tls_front,
            api_addr,
            api_token,
            registry,
            webhooks,
            #[cfg(feature = "fault-injection")]
            disk_faults,
            shutdown,
            tasks,
            drain_timeout: cfg.drain_timeout,
            liveness: core.liveness,
            publisher: mqtt.publisher,
            embedded: mqtt.embedded,
            hub,
            config,
            policy: core.policy,
            throttle: core.throttle,
            rescan,
        })
    }

    /// Applies what of `new` can change while running ([`in_force::LIVE`])
    /// and logs every other changed key as `needs a restart: KEY`; reads
    /// the broker's TLS files again and rescans the plugins and webhooks
    /// directories.
    pub fn reload(&self, new: &Config) {
        let old = self.config.load_full();
        let mut next = Config::clone(&old);
        next.take_live(new);
        for key in in_force::changed(&next.in_force(), &new.in_force()) {
            tracing::warn!("needs a restart: {key}");
        }
        if (&next.log_level, next.log_format) != (&old.log_level, old.log_format)
            && let Err(err) = crate::logging::apply(&next.log_level, next.log_format)
        {
            tracing::error!("config key `log_level`: {err}; the logging in force stays");
            next.log_level.clone_from(&old.log_level);
            next.log_format = old.log_format;
        }
        self.policy.store(Arc::new(next.delivery.clone()));
        if next.throttle != old.throttle {
            self.throttle.reconfigure(next.throttle.clone());
        }
        if let (Some(front), Broker::Embedded { tls: Some(tls), .. }) =
            (&self.tls_front, &mut next.broker)
        {
            match crate::tls::server_config(&tls.cert, &tls.key) {
                Ok(config) => front.set_config(config),
                Err(err) => {
                    tracing::error!(
                        "config keys `mqtt_tls_cert`, `mqtt_tls_key`: {err}; the certificate in force stays"
                    );
                    if let Broker::Embedded { tls: Some(was), .. } = &old.broker {
                        tls.clone_from(was);
                    }
                }
            }
        }
        self.rescan.now();
        let applied = in_force::changed(&old.in_force(), &next.in_force());
        self.config.store(Arc::new(next));
        if applied.is_empty() {
            tracing::info!("config reloaded: no setting that applies live changed");
        } else {
            tracing::info!("config reloaded: applied {}", applied.join(", "));
        }
    }

    /// Stops taking events, lets deliveries in progress finish for at most
    /// the drain timeout (what is left stays queued for the next start, or
    /// goes back to JetStream for the other hosts), and stops.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(front) = &self.tls_front {
            front.shutdown();
        }
        let deadline = tokio::time::Instant::now() + self.drain_timeout;
        let tasks = &mut self.tasks;
        let drained = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout_at(deadline, drained).await.is_err() {
            tracing::warn!(
                "deliveries still in progress after the drain timeout ({}): stopped; their events stay queued and are delivered again",
                humantime::format_duration(self.drain_timeout)
            );
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        if !self.hub.closed(STREAM_CLOSE_WAIT).await {
            tracing::warn!(
                "some WebSocket connections were not closed within {} s",
                STREAM_CLOSE_WAIT.as_secs()
            );
        }
        if let Some(broker) = &self.embedded {
            // The last answers reach the devices still connected, within
            // what is left of the drain (a moment at least).
            let least = tokio::time::Instant::now() + SETTLE_AT_LEAST;
            broker.settle(deadline.max(least)).await;
            broker.shutdown().await;
        }
        if let Publisher::External(h) = &self.publisher {
            h.shutdown().await;
        }
    }
}

/// The data, plugins and webhooks directories made, the API token read or
/// made; the token.
fn prepare(cfg: &Config) -> anyhow::Result<String> {
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
async fn load_plugins(cfg: &Config) -> anyhow::Result<(WasmEngine, Arc<Registry>, PluginDir)> {
    let engine = WasmEngine::new(&EngineOptions {
        instances: cfg.plugin_instances,
        max_memory: cfg.max_plugin_memory,
        cache_dir: Some(cfg.data_dir.join("cache")),
    })
    .context("setting up the wasm engine")?;
    let registry = Arc::new(Registry::default());
    let mut plugin_dir = PluginDir::new(
        cfg.plugins_dir.clone(),
        engine.clone(),
        cfg.limits,
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

/// The delivery side: the pipeline and the command router, started.
struct Core {
    stream: EventStream,
    stats: Arc<DeliveryStats>,
    throttle: Throttle,
    policy: Arc<ArcSwap<DeliveryPolicy>>,
    liveness: crate::service::Liveness,
    commands: Arc<Commands>,
}

impl Core {
    fn start(
        cfg: &Config,
        (registry, fleet, publisher, flags): (
            &Arc<Registry>,
            &Arc<Fleet>,
            &Publisher,
            Arc<dyn Flags>,
        ),
        (opened, events, replies): (
            Opened,
            mpsc::Receiver<Inbound>,
            mpsc::Receiver<CommandReply>,
        ),
        tasks: &mut JoinSet<()>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let sender = HttpSender::new(ClientOptions {
            timeout: cfg.http_timeout,
            max_response_bytes: cfg.max_response_bytes,
            allow_private: cfg.allow_private_networks,
        })
        .context("setting up the HTTP client")?;
        let core = Self {
            stream: EventStream::default(),
            stats: Arc::new(DeliveryStats::default()),
            throttle: Throttle::new(cfg.throttle.clone()),
            policy: Arc::new(ArcSwap::from_pointee(cfg.delivery.clone())),
            liveness: crate::service::Liveness::default(),
            commands: Arc::new(Commands::new(publisher.clone(), cfg.command_timeout)),
        };
        let pipeline = Pipeline::new(
            Parts {
                registry: registry.clone(),
                fleet: fleet.clone(),
                sender,
                responder: Responder::new(publisher.clone(), core.stream.clone(), cfg.chunk_size),
                stream: core.stream.clone(),
                queue: opened.queue,
                throttle: core.throttle.clone(),
                policy: core.policy.clone(),
                stats: core.stats.clone(),
                max_in_flight: cfg.max_in_flight,
                flags,
                liveness: core.liveness.clone(),
            },
            shutdown.clone(),
        );
        tasks.spawn(pipeline.run(events, opened.finished, opened.pending, opened.origins));
        tasks.spawn(core.commands.clone().run(replies, shutdown.clone()));
        Ok(core)
    }
}

/// Starts the API server with `state`; its address, and the hub of its
/// WebSocket connections.
async fn serve_api(
    cfg: &Config,
    state: ApiState,
    api_token: &str,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> anyhow::Result<(SocketAddr, StreamHub)> {
    let listener = tokio::net::TcpListener::bind(cfg.api_listen)
        .await
        .with_context(|| format!("API: cannot listen on {}", cfg.api_listen))?;
    let addr = listener.local_addr()?;
    let hub = StreamHub::new(
        cfg.stream,
        api_token.into(),
        state.stream.clone(),
        state.commands.clone(),
        shutdown.clone(),
    );
    let app = api::router(state, api_token.into(), hub.clone());
    tasks.spawn(api::serve::serve(
        listener,
        app,
        cfg.api_limits,
        shutdown.clone(),
    ));
    Ok((addr, hub))
}
