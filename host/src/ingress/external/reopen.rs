//! Messages the host took but could not store (its queue cannot write):
//! their acknowledgements are dropped, and the broker sends a message it
//! holds unacknowledged again only when the session is resumed. So a
//! dropped acknowledgement re-opens the session (the connection is dropped
//! and made again, the session kept), paced by [`Backoff`] while the
//! messages sent again keep being refused.
//!
//! An acknowledgement is good only on the connection its message came
//! on: once that connection is gone the broker sends the message again
//! on the next one, and the host acknowledges that copy (the pipeline
//! knows it for a resend of what it stored). Sent on the next connection,
//! the first copy's PUBACK could acknowledge another message the broker
//! gave the packet id to in the meantime, one the host has not stored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::client::PendingAck;

/// The first wait between two re-opens while messages keep being refused.
const FIRST: Duration = Duration::from_millis(100);

/// The longest wait between two re-opens: how long intake may lag behind
/// a disk that works again, at most.
pub const MAX: Duration = Duration::from_secs(2);

/// A refusal this long after the last re-open starts a new series: the
/// session is re-opened at once.
const CALM: Duration = Duration::from_secs(30);

/// When the session is re-opened after refusals: at once for the first,
/// then never sooner than a delay after the last re-open, doubled at each
/// one up to [`MAX`]. A plain state machine, tested without I/O.
#[derive(Debug)]
pub struct Backoff {
    delay: Duration,
    last: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            delay: FIRST,
            last: None,
        }
    }
}

impl Backoff {
    /// When to re-open, a message having been refused at `now`.
    pub fn due(&self, now: Instant) -> Instant {
        match self.last {
            Some(last) if now < last + CALM => now.max(last + self.delay),
            _ => now,
        }
    }

    /// The session was re-opened at `now`; whether that starts a series.
    pub fn reopened(&mut self, now: Instant) -> bool {
        let first = self.last.is_none_or(|last| now >= last + CALM);
        self.delay = if first {
            FIRST
        } else {
            (self.delay * 2).min(MAX)
        };
        self.last = Some(now);
        first
    }
}

/// The refusals of one client's messages: which connection is current,
/// and when the session is to be re-opened.
#[derive(Debug, Default)]
pub struct Refusals {
    /// Counts the connections lost or dropped: the one an
    /// acknowledgement belongs to.
    connection: AtomicU64,
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct State {
    backoff: Backoff,
    /// When the session is to be re-opened, once a message was refused.
    due: Option<Instant>,
}

impl Refusals {
    /// The acknowledgement owed for a message that came on the current
    /// connection.
    pub fn owe(self: &std::sync::Arc<Self>, ack: PendingAck) -> Owed {
        Owed {
            ack: Some(ack),
            connection: self.connection.load(Ordering::Acquire),
            refusals: self.clone(),
        }
    }

    /// The connection is gone (lost, or dropped to re-open the session):
    /// the acknowledgements owed on it are void.
    pub fn disconnected(&self) {
        self.connection.fetch_add(1, Ordering::AcqRel);
    }

    /// Resolves when the session is to be re-opened.
    pub async fn due(&self) {
        loop {
            let woken = self.wake.notified();
            let due = self.lock().due;
            if let Some(due) = due {
                tokio::time::sleep_until(due).await;
                return;
            }
            woken.await;
        }
    }

    /// The session is being re-opened now; whether that starts a series.
    pub fn reopening(&self) -> bool {
        let mut state = self.lock();
        state.due = None;
        let first = state.backoff.reopened(Instant::now());
        drop(state);
        self.disconnected();
        first
    }

    /// A message of connection `connection` was refused.
    fn refused(&self, connection: u64) {
        if connection != self.connection.load(Ordering::Acquire) {
            // That connection is gone: the broker sends it again anyway.
            return;
        }
        let mut state = self.lock();
        if state.due.is_none() {
            state.due = Some(state.backoff.due(Instant::now()));
            drop(state);
            self.wake.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The acknowledgement owed for one event: sent when it fires on the
/// connection its message came on; dropped, it re-opens the session.
#[derive(Debug)]
pub struct Owed {
    /// Taken when it fires.
    ack: Option<PendingAck>,
    connection: u64,
    refusals: std::sync::Arc<Refusals>,
}

impl Owed {
    /// Sends the PUBACK, unless the connection the message came on is
    /// gone (the broker then sends the message again, and that copy is
    /// acknowledged).
    pub async fn ack(mut self) {
        let Some(ack) = self.ack.take() else { return };
        if self.refusals.connection.load(Ordering::Acquire) == self.connection {
            ack.ack().await;
        }
    }
}

impl Drop for Owed {
    fn drop(&mut self) {
        if self.ack.is_some() {
            self.refusals.refused(self.connection);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_refusal_reopens_at_once_and_a_series_of_them_backs_off() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(b.due(t0), t0);
        assert!(b.reopened(t0));
        // Refused again soon after: not before the first delay.
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(b.due(t1), t0 + FIRST);
        assert!(!b.reopened(t0 + FIRST));
        let mut last = t0 + FIRST;
        let mut delays = Vec::new();
        for _ in 0..8 {
            let due = b.due(last);
            delays.push(due - last);
            b.reopened(due);
            last = due;
        }
        assert_eq!(
            delays,
            [200, 400, 800, 1600, 2000, 2000, 2000, 2000].map(Duration::from_millis)
        );
        // A refusal long after the last re-open is met at once.
        let later = last + CALM;
        assert_eq!(b.due(later), later);
        assert!(b.reopened(later));
        assert_eq!(
            b.due(later + Duration::from_millis(1)),
            later + FIRST,
            "a new series starts from the first delay"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_on_the_current_connection_makes_the_reopen_due() {
        let refusals = std::sync::Arc::new(Refusals::default());
        let waiting = tokio::spawn({
            let r = refusals.clone();
            async move { r.due().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        // A refusal of a connection already gone changes nothing.
        refusals.disconnected();
        refusals.refused(0);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiting.is_finished());
        refusals.refused(1);
        waiting.await.unwrap();
        assert!(refusals.reopening());
        // Refused again on the new connection: due after the first delay.
        refusals.refused(2);
        let before = Instant::now();
        refusals.due().await;
        let waited = Instant::now() - before;
        assert!(
            waited >= FIRST && waited < FIRST + Duration::from_millis(5),
            "{waited:?}"
        );
    }
}
