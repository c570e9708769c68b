//! The traces against stand-in collectors on loopback: one that decodes
//! what it is sent with the OTLP messages, one that answers 503, one that
//! never answers, and a closed port.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue as Attribute;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AttributeValue;
use opentelemetry_proto::tonic::trace::v1::Span as Exported;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as ExportedKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as ExportedStatus;
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::export::{QUEUE, traces_uri};
use super::{Span, TraceError, Traces};

/// How long a test waits for something that should happen.
const WAIT: Duration = Duration::from_secs(10);

fn endpoint(addr: SocketAddr) -> url::Url {
    url::Url::parse(&format!("http://{addr}")).expect("a URL")
}

/// A collector on loopback that answers `status` to `POST /v1/traces`
/// and hands on each request it decoded.
async fn collector(
    status: StatusCode,
) -> (url::Url, mpsc::UnboundedReceiver<ExportTraceServiceRequest>) {
    async fn take(
        State((requests, status)): State<(
            mpsc::UnboundedSender<ExportTraceServiceRequest>,
            StatusCode,
        )>,
        body: Bytes,
    ) -> StatusCode {
        let request = ExportTraceServiceRequest::decode(body).expect("an OTLP request");
        requests.send(request).expect("the test listening");
        status
    }
    let (sender, requests) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(take))
        .with_state((sender, status));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serving") });
    (endpoint(addr), requests)
}

/// A collector that takes connections and never answers, telling of each
/// connection.
async fn hung_collector() -> (url::Url, mpsc::UnboundedReceiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let addr = listener.local_addr().expect("its address");
    let (sender, connections) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            if sender.send(()).is_err() {
                break;
            }
        }
    });
    (endpoint(addr), connections)
}

/// A loopback port nothing listens on.
async fn closed_port() -> url::Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    endpoint(listener.local_addr().expect("its address"))
}

/// The resource's attributes and the spans of the requests, waiting until
/// `count` spans have come.
async fn receive(
    requests: &mut mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
    count: usize,
) -> (BTreeMap<String, String>, Vec<Exported>) {
    let mut resource = BTreeMap::new();
    let mut spans = Vec::new();
    while spans.len() < count {
        let request = tokio::time::timeout(WAIT, requests.recv())
            .await
            .unwrap_or_else(|_| panic!("{count} spans in time, got {}", spans.len()))
            .expect("the collector running");
        for resource_spans in request.resource_spans {
            if let Some(attributes) = resource_spans.resource.map(|r| r.attributes) {
                resource.extend(strings(&attributes));
            }
            for scope_spans in resource_spans.scope_spans {
                spans.extend(scope_spans.spans);
            }
        }
    }
    (resource, spans)
}

/// Attributes as strings.
fn strings(attributes: &[Attribute]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .map(|attribute| {
            let value = match attribute.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AttributeValue::StringValue(s)) => s.clone(),
                Some(AttributeValue::IntValue(i)) => i.to_string(),
                other => format!("{other:?}"),
            };
            (attribute.key.clone(), value)
        })
        .collect()
}

fn named<'a>(spans: &'a [Exported], name: &str) -> &'a Exported {
    spans
        .iter()
        .find(|span| span.name == name)
        .unwrap_or_else(|| panic!("a span {name} in {spans:?}"))
}

/// The trace id and span id of a `traceparent`, checking its form.
fn ids(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    let [version, trace_id, span_id, flags] = parts[..] else {
        panic!("four parts in {traceparent}");
    };
    assert_eq!((version, flags), ("00", "01"), "{traceparent}");
    for (id, len) in [(trace_id, 32), (span_id, 16)] {
        assert_eq!(id.len(), len, "{traceparent}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{traceparent}"
        );
        assert!(id.bytes().any(|b| b != b'0'), "{traceparent}");
    }
    (trace_id.to_owned(), span_id.to_owned())
}

fn nanos(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).expect("after 1970");
    u64::try_from(since.as_nanos()).expect("before 2554")
}

