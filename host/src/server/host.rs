//! The running host: every stage built from a [`Config`] and started in
//! order (data directory, registry, cluster, plugins, webhooks, queue,
//! MQTT side, pipeline, watchers, API), reloaded live where it can be, and
//! stopped in order.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::broker::{self, Outlets, With};
use super::core::{Core, serve_api};
use super::found::{Found, prepare};
use crate::api::ApiState;
use crate::api::stream_ws::StreamHub;
use crate::config::{Broker, Config, in_force};
use crate::dialects::Webhooks;
use crate::hooks::Registry;
use crate::ingress::refusals::Refusals;
use crate::ingress::tls_front::TlsFront;
use crate::ingress::{Publisher, embedded};
use crate::pipeline::DeliveryPolicy;
use crate::runtime::DefaultLimits;
use crate::throttle::Throttle;
use crate::watch;

/// How long a stop waits at least for devices to take the last answers.
const SETTLE_AT_LEAST: std::time::Duration = std::time::Duration::from_millis(500);

/// How long a stop waits for the deliveries it abandoned to end.
const ABANDON_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a stop waits for the last spans to reach the collector.
const TRACES_FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

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
    /// Stops the deliveries still in progress when the drain timeout passes.
    abandon: CancellationToken,
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
    /// The plugins' default limits.
    plugin_limits: DefaultLimits,
    /// Tells the directory watchers to look again at once.
    rescan: watch::Rescan,
    /// The traces' export, flushed at the end of a stop.
    traces: crate::traces::Traces,
}

impl Host {
    /// Starts every stage; returns once the host takes events.
    pub async fn start(cfg: Config) -> anyhow::Result<Self> {
        let config = Arc::new(ArcSwap::from_pointee(cfg.clone()));
        let api_token = prepare(&cfg)?;
        let found = Found::open(&cfg).await?;
        let (registry, fleet, webhooks) = (
            found.registry.clone(),
            found.fleet.clone(),
            found.webhooks.clone(),
        );

        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let (events, events_rx) = mpsc::channel(broker::INBOUND_QUEUE);
        let (replies, replies_rx) = mpsc::channel(broker::REPLY_QUEUE);
        let refusals = Arc::new(Refusals::default());
        let with = With {
            cfg: &cfg,
            nats: found.following.nats.as_ref(),
            fleet: &fleet,
            api_token: &api_token,
            refusals: &refusals,
        };
        let mqtt = broker::start(with, Outlets { events, replies }, &mut tasks, &shutdown).await?;
        #[cfg(feature = "fault-injection")]
        let disk_faults = found.opened.queue.faults();
        let queue = found.opened.queue.clone();
        let core = Core::start(
            &cfg,
            (
                &registry,
                &fleet,
                &mqtt.publisher,
                found.following.adapters.flags.clone(),
            ),
            (found.opened, events_rx, replies_rx),
            &mut tasks,
            &shutdown,
        )?;
        let cluster = found.following.adapters.cluster.clone();
        let plugin_limits = found.plugin_limits.clone();
        let rescan =
            found
                .following
                .start(&cfg, (&registry, &fleet, &webhooks), &mut tasks, &shutdown);
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
            installer: found.installer,
            kv: found.kv,
            refusals,
            replays: core.replays.clone(),
            recorded: core.recorded.clone(),
            traces: core.traces.clone(),
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
            abandon: core.abandon,
            tasks,
            drain_timeout: cfg.drain_timeout,
            liveness: core.liveness,
            publisher: mqtt.publisher,
            embedded: mqtt.embedded,
            hub,
            config,
            policy: core.policy,
            traces: core.traces.clone(),
            throttle: core.throttle,
            plugin_limits,
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
        if let (Some(broker), Broker::Embedded { limits, .. }) = (&self.embedded, &next.broker) {
            broker.set_limits(limits);
        }
        self.plugin_limits.set(next.limits);
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
        if tokio::time::timeout_at(deadline, join_all(&mut self.tasks))
            .await
            .is_err()
        {
            tracing::warn!(
                "deliveries still in progress after the drain timeout ({}): stopped; their events stay queued and are delivered again",
                humantime::format_duration(self.drain_timeout)
            );
            // The deliveries end where they are; the loops that wait for
            // them then end too, and every task lets go of the stores.
            self.abandon.cancel();
            if tokio::time::timeout(ABANDON_WAIT, join_all(&mut self.tasks))
                .await
                .is_err()
            {
                self.tasks.abort_all();
                join_all(&mut self.tasks).await;
            }
        }
        self.traces.shutdown(TRACES_FLUSH_WAIT).await;
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

/// Waits until every task of `tasks` has ended.
async fn join_all(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}
