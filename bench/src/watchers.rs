//! WebSocket API clients (`--ws-clients N`): each subscribes to the
//! telemetry of every simulated device and counts the frames it gets, for
//! the fan-out figure and the cost the stream adds to the host.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{SinkExt as _, StreamExt as _};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

/// Subscriptions one connection may hold on the host.
pub const MAX_DEVICES: usize = 64;

/// The clients, counting telemetry frames.
#[derive(Debug)]
pub struct Watchers {
    frames: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
    tasks: JoinSet<()>,
}

impl Watchers {
    /// Connects `clients` clients to `url`, each subscribed to `devices`.
    pub async fn connect(url: &str, clients: usize, devices: &[String]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            devices.len() <= MAX_DEVICES,
            "--ws-clients subscribes to every device: at most {MAX_DEVICES} devices"
        );
        let frames = Arc::new(AtomicU64::new(0));
        let closed = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for _ in 0..clients {
            let (mut ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .with_context(|| format!("connecting to {url}"))?;
            for device in devices {
                let subscribe =
                    serde_json::json!({"type": "subscribe", "payload": {"device_id": device}});
                ws.send(Message::text(subscribe.to_string())).await?;
                match ws.next().await {
                    Some(Ok(Message::Text(reply))) if reply.contains("\"subscribed\"") => {}
                    other => anyhow::bail!("subscribing to {device}: {other:?}"),
                }
            }
            let (frames, closed) = (frames.clone(), closed.clone());
            tasks.spawn(async move {
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() {
                        frames.fetch_add(1, Ordering::Relaxed);
                    }
                }
                closed.fetch_add(1, Ordering::Relaxed);
            });
        }
        Ok(Self {
            frames,
            closed,
            tasks,
        })
    }

    /// Waits (at most `within`) until no frame came for 200 ms; the frames
    /// received and the connections the host closed.
    pub async fn settle(mut self, within: Duration) -> (u64, u64) {
        let deadline = Instant::now() + within;
        let mut last = self.frames.load(Ordering::Relaxed);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = self.frames.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        (last, self.closed.load(Ordering::Relaxed))
    }
}
