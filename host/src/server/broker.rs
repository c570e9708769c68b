//! The MQTT side of the wiring: the embedded broker (with its TLS front,
//! and on a cluster the paths of its events and answers through NATS) or
//! the client of an external broker, and the [`Publisher`] that reaches
//! the devices through it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Broker, Config};
use crate::event::CommandReply;
use crate::fleet::Fleet;
use crate::ingress::refusals::Refusals;
use crate::ingress::tls_front::TlsFront;
use crate::ingress::{Inbound, Publisher, embedded, external};
use crate::nats::events::Puller;
use crate::nats::{self, Nats};

/// Events waiting between the ingress and the pipeline: about one commit's
/// worth, so that a batch can fill while the previous one is written. When
/// the pipeline is behind the broker feels it (backpressure), not a queue
/// in memory.
pub const INBOUND_QUEUE: usize = crate::pipeline::MAX_BATCH;
const _: () = assert!(INBOUND_QUEUE >= external::RECEIVE_MAXIMUM as usize);

/// Devices' answers to commands waiting for the router, which never waits
/// on a reader: a burst of output, not a backlog.
pub const REPLY_QUEUE: usize = 1024;

/// The running MQTT side.
#[derive(Debug)]
pub struct Started {
    /// Reaches the devices.
    pub publisher: Publisher,
    /// The embedded broker's address, when embedded.
    pub mqtt_addr: Option<SocketAddr>,
    /// The embedded broker's TLS listener, when it has one.
    pub tls_front: Option<TlsFront>,
    /// The embedded broker, when embedded.
    pub embedded: Option<embedded::Handle>,
}

/// Where the MQTT side hands what it takes: events to the pipeline,
/// devices' answers to the command router.
#[derive(Debug)]
pub struct Outlets {
    /// Events.
    pub events: mpsc::Sender<Inbound>,
    /// Answers to commands.
    pub replies: mpsc::Sender<CommandReply>,
}

/// What the MQTT side works with.
#[derive(Debug)]
pub struct With<'a> {
    /// The settings.
    pub cfg: &'a Config,
    /// The cluster, when the host is part of one.
    pub nats: Option<&'a Nats>,
    /// The device registry.
    pub fleet: &'a Arc<Fleet>,
    /// The API token (the operator's login).
    pub api_token: &'a str,
    /// What the broker refused, counted.
    pub refusals: &'a Arc<Refusals>,
}

/// Starts the broker side of `with.cfg`; its tasks go to `tasks`.
pub async fn start(
    with: With<'_>,
    outlets: Outlets,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Started> {
    match &with.cfg.broker {
        Broker::Embedded { .. } => start_embedded(with, outlets, tasks, shutdown).await,
        Broker::External {
            urls,
            version,
            client_id,
            share_group,
            ca_file,
        } => {
            let opts = external::ExternalOptions {
                urls: urls.clone(),
                version: *version,
                client_id: client_id.clone(),
                max_event_bytes: with.cfg.max_event_bytes,
                share_group: share_group.clone(),
                ca_file: ca_file.clone(),
                replies: outlets.replies,
            };
            Ok(Started {
                publisher: Publisher::External(external::start(opts, outlets.events).await?),
                mqtt_addr: None,
                tls_front: None,
                embedded: None,
            })
        }
    }
}

async fn start_embedded(
    with: With<'_>,
    outlets: Outlets,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Started> {
    let Broker::Embedded {
        listen,
        auth,
        tls,
        limits,
    } = &with.cfg.broker
    else {
        unreachable!("called for the embedded broker");
    };
    // On a cluster the broker's events and answers go through NATS, and
    // the pipeline takes events from JetStream.
    let (taken, answers) = match with.nats {
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
        None => (outlets.events.clone(), outlets.replies.clone()),
    };
    let opts = embedded::EmbeddedOptions {
        listen: *listen,
        max_event_bytes: with.cfg.max_event_bytes,
        auth: *auth,
        fleet: with.fleet.clone(),
        operator_token: with.api_token.into(),
        replies: answers,
        refusals: with.refusals.clone(),
        limits: *limits,
    };
    let handle = embedded::start(opts, taken).await?;
    let addr = handle.local_addr();
    let tls_front = match tls {
        Some(tls) => {
            let config = crate::tls::server_config(&tls.cert, &tls.key)?;
            // The plain listener as seen from this host.
            let mut broker = addr;
            if broker.ip().is_unspecified() {
                broker.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            Some(TlsFront::start(tls.listen, config, broker).await?)
        }
        None => None,
    };
    let publisher = match (with.nats, &with.cfg.cluster) {
        (Some(nats), Some(cluster)) => {
            let relay = nats::to_devices::Relay::start(nats.clone(), handle.clone()).await?;
            tasks.spawn(relay.run(shutdown.clone()));
            let answers = nats::command_replies::Receiver::start(nats).await?;
            tasks.spawn(answers.run(outlets.replies, shutdown.clone()));
            let puller = Puller {
                nats: nats.clone(),
                ack_wait: cluster.ack_wait,
                max_event_bytes: with.cfg.max_event_bytes,
            };
            tasks.spawn(puller.run(outlets.events, shutdown.clone()));
            Publisher::Cluster(Arc::new(nats::to_devices::ToDevices::new(nats.clone())))
        }
        _ => Publisher::Embedded(handle.clone()),
    };
    Ok(Started {
        publisher,
        mqtt_addr: Some(addr),
        tls_front,
        embedded: Some(handle),
    })
}
