//! OpenTelemetry traces (CONTRACT section 15) against a stand-in collector
//! that decodes OTLP/HTTP with the `opentelemetry-proto` types: a host's
//! event arrives as one trace, its spans under the root as they happened,
//! and the endpoint sees the `traceparent` of the attempt's span; a
//! collector that is down or hangs costs spans, counted, and nothing the
//! devices or the endpoints can see.

use edgehook::config::Settings;
use serde_json::json;

use crate::support::{
    Collector, Device, HostUnderTest, Outcome, Received, Scripted, Step, TestHost,
};

/// The `traceparent` that names `span`.
fn traceparent(span: &Received) -> String {
    format!("00-{}-{}-01", span.trace_id, span.span_id)
}

/// A host that sends its traces to `collector`.
async fn traced_host(collector: &Collector) -> TestHost {
    TestHost::start(
        &[],
        Settings {
            otlp_endpoint: Some(collector.endpoint().to_string()),
            ..Settings::default()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hosts_event_is_one_trace_and_its_request_carries_the_attempts_traceparent() {
    let collector = Collector::start().await;
    let mut endpoint = Scripted::start(vec![Step::status(200, "stored")]).await;
    let host = traced_host(&collector).await;
    host.create_webhook(json!({ "event": "temp", "url": endpoint.url("/in") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("temp", "21.5").await;
    let arrival = endpoint.next().await;
    assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/temp");
    assert_eq!(
        device.next_text().await,
        ("devices/d1/hook-response/temp/0".into(), "stored".into())
    );

    let event = collector.span_named("event").await;
    let webhook = collector.span_named("webhook").await;
    let http = collector.span_named("http").await;
    assert_eq!(event.parent_span_id, None);
    assert_eq!(event.attributes["edgehook.device"], "d1");
    assert_eq!(event.attributes["edgehook.event.name"], "temp");
    let mut under_event: Vec<_> = collector
        .children(&event)
        .into_iter()
        .map(|s| s.name)
        .collect();
    under_event.sort();
    assert_eq!(under_event, ["commit", "intake", "webhook"]);
    let mut under_webhook: Vec<_> = collector
        .children(&webhook)
        .into_iter()
        .map(|s| s.name)
        .collect();
    under_webhook.sort();
    assert_eq!(
        under_webhook,
        ["http", "plugin.on_event", "plugin.on_response", "publish"]
    );
    assert!(
        collector
            .spans()
            .iter()
            .all(|s| s.trace_id == event.trace_id)
    );
    assert!(webhook.attributes["edgehook.webhook"].starts_with("webhook/"));
    assert_eq!(http.attributes["http.response.status_code"], "200");
    assert_eq!(http.attributes["edgehook.attempt"], "1");
    assert_eq!(http.status, Outcome::Unset, "a 200 is no error");
    assert_eq!(
        arrival.seen.headers["traceparent"].to_str().unwrap(),
        traceparent(&http),
        "the endpoint can join the trace"
    );
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_hangs_costs_the_devices_and_endpoints_nothing() {
    let collector = Collector::hanging().await;
    let mut endpoint = Scripted::start(vec![Step::status(200, "stored")]).await;
    let host = traced_host(&collector).await;
    host.create_webhook(json!({ "event": "temp", "url": endpoint.url("/in") }))
        .await;
    let mut device = Device::connect(host.mqtt_addr(), "d1").await;
    for i in 0..20 {
        device.publish("temp", format!("{i}")).await;
        endpoint.next().await;
        assert_eq!(device.next_text().await.0, "devices/d1/hook-sent/temp");
        assert_eq!(
            device.next_text().await,
            ("devices/d1/hook-response/temp/0".into(), "stored".into())
        );
    }
    // The collector took a request and holds it: the export is stuck.
    collector.requests(1).await;
    host.host.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_a_collector_refuses_are_counted_in_the_metrics() {
    let collector = Collector::unavailable().await;
    let mut endpoint = Scripted::start(vec![Step::status(200, "stored")]).await;
    let host = traced_host(&collector).await;
    host.create_webhook(json!({ "event": "temp", "url": endpoint.url("/in") }))
        .await;
    let device = Device::connect(host.mqtt_addr(), "d1").await;
    device.publish("temp", "21.5").await;
    endpoint.next().await;
    let metrics = host
        .wait_for("/metrics", |text| {
            text.as_str().is_some_and(|t| {
                t.lines()
                    .any(|l| l.starts_with("edgehook_traces_dropped_total ") && !l.ends_with(" 0"))
            })
        })
        .await;
    assert!(collector.spans().is_empty(), "{metrics}");
    host.host.stop().await;
}
