//! The live event stream: every device event and every message the host
//! sends a device (hook-sent, hook-response, hook-error, custom topics), in
//! the shape of Particle's event stream, for `GET /v1/events` and
//! `edgehook subscribe`, and the device events as telemetry for the
//! WebSocket API (`GET /v1/stream`).
//!
//! The pipeline pays one allocation per event, and nothing when nobody
//! listens. The Particle JSON is built at most once per event, by the first
//! subscriber that wants it. A subscriber that falls behind loses the
//! oldest events (it is told how many); it never slows delivery.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::event::Event;
use crate::topic::DeviceId;

/// Events kept for a subscriber that is behind.
const BACKLOG: usize = 1024;

/// How long a Particle event lives; shown for compatibility.
const TTL: u32 = 60;

/// Who published an event of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A device, on `devices/{id}/events/…`.
    Device,
    /// The host, to a device.
    Host,
}

/// One event of the stream.
#[derive(Debug)]
pub struct StreamEvent {
    /// The event name (`temp`, `hook-response/temp/0`), for prefix filters.
    pub name: String,
    /// The device it came from or went to.
    pub device: DeviceId,
    /// Device event or host message.
    pub source: Source,
    /// The payload as published.
    pub data: Bytes,
    /// RFC 3339 UTC with milliseconds.
    pub published_at: String,
    json: OnceLock<String>,
}

impl StreamEvent {
    /// `{"name", "data", "ttl", "published_at", "coreid"}` as JSON text,
    /// built on first use.
    pub fn json(&self) -> &str {
        self.json.get_or_init(|| {
            serde_json::json!({
                "name": self.name,
                "data": String::from_utf8_lossy(&self.data),
                "ttl": TTL,
                "published_at": self.published_at,
                "coreid": self.device.as_str(),
            })
            .to_string()
        })
    }
}

/// The sending side of the stream; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventStream {
    tx: broadcast::Sender<Arc<StreamEvent>>,
}

impl Default for EventStream {
    fn default() -> Self {
        Self {
            tx: broadcast::Sender::new(BACKLOG),
        }
    }
}

impl EventStream {
    /// A device published `event`.
    pub fn device_event(&self, event: &Event) {
        if self.tx.receiver_count() > 0 {
            self.send(StreamEvent {
                name: event.name.as_str().to_owned(),
                device: event.device.clone(),
                source: Source::Device,
                data: event.data.clone(),
                published_at: event.published_at.clone(),
                json: OnceLock::new(),
            });
        }
    }

    /// The host sent `payload` to `device` on `devices/{device}/{name}`.
    pub fn device_message(&self, device: &DeviceId, name: &str, payload: &Bytes) {
        if self.tx.receiver_count() > 0 {
            let now = std::time::SystemTime::now();
            self.send(StreamEvent {
                name: name.to_owned(),
                device: device.clone(),
                source: Source::Host,
                data: payload.clone(),
                published_at: humantime::format_rfc3339_millis(now).to_string(),
                json: OnceLock::new(),
            });
        }
    }

    /// A new subscriber, seeing events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StreamEvent>> {
        self.tx.subscribe()
    }

    fn send(&self, event: StreamEvent) {
        // No receiver left since the check is fine: the event had no audience.
        let _ = self.tx.send(Arc::new(event));
    }
}
