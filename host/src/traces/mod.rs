//! OpenTelemetry traces of the events (CONTRACT section 15): with
//! `--otlp-endpoint URL`, each event is one trace sent over OTLP/HTTP — a
//! root span `event`, and under it spans for the intake and the commit,
//! each plugin call, each HTTP attempt and the publishing of the answer;
//! each outgoing request carries the W3C `traceparent` of its attempt.
//!
//! [`Traces`] is the exporter, [`Span`] one span. Ending a span only puts
//! it in a bounded queue (4096 spans); a tokio task exports the queue in
//! batches of at most 512, one request at a time, each given 5 s (see
//! `export.rs`). When the collector is slow, down or refuses them, spans
//! are dropped and counted ([`Traces::dropped`]): the pipeline never waits
//! for the collector.
//!
//! Without an endpoint, [`Traces::disabled`] (also its `Default`) makes
//! only [`Span::none`]s: no ids, no allocation, nothing exported, and
//! [`Span::traceparent`] is `None`, so that no header is added. Call sites
//! hold a `Traces` and a `Span` either way.

mod export;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tokio_util::sync::CancellationToken;

pub use opentelemetry::Value;

/// The name of the traces' service (the `service.name` of the resource).
const SERVICE: &str = "edgehook";

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The endpoint is not an `http://` or `https://` URL.
    #[error("OTLP endpoint {0}: not an http:// or https:// URL")]
    Scheme(url::Url),
    /// The endpoint is no valid request URI.
    #[error("OTLP endpoint {url}: {reason}")]
    Endpoint {
        /// The endpoint as given.
        url: url::Url,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS configuration for `https://` could not be built.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// [`Traces::start`] was called outside a tokio runtime.
    #[error("the OTLP exporter needs a tokio runtime")]
    NoRuntime,
}

/// The exporter of the events' traces, or its disabled form. Cheap to
/// clone: the clones share the queue, the export task and the count of
/// dropped spans.
#[derive(Debug, Clone, Default)]
pub struct Traces {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    dropped: Arc<AtomicU64>,
    /// Tells the export task to send what is queued and stop.
    stop: CancellationToken,
    /// Cancelled when the export task has stopped.
    stopped: CancellationToken,
}

impl Traces {
    /// Starts exporting to `endpoint`: OTLP/HTTP, protobuf, `POST` to
    /// `{endpoint}/v1/traces` (an endpoint whose path already ends in
    /// `/v1/traces` is used as it is), `http://` or `https://` (the
    /// webpki roots). The resource is `service.name` `edgehook` and
    /// `service.version` this version. Must be called inside a tokio
    /// runtime, which runs the export task.
    pub fn start(endpoint: &url::Url) -> Result<Self, TraceError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| TraceError::NoRuntime)?;
        let resource = Resource::builder_empty()
            .with_service_name(SERVICE)
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let dropped = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let stopped = CancellationToken::new();
        let (queue, exporter) = export::pipe(
            endpoint,
            &resource,
            dropped.clone(),
            stop.clone(),
            stopped.clone(),
        )?;
        runtime.spawn(exporter.run());
        let provider = SdkTracerProvider::builder()
            .with_span_processor(queue)
            .build();
        let tracer = provider.tracer_with_scope(
            InstrumentationScope::builder(SERVICE)
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        );
        Ok(Self {
            inner: Some(Arc::new(Inner {
                provider,
                tracer,
                dropped,
                stop,
                stopped,
            })),
        })
    }

    /// No exporter: every span is a [`Span::none`].
    pub const fn disabled() -> Self {
        Self { inner: None }
    }

    /// Whether spans are exported.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The root span of one event's trace, `event`, started at `started`
    /// (when the intake saw it), with the attributes `edgehook.event.id`,
    /// `edgehook.device` and `edgehook.event.name`. Kind consumer: the
    /// processing of a message.
    pub fn event(&self, id: &str, device: &str, name: &str, started: SystemTime) -> Span {
        let Some(inner) = &self.inner else {
            return Span::none();
        };
        let span = inner
            .tracer
            .span_builder("event")
            .with_kind(SpanKind::Consumer)
            .with_start_time(started)
            .with_attributes([
                KeyValue::new("edgehook.event.id", id.to_owned()),
                KeyValue::new("edgehook.device", device.to_owned()),
                KeyValue::new("edgehook.event.name", name.to_owned()),
            ])
            .start_with_context(&inner.tracer, &Context::new());
        Span(Some(Box::new(Live {
            span,
            tracer: inner.tracer.clone(),
        })))
    }

    /// Spans dropped so far: ended while the queue was full or while
    /// shutting down, or in a batch the collector did not take (an error,
    /// a status other than 2xx, no answer in time).
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |inner| inner.dropped.load(Ordering::Relaxed))
    }

    /// Sends what is queued and stops the export, waiting at most
    /// `timeout` for it (a collector that does not answer is left behind).
    /// Spans ended afterwards are neither exported nor counted. Returns at
    /// once when disabled.
    pub async fn shutdown(&self, timeout: Duration) {
        let Some(inner) = &self.inner else {
            return;
        };
        inner.stop.cancel();
        if tokio::time::timeout(timeout, inner.stopped.cancelled())
            .await
            .is_err()
        {
            tracing::warn!(
                "OTLP export: the queued spans were not all sent within {}",
                humantime::format_duration(timeout)
            );
        }
        if let Err(e) = inner.provider.shutdown() {
            tracing::debug!("OTLP tracer provider: {e}");
        }
    }
}

