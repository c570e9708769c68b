//! `GET /metrics`, in the Prometheus text exposition format: the host's
//! totals (events in, requests by outcome, retries, throttling, drops,
//! queue depth, end-to-end latency) and the counters of every webhook in
//! force (plugin files and Particle-style webhooks).
//!
//! Written by hand: the counters already live in [`DeliveryStats`] and
//! [`PluginStats`], and a handful of families is less code than mirroring
//! them into a metrics crate's registry. [`render`] and [`render_totals`]
//! are pure, so their exact output is tested.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::ApiState;
use crate::hooks::Hook;
use crate::ingress::refusals::Refusals;
use crate::pipeline::DeliveryStats;
use crate::pipeline::stats::{DropReason, LATENCY_BUCKETS, RequestOutcome};
use crate::runtime::{CallError, PluginStats};

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the metrics show of one webhook, read once from its counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The plugin's name, or `webhook/{id}`.
    pub plugin: String,
    /// Calls made.
    pub calls: u64,
    /// Failed calls, by [`CallError::cause`].
    pub errors: std::collections::BTreeMap<&'static str, u64>,
    /// Time the calls ran, in seconds.
    pub call_seconds: f64,
    /// Largest linear memory of any instance, in bytes.
    pub memory_high_water: u64,
    /// Bytes of log dropped over the per-call budget.
    pub log_bytes_dropped: u64,
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

/// `GET /metrics`.
pub async fn get(State(state): State<ApiState>) -> impl IntoResponse {
    let samples: Vec<Sample> = state
        .registry
        .hooks()
        .iter()
        .map(|hook| Sample::read(hook))
        .collect();
    let totals = Totals::read(
        &state.stats,
        &state.refusals,
        state.queue.depth(),
        state.throttle.sleeping_hosts(),
        &samples,
    );
    let mut text = render_totals(&totals);
    if let Some(cluster) = &state.cluster {
        text.push_str(&render_backlog(cluster.backlog().await));
    }
    text.push_str(&render(&samples));
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text)
}

/// The exposition text of the shared consumer's numbers (with
/// `--nats-url`); only `edgehook_jetstream_up 0` when JetStream does not
/// answer.
pub fn render_backlog(backlog: Option<crate::stores::Backlog>) -> String {
    let mut out = String::new();
    let name = "edgehook_jetstream_up";
    header(
        &mut out,
        name,
        "gauge",
        "Whether JetStream answered this scrape.",
    );
    line(
        &mut out,
        name,
        &[],
        if backlog.is_some() { "1" } else { "0" },
    );
    let Some(b) = backlog else {
        return out;
    };
    for (name, help, value) in [
        (
            "edgehook_jetstream_pending",
            "Events in the stream not yet handed to any host (the consumer's lag).",
            b.pending,
        ),
        (
            "edgehook_jetstream_ack_pending",
            "Events handed to a host and not yet acknowledged, over every host.",
            b.ack_pending,
        ),
        (
            "edgehook_jetstream_redelivered",
            "Events handed out more than once and not yet acknowledged.",
            b.redelivered,
        ),
    ] {
        header(&mut out, name, "gauge", help);
        line(&mut out, name, &[], &value.to_string());
    }
    out
}