#[test]
fn the_spans_go_to_v1_traces_under_the_endpoint() {
    for (endpoint, uri) in [
        ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        (
            "https://collector/otlp/",
            "https://collector/otlp/v1/traces",
        ),
        ("http://collector/v1/traces", "http://collector/v1/traces"),
        (
            "http://collector/otlp/v1/traces?k=v",
            "http://collector/otlp/v1/traces?k=v",
        ),
    ] {
        let endpoint = url::Url::parse(endpoint).expect("a URL");
        let got = traces_uri(&endpoint).expect("a traces URI");
        assert_eq!(got.to_string(), uri, "{endpoint}");
    }
    let ftp = url::Url::parse("ftp://collector").expect("a URL");
    assert!(matches!(traces_uri(&ftp), Err(TraceError::Scheme(_))));
}

#[test]
fn the_exporter_needs_a_runtime() {
    let endpoint = url::Url::parse("http://127.0.0.1:4318").expect("a URL");
    assert!(matches!(
        Traces::start(&endpoint),
        Err(TraceError::NoRuntime)
    ));
}

#[tokio::test]
async fn disabled_traces_make_spans_that_are_none() {
    /// Made without allocating, or it could not be a constant.
    const NONE: Span = Span::none();
    fn shared<T: Send + Sync>() {}
    shared::<Traces>();
    shared::<Span>();
    assert_eq!(size_of::<Span>(), size_of::<usize>());
    assert!(NONE.traceparent().is_none());

    let traces = Traces::disabled();
    assert!(!traces.is_enabled());
    let root = traces.event("e-1", "dev-1", "temp", SystemTime::now());
    assert!(root.0.is_none());
    let mut attempt = root.client("http");
    attempt.set("http.response.status_code", 200);
    attempt.error("refused");
    assert!(attempt.0.is_none());
    assert!(attempt.traceparent().is_none());
    attempt.end();
    root.child_at("intake", SystemTime::now())
        .end_at(SystemTime::now());
    root.end();
    traces.shutdown(WAIT).await;
    assert_eq!(traces.dropped(), 0);
}

#[tokio::test]
async fn a_traceparent_names_the_trace_and_the_span() {
    let traces = Traces::start(&closed_port().await).expect("started");
    assert!(traces.is_enabled());
    let root = traces.event("e-1", "dev-1", "temp", SystemTime::now());
    let child = root.child("plugin");
    let grandchild = child.client("http");
    let (trace, root_id) = ids(&root.traceparent().expect("a traceparent"));
    let (child_trace, child_id) = ids(&child.traceparent().expect("a traceparent"));
    let (grandchild_trace, grandchild_id) = ids(&grandchild.traceparent().expect("a traceparent"));
    assert_eq!((&child_trace, &grandchild_trace), (&trace, &trace));
    assert!(root_id != child_id && child_id != grandchild_id && root_id != grandchild_id);
    let other = traces.event("e-2", "dev-1", "temp", SystemTime::now());
    assert_ne!(ids(&other.traceparent().expect("a traceparent")).0, trace);
}

