//! The live event stream: every device event and every message the host
//! sends a device (hook-sent, hook-response, hook-error, custom topics), in
//! the shape of Particle's event stream, for `GET /v1/events` and
//! `edgehook subscribe`.
//!
//! Each event is serialized once, however many subscribers there are, and
//! not at all when there are none. A subscriber that falls behind loses the
//! oldest events (it is told how many); it never slows delivery.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::event::Event;
use crate::topic::DeviceId;

/// Events kept for a subscriber that is behind.
const BACKLOG: usize = 1024;

/// How long a Particle event lives; shown for compatibility.
const TTL: u32 = 60;

/// One event of the stream.
#[derive(Debug)]
pub struct StreamEvent {
    /// The event name (`temp`, `hook-response/temp/0`), for prefix filters.
    pub name: String,
    /// `{"name", "data", "ttl", "published_at", "coreid"}` as JSON text.
    pub json: String,
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
            self.send(
                event.name.as_str(),
                &event.data,
                &event.published_at,
                &event.device,
            );
        }
    }

    /// The host sent `payload` to `device` on `devices/{device}/{name}`.
    pub fn device_message(&self, device: &DeviceId, name: &str, payload: &[u8]) {
        if self.tx.receiver_count() > 0 {
            let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
            self.send(name, payload, &now, device);
        }
    }

    /// A new subscriber, seeing events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StreamEvent>> {
        self.tx.subscribe()
    }

    fn send(&self, name: &str, data: &[u8], published_at: &str, device: &DeviceId) {
        let json = serde_json::json!({
            "name": name,
            "data": String::from_utf8_lossy(data),
            "ttl": TTL,
            "published_at": published_at,
            "coreid": device.as_str(),
        })
        .to_string();
        // No receiver left since the check is fine: the event had no audience.
        let _ = self.tx.send(Arc::new(StreamEvent {
            name: name.to_owned(),
            json,
        }));
    }
}
