//! The counters the metrics show, read once per scrape: [`Totals`] of the
//! host and a [`Sample`] of each webhook in force.

use std::sync::atomic::Ordering;

use crate::hooks::Hook;
use crate::ingress::refusals::Refusals;
use crate::pipeline::DeliveryStats;
use crate::pipeline::stats::{DropReason, RequestOutcome};
use crate::runtime::PluginStats;

/// What the metrics show of one webhook, read once from its counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The plugin's name, or `webhook/{id}`.
    pub plugin: String,
    /// Calls made.
    pub calls: u64,
    /// Failed calls, by [`CallError::cause`](crate::runtime::CallError::cause).
    pub errors: std::collections::BTreeMap<&'static str, u64>,
    /// Time the calls ran, in seconds.
    pub call_seconds: f64,
    /// Largest linear memory of any instance, in bytes.
    pub memory_high_water: u64,
    /// Bytes of log dropped over the per-call budget.
    pub log_bytes_dropped: u64,
    /// Key-value operations that read, that wrote, that failed.
    pub kv: [u64; 3],
    /// Keys in its own bucket, for a plugin that keeps state.
    pub kv_keys: Option<u64>,
    /// Whether it is suspended after a run of failures.
    pub suspended: bool,
    /// Whether it is disabled after a run of failed deliveries.
    pub disabled: bool,
}

impl Sample {
    /// Reads the counters of `hook`.
    pub fn read(hook: &Hook) -> Self {
        let stats: &PluginStats = &hook.plugin.stats_handle();
        Self {
            plugin: hook.name.to_string(),
            calls: stats.calls.load(Ordering::Relaxed),
            errors: stats.errors(),
            call_seconds: stats.call_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            memory_high_water: stats.memory_high_water.load(Ordering::Relaxed),
            log_bytes_dropped: stats.log_bytes_dropped.load(Ordering::Relaxed),
            kv: [&stats.kv_reads, &stats.kv_writes, &stats.kv_errors]
                .map(|counter| counter.load(Ordering::Relaxed)),
            kv_keys: None,
            suspended: stats.suspended().is_some(),
            disabled: hook.disabled().is_some(),
        }
    }
}

/// The host's totals, read once.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    /// Device events taken from the broker.
    pub events_in: u64,
    /// Resent messages acknowledged without a second delivery.
    pub resends: u64,
    /// Transactions written to the queue file.
    pub commits: u64,
    /// Requests by outcome label.
    pub requests: Vec<(&'static str, u64)>,
    /// Attempts made again after a failure.
    pub retried: u64,
    /// Attempts that waited for their host or device.
    pub throttled: u64,
    /// Attempts skipped because their host was sleeping.
    pub skipped: u64,
    /// Access tokens fetched, and token requests that failed.
    pub tokens: (u64, u64),
    /// Events given up on, by reason label.
    pub dropped: Vec<(&'static str, u64)>,
    /// Packets the embedded broker refused, by reason label.
    pub refused: Vec<(&'static str, u64)>,
    /// Events in the durable queue.
    pub queue_depth: usize,
    /// Destination hosts sleeping after too many errors.
    pub sleeping_hosts: usize,
    /// Webhooks disabled after failed deliveries.
    pub disabled_webhooks: usize,
    /// End-to-end latency: cumulative bucket counts, count, sum in seconds.
    pub latency: (Vec<u64>, u64, f64),
}

impl Totals {
    /// Reads the pipeline's counters.
    pub fn read(
        stats: &DeliveryStats,
        refusals: &Refusals,
        queue_depth: usize,
        sleeping_hosts: usize,
        hooks: &[Sample],
    ) -> Self {
        Self {
            events_in: stats.events_in.load(Ordering::Relaxed),
            resends: stats.resends.load(Ordering::Relaxed),
            commits: stats.commits.load(Ordering::Relaxed),
            requests: RequestOutcome::ALL
                .iter()
                .map(|&o| (o.label(), stats.requests(o)))
                .collect(),
            retried: stats.retried.load(Ordering::Relaxed),
            throttled: stats.throttled.load(Ordering::Relaxed),
            skipped: stats.skipped.load(Ordering::Relaxed),
            tokens: (
                stats.tokens_fetched.load(Ordering::Relaxed),
                stats.token_failures.load(Ordering::Relaxed),
            ),
            dropped: DropReason::ALL
                .iter()
                .map(|&r| (r.label(), stats.dropped(r)))
                .collect(),
            refused: refusals.read(),
            queue_depth,
            sleeping_hosts,
            disabled_webhooks: hooks.iter().filter(|s| s.disabled).count(),
            latency: stats.latency_histogram(),
        }
    }
}
