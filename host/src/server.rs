//! Wiring: builds every stage from a [`Config`], starts the tasks, and
//! stops them in order.
//!
//! Tasks: the ingress (embedded broker or external client) feeding a bounded
//! channel; the pipeline reading it and spawning deliveries; the plugin and
//! webhook directory watchers; the API server; the engine's epoch thread.
//! On a cluster the embedded broker feeds JetStream instead, and the
//! pipeline's channel is fed by the puller of the shared consumer; the
//! relay of what hosts send devices, the command answers and the
//! followers of the shared stores run beside them.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use futures::{Stream, StreamExt as _};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::stream_ws::StreamHub;
use crate::api::{self, ApiState};
use crate::commands::Commands;
use crate::config::{Broker, Config, in_force};
use crate::delivery::{ClientOptions, HttpSender};
use crate::dialects::Webhooks;
use crate::fleet::Fleet;
use crate::hooks::Registry;
use crate::ingress::acl::MqttAuth;
use crate::ingress::refusals::Refusals;
use crate::ingress::tls_front::TlsFront;
use crate::ingress::{Publisher, embedded, external};
use crate::nats::events::Puller;
use crate::nats::followers::{self, Followers};
use crate::nats::plugins::SharedPlugins;
use crate::nats::shared::Shared;
use crate::nats::trips::Trips;
use crate::nats::{self, Nats};
use crate::pipeline::{DeliveryPolicy, DeliveryStats, Parts, Pipeline};
use crate::plugins::install::Directory;
use crate::plugins::{Installer, PluginDir};
use crate::queue::{Opened, Queue};
use crate::respond::Responder;
use crate::runtime::{EngineOptions, WasmEngine};
use crate::stores::{Flags, PluginFiles, Unshared};
use crate::stream::EventStream;
use crate::throttle::Throttle;
use crate::watch::{self, Scan as _};
use crate::webhooks::{Builtin, Runner, WebhookDir};

/// Events waiting between the ingress and the pipeline: about one commit's
/// worth, so that a batch can fill while the previous one is written. When
/// the pipeline is behind the broker feels it (backpressure), not a queue
/// in memory.
const INBOUND_QUEUE: usize = crate::pipeline::MAX_BATCH;
const _: () = assert!(INBOUND_QUEUE >= external::RECEIVE_MAXIMUM as usize);

/// Devices' answers to commands waiting for the router, which never waits
/// on a reader: a burst of output, not a backlog.
const REPLY_QUEUE: usize = 1024;

