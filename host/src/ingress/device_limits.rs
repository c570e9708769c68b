//! Per-device limits on the embedded broker (README "Who may speak on the
//! embedded broker", its "Per device" table), so that one device can never
//! stall the others: how many filters its session may hold, how fast it may
//! publish, and how many of its events the durable queue may hold at once.
//!
//! The publish rate is paced per device id (the one its topics name) with
//! the same GCRA bucket as the delivery throttle. A device that has been
//! quiet for longer than it takes its bucket to refill is forgotten: a
//! fresh bucket is the same as a full one, so the table holds only the
//! devices that published lately, however many ids open mode sees.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use crate::config::DeviceLimits;
use crate::throttle::rate::{Bucket, Rate};
use crate::topic::DeviceId;

/// How often a device over its rate is logged.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Devices paced at once; beyond it the idlest are forgotten early (which
/// only ever gives a device a full bucket back).
const MAX_PACED: u64 = 100_000;

/// The publish pace of every device.
#[derive(Debug)]
pub struct Pacer {
    /// The rate in force; a reload may change it.
    rate: arc_swap::ArcSwap<Rate>,
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
            rate: arc_swap::ArcSwap::from_pointee(rate),
            devices: moka::sync::Cache::builder()
                .max_capacity(MAX_PACED)
                .time_to_idle(refill.max(WARN_EVERY))
                .build(),
        }
    }

    /// Takes one publish of `device` at `now`.
    pub fn take(&self, device: &str, now: Instant) -> Result<(), TooFast> {
        let pace = self.pace(device);
        let mut pace = pace.lock().unwrap_or_else(PoisonError::into_inner);
        if pace.bucket.take(&self.rate.load(), now).is_ok() {
            return Ok(());
        }
        Err(TooFast {
            log: pace.may_warn(now),
        })
    }

    /// Paces every device to `rate` from now on; each keeps its bucket (a
    /// device's table entry is still forgotten after the first rate's
    /// refill time, which only ever gives it a full bucket back).
    pub fn set_rate(&self, rate: Rate) {
        self.rate.store(Arc::new(rate));
    }

    /// Whether a refusal of `device`'s publish at `now` is to be logged:
    /// the first, then at most one a minute.
    pub fn may_warn(&self, device: &str, now: Instant) -> bool {
        let pace = self.pace(device);
        let mut pace = pace.lock().unwrap_or_else(PoisonError::into_inner);
        pace.may_warn(now)
    }

    fn pace(&self, device: &str) -> Arc<Mutex<Pace>> {
        match self.devices.get(device) {
            Some(pace) => pace,
            None => self.devices.get_with(device.into(), Default::default),
        }
    }
}

impl Pace {
    fn may_warn(&mut self, now: Instant) -> bool {
        let warn = self
            .warned
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
        if warn {
            self.warned = Some(now);
        }
        warn
    }
}

/// The events each device has in the queue (taken since the host started
/// and not yet done with), and the most it may have.
#[derive(Debug)]
pub struct Shares {
    max: usize,
    held: Mutex<HashMap<DeviceId, usize>>,
}

/// One event's place in its device's share of the queue, given back when
/// it is dropped: when the event needs no storing, is not stored, or every
/// webhook is done with it.
#[derive(Debug)]
pub struct Share(Option<(Arc<Shares>, DeviceId)>);

impl Shares {
    /// At most `max` events of one device at once.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            held: Mutex::default(),
        })
    }

    /// A place for one more event of `device`, unless it holds its whole
    /// share already.
    pub fn admit(self: &Arc<Self>, device: &DeviceId) -> Option<Share> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(device.clone()).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Share(Some((self.clone(), device.clone()))))
    }
}

impl Share {
    /// No share: an event that no device's limit applies to (an external
    /// broker's or JetStream's, one found in the queue at start).
    pub fn none() -> Self {
        Self(None)
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let Some((shares, device)) = self.0.take() else {
            return;
        };
        let mut held = shares.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&device) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&device);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_holds_at_most_its_share_and_gets_it_back() {
        let shares = Shares::new(2);
        let d1 = DeviceId::try_from("d1").unwrap();
        let d2 = DeviceId::try_from("d2").unwrap();
        let first = shares.admit(&d1).unwrap();
        let second = shares.admit(&d1).unwrap();
        assert!(shares.admit(&d1).is_none(), "a third is over the share");
        let other = shares.admit(&d2).expect("d2 has its own share");
        drop(first);
        let third = shares.admit(&d1).expect("a place given back");
        assert_eq!(shares.held.lock().unwrap()[&d1], 2);
        drop((second, third, other));
        assert!(
            shares.held.lock().unwrap().is_empty(),
            "devices with nothing held are forgotten"
        );
    }

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
