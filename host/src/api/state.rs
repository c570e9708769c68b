//! [`ApiState`]: what the API's handlers read, built once at start-up.

use std::sync::Arc;

use crate::commands::Commands;
use crate::dialects::Webhooks;
use crate::fleet::Fleet;
use crate::hooks::Registry;
use crate::ingress::Publisher;
use crate::pipeline::DeliveryStats;
use crate::plugins::Installer;
use crate::queue::Queue;
use crate::stream::EventStream;
use crate::throttle::Throttle;

/// What the API reads.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The webhooks in force.
    pub registry: Arc<Registry>,
    /// The webhooks of every dialect.
    pub webhooks: Arc<Webhooks>,
    /// The live event stream.
    pub stream: EventStream,
    /// The broker side, for health.
    pub publisher: Publisher,
    /// The pipeline's counters.
    pub stats: Arc<DeliveryStats>,
    /// The durable queue, for its depth.
    pub queue: Arc<Queue>,
    /// The throttle, for its sleeping hosts.
    pub throttle: Throttle,
    /// The device registry.
    pub fleet: Arc<Fleet>,
    /// Iottly-style webhooks one project may have.
    pub iottly_max_webhooks: usize,
    /// Commands to devices.
    pub commands: Arc<Commands>,
    /// The stores a cluster shares, when the host shares its work.
    pub cluster: Option<Arc<dyn crate::stores::Cluster>>,
    /// Checks and installs plugins sent over the API.
    pub installer: Installer,
    /// The plugins' key-value buckets.
    pub kv: Arc<dyn crate::stores::KeyValue>,
    /// What the embedded broker refused.
    pub refusals: Arc<crate::ingress::refusals::Refusals>,
    /// The delivery history, and replays from it into the pipeline.
    pub replays: crate::pipeline::Replays,
    /// What the history's writer could not keep.
    pub recorded: Arc<crate::pipeline::RecordStats>,
    /// The traces' export, for its count of dropped spans.
    pub traces: crate::traces::Traces,
    /// The settings in force, as the last reload left them.
    pub config: Arc<arc_swap::ArcSwap<crate::config::Config>>,
}
