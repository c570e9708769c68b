//! [`StreamHub`]: what every WebSocket connection shares (the limits, the
//! key, the event stream, the command router, the connection slots) and
//! the tracker that lets shutdown wait for their close frames.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::commands::Commands;
use crate::config::StreamLimits;
use crate::stream::EventStream;

/// What every connection shares; cheap to clone.
#[derive(Debug, Clone)]
pub struct StreamHub {
    pub(super) limits: StreamLimits,
    pub(super) token: Arc<str>,
    pub(super) events: EventStream,
    pub(super) commands: Arc<Commands>,
    pub(super) slots: Arc<Semaphore>,
    pub(super) tracker: TaskTracker,
    pub(super) shutdown: CancellationToken,
}

impl StreamHub {
    /// A hub whose connections close with `1001` when `shutdown` fires.
    pub fn new(
        limits: StreamLimits,
        token: Arc<str>,
        events: EventStream,
        commands: Arc<Commands>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            token,
            events,
            commands,
            tracker: TaskTracker::new(),
            shutdown,
        }
    }

    /// Waits (at most `within`) for every connection to have sent its
    /// close frame and ended; false when some had not.
    pub async fn closed(&self, within: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(within, self.tracker.wait())
            .await
            .is_ok()
    }
}