#[tokio::test]
async fn an_events_spans_reach_the_collector_as_one_trace() {
    let (endpoint, mut requests) = collector(StatusCode::OK).await;
    let traces = Traces::start(&endpoint).expect("started");
    let seen = SystemTime::now() - Duration::from_millis(20);
    let root = traces.event("e-1", "dev-1", "temp", seen);
    root.child_at("intake", seen).end();
    let mut plugin = root.child("plugin");
    plugin.set("edgehook.webhook", "w1");
    plugin.end();
    let mut attempt = root.client("http");
    attempt.set("edgehook.attempt", 1);
    attempt.set("http.response.status_code", 503);
    attempt.error("HTTP 503");
    let traceparent = attempt.traceparent().expect("a traceparent");
    attempt.end();
    let root_traceparent = root.traceparent().expect("a traceparent");
    let ended = SystemTime::now();
    root.end_at(ended);

    // Sent after the batch delay, without a shutdown.
    let (resource, spans) = receive(&mut requests, 4).await;
    assert_eq!(resource["service.name"], "edgehook");
    assert_eq!(resource["service.version"], env!("CARGO_PKG_VERSION"));
    let root = named(&spans, "event");
    let (trace_id, root_id) = ids(&root_traceparent);
    assert_eq!(hex::encode(&root.span_id), root_id);
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.kind, ExportedKind::Consumer as i32);
    assert_eq!(
        (root.start_time_unix_nano, root.end_time_unix_nano),
        (nanos(seen), nanos(ended))
    );
    let attributes = strings(&root.attributes);
    assert_eq!(attributes["edgehook.event.id"], "e-1");
    assert_eq!(attributes["edgehook.device"], "dev-1");
    assert_eq!(attributes["edgehook.event.name"], "temp");
    for span in &spans {
        assert_eq!(hex::encode(&span.trace_id), trace_id, "{}", span.name);
        if span.name != "event" {
            assert_eq!(span.parent_span_id, root.span_id, "{}", span.name);
        }
    }
    assert_eq!(named(&spans, "intake").start_time_unix_nano, nanos(seen));
    let plugin = named(&spans, "plugin");
    assert_eq!(strings(&plugin.attributes)["edgehook.webhook"], "w1");
    assert_eq!(plugin.kind, ExportedKind::Internal as i32);
    let attempt = named(&spans, "http");
    assert_eq!(
        (
            hex::encode(&attempt.trace_id),
            hex::encode(&attempt.span_id)
        ),
        ids(&traceparent)
    );
    assert_eq!(attempt.kind, ExportedKind::Client as i32);
    let attempt_attributes = strings(&attempt.attributes);
    assert_eq!(attempt_attributes["edgehook.attempt"], "1");
    assert_eq!(attempt_attributes["http.response.status_code"], "503");
    let status = attempt.status.as_ref().expect("a status");
    assert_eq!(status.code, ExportedStatus::Error as i32);
    assert_eq!(status.message, "HTTP 503");

    traces
        .event("e-2", "dev-1", "temp", SystemTime::now())
        .end();
    traces.shutdown(WAIT).await;
    let (_, flushed) = receive(&mut requests, 1).await;
    assert_eq!(strings(&flushed[0].attributes)["edgehook.event.id"], "e-2");
    assert_eq!(traces.dropped(), 0);
}

#[tokio::test]
async fn a_hung_collector_never_holds_up_ending_spans() {
    let (endpoint, mut connections) = hung_collector().await;
    let traces = Traces::start(&endpoint).expect("started");
    traces
        .event("first", "dev-1", "temp", SystemTime::now())
        .end();
    // The export of the first span now waits for an answer that never
    // comes; the queue is empty, and nothing takes from it.
    tokio::time::timeout(WAIT, connections.recv())
        .await
        .expect("the exporter connected in time")
        .expect("the collector running");
    const SPANS: u64 = 100_000;
    for n in 0..SPANS {
        let mut span = traces.event(&n.to_string(), "dev-1", "temp", SystemTime::now());
        span.set("edgehook.attempt", 1);
        span.end();
    }
    assert_eq!(traces.dropped(), SPANS - QUEUE as u64);
    // Gives up on the collector after the timeout.
    traces.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn spans_the_collector_does_not_take_are_counted_as_dropped() {
    let (unavailable, mut requests) = collector(StatusCode::SERVICE_UNAVAILABLE).await;
    for endpoint in [unavailable, closed_port().await] {
        let traces = Traces::start(&endpoint).expect("started");
        for n in 0..10 {
            traces
                .event(&n.to_string(), "dev-1", "temp", SystemTime::now())
                .end();
        }
        traces.shutdown(WAIT).await;
        assert_eq!(traces.dropped(), 10, "{endpoint}");
    }
    // The unavailable one did get them.
    assert_eq!(receive(&mut requests, 10).await.1.len(), 10);
}
