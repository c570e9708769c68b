//! The broker's acknowledgements of the host's own QoS 1 publishes, for
//! whoever must not go on before the broker has them: with JetStream, an
//! event leaves the stream only once the device's answers are with the
//! broker, so that a host killed in between leaves the event (answers
//! included) to another host instead of losing the answers.
//!
//! Counted, not matched by packet id: the client sends publishes in the
//! order they are asked for and a broker acknowledges them in that order
//! (MQTT 4.6), so once `n` acknowledgements came, the first `n` publishes
//! are with the broker.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

/// Publishes asked for, and acknowledged by the broker, with whoever waits
/// for a count: each waiter is woken once, by the acknowledgement it needs.
#[derive(Debug, Default)]
pub struct Confirmations {
    asked: AtomicU64,
    acked: Mutex<Acked>,
}

#[derive(Debug, Default)]
struct Acked {
    count: u64,
    /// Waiters by the count they wait for.
    waiting: BTreeMap<u64, Vec<oneshot::Sender<()>>>,
}

impl Confirmations {
    /// One more publish asked for.
    pub fn ask(&self) {
        self.asked.fetch_add(1, Ordering::AcqRel);
    }

    /// The broker acknowledged one more.
    pub fn acked(&self) {
        let mut acked = self.lock();
        acked.count += 1;
        acked.wake();
    }

    /// The connection came back in a new session, which dropped `dropped`
    /// publishes the broker had not acknowledged: they never will be, so
    /// they count as acknowledged and whoever waits for them goes on.
    pub fn lost(&self, dropped: u64) {
        let mut acked = self.lock();
        acked.count += dropped;
        acked.wake();
    }

    /// Waits until every publish asked for so far is acknowledged, at most
    /// `within`; false when that ran out (the connection is down).
    pub async fn settled(&self, within: Duration) -> bool {
        let upto = self.asked.load(Ordering::Acquire);
        let done = {
            let mut acked = self.lock();
            if acked.count >= upto {
                return true;
            }
            let (tx, rx) = oneshot::channel();
            acked.waiting.entry(upto).or_default().push(tx);
            rx
        };
        matches!(tokio::time::timeout(within, done).await, Ok(Ok(())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Acked> {
        self.acked.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Acked {
    /// Wakes the waiters whose count has come.
    fn wake(&mut self) {
        let later = self.waiting.split_off(&(self.count + 1));
        for waiter in std::mem::replace(&mut self.waiting, later)
            .into_values()
            .flatten()
        {
            let _ = waiter.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settles_once_as_many_acks_came_as_publishes_were_asked_for() {
        let c = std::sync::Arc::new(Confirmations::default());
        assert!(
            c.settled(Duration::ZERO).await,
            "nothing asked, nothing owed"
        );
        c.ask();
        c.ask();
        assert!(!c.settled(Duration::from_millis(10)).await);
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.settled(Duration::from_secs(10)).await }
        });
        c.acked();
        c.acked();
        assert!(waiter.await.unwrap());
        // A later publish is not waited for by an earlier waiter's count.
        c.ask();
        assert!(!c.settled(Duration::from_millis(10)).await);
        // A new session drops it: nobody waits for it any more.
        let waiter = tokio::spawn({
            let c = c.clone();
            async move { c.settled(Duration::from_secs(10)).await }
        });
        tokio::task::yield_now().await;
        c.lost(1);
        assert!(waiter.await.unwrap());
        assert!(c.settled(Duration::ZERO).await);
        // One asked after the new session is still waited for.
        c.ask();
        assert!(!c.settled(Duration::from_millis(10)).await);
        c.acked();
        assert!(c.settled(Duration::ZERO).await);
    }
}