/// One span of an event's trace, or none (see [`Traces::disabled`]). It
/// ends at [`end`](Self::end), [`end_at`](Self::end_at) or when dropped,
/// and is then queued for export without waiting.
#[derive(Debug, Default)]
pub struct Span(Option<Box<Live>>);

/// A recording span, with the tracer its children are made with.
#[derive(Debug)]
struct Live {
    span: opentelemetry_sdk::trace::Span,
    tracer: SdkTracer,
}

impl Span {
    /// A span that records and exports nothing, and whose children are
    /// none too (also the `Default`).
    pub const fn none() -> Self {
        Self(None)
    }

    /// Whether it records (and its attributes are worth making).
    pub fn is_recording(&self) -> bool {
        self.0.is_some()
    }

    /// A child span `name`, started now.
    pub fn child(&self, name: &'static str) -> Span {
        self.start_child(name, SpanKind::Internal, SystemTime::now())
    }

    /// A child span `name`, started at `started`.
    pub fn child_at(&self, name: &'static str, started: SystemTime) -> Span {
        self.start_child(name, SpanKind::Internal, started)
    }

    /// A child span `name` for an outgoing request (kind client), started
    /// now; its [`traceparent`](Self::traceparent) goes on the request.
    pub fn client(&self, name: &'static str) -> Span {
        self.start_child(name, SpanKind::Client, SystemTime::now())
    }

    fn start_child(&self, name: &'static str, kind: SpanKind, started: SystemTime) -> Span {
        let Some(live) = &self.0 else {
            return Span::none();
        };
        let parent = Context::new().with_remote_span_context(live.span.span_context().clone());
        let span = live
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_start_time(started)
            .start_with_context(&live.tracer, &parent);
        Span(Some(Box::new(Live {
            span,
            tracer: live.tracer.clone(),
        })))
    }

    /// Sets the attribute `key` (a string, an `i64`, a `bool` or an `f64`).
    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        if let Some(live) = &mut self.0 {
            live.span.set_attribute(KeyValue::new(key, value));
        }
    }

    /// Marks the span failed, with `message`.
    pub fn error(&mut self, message: &str) {
        if let Some(live) = &mut self.0 {
            live.span.set_status(Status::error(message.to_owned()));
        }
    }

    /// The W3C `traceparent` naming this span,
    /// `00-{trace id}-{span id}-{flags}`; `None` for a span that is none.
    pub fn traceparent(&self) -> Option<String> {
        let context = self.0.as_ref()?.span.span_context();
        Some(format!(
            "00-{}-{}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        ))
    }

    /// Ends the span now.
    pub fn end(self) {
        if let Some(mut live) = self.0 {
            live.span.end();
        }
    }

    /// Ends the span at `ended`.
    pub fn end_at(self, ended: SystemTime) {
        if let Some(mut live) = self.0 {
            live.span.end_with_timestamp(ended);
        }
    }
}

#[cfg(test)]
mod tests;