/// The exposition text of the host's totals.
pub fn render_totals(t: &Totals) -> String {
    let mut out = String::new();
    for (name, kind, help, value) in [
        (
            "edgehook_events_total",
            "counter",
            "Device events taken from the broker.",
            t.events_in.to_string(),
        ),
        (
            "edgehook_resends_total",
            "counter",
            "Resent MQTT messages (DUP) of events already stored: acknowledged, not delivered again.",
            t.resends.to_string(),
        ),
        (
            "edgehook_queue_commits_total",
            "counter",
            "Transactions written to the event queue, each with its fsync: events ride together, and with the removals of finished ones.",
            t.commits.to_string(),
        ),
        (
            "edgehook_retries_total",
            "counter",
            "Requests made again after a failure.",
            t.retried.to_string(),
        ),
        (
            "edgehook_throttled_total",
            "counter",
            "Attempts that waited for their host's concurrency, rate or Retry-After, or their device's rate.",
            t.throttled.to_string(),
        ),
        (
            "edgehook_skipped_total",
            "counter",
            "Attempts skipped because their host was sleeping after too many errors.",
            t.skipped.to_string(),
        ),
        (
            "edgehook_queue_depth",
            "gauge",
            "Events in the durable queue.",
            t.queue_depth.to_string(),
        ),
        (
            "edgehook_sleeping_hosts",
            "gauge",
            "Destination hosts sleeping after too many errors.",
            t.sleeping_hosts.to_string(),
        ),
        (
            "edgehook_webhooks_disabled",
            "gauge",
            "Webhooks disabled after failed deliveries in a row.",
            t.disabled_webhooks.to_string(),
        ),
    ] {
        header(&mut out, name, kind, help);
        line(&mut out, name, &[], &value);
    }
    for (name, help, label, values) in [
        (
            "edgehook_requests_total",
            "Webhook requests, by outcome.",
            "outcome",
            &t.requests,
        ),
        (
            "edgehook_dropped_total",
            "Events given up on by policy, by reason; each one sent the device a hook-error.",
            "reason",
            &t.dropped,
        ),
        (
            "edgehook_mqtt_refusals_total",
            "Packets the embedded broker refused, by reason: logins, subscriptions and publishes beyond a client's rights or a device's limits.",
            "reason",
            &t.refused,
        ),
    ] {
        header(&mut out, name, "counter", help);
        for (value, n) in values {
            line(&mut out, name, &[(label, value)], &n.to_string());
        }
    }
    let name = "edgehook_delivery_seconds";
    header(
        &mut out,
        name,
        "histogram",
        "Time from an event's arrival to its webhook's replies to the device.",
    );
    let bucket = format!("{name}_bucket");
    let (buckets, count, sum) = &t.latency;
    for (le, n) in LATENCY_BUCKETS.iter().zip(buckets) {
        line(
            &mut out,
            &bucket,
            &[("le", &le.to_string())],
            &n.to_string(),
        );
    }
    line(&mut out, &bucket, &[("le", "+Inf")], &count.to_string());
    line(&mut out, &format!("{name}_sum"), &[], &sum.to_string());
    line(&mut out, &format!("{name}_count"), &[], &count.to_string());
    out
}

/// The exposition text of `samples`: one family after the other, each with
/// its `# HELP` and `# TYPE`, every cause of error listed (zero included) so
/// that rates work from the first error on.
pub fn render(samples: &[Sample]) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "edgehook_plugin_calls_total",
        "counter",
        "Plugin calls made (on-event and on-response).",
        samples,
        |s, line| line(&[], s.calls.to_string()),
    );
    family(
        &mut out,
        "edgehook_plugin_errors_total",
        "counter",
        "Plugin calls that failed, by cause.",
        samples,
        |s, line| {
            for cause in CallError::CAUSES {
                let n = s.errors.get(cause).copied().unwrap_or(0);
                line(&[("cause", cause)], n.to_string());
            }
        },
    );
    family(
        &mut out,
        "edgehook_plugin_call_seconds_total",
        "counter",
        "Time plugin calls ran on the host's threads, in seconds.",
        samples,
        |s, line| line(&[], s.call_seconds.to_string()),
    );
    family(
        &mut out,
        "edgehook_plugin_memory_high_water_bytes",
        "gauge",
        "Largest linear memory of any instance of the plugin, in bytes.",
        samples,
        |s, line| line(&[], s.memory_high_water.to_string()),
    );
    family(
        &mut out,
        "edgehook_plugin_log_dropped_bytes_total",
        "counter",
        "Bytes of plugin log and stdout/stderr dropped over the per-call budget.",
        samples,
        |s, line| line(&[], s.log_bytes_dropped.to_string()),
    );
    family(
        &mut out,
        "edgehook_plugin_suspended",
        "gauge",
        "1 when the plugin is suspended after a run of failed calls.",
        samples,
        |s, line| line(&[], u8::from(s.suspended).to_string()),
    );
    family(
        &mut out,
        "edgehook_webhook_disabled",
        "gauge",
        "1 when the webhook is disabled after a run of failed deliveries.",
        samples,
        |s, line| line(&[], u8::from(s.disabled).to_string()),
    );
    out
}

