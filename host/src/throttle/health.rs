//! Particle's adaptive per-host throttle: a destination host that answers
//! with more errors than successes is put to sleep, and attempts to it are
//! skipped until it has gone a cooldown without errors.
//!
//! Pure: a [`HostHealth`] per host, fed each outcome with
//! [`record`](HostHealth::record) and asked before each attempt with
//! [`admit`](HostHealth::admit).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the device is told when an attempt is skipped (Particle's words).
pub const SLEEPING_MESSAGE: &str = "Sleeping, too many errors, please wait and try again";

/// When a host is put to sleep, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthPolicy {
    /// How many recent outcomes are considered (default 20).
    pub window: usize,
    /// The fewest errors in the window that put a host to sleep (default 5).
    pub min_errors: u32,
    /// How long a host must go without errors to be woken (default 5 s).
    pub cooldown: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            window: 20,
            min_errors: 5,
            cooldown: Duration::from_secs(5),
        }
    }
}

/// The host is sleeping: skip the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{SLEEPING_MESSAGE}")]
pub struct Sleeping {
    /// When the host wakes, unless another error comes first.
    pub until: Instant,
}

/// The recent outcomes of one destination host.
#[derive(Debug, Clone, Default)]
pub struct HostHealth {
    /// The last `window` outcomes, oldest first; `true` is a success.
    outcomes: VecDeque<bool>,
    last_error: Option<Instant>,
}

impl HostHealth {
    /// Before an attempt: `Err(Sleeping)` while the host sleeps. Once the
    /// cooldown has passed, the window is cleared and attempts flow again.
    pub fn admit(&mut self, policy: &HealthPolicy, now: Instant) -> Result<(), Sleeping> {
        match self.sleeping_until(policy) {
            Some(until) if now < until => Err(Sleeping { until }),
            Some(_) => {
                self.outcomes.clear();
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// After an attempt: `ok` is a 1xx–3xx answer; 4xx, 5xx, timeouts and
    /// transport errors are errors. Refused attempts are not recorded.
    pub fn record(&mut self, policy: &HealthPolicy, ok: bool, now: Instant) {
        if !ok {
            self.last_error = Some(now);
        }
        self.outcomes.push_back(ok);
        while self.outcomes.len() > policy.window {
            self.outcomes.pop_front();
        }
    }

    /// When the host wakes, if it is asleep (or was, and has not been
    /// admitted since): more errors than successes in the window, and at
    /// least `min_errors` of them.
    pub fn sleeping_until(&self, policy: &HealthPolicy) -> Option<Instant> {
        let errors = self.outcomes.iter().filter(|ok| !**ok).count();
        let successes = self.outcomes.len() - errors;
        if errors <= successes || errors < policy.min_errors as usize {
            return None;
        }
        self.last_error.map(|at| at + policy.cooldown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn record_all(health: &mut HostHealth, outcomes: &[bool], now: Instant) {
        for &ok in outcomes {
            health.record(&HealthPolicy::default(), ok, now);
        }
    }

    #[test]
    fn a_healthy_host_never_sleeps() {
        let (policy, t0) = (HealthPolicy::default(), Instant::now());
        let mut health = HostHealth::default();
        for i in 0..100 {
            let now = t0 + Duration::from_millis(i);
            assert_eq!(health.admit(&policy, now), Ok(()));
            health.record(&policy, true, now);
        }
    }

    #[test]
    fn errors_outnumbering_successes_put_the_host_to_sleep_until_last_error_plus_cooldown() {
        let (policy, t0) = (HealthPolicy::default(), Instant::now());
        let mut health = HostHealth::default();
        record_all(&mut health, &[true, true, false, false, false, false], t0);
        assert_eq!(
            health.admit(&policy, t0),
            Ok(()),
            "4 errors: under min_errors"
        );
        health.record(&policy, false, t0 + secs(1));
        assert_eq!(
            health.admit(&policy, t0 + secs(2)),
            Err(Sleeping {
                until: t0 + secs(6)
            })
        );
        assert_eq!(Sleeping { until: t0 }.to_string(), SLEEPING_MESSAGE);
    }

    #[test]
    fn successes_at_least_matching_errors_keep_the_host_awake() {
        let (policy, t0) = (HealthPolicy::default(), Instant::now());
        let mut health = HostHealth::default();
        record_all(&mut health, &[false, true].repeat(10), t0);
        assert_eq!(health.admit(&policy, t0), Ok(()));
    }

    #[test]
    fn only_the_window_counts() {
        let (policy, t0) = (HealthPolicy::default(), Instant::now());
        let mut health = HostHealth::default();
        record_all(&mut health, &[false; 10], t0);
        record_all(&mut health, &[true; 11], t0);
        assert_eq!(
            health.admit(&policy, t0),
            Ok(()),
            "9 errors, 11 successes in the last 20"
        );
    }

    #[test]
    fn the_cooldown_wakes_the_host_and_a_new_run_of_errors_puts_it_back() {
        let (policy, t0) = (HealthPolicy::default(), Instant::now());
        let mut health = HostHealth::default();
        record_all(&mut health, &[false; 5], t0);
        assert!(health.admit(&policy, t0 + secs(4)).is_err());
        assert_eq!(health.admit(&policy, t0 + secs(5)), Ok(()));
        health.record(&policy, false, t0 + secs(5));
        assert_eq!(
            health.admit(&policy, t0 + secs(5)),
            Ok(()),
            "window cleared on waking"
        );
        record_all(&mut health, &[false; 4], t0 + secs(6));
        assert_eq!(
            health.admit(&policy, t0 + secs(7)),
            Err(Sleeping {
                until: t0 + secs(11)
            })
        );
    }

    #[test]
    fn an_error_while_sleeping_extends_the_sleep() {
        let (policy, t0) = (HealthPolicy::default(), Instant::now());
        let mut health = HostHealth::default();
        record_all(&mut health, &[false; 5], t0);
        health.record(&policy, false, t0 + secs(3));
        assert_eq!(
            health.admit(&policy, t0 + secs(6)),
            Err(Sleeping {
                until: t0 + secs(8)
            })
        );
        assert_eq!(health.admit(&policy, t0 + secs(8)), Ok(()));
    }
}
