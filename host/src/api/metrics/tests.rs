//! The exact exposition text of the totals and of every webhook's families.

use std::sync::atomic::Ordering;

use super::*;
use crate::ingress::refusals::Refusals;
use crate::pipeline::DeliveryStats;
use crate::pipeline::stats::{DropReason, RequestOutcome};

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
            kv: [5, 3, 1],
            kv_keys: Some(42),
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
            kv: [0, 0, 0],
            kv_keys: None,
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
# HELP edgehook_plugin_kv_operations_total Key-value operations of the plugin that succeeded, by kind (read, write).
# TYPE edgehook_plugin_kv_operations_total counter
edgehook_plugin_kv_operations_total{plugin="forward",kind="read"} 5
edgehook_plugin_kv_operations_total{plugin="forward",kind="write"} 3
edgehook_plugin_kv_operations_total{plugin="webhook/a\"b\\c\nd",kind="read"} 0
edgehook_plugin_kv_operations_total{plugin="webhook/a\"b\\c\nd",kind="write"} 0
# HELP edgehook_plugin_kv_errors_total Key-value operations of the plugin that failed (a limit, the store).
# TYPE edgehook_plugin_kv_errors_total counter
edgehook_plugin_kv_errors_total{plugin="forward"} 1
edgehook_plugin_kv_errors_total{plugin="webhook/a\"b\\c\nd"} 0
# HELP edgehook_plugin_kv_keys Keys in the plugin's own key-value bucket (expired ones until they are purged).
# TYPE edgehook_plugin_kv_keys gauge
edgehook_plugin_kv_keys{plugin="forward"} 42
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
        kv: [0, 0, 0],
        kv_keys: None,
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
    assert_eq!(text.lines().count(), 20);
    assert!(text.lines().all(|l| l.starts_with('#')));
}
