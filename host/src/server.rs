//! Wiring: builds every stage from a [`Config`], starts the tasks, and
//! stops them in order.
//!
//! Tasks: the ingress (embedded broker or external client) feeding a bounded
//! channel; the pipeline reading it and spawning deliveries; the plugin and
//! webhook directory watchers; the API server; the engine's epoch thread.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::stream_ws::StreamHub;
use crate::api::{self, ApiState};
use crate::commands::Commands;
use crate::config::{Broker, Config};
use crate::delivery::{ClientOptions, HttpSender};
use crate::dialects::{Book, Iottly, Mainflux};
use crate::fleet::Fleet;
use crate::ingress::acl::MqttAuth;
use crate::ingress::external::MqttVersion;
use crate::ingress::tls_front::TlsFront;
use crate::ingress::{Publisher, embedded, external};
use crate::nats::events::Puller;
use crate::nats::followers::{Followers, Stores};
use crate::nats::shared::Shared;
use crate::nats::trips::Trips;
use crate::nats::{self, Nats};
use crate::pipeline::{DeliveryStats, Parts, Pipeline};
use crate::plugins::install::Place;
use crate::plugins::{Installer, PluginDir, Registry};
use crate::queue::{Opened, Queue};
use crate::respond::Responder;
use crate::runtime::{EngineOptions, WasmEngine};
use crate::stream::EventStream;
use crate::throttle::Throttle;
use crate::watch::{self, Scan as _};
use crate::webhooks::{Builtin, Catalog, WebhookDir};

/// Events waiting between the ingress and the pipeline: about one commit's
/// worth, so that a batch can fill while the previous one is written. When
/// the pipeline is behind the broker feels it (backpressure), not a queue
/// in memory.
const INBOUND_QUEUE: usize = crate::pipeline::MAX_BATCH;
const _: () = assert!(INBOUND_QUEUE >= external::RECEIVE_MAXIMUM as usize);

/// Devices' answers to commands waiting for the router, which never waits
/// on a reader: a burst of output, not a backlog.
const REPLY_QUEUE: usize = 1024;

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
    /// The Particle-style webhooks.
    pub catalog: Arc<Catalog>,
    /// Makes the queue's commits fail, as a full or failing disk does.
    #[cfg(feature = "fault-injection")]
    pub disk_faults: crate::queue::DiskFaults,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    publisher: Publisher,
    tls_front: Option<TlsFront>,
    hub: StreamHub,
}

