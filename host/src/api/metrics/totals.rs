//! The exposition text of the host's totals, of the delivery history and
//! of the shared consumer's backlog.

use std::sync::atomic::Ordering;

use super::read::Totals;
use super::text::{header, line};
use crate::pipeline::RecordStats;
use crate::pipeline::stats::LATENCY_BUCKETS;
use crate::stores::history::Held;

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

/// The exposition text of the delivery history: what it holds, and what
/// its writer could not keep.
pub fn render_history(held: Held, recorded: &RecordStats) -> String {
    let mut out = String::new();
    for (name, kind, help, value) in [
        (
            "edgehook_history_attempts",
            "gauge",
            "Attempts the delivery history keeps.",
            held.attempts,
        ),
        (
            "edgehook_history_bytes",
            "gauge",
            "Bytes of attempts and events the delivery history keeps, counted against history_max_bytes.",
            held.bytes,
        ),
        (
            "edgehook_history_dropped_total",
            "counter",
            "Attempts not kept in the history because its writer was too far behind.",
            recorded.dropped.load(Ordering::Relaxed),
        ),
        (
            "edgehook_history_write_failures_total",
            "counter",
            "Writes to the delivery history that failed (their attempts are not kept).",
            recorded.failures.load(Ordering::Relaxed),
        ),
    ] {
        header(&mut out, name, kind, help);
        line(&mut out, name, &[], &value.to_string());
    }
    out
}

/// The exposition text of the traces' export.
pub fn render_traces(dropped: u64) -> String {
    let mut out = String::new();
    let name = "edgehook_traces_dropped_total";
    header(
        &mut out,
        name,
        "counter",
        "Spans not exported: the export queue was full or the OTLP collector did not take them.",
    );
    line(&mut out, name, &[], &dropped.to_string());
    out
}

/// The exposition text of the host's totals.
pub fn render_totals(t: &Totals) -> String {
    let mut out = String::new();
    write_unlabelled(&mut out, t);
    write_labelled(&mut out, t);
    write_latency(&mut out, t);
    out
}

/// The counters and gauges without labels.
fn write_unlabelled(out: &mut String, t: &Totals) {
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
            "edgehook_auth_tokens_total",
            "counter",
            "Access tokens fetched for webhooks' oauth2-client-credentials and google-service-account auth.",
            t.tokens.0.to_string(),
        ),
        (
            "edgehook_auth_token_failures_total",
            "counter",
            "Token requests that failed: no answer, or an answer that is not a token.",
            t.tokens.1.to_string(),
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
        header(out, name, kind, help);
        line(out, name, &[], &value);
    }
}

/// The counters labelled by outcome or reason.
fn write_labelled(out: &mut String, t: &Totals) {
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
        header(out, name, "counter", help);
        for (value, n) in values {
            line(out, name, &[(label, value)], &n.to_string());
        }
    }
}

/// The end-to-end latency histogram, cumulative.
fn write_latency(out: &mut String, t: &Totals) {
    let name = "edgehook_delivery_seconds";
    header(
        out,
        name,
        "histogram",
        "Time from an event's arrival to its webhook's replies to the device.",
    );
    let bucket = format!("{name}_bucket");
    let (buckets, count, sum) = &t.latency;
    for (le, n) in LATENCY_BUCKETS.iter().zip(buckets) {
        line(out, &bucket, &[("le", &le.to_string())], &n.to_string());
    }
    line(out, &bucket, &[("le", "+Inf")], &count.to_string());
    line(out, &format!("{name}_sum"), &[], &sum.to_string());
    line(out, &format!("{name}_count"), &[], &count.to_string());
}
