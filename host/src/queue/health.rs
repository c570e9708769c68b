//! Whether the queue can write: the reason its last commit failed, until
//! one succeeds again, for `/healthz` and for one log line per outage
//! instead of one per failed commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use super::JournalError;

/// The outcome of the last commit.
#[derive(Debug, Default)]
pub struct Writes {
    /// Whether the last commit failed: the one check a successful commit
    /// pays.
    failing: AtomicBool,
    /// Why, while it does.
    reason: Mutex<Option<String>>,
}

impl Writes {
    /// A commit was written.
    pub fn written(&self) {
        if self.failing.load(Ordering::Acquire) && self.failing.swap(false, Ordering::AcqRel) {
            *self.lock() = None;
            tracing::info!("event queue: writes succeed again; taking events");
        }
    }

    /// A commit failed with `err`.
    pub fn failed(&self, err: &JournalError) {
        let reason = match err {
            // The file's path stays in the log: health is open to anyone.
            JournalError::Io { source, .. } => source.to_string(),
            other => other.to_string(),
        };
        let mut kept = self.lock();
        let new = !self.failing.load(Ordering::Acquire) || kept.as_deref() != Some(&reason);
        // The reason before the flag: whoever sees the flag finds it.
        *kept = Some(reason);
        self.failing.store(true, Ordering::Release);
        drop(kept);
        if new {
            tracing::error!(
                "{err}; events are not acknowledged (they are sent again) until the queue can write"
            );
        }
    }

    /// Why the queue cannot write, while it cannot.
    pub fn fault(&self) -> Option<String> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.reason.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> JournalError {
        JournalError::Io {
            path: "/data/queue/0000000000000001.log".into(),
            source: std::io::Error::from_raw_os_error(28),
        }
    }

    #[test]
    fn a_failure_is_reported_without_its_path_until_a_commit_succeeds() {
        let writes = Writes::default();
        assert_eq!(writes.fault(), None);
        writes.failed(&full());
        let fault = writes.fault().unwrap();
        assert!(fault.contains("No space left on device"), "{fault}");
        assert!(!fault.contains("/data/queue"), "{fault}");
        writes.failed(&full());
        assert!(writes.fault().is_some());
        writes.written();
        assert_eq!(writes.fault(), None);
    }
}
