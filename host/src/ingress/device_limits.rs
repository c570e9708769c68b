//! Per-device limits on the embedded broker (CONTRACT section 12), so that
//! one device can never stall the others: how many filters its session may
//! hold, and how fast it may publish.
//!
//! The publish rate is paced per device id (the one its topics name) with
//! the same GCRA bucket as the delivery throttle. A device that has been
//! quiet for longer than it takes its bucket to refill is forgotten: a
//! fresh bucket is the same as a full one, so the table holds only the
//! devices that published lately, however many ids open mode sees.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::throttle::rate::{Bucket, Rate};

/// The limits every device gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceLimits {
    /// Topic filters one session may hold at once.
    pub max_subscriptions: usize,
    /// Events (and answers to commands) one device may publish.
    pub publish_rate: Rate,
}

impl Default for DeviceLimits {
    fn default() -> Self {
        Self {
            max_subscriptions: 32,
            publish_rate: Rate {
                events: 100,
                period: Duration::from_secs(1),
                burst: 200,
            },
        }
    }
}

/// How often a device over its rate is logged.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Devices paced at once; beyond it the idlest are forgotten early (which
/// only ever gives a device a full bucket back).
const MAX_PACED: u64 = 100_000;

/// The publish pace of every device.
#[derive(Debug)]
pub struct Pacer {
    rate: Rate,
    devices: moka::sync::Cache<Arc<str>, Arc<Mutex<Pace>>>,
}

#[derive(Debug, Default)]
struct Pace {
    bucket: Bucket,
    warned: Option<Instant>,
}

/// A publish over the device's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooFast {
    /// Whether to log it: the first time, then at most once a minute.
    pub log: bool,
}

impl Pacer {
    /// Paces every device to `rate`.
    pub fn new(rate: Rate) -> Self {
        let refill = (rate.period / rate.events.max(1)) * rate.burst.max(1);
        Self {
            rate,
            devices: moka::sync::Cache::builder()
                .max_capacity(MAX_PACED)
                .time_to_idle(refill.max(WARN_EVERY))
                .build(),
        }
    }

    /// Takes one publish of `device` at `now`.
    pub fn take(&self, device: &str, now: Instant) -> Result<(), TooFast> {
        let pace = match self.devices.get(device) {
            Some(pace) => pace,
            None => self.devices.get_with(device.into(), Default::default),
        };
        let mut pace = pace.lock().unwrap_or_else(|p| p.into_inner());
        if pace.bucket.take(&self.rate, now).is_ok() {
            return Ok(());
        }
        let log = pace
            .warned
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
        if log {
            pace.warned = Some(now);
        }
        Err(TooFast { log })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_gets_its_burst_then_its_rate_and_others_are_not_touched() {
        let pacer = Pacer::new("10/s burst 3".parse().unwrap());
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(pacer.take("d1", start), Ok(()));
        }
        assert_eq!(pacer.take("d1", start), Err(TooFast { log: true }));
        assert_eq!(
            pacer.take("d1", start + Duration::from_millis(50)),
            Err(TooFast { log: false }),
            "logged once a minute"
        );
        assert_eq!(pacer.take("d2", start), Ok(()), "d2 has its own bucket");
        assert_eq!(
            pacer.take("d1", start + Duration::from_millis(100)),
            Ok(()),
            "one more after one interval"
        );
        assert_eq!(
            pacer.take("d1", start + Duration::from_millis(100)),
            Err(TooFast { log: false })
        );
        assert_eq!(
            pacer.take("d1", start + WARN_EVERY + Duration::from_millis(50)),
            Ok(())
        );
        for _ in 0..2 {
            pacer
                .take("d1", start + WARN_EVERY + Duration::from_millis(50))
                .unwrap();
        }
        assert_eq!(
            pacer.take("d1", start + WARN_EVERY + Duration::from_millis(50)),
            Err(TooFast { log: true }),
            "logged again a minute later"
        );
    }
}
