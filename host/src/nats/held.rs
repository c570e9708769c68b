//! An event taken from JetStream and not yet acknowledged: held while its
//! webhooks deliver it, kept with progress acks for as long as that takes,
//! acknowledged once they are all done, and handed back (`Nak`) when the
//! host stops first, so that another host takes it at once.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::AckKind;
use async_nats::jetstream::message::Acker;
use tokio::sync::oneshot;

use crate::stores::Claim;

/// One held event. Dropping it unfinished hands the event back.
pub struct Held {
    acker: Mutex<Option<Arc<Acker>>>,
    /// Dropped with the event: ends its progress acks.
    _progress: oneshot::Sender<()>,
}

impl Held {
    /// Holds the event of `acker`, telling JetStream every half `ack_wait`
    /// that it is still being worked on.
    pub fn new(acker: Acker, ack_wait: Duration) -> Self {
        let acker = Arc::new(acker);
        let (stop, mut stopped) = oneshot::channel::<()>();
        let every = ack_wait / 2;
        let progress = acker.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    () = tokio::time::sleep(every) => {
                        if let Err(err) = progress.ack_with(AckKind::Progress).await {
                            tracing::warn!("JetStream: cannot extend a slow event's ack wait: {err}");
                        }
                    }
                }
            }
        });
        Self {
            acker: Mutex::new(Some(acker)),
            _progress: stop,
        }
    }

    /// No webhook wants the event, or it can never be delivered: JetStream
    /// forgets it and never sends it again.
    pub fn refuse(&self) {
        if let Some(acker) = self.take() {
            tokio::spawn(async move {
                let _ = acker.ack_with(AckKind::Term).await;
            });
        }
    }

    fn take(&self) -> Option<Arc<Acker>> {
        self.acker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl Claim for Held {
    /// Every webhook is done with the event: JetStream forgets it.
    fn finish(&self) {
        if let Some(acker) = self.take() {
            tokio::spawn(async move {
                if let Err(err) = acker.ack().await {
                    // It comes back after the ack wait, to this host or
                    // another: a duplicate, never a loss.
                    tracing::warn!("JetStream: cannot acknowledge a delivered event: {err}");
                }
            });
        }
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held").finish_non_exhaustive()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Unfinished: the host is stopping. Handing it back now saves the
        // other hosts the ack wait.
        if let Some(acker) = self.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = acker.ack_with(AckKind::Nak(None)).await;
            });
        }
    }
}