/// Writes one metric family: its header, then the lines `each` produces
/// for every sample (labelled with the plugin, then the extra labels).
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[Sample],
    each: impl Fn(&Sample, &mut dyn FnMut(&[(&str, &str)], String)),
) {
    header(out, name, kind, help);
    for sample in samples {
        each(sample, &mut |labels, value| {
            let labels: Vec<(&str, &str)> = [("plugin", sample.plugin.as_str())]
                .into_iter()
                .chain(labels.iter().copied())
                .collect();
            line(out, name, &labels, &value);
        });
    }
}

/// The `# HELP` and `# TYPE` lines of a family.
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample line: `name{key="value",…} value`, the braces only when
/// there are labels.
fn line(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    out.push_str(name);
    for (i, (key, label)) in labels.iter().enumerate() {
        let open = if i == 0 { '{' } else { ',' };
        let _ = write!(out, "{open}{key}=\"{}\"", escape(label));
    }
    if !labels.is_empty() {
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the exposition format wants it: `\\`, `"` and newlines
/// escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_for_every_plugin() {
        let samples = [
            Sample {
                plugin: "forward".into(),
                calls: 2,
                errors: Default::default(),
                call_seconds: 0.25,
                memory_high_water: 1_179_648,
                log_bytes_dropped: 2048,
                suspended: false,
                disabled: true,
            },
            Sample {
                plugin: "webhook/a\"b\\c\nd".into(),
                calls: 3,
                errors: [("trap", 3)].into_iter().collect(),
                call_seconds: 0.000_5,
                memory_high_water: 0,
                log_bytes_dropped: 0,
                suspended: true,
                disabled: false,
            },
        ];
        let expected = r#"# HELP edgehook_plugin_calls_total Plugin calls made (on-event and on-response).
# TYPE edgehook_plugin_calls_total counter
edgehook_plugin_calls_total{plugin="forward"} 2
edgehook_plugin_calls_total{plugin="webhook/a\"b\\c\nd"} 3
# HELP edgehook_plugin_errors_total Plugin calls that failed, by cause.
# TYPE edgehook_plugin_errors_total counter
edgehook_plugin_errors_total{plugin="forward",cause="trap"} 0
edgehook_plugin_errors_total{plugin="forward",cause="deadline"} 0
edgehook_plugin_errors_total{plugin="forward",cause="memory"} 0
edgehook_plugin_errors_total{plugin="forward",cause="invalid"} 0
edgehook_plugin_errors_total{plugin="forward",cause="plugin"} 0
edgehook_plugin_errors_total{plugin="forward",cause="instantiate"} 0
edgehook_plugin_errors_total{plugin="webhook/a\"b\\c\nd",cause="trap"} 3
edgehook_plugin_errors_total{plugin="webhook/a\"b\\c\nd",cause="deadline"} 0
edgehook_plugin_errors_total{plugin="webhook/a\"b\\c\nd",cause="memory"} 0
edgehook_plugin_errors_total{plugin="webhook/a\"b\\c\nd",cause="invalid"} 0
edgehook_plugin_errors_total{plugin="webhook/a\"b\\c\nd",cause="plugin"} 0
edgehook_plugin_errors_total{plugin="webhook/a\"b\\c\nd",cause="instantiate"} 0
# HELP edgehook_plugin_call_seconds_total Time plugin calls ran on the host's threads, in seconds.
# TYPE edgehook_plugin_call_seconds_total counter
edgehook_plugin_call_seconds_total{plugin="forward"} 0.25
edgehook_plugin_call_seconds_total{plugin="webhook/a\"b\\c\nd"} 0.0005
# HELP edgehook_plugin_memory_high_water_bytes Largest linear memory of any instance of the plugin, in bytes.
# TYPE edgehook_plugin_memory_high_water_bytes gauge
edgehook_plugin_memory_high_water_bytes{plugin="forward"} 1179648
edgehook_plugin_memory_high_water_bytes{plugin="webhook/a\"b\\c\nd"} 0
# HELP edgehook_plugin_log_dropped_bytes_total Bytes of plugin log and stdout/stderr dropped over the per-call budget.
# TYPE edgehook_plugin_log_dropped_bytes_total counter
edgehook_plugin_log_dropped_bytes_total{plugin="forward"} 2048
edgehook_plugin_log_dropped_bytes_total{plugin="webhook/a\"b\\c\nd"} 0
# HELP edgehook_plugin_suspended 1 when the plugin is suspended after a run of failed calls.
# TYPE edgehook_plugin_suspended gauge
edgehook_plugin_suspended{plugin="forward"} 0
edgehook_plugin_suspended{plugin="webhook/a\"b\\c\nd"} 1
# HELP edgehook_webhook_disabled 1 when the webhook is disabled after a run of failed deliveries.
# TYPE edgehook_webhook_disabled gauge
edgehook_webhook_disabled{plugin="forward"} 1
edgehook_webhook_disabled{plugin="webhook/a\"b\\c\nd"} 0
"#;
        assert_eq!(render(&samples), expected);
    }

    #[test]
    fn totals_render_counters_gauges_and_a_cumulative_histogram() {
        let stats = DeliveryStats::default();
        stats.events_in.store(7, Ordering::Relaxed);
        stats.resends.store(2, Ordering::Relaxed);
        stats.commits.store(5, Ordering::Relaxed);
        stats.request(RequestOutcome::Success);
        stats.request(RequestOutcome::Timeout);
        stats.drop_event(DropReason::Retries);
        stats.latency(std::time::Duration::from_millis(2));
        stats.latency(std::time::Duration::from_millis(40));
        let hooks = [Sample {
            plugin: "w".into(),
            calls: 0,
            errors: Default::default(),
            call_seconds: 0.0,
            memory_high_water: 0,
            log_bytes_dropped: 0,
            suspended: false,
            disabled: true,
        }];
        let refusals = Refusals::default();
        refusals.count(crate::ingress::refusals::Refused::PublishRate);
        let text = render_totals(&Totals::read(&stats, &refusals, 3, 1, &hooks));
        for line in [
            "edgehook_events_total 7",
            "edgehook_resends_total 2",
            "edgehook_queue_commits_total 5",
            "edgehook_queue_depth 3",
            "edgehook_sleeping_hosts 1",
            "edgehook_webhooks_disabled 1",
            "edgehook_requests_total{outcome=\"success\"} 1",
            "edgehook_requests_total{outcome=\"timeout\"} 1",
            "edgehook_requests_total{outcome=\"refused\"} 0",
            "edgehook_dropped_total{reason=\"retries\"} 1",
            "edgehook_dropped_total{reason=\"ttl\"} 0",
            "edgehook_mqtt_refusals_total{reason=\"publish_rate\"} 1",
            "edgehook_mqtt_refusals_total{reason=\"publish_share\"} 0",
            "edgehook_delivery_seconds_bucket{le=\"0.001\"} 0",
            "edgehook_delivery_seconds_bucket{le=\"0.0025\"} 1",
            "edgehook_delivery_seconds_bucket{le=\"0.05\"} 2",
            "edgehook_delivery_seconds_bucket{le=\"+Inf\"} 2",
            "edgehook_delivery_seconds_count 2",
            "# TYPE edgehook_delivery_seconds histogram",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn an_empty_host_has_the_headers_only() {
        let text = render(&[]);
        assert_eq!(text.lines().count(), 14);
        assert!(text.lines().all(|l| l.starts_with('#')));
    }
}