/// How long start-up waits for a cluster's JetStream to take the events
/// stream (a cluster that just started elects its leaders first).
const JETSTREAM_READY: std::time::Duration = std::time::Duration::from_secs(30);

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
    liveness: crate::service::Liveness,
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
        let api_token = api::auth::load_or_create(cfg.api_token.as_deref(), &cfg.data_dir)
            .with_context(|| format!("keeping the API token in {}", cfg.data_dir.display()))?;

        let fleet = Fleet::open(&cfg.data_dir).context("opening the device registry")?;
        let nats = match &cfg.cluster {
            Some(cluster) => Some(
                Nats::connect(&cluster.urls, &cluster.auth)
                    .await
                    .context("connecting to the NATS cluster")?,
            ),
            None => None,
        };
        let fleet = Arc::new(match &nats {
            Some(nats) => {
                let groups = Arc::new(Shared::registry(nats, "groups").await?);
                let devices = Arc::new(Shared::registry(nats, "devices").await?);
                fleet
                    .shared(groups, devices)
                    .await
                    .context("reading the shared device registry")?
            }
            None => fleet,
        });
        if let Some(nats) = &nats {
            // Devices' events are kept from now on, whatever else fails.
            let per_device = match &cfg.broker {
                Broker::Embedded { limits, .. } => limits.max_queued,
                Broker::External { .. } => cfg.queue.max_events,
            };
            // A cluster that just started elects its leaders first.
            let deadline = tokio::time::Instant::now() + JETSTREAM_READY;
            while let Err(err) = nats.keep_events(per_device).await {
                if tokio::time::Instant::now() >= deadline {
                    return Err(err.into());
                }
                tracing::info!("JetStream not ready yet ({err}); trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            if let Err(err) = nats::plugins::copy_all(nats, &cfg.plugins_dir).await {
                tracing::error!("shared plugins not copied at start: {err}");
            }
        }

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
        let stores = followers::open_stores(&cfg.data_dir, nats.as_ref()).await?;
        let trips = match &nats {
            Some(nats) => Some(Trips::open(nats).await?),
            None => None,
        };
        let flags: Arc<dyn Flags> = match &trips {
            Some(trips) => Arc::new(trips.clone()),
            None => Arc::new(Unshared),
        };
        let plugin_files: Arc<dyn PluginFiles> = match &nats {
            Some(nats) => Arc::new(SharedPlugins(nats.clone())),
            None => {
                let (dir, lock) = plugin_dir.lock();
                Arc::new(Directory::new(dir, lock))
            }
        };
        let installer = Installer::new(
            engine.clone(),
            (cfg.limits, cfg.max_plugin_memory),
            plugin_files,
            flags.clone(),
        );
        let runner = Runner {
            registry: registry.clone(),
            builtin: Arc::new(Builtin::new(engine, cfg.limits)),
            flags: flags.clone(),
        };
        let webhooks = Arc::new(
            Webhooks::open(stores.clone(), &runner)
                .await
                .context("loading the stored webhooks")?,
        );
        let mut webhook_dir = WebhookDir::new(cfg.webhooks_dir.clone(), webhooks.particle.clone());
        webhook_dir.scan(false).await;

        let Opened {
            queue,
            finished,
            pending,
            origins,
        } = Queue::open(&cfg.data_dir, cfg.queue).context("opening the event queue")?;
        #[cfg(feature = "fault-injection")]
        let disk_faults = queue.faults();

        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
        let (replies, replies_rx) = mpsc::channel(REPLY_QUEUE);
        let mut tls_front = None;
        let mut embedded_handle = None;
        let refusals = Arc::new(Refusals::default());
        let (publisher, mqtt_addr) = match &cfg.broker {
            Broker::Embedded {
                listen,
                auth,
                tls,
                limits,
            } => {
                // On a cluster the broker's events and answers go through
                // NATS, and the pipeline takes events from JetStream.
                let (taken, answers) = match &nats {
                    Some(nats) => {
                        let (taken, taken_rx) = mpsc::channel(INBOUND_QUEUE);
                        let (answers, answers_rx) = mpsc::channel(REPLY_QUEUE);
                        tasks.spawn(nats::intake::run(nats.clone(), taken_rx, shutdown.clone()));
                        tasks.spawn(nats::command_replies::publish(
                            nats.clone(),
                            answers_rx,
                            shutdown.clone(),
                        ));
                        (taken, answers)
                    }
                    None => (tx.clone(), replies.clone()),
                };
                let opts = embedded::EmbeddedOptions {
                    listen: *listen,
                    max_event_bytes: cfg.max_event_bytes,
                    auth: *auth,
                    fleet: fleet.clone(),
                    operator_token: api_token.as_str().into(),
                    replies: answers,
                    refusals: refusals.clone(),
                    limits: *limits,
                };
                let handle = embedded::start(opts, taken).await?;
                let addr = handle.local_addr();
                if let Some(tls) = tls {
                    let config = crate::tls::server_config(&tls.cert, &tls.key)?;
                    // The plain listener as seen from this host.
                    let mut broker = addr;
                    if broker.ip().is_unspecified() {
                        broker.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                    }
                    tls_front = Some(TlsFront::start(tls.listen, config, broker).await?);
                }
                embedded_handle = Some(handle.clone());
                let publisher = match (&nats, &cfg.cluster) {
                    (Some(nats), Some(cluster)) => {
                        let relay = nats::to_devices::Relay::start(nats.clone(), handle).await?;
                        tasks.spawn(relay.run(shutdown.clone()));
                        let answers = nats::command_replies::Receiver::start(nats).await?;
                        tasks.spawn(answers.run(replies.clone(), shutdown.clone()));
                        let puller = Puller {
                            nats: nats.clone(),
                            ack_wait: cluster.ack_wait,
                            max_event_bytes: cfg.max_event_bytes,
                        };
                        tasks.spawn(puller.run(tx.clone(), shutdown.clone()));
                        Publisher::Cluster(Arc::new(nats::to_devices::ToDevices::new(nats.clone())))
                    }
                    _ => Publisher::Embedded(handle),
                };
                (publisher, Some(addr))
            }
            Broker::External {
                url,
                version,
                client_id,
                share_group,
                ca_file,
            } => {
                let opts = external::ExternalOptions {
                    url: url.clone(),
                    version: *version,
                    client_id: client_id.clone(),
                    max_event_bytes: cfg.max_event_bytes,
                    share_group: share_group.clone(),
                    ca_file: ca_file.clone(),
                    replies: replies.clone(),
                };
                (
                    Publisher::External(external::start(opts, tx.clone()).await?),
                    None,
                )
            }
        };
        drop((tx, replies));

        let sender = HttpSender::new(ClientOptions {
            timeout: cfg.http_timeout,
            max_response_bytes: cfg.max_response_bytes,
            allow_private: cfg.allow_private_networks,
        })
        .context("setting up the HTTP client")?;
        let stream = EventStream::default();
        let liveness = crate::service::Liveness::default();
        let responder = Responder::new(publisher.clone(), stream.clone(), cfg.chunk_size);
        let stats = Arc::new(DeliveryStats::default());
        let throttle = Throttle::new(cfg.throttle.clone());
        let policy = Arc::new(ArcSwap::from_pointee(cfg.delivery.clone()));
        let pipeline = Pipeline::new(
            Parts {
                registry: registry.clone(),
                fleet: fleet.clone(),
                sender,
                responder,
                stream: stream.clone(),
                queue: queue.clone(),
                throttle: throttle.clone(),
                policy: policy.clone(),
                stats: stats.clone(),
                max_in_flight: cfg.max_in_flight,
                flags,
                liveness: liveness.clone(),
            },
            shutdown.clone(),
        );
        tasks.spawn(pipeline.run(rx, finished, pending, origins));
        let commands = Arc::new(Commands::new(publisher.clone(), cfg.command_timeout));
        tasks.spawn(commands.clone().run(replies_rx, shutdown.clone()));
        let rescan = watch::Rescan::default();
        tasks.spawn(watch::poll(
            plugin_dir,
            rescan.subscribe(),
            shutdown.clone().cancelled_owned(),
        ));
        tasks.spawn(watch::poll(
            webhook_dir,
            rescan.subscribe(),
            shutdown.clone().cancelled_owned(),
        ));
        if let Some(nats) = &nats {
            nats::followers::spawn(
                &mut tasks,
                Followers {
                    nats: nats.clone(),
                    plugins_dir: cfg.plugins_dir.clone(),
                    trips,
                    registry: registry.clone(),
                    fleet: fleet.clone(),
                    stores,
                    webhooks: webhooks.clone(),
                },
                &shutdown,
            );
        }

        let listener = tokio::net::TcpListener::bind(cfg.api_listen)
            .await
            .with_context(|| format!("API: cannot listen on {}", cfg.api_listen))?;
        let api_addr = listener.local_addr()?;
        let hub = StreamHub::new(
            cfg.stream,
            api_token.as_str().into(),
            stream.clone(),
            commands.clone(),
            shutdown.clone(),
        );
        let app = api::router(
            ApiState {
                registry: registry.clone(),
                webhooks: webhooks.clone(),
                stream,
                publisher: publisher.clone(),
                stats,
                queue,
                throttle: throttle.clone(),
                fleet,
                iottly_max_webhooks: cfg.iottly_max_webhooks,
                commands,
                cluster: nats.map(|n| Arc::new(n) as Arc<dyn crate::stores::Cluster>),
                installer,
                refusals,
                config: config.clone(),
            },
            api_token.as_str().into(),
            hub.clone(),
        );
        tasks.spawn(api::serve::serve(
            listener,
            app,
            cfg.api_limits,
            shutdown.clone(),
        ));

        Ok(Self {
            mqtt_addr,
            mqtt_tls_addr: tls_front.as_ref().map(TlsFront::local_addr),
            tls_front,
            api_addr,
            api_token,
            registry,
            webhooks,
            #[cfg(feature = "fault-injection")]
            disk_faults,
            shutdown,
            tasks,
            drain_timeout: cfg.drain_timeout,
            liveness,
            publisher,
            embedded: embedded_handle,
            hub,
            config,
            policy,
            throttle,
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

/// Runs a host until `shutdown` resolves, printing the ready line; each
/// configuration `reloads` gives (SIGHUP's) is applied as far as it can be
/// live, and one that could not be read or checked changes nothing.
pub async fn run(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()>,
    reloads: impl Stream<Item = anyhow::Result<Config>>,
) -> anyhow::Result<()> {
    let plugins_dir = cfg.plugins_dir.clone();
    let webhooks_dir = cfg.webhooks_dir.clone();
    let shared = cfg.cluster.is_some();
    let mut logins = match cfg.broker {
        Broker::Embedded {
            auth: MqttAuth::Devices,
            ..
        } => "device logins",
        _ => "open to any client",
    }
    .to_owned();
    if shared {
        logins.push_str(", events in JetStream");
    }
    let host = Host::start(cfg).await?;
    let mqtt = match host.mqtt_addr {
        Some(addr) => match host.mqtt_tls_addr {
            Some(tls) => format!("MQTT on {addr} and TLS on {tls} (embedded broker, {logins})"),
            None => format!("MQTT on {addr} (embedded broker, {logins})"),
        },
        None => "MQTT via the external broker".to_owned(),
    };
    println!("API token: {}", host.api_token);
    println!(
        "edgehook ready: {mqtt}, API on http://{}, {} plugin(s) running from {}, {} webhook(s) (files in {})",
        host.api_addr,
        host.registry.running(),
        plugins_dir.display(),
        host.webhooks.particle.count(),
        webhooks_dir.display()
    );
    let notifier = crate::service::Notifier::from_env().map(Arc::new);
    let watching = CancellationToken::new();
    if let Some(notifier) = &notifier {
        notifier.notify("READY=1");
        tokio::spawn(
            notifier
                .clone()
                .watch(host.liveness.clone(), watching.clone()),
        );
    }
    tokio::pin!(shutdown, reloads);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(reload) = reloads.next() => match reload {
                Ok(new) => host.reload(&new),
                Err(err) => tracing::error!("config not reloaded, the settings in force stay: {err:#}"),
            },
        }
    }
    tracing::info!("shutting down");
    watching.cancel();
    if let Some(notifier) = &notifier {
        notifier.notify("STOPPING=1");
    }
    host.stop().await;
    Ok(())
}
