//! A run of failures in a row that, at a threshold, trips once and for
//! all: what suspends a plugin in a crash loop and disables a webhook
//! whose deliveries keep failing. A new plugin version or a replaced
//! webhook starts a new streak; that is how either resumes.
//!
//! Lock-free: every call and every delivery goes through it.

use std::fmt::Display;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Failures in a row, and why it tripped once it has.
#[derive(Debug, Default)]
pub struct Streak {
    /// Failures since the last success.
    consecutive: AtomicU32,
    /// Set once the run reached the threshold; final.
    tripped: OnceLock<String>,
}

impl Streak {
    /// Records one result: `failure` is the failure, `None` a success.
    /// After `threshold` failures in a row (never when it is 0) it trips
    /// with the text `reason(n, last failure)`, which is returned by the
    /// call that tripped it.
    pub fn record(
        &self,
        failure: Option<&dyn Display>,
        threshold: u32,
        reason: impl FnOnce(u32, &dyn Display) -> String,
    ) -> Option<String> {
        if self.tripped.get().is_some() {
            // Results that were under way when it tripped change nothing.
            return None;
        }
        let Some(err) = failure else {
            self.consecutive.store(0, Ordering::Relaxed);
            return None;
        };
        let n = self
            .consecutive
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if threshold == 0 || n < threshold {
            return None;
        }
        let reason = reason(n, err);
        // Of results failing at once, the one that trips it reports it.
        self.tripped.set(reason.clone()).ok().map(|()| reason)
    }

    /// Trips it for `reason` (found elsewhere: another host); false when
    /// it had tripped already.
    pub fn trip(&self, reason: &str) -> bool {
        self.tripped.set(reason.to_owned()).is_ok()
    }

    /// Why it tripped, if it has.
    pub fn tripped(&self) -> Option<&str> {
        self.tripped.get().map(String::as_str)
    }
}

/// "failure" or "failures", for the messages.
pub fn failures(n: u32) -> &'static str {
    if n == 1 { "failure" } else { "failures" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(n: u32, last: &dyn Display) -> String {
        format!("{n} {} (last: {last})", failures(n))
    }

    #[test]
    fn trips_after_the_threshold_of_failures_in_a_row_and_stays_tripped() {
        let streak = Streak::default();
        assert_eq!(streak.record(Some(&"a"), 3, reason), None);
        assert_eq!(streak.record(Some(&"b"), 3, reason), None);
        let tripped = streak.record(Some(&"c"), 3, reason).unwrap();
        assert_eq!(tripped, "3 failures (last: c)");
        assert_eq!(streak.tripped(), Some("3 failures (last: c)"));
        // Stragglers neither reset it nor trip it again.
        assert_eq!(streak.record(None, 3, reason), None);
        assert_eq!(streak.record(Some(&"d"), 3, reason), None);
        assert_eq!(streak.tripped(), Some("3 failures (last: c)"));
    }

    #[test]
    fn a_success_ends_the_run_and_a_zero_threshold_never_trips() {
        let streak = Streak::default();
        for _ in 0..5 {
            assert_eq!(streak.record(Some(&"x"), 3, reason), None);
            assert_eq!(streak.record(Some(&"x"), 3, reason), None);
            assert_eq!(streak.record(None, 3, reason), None);
        }
        assert_eq!(streak.tripped(), None);
        let never = Streak::default();
        for _ in 0..100 {
            assert_eq!(never.record(Some(&"x"), 0, reason), None);
        }
        assert_eq!(never.tripped(), None);
        let once = Streak::default();
        assert_eq!(
            once.record(Some(&"x"), 1, reason).as_deref(),
            Some("1 failure (last: x)")
        );
    }
}