impl Host {
    /// Starts every stage; returns once the host takes events.
    pub async fn start(cfg: Config) -> anyhow::Result<Self> {
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
        let nats = match &cfg.broker {
            Broker::Nats { nats, auth, .. } => Some(
                Nats::connect(nats, auth)
                    .await
                    .context("connecting to the NATS cluster")?,
            ),
            _ => None,
        };
        let fleet = Arc::new(match &nats {
            Some(nats) => {
                let groups = Shared::registry(nats, "groups").await?;
                let devices = Shared::registry(nats, "devices").await?;
                fleet
                    .shared(groups, devices)
                    .await
                    .context("reading the shared device registry")?
            }
            None => fleet,
        });
        if let Some(nats) = &nats {
            // Devices' events are kept from now on, whatever else fails.
            nats.events_stream().await?;
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
        let place = match &nats {
            Some(nats) => Place::Shared(Box::new(nats.clone())),
            None => {
                let (dir, lock) = plugin_dir.lock();
                Place::Dir(dir, lock)
            }
        };
        let installer = Installer::new(engine.clone(), cfg.limits, cfg.max_plugin_memory, place);
        let stores = Stores::open(&cfg.data_dir, nats.as_ref()).await?;
        let builtin = Arc::new(Builtin::new(engine, cfg.limits));
        let catalog = Arc::new(Catalog::new(
            registry.clone(),
            stores.webhooks.clone(),
            builtin.clone(),
        ));
        catalog
            .load_stored()
            .await
            .context("loading the stored webhooks")?;
        let iottly = Arc::new(
            Book::<Iottly>::open(stores.iottly.clone(), registry.clone(), builtin.clone())
                .await
                .context("loading the Iottly-style webhooks")?,
        );
        let mainflux = Arc::new(
            Book::<Mainflux>::open(stores.mainflux.clone(), registry.clone(), builtin)
                .await
                .context("loading the Mainflux-style webhooks")?,
        );
        let mut webhook_dir = WebhookDir::new(cfg.webhooks_dir.clone(), catalog.clone());
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
        let (publisher, mqtt_addr) = match &cfg.broker {
            Broker::Embedded {
                listen,
                auth,
                tls,
                limits,
            } => {
                let opts = embedded::EmbeddedOptions {
                    listen: *listen,
                    max_event_bytes: cfg.max_event_bytes,
                    auth: *auth,
                    fleet: fleet.clone(),
                    operator_token: api_token.as_str().into(),
                    replies,
                    limits: *limits,
                };
                let handle = embedded::start(opts, tx).await?;
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
                (Publisher::Embedded(handle), Some(addr))
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
                    fallback_urls: Vec::new(),
                    take_events: true,
                    ca_file: ca_file.clone(),
                    replies,
                };
                (Publisher::External(external::start(opts, tx).await?), None)
            }
            Broker::Nats {
                mqtt,
                client_id,
                ack_wait,
                ca_file,
                ..
            } => {
                let Some(nats) = &nats else {
                    unreachable!("connected above")
                };
                let opts = external::ExternalOptions {
                    url: nats.mqtt_url(&mqtt[0]),
                    fallback_urls: mqtt[1..].iter().map(|u| nats.mqtt_url(u)).collect(),
                    // The MQTT listener of NATS speaks 3.1.1 only.
                    version: MqttVersion::V311,
                    client_id: client_id.clone(),
                    max_event_bytes: cfg.max_event_bytes,
                    share_group: None,
                    take_events: false,
                    ca_file: ca_file.clone(),
                    replies,
                };
                let handle = external::start(opts, tx.clone()).await?;
                let puller = Puller {
                    nats: nats.clone(),
                    ack_wait: *ack_wait,
                    max_event_bytes: cfg.max_event_bytes,
                };
                tasks.spawn(puller.run(tx, shutdown.clone()));
                (Publisher::External(handle), None)
            }
        };

        let sender = HttpSender::new(ClientOptions {
            timeout: cfg.http_timeout,
            max_response_bytes: cfg.max_response_bytes,
            allow_private: cfg.allow_private_networks,
        })
        .context("setting up the HTTP client")?;
        let trips = match &nats {
            Some(nats) => Some(Trips::open(nats).await?),
            None => None,
        };
        let stream = EventStream::default();
        let responder = Responder::new(publisher.clone(), stream.clone(), cfg.chunk_size);
        let stats = Arc::new(DeliveryStats::default());
        let throttle = Throttle::new(cfg.throttle.clone());
        let pipeline = Pipeline::new(
            Parts {
                registry: registry.clone(),
                fleet: fleet.clone(),
                sender,
                responder,
                stream: stream.clone(),
                queue: queue.clone(),
                throttle: throttle.clone(),
                policy: cfg.delivery.clone(),
                stats: stats.clone(),
                max_in_flight: cfg.max_in_flight,
                trips: trips.clone(),
            },
            shutdown.clone(),
        );
        tasks.spawn(pipeline.run(rx, finished, pending, origins));
        let commands = Arc::new(Commands::new(publisher.clone(), cfg.command_timeout));
        tasks.spawn(commands.clone().run(replies_rx, shutdown.clone()));
        tasks.spawn(watch::poll(plugin_dir, shutdown.clone().cancelled_owned()));
        tasks.spawn(watch::poll(webhook_dir, shutdown.clone().cancelled_owned()));
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
                    catalog: catalog.clone(),
                    iottly: iottly.clone(),
                    mainflux: mainflux.clone(),
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
                catalog: catalog.clone(),
                stream,
                publisher: publisher.clone(),
                stats,
                queue,
                throttle,
                fleet,
                iottly,
                mainflux,
                iottly_max_webhooks: cfg.iottly_max_webhooks,
                commands,
                nats,
                installer,
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
            catalog,
            #[cfg(feature = "fault-injection")]
            disk_faults,
            shutdown,
            tasks,
            publisher,
            hub,
        })
    }

    /// Stops taking events, lets deliveries in progress finish, and stops.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(front) = &self.tls_front {
            front.shutdown();
        }
        while self.tasks.join_next().await.is_some() {}
        if !self.hub.closed(STREAM_CLOSE_WAIT).await {
            tracing::warn!(
                "some WebSocket connections were not closed within {} s",
                STREAM_CLOSE_WAIT.as_secs()
            );
        }
        match &self.publisher {
            Publisher::Embedded(h) => h.shutdown().await,
            Publisher::External(h) => h.shutdown().await,
        }
    }
}

/// Runs a host until `shutdown` resolves, printing the ready line.
pub async fn run(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let plugins_dir = cfg.plugins_dir.clone();
    let webhooks_dir = cfg.webhooks_dir.clone();
    let shared = matches!(cfg.broker, Broker::Nats { .. });
    let logins = match cfg.broker {
        Broker::Embedded {
            auth: MqttAuth::Devices,
            ..
        } => "device logins",
        _ => "open to any client",
    };
    let host = Host::start(cfg).await?;
    let mqtt = match host.mqtt_addr {
        Some(addr) => match host.mqtt_tls_addr {
            Some(tls) => format!("MQTT on {addr} and TLS on {tls} (embedded broker, {logins})"),
            None => format!("MQTT on {addr} (embedded broker, {logins})"),
        },
        None if shared => "MQTT via the NATS cluster, events from JetStream".to_owned(),
        None => "MQTT via the external broker".to_owned(),
    };
    println!("API token: {}", host.api_token);
    println!(
        "edgehook ready: {mqtt}, API on http://{}, {} plugin(s) running from {}, {} webhook(s) (files in {})",
        host.api_addr,
        host.registry.running(),
        plugins_dir.display(),
        host.catalog.count(),
        webhooks_dir.display()
    );
    shutdown.await;
    tracing::info!("shutting down");
    host.stop().await;
    Ok(())
}
