//! The delivery side of a host, started: the pipeline and the command
//! router, and the API server beside them.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::stream_ws::StreamHub;
use crate::api::{self, ApiState};
use crate::commands::Commands;
use crate::config::Config;
use crate::delivery::{ClientOptions, HttpSender};
use crate::event::CommandReply;
use crate::fleet::Fleet;
use crate::hooks::Registry;
use crate::ingress::{Inbound, Publisher};
use crate::pipeline::{
    DeliveryPolicy, DeliveryStats, Parts, Pipeline, RecordStats, Recorder, Replays,
};
use crate::queue::Opened;
use crate::respond::Responder;
use crate::stores::{Flags, History, HistoryFile};
use crate::stream::EventStream;
use crate::throttle::Throttle;
use crate::traces::Traces;

/// The delivery side: the pipeline and the command router, started.
pub(super) struct Core {
    pub(super) stream: EventStream,
    pub(super) stats: Arc<DeliveryStats>,
    pub(super) throttle: Throttle,
    pub(super) policy: Arc<ArcSwap<DeliveryPolicy>>,
    pub(super) liveness: crate::service::Liveness,
    pub(super) commands: Arc<Commands>,
    pub(super) abandon: CancellationToken,
    pub(super) replays: Replays,
    pub(super) recorded: Arc<RecordStats>,
    pub(super) traces: Traces,
}

impl Core {
    pub(super) fn start(
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
        let history: Arc<dyn History> = Arc::new(
            HistoryFile::open(&cfg.data_dir, cfg.delivery.history)
                .context("opening the delivery history")?,
        );
        let policy = Arc::new(ArcSwap::from_pointee(cfg.delivery.clone()));
        let traces = match &cfg.otlp_endpoint {
            Some(endpoint) => Traces::start(endpoint).context("starting the OTLP export")?,
            None => Traces::disabled(),
        };
        let pipeline_done = CancellationToken::new();
        let (recorder, writer) =
            Recorder::start(history.clone(), policy.clone(), pipeline_done.clone());
        let recorded = recorder.stats().clone();
        let stream = EventStream::default();
        let stats = Arc::new(DeliveryStats::default());
        let throttle = Throttle::new(cfg.throttle.clone());
        let liveness = crate::service::Liveness::default();
        let abandon = CancellationToken::new();
        let pipeline = Pipeline::new(
            Parts {
                registry: registry.clone(),
                fleet: fleet.clone(),
                sender,
                responder: Responder::new(publisher.clone(), stream.clone(), cfg.chunk_size),
                stream: stream.clone(),
                queue: opened.queue,
                throttle: throttle.clone(),
                policy: policy.clone(),
                stats: stats.clone(),
                max_in_flight: cfg.max_in_flight,
                flags,
                recorder,
                traces: traces.clone(),
                liveness: liveness.clone(),
                abandon: abandon.clone(),
            },
            shutdown.clone(),
        );
        let core = Self {
            stream,
            stats,
            throttle,
            policy,
            liveness,
            commands: Arc::new(Commands::new(publisher.clone(), cfg.command_timeout)),
            abandon,
            replays: Replays::new(pipeline.clone(), history),
            recorded,
            traces,
        };
        tasks.spawn(async move {
            pipeline
                .run(events, opened.finished, opened.pending, opened.origins)
                .await;
            pipeline_done.cancel();
        });
        tasks.spawn(writer);
        tasks.spawn(core.commands.clone().run(replies, shutdown.clone()));
        Ok(core)
    }
}

/// Starts the API server with `state`; its address, and the hub of its
/// WebSocket connections.
pub(super) async fn serve_api(
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
