//! The pipeline's counters behind `GET /metrics`: events in, requests by
//! outcome, retries, throttling, drops by policy, and the end-to-end
//! latency histogram. Plain atomics, bumped on the hot path without locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds (Prometheus `le`).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];

/// How one request ended, for `edgehook_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// 1xx, 2xx or 3xx.
    Success,
    /// 4xx or 5xx.
    ErrorStatus,
    /// No answer within the timeout.
    Timeout,
    /// Connection, TLS or protocol failure.
    Transport,
    /// Not sent: the destination is not allowed.
    Refused,
}

impl RequestOutcome {
    /// Every outcome, in the order of the counters.
    pub const ALL: [Self; 5] = [
        Self::Success,
        Self::ErrorStatus,
        Self::Timeout,
        Self::Transport,
        Self::Refused,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::ErrorStatus => "error_status",
            Self::Timeout => "timeout",
            Self::Transport => "transport",
            Self::Refused => "refused",
        }
    }
}

/// Why an event was given up on, for `edgehook_dropped_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Failed on every attempt of the retry schedule.
    Retries,
    /// Skipped on every attempt because its host was sleeping.
    Skipped,
    /// Older than the event TTL.
    Ttl,
    /// Its webhook was deleted, disabled or removed before it was delivered.
    Removed,
}

impl DropReason {
    /// Every reason, in the order of the counters.
    pub const ALL: [Self; 4] = [Self::Retries, Self::Skipped, Self::Ttl, Self::Removed];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Retries => "retries",
            Self::Skipped => "skipped",
            Self::Ttl => "ttl",
            Self::Removed => "removed",
        }
    }
}

/// The pipeline's counters.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Device events taken from the broker.
    pub events_in: AtomicU64,
    /// Resent messages recognised as events already stored: acknowledged,
    /// not counted in `events_in`, not delivered again.
    pub resends: AtomicU64,
    /// Transactions written to the queue file (each one fsync).
    pub commits: AtomicU64,
    requests: [AtomicU64; RequestOutcome::ALL.len()],
    /// Attempts made again after a failure.
    pub retried: AtomicU64,
    /// Attempts that waited for their host (concurrency, rate, `Retry-After`)
    /// or their device's rate.
    pub throttled: AtomicU64,
    /// Attempts skipped because their host was sleeping.
    pub skipped: AtomicU64,
    /// Access tokens fetched for webhooks' `auth`.
    pub tokens_fetched: AtomicU64,
    /// Token requests that failed (not a token, or no answer).
    pub token_failures: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
    latency: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    latency_nanos: AtomicU64,
}

impl DeliveryStats {
    /// Counts one request.
    pub fn request(&self, outcome: RequestOutcome) {
        self.requests[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests so far that ended with `outcome`.
    pub fn requests(&self, outcome: RequestOutcome) -> u64 {
        self.requests[outcome as usize].load(Ordering::Relaxed)
    }

    /// Counts one event given up on.
    pub fn drop_event(&self, reason: DropReason) {
        self.dropped[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Events given up on so far for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize].load(Ordering::Relaxed)
    }

    /// Records one delivery's time from event in to device replies out.
    pub fn latency(&self, took: Duration) {
        let secs = took.as_secs_f64();
        // Cumulative buckets are summed at read time: one increment here.
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&le| secs <= le) {
            self.latency[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_nanos.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The latency histogram: cumulative counts per bucket, total count,
    /// and sum in seconds.
    pub fn latency_histogram(&self) -> (Vec<u64>, u64, f64) {
        let mut total = 0;
        let cumulative = self
            .latency
            .iter()
            .map(|c| {
                total += c.load(Ordering::Relaxed);
                total
            })
            .collect();
        (
            cumulative,
            self.latency_count.load(Ordering::Relaxed),
            self.latency_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_cumulative_and_slow_ones_count_only_in_the_total() {
        let stats = DeliveryStats::default();
        stats.latency(Duration::from_micros(800));
        stats.latency(Duration::from_millis(3));
        stats.latency(Duration::from_millis(3));
        stats.latency(Duration::from_secs(500));
        let (buckets, count, sum) = stats.latency_histogram();
        assert_eq!(&buckets[..4], &[1, 1, 3, 3]);
        assert_eq!(*buckets.last().unwrap(), 3, "500 s is only in +Inf");
        assert_eq!(count, 4);
        assert!((sum - 500.0068).abs() < 1e-6, "{sum}");
    }

    #[test]
    fn outcomes_and_drops_count_separately() {
        let stats = DeliveryStats::default();
        stats.request(RequestOutcome::Timeout);
        stats.request(RequestOutcome::Timeout);
        stats.request(RequestOutcome::Success);
        stats.drop_event(DropReason::Ttl);
        assert_eq!(stats.requests(RequestOutcome::Timeout), 2);
        assert_eq!(stats.requests(RequestOutcome::Success), 1);
        assert_eq!(stats.requests(RequestOutcome::Refused), 0);
        assert_eq!(stats.dropped(DropReason::Ttl), 1);
        assert_eq!(stats.dropped(DropReason::Retries), 0);
    }
}
