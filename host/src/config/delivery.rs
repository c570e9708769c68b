//! The settings of an event's way through the host: the durable queue's
//! bounds, what happens to deliveries that fail (retries, TTL,
//! auto-disable), and the throttles per destination host and per device.
//! README "Configuration reference".

use std::time::Duration;

use super::Settings;
use super::error::{ConfigError, bytes, check, invalid, within};
use crate::throttle::{Rate, RetrySchedule, ThrottleConfig};

/// What happens to deliveries that fail.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Delays before each retry of a failed request.
    pub retry: RetrySchedule,
    /// Delays before each new attempt of a request skipped because its
    /// host was sleeping.
    pub skip_retry: RetrySchedule,
    /// Events older than this are dropped instead of tried again.
    pub ttl: Duration,
    /// Failed deliveries in a row after which a webhook is disabled (0: never).
    pub disable_after: u32,
    /// What the delivery history keeps.
    pub history: HistoryLimits,
}

/// What the delivery history keeps: attempts and their events for
/// `max_age`, within `max_bytes`, the oldest first out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// How long.
    pub max_age: Duration,
    /// How much.
    pub max_bytes: u64,
}

/// Bounds of the queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Events held at once.
    pub max_events: usize,
    /// Bytes of events held at once (their encoded size).
    pub max_bytes: usize,
}

impl QueueLimits {
    /// The queue's bounds, which must hold an event of `max_event_bytes`.
    pub(super) fn build(s: &Settings, max_event_bytes: usize) -> Result<Self, ConfigError> {
        let queue = Self {
            max_events: s.queue_max_events.unwrap_or(100_000),
            max_bytes: bytes(s.queue_max_bytes, 256 << 20),
        };
        check(
            "queue_max_events",
            queue.max_events,
            1,
            100_000_000,
            "1..=100000000",
        )?;
        // The byte budget must fit the largest event, and a semaphore.
        check(
            "queue_max_bytes",
            queue.max_bytes,
            max_event_bytes + 1024,
            u32::MAX as usize,
            &format!(
                "max_event_bytes + 1 KiB ({} B)..=4 GiB",
                max_event_bytes + 1024
            ),
        )?;
        Ok(queue)
    }
}

impl DeliveryPolicy {
    /// Retries, TTL and auto-disable from `s`.
    pub(super) fn build(s: &Settings) -> Result<Self, ConfigError> {
        let ttl = s.event_ttl.unwrap_or(Duration::from_secs(24 * 3600));
        if ttl < Duration::from_secs(1) {
            return Err(invalid("event_ttl", format!("{ttl:?} is below 1s")));
        }
        Ok(Self {
            retry: delays("retry_delays", s.retry_delays.as_deref())?,
            skip_retry: delays("skip_retry_delays", s.skip_retry_delays.as_deref())?,
            ttl,
            disable_after: s.disable_after.unwrap_or(10),
            history: HistoryLimits {
                max_age: within(
                    "history_retention",
                    s.history_retention,
                    Duration::from_secs(7 * 24 * 3600),
                    Duration::from_secs(60)..=Duration::from_secs(3650 * 24 * 3600),
                    "1m..=3650d",
                )?,
                max_bytes: s.history_max_bytes.map_or(256 << 20, |b| b.as_u64()),
            },
        })
    }
}

/// The throttles of `s`.
pub(super) fn throttle(s: &Settings) -> Result<ThrottleConfig, ConfigError> {
    let host_concurrency = s.host_concurrency.unwrap_or(32);
    check(
        "host_concurrency",
        host_concurrency,
        1,
        100_000,
        "1..=100000",
    )?;
    Ok(ThrottleConfig {
        host_concurrency,
        host_rate: rate("host_rate", s.host_rate.as_deref())?,
        device_rate: rate("device_rate", s.device_rate.as_deref())?,
        ..ThrottleConfig::default()
    })
}

/// A retry schedule from `30s, 1m` (empty: no retries); the default is
/// Particle's: 30 seconds, then 1 minute.
fn delays(key: &'static str, text: Option<&str>) -> Result<RetrySchedule, ConfigError> {
    let Some(text) = text else {
        return Ok(RetrySchedule::new(vec![
            Duration::from_secs(30),
            Duration::from_secs(60),
        ]));
    };
    let delays = text
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            humantime::parse_duration(d).map_err(|e| {
                invalid(
                    key,
                    format!("{d:?} is not a duration ({e}); write e.g. \"30s, 1m\""),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if delays.len() > 100 {
        return Err(invalid(
            key,
            format!("{} delays: at most 100", delays.len()),
        ));
    }
    Ok(RetrySchedule::new(delays))
}

/// A rate such as `100/s burst 200`, when given.
pub(super) fn rate(key: &'static str, text: Option<&str>) -> Result<Option<Rate>, ConfigError> {
    text.map(|t| t.parse().map_err(|e| invalid(key, format!("{e}"))))
        .transpose()
}
