//! The export of ended spans: a bounded queue the SDK hands each ended span
//! to ([`Queue`], never waiting: a full queue drops the span), and one
//! tokio task ([`Exporter`]) that takes the queue in batches, encodes each
//! as an OTLP `ExportTraceServiceRequest` (protobuf) and POSTs it to the
//! collector with a timeout, one batch at a time.
//!
//! Not the SDK's `BatchSpanProcessor`: it does not tell how many spans it
//! dropped, runs its exports on a thread of its own with a blocking
//! executor (where hyper has no runtime), and its shutdown blocks.
//!
//! Every span that is not exported is counted in `dropped`: refused by the
//! full or closed queue, or in a batch the collector failed (connection
//! error, a status other than 2xx, no answer within [`EXPORT_TIMEOUT`]).
//! A failed batch is not retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::Context;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanProcessor};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::TraceError;

/// Ended spans waiting for export, at most.
pub(super) const QUEUE: usize = 4096;

/// Spans per request, at most.
const BATCH: usize = 512;

/// How long a batch that is not full waits for more spans.
const DELAY: Duration = Duration::from_secs(1);

/// How long one request to the collector may take, connecting included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of a collector's answer that is read (it is discarded).
const MAX_ANSWER_BYTES: usize = 64 << 10;

/// The span processor: puts each ended span in the queue, or drops it.
#[derive(Debug)]
pub(super) struct Queue {
    spans: mpsc::Sender<SpanData>,
    dropped: Arc<AtomicU64>,
}

impl SpanProcessor for Queue {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.spans.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Nothing to do here: [`super::Traces::shutdown`] has the export task
    /// send what is queued.
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    /// As `force_flush`.
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// The client to the collector: plain HTTP, or HTTPS with the webpki roots.
type Collector = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The export task's side of the queue.
pub(super) struct Exporter {
    spans: mpsc::Receiver<SpanData>,
    client: Collector,
    uri: http::Uri,
    resource: ResourceAttributesWithSchema,
    dropped: Arc<AtomicU64>,
    /// Send what is queued, then stop.
    stop: CancellationToken,
    /// Cancelled when the task ends.
    stopped: CancellationToken,
    /// Whether the last request failed (its failure was logged).
    failing: bool,
}

/// The queue and the task that exports it to `endpoint`.
pub(super) fn pipe(
    endpoint: &url::Url,
    resource: &Resource,
    dropped: Arc<AtomicU64>,
    stop: CancellationToken,
    stopped: CancellationToken,
) -> Result<(Queue, Exporter), TraceError> {
    let uri = traces_uri(endpoint)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(EXPORT_TIMEOUT));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(crate::tls::client_config(None)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client = Client::builder(TokioExecutor::new()).build(https);
    let (sender, receiver) = mpsc::channel(QUEUE);
    let queue = Queue {
        spans: sender,
        dropped: dropped.clone(),
    };
    let exporter = Exporter {
        spans: receiver,
        client,
        uri,
        resource: resource.into(),
        dropped,
        stop,
        stopped,
        failing: false,
    };
    Ok((queue, exporter))
}

/// Where spans are posted: the endpoint's path with `/v1/traces` appended,
/// unless it already ends so.
pub(super) fn traces_uri(endpoint: &url::Url) -> Result<http::Uri, TraceError> {
    if !matches!(endpoint.scheme(), "http" | "https") {
        return Err(TraceError::Scheme(endpoint.clone()));
    }
    let mut url = endpoint.clone();
    if !url.path().ends_with("/v1/traces") {
        let path = format!("{}/v1/traces", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    url.as_str()
        .parse()
        .map_err(|e: http::uri::InvalidUri| TraceError::Endpoint {
            url: endpoint.clone(),
            reason: e.to_string(),
        })
}

impl Exporter {
    /// Exports batches until told to stop (or until the queue's sender is
    /// gone), then what is left in the queue.
    pub(super) async fn run(mut self) {
        let _stopped = self.stopped.clone().drop_guard();
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let open = self.collect(&mut batch).await;
            self.send(&mut batch).await;
            if !open {
                break;
            }
        }
        while self.spans.recv_many(&mut batch, BATCH).await > 0 {
            self.send(&mut batch).await;
        }
    }

    /// Waits for a span, then for more until `batch` holds [`BATCH`] or
    /// [`DELAY`] has passed. False when the export is to stop: the queue
    /// is then closed, and refuses what is ended afterwards.
    async fn collect(&mut self, batch: &mut Vec<SpanData>) -> bool {
        tokio::select! {
            biased;
            () = self.stop.cancelled() => {
                self.spans.close();
                return false;
            }
            received = self.spans.recv_many(batch, BATCH) => {
                if received == 0 {
                    return false;
                }
            }
        }
        let deadline = tokio::time::sleep(DELAY);
        tokio::pin!(deadline);
        while batch.len() < BATCH {
            let room = BATCH - batch.len();
            tokio::select! {
                biased;
                () = self.stop.cancelled() => {
                    self.spans.close();
                    return false;
                }
                () = &mut deadline => break,
                received = self.spans.recv_many(batch, room) => {
                    if received == 0 {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Posts `batch` (emptied), counting its spans as dropped if the
    /// collector does not take them.
    async fn send(&mut self, batch: &mut Vec<SpanData>) {
        if batch.is_empty() {
            return;
        }
        let count = batch.len() as u64;
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                std::mem::take(batch),
                &self.resource,
            ),
        };
        let result = match tokio::time::timeout(EXPORT_TIMEOUT, self.post(request)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no answer within {}",
                humantime::format_duration(EXPORT_TIMEOUT)
            )),
        };
        match result {
            Ok(()) if self.failing => {
                self.failing = false;
                tracing::info!("OTLP export to {} works again", self.uri);
            }
            Ok(()) => {}
            Err(reason) => {
                self.dropped.fetch_add(count, Ordering::Relaxed);
                if self.failing {
                    tracing::debug!("OTLP export to {}: {reason}", self.uri);
                } else {
                    self.failing = true;
                    tracing::warn!(
                        "OTLP export to {} failed: {reason}; spans are dropped until it works",
                        self.uri
                    );
                }
            }
        }
    }

    /// One request; the answer's body is read (so that the connection is
    /// kept) and discarded.
    async fn post(&self, request: ExportTraceServiceRequest) -> Result<(), String> {
        let request = http::Request::post(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .header(http::header::USER_AGENT, crate::delivery::USER_AGENT)
            .body(Full::new(Bytes::from(request.encode_to_vec())))
            .map_err(|e| e.to_string())?;
        let answer = self
            .client
            .request(request)
            .await
            .map_err(|e| deepest(&e))?;
        let status = answer.status();
        if let Err(e) = Limited::new(answer.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
        {
            tracing::debug!("OTLP collector's answer: {e}");
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {status}"))
        }
    }
}

/// The innermost cause of `err` (e.g. "Connection refused"), which is what
/// says what went wrong.
fn deepest(err: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = err;
    while let Some(source) = deepest.source() {
        deepest = source;
    }
    deepest.to_string()
}
