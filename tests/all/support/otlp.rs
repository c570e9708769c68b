//! A stand-in OpenTelemetry collector on 127.0.0.1 ([`Collector`]):
//! OTLP/HTTP, `POST /v1/traces` with a protobuf `ExportTraceServiceRequest`
//! decoded with the OTLP messages, and the spans kept for a test to wait
//! for and check ([`Received`]). Or one that is down (answers `503`) or
//! hangs (reads each request and never answers).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use prost::Message as _;
use tokio::sync::watch;

use super::WAIT;

/// How the collector answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Keeps the spans and answers `200`.
    Takes,
    /// Answers `503`, keeping nothing.
    Unavailable,
    /// Reads the request, then never answers.
    Hangs,
}

/// One span as the collector got it; the ids in lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// `None` for a trace's root.
    pub parent_span_id: Option<String>,
    /// Strings as they are, numbers and booleans written out.
    pub attributes: BTreeMap<String, String>,
    /// The attributes of the resource that sent it (`service.name`, …).
    pub resource: BTreeMap<String, String>,
    pub start_ns: u64,
    pub end_ns: u64,
    pub status: Outcome,
}

/// A span's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Unset,
    Ok,
    Error(String),
}

/// What the collector has seen.
#[derive(Debug, Default)]
struct Seen {
    /// Requests to `/v1/traces`, answered or not.
    requests: usize,
    /// The spans it took, in the order they came.
    spans: Vec<Received>,
}

/// A stand-in OpenTelemetry collector (OTLP/HTTP) on 127.0.0.1.
pub struct Collector {
    pub addr: SocketAddr,
    seen: Arc<watch::Sender<Seen>>,
}

impl Collector {
    /// A collector that takes every span.
    pub async fn start() -> Self {
        Self::serve(Behaviour::Takes).await
    }

    /// A collector that is down: `503` to every request.
    pub async fn unavailable() -> Self {
        Self::serve(Behaviour::Unavailable).await
    }

    /// A collector that reads each request and never answers.
    pub async fn hanging() -> Self {
        Self::serve(Behaviour::Hangs).await
    }

    async fn serve(behaviour: Behaviour) -> Self {
        let seen = Arc::new(watch::Sender::new(Seen::default()));
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(export))
            .with_state((behaviour, seen.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, seen }
    }

    /// The URL to export to (`--otlp-endpoint`): `http://127.0.0.1:PORT`,
    /// under which the spans go to `/v1/traces`.
    pub fn endpoint(&self) -> url::Url {
        url::Url::parse(&format!("http://{}", self.addr)).unwrap()
    }

    /// The spans taken so far.
    pub fn spans(&self) -> Vec<Received> {
        self.seen.borrow().spans.clone()
    }

    /// The spans taken so far whose parent is `parent`.
    pub fn children(&self, parent: &Received) -> Vec<Received> {
        let seen = self.seen.borrow();
        seen.spans
            .iter()
            .filter(|span| span.parent_span_id.as_ref() == Some(&parent.span_id))
            .cloned()
            .collect()
    }

    /// The first span named `name`, once it has come; panics after
    /// [`WAIT`], naming the spans that came.
    pub async fn span_named(&self, name: &str) -> Received {
        let mut seen = self.seen.subscribe();
        let found = tokio::time::timeout(
            WAIT,
            seen.wait_for(|seen| seen.spans.iter().any(|span| span.name == name)),
        )
        .await;
        match found {
            Ok(Ok(seen)) => seen
                .spans
                .iter()
                .find(|span| span.name == name)
                .cloned()
                .unwrap(),
            _ => panic!("no span {name} in time; got {:?}", self.spans()),
        }
    }

    /// Waits until `count` requests have come, answered or not; panics
    /// after [`WAIT`].
    pub async fn requests(&self, count: usize) {
        let mut seen = self.seen.subscribe();
        tokio::time::timeout(WAIT, seen.wait_for(|seen| seen.requests >= count))
            .await
            .unwrap_or_else(|_| panic!("{count} export requests in time"))
            .unwrap();
    }
}

async fn export(
    State((behaviour, seen)): State<(Behaviour, Arc<watch::Sender<Seen>>)>,
    body: Bytes,
) -> StatusCode {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
    seen.send_modify(|seen| {
        seen.requests += 1;
        if behaviour == Behaviour::Takes {
            seen.spans.extend(received(request));
        }
    });
    match behaviour {
        Behaviour::Takes => StatusCode::OK,
        Behaviour::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Behaviour::Hangs => std::future::pending().await,
    }
}

/// The spans of `request`, each with its resource's attributes.
fn received(request: ExportTraceServiceRequest) -> Vec<Received> {
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|resource| strings(&resource.attributes))
            .unwrap_or_default();
        for span in resource_spans
            .scope_spans
            .into_iter()
            .flat_map(|scope| scope.spans)
        {
            let status = match span.status {
                Some(status) if status.code == SpanStatus::Error as i32 => {
                    Outcome::Error(status.message)
                }
                Some(status) if status.code == SpanStatus::Ok as i32 => Outcome::Ok,
                _ => Outcome::Unset,
            };
            spans.push(Received {
                name: span.name,
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: (!span.parent_span_id.is_empty())
                    .then(|| hex(&span.parent_span_id)),
                attributes: strings(&span.attributes),
                resource: resource.clone(),
                start_ns: span.start_time_unix_nano,
                end_ns: span.end_time_unix_nano,
                status,
            });
        }
    }
    spans
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Attributes as strings: strings as they are, numbers and booleans
/// written out, anything else as its debug form.
fn strings(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .map(|attribute| {
            let value = match attribute.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (attribute.key.clone(), value)
        })
        .collect()
}
