//! The bounds on what one plugin call may use or produce.
//!
//! Every size a guest controls is bounded here by a named limit; the defaults
//! come from the host configuration and a manifest may lower or raise them
//! within the host's maxima. [`RawLimits`] is the `[limits]` table as the
//! host's config file and a plugin's manifest both write it.

use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

/// Limits of one plugin, applied to every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory of one instance, in bytes. A guest that asks for more
    /// sees `memory.grow` fail and the call is reported as a memory limit.
    pub memory: usize,
    /// Time one call may run, counted in epoch ticks during which the guest
    /// ran (time it spends yielded to other tasks does not count); a plugin
    /// is a transform and has no reason to take long.
    pub cpu_time: Duration,
    /// Body of the request a plugin returns, in bytes.
    pub request_body: usize,
    /// Number of device messages one `on-response` may return.
    pub replies: usize,
    /// Bytes of all device messages of one `on-response` together.
    pub reply_bytes: usize,
    /// Bytes of log and stdout/stderr kept per call; the rest is dropped.
    pub log_bytes: usize,
    /// Failed calls in a row (traps, deadlines, memory, invalid results,
    /// failed instantiations) after which the plugin is suspended until a
    /// new version is loaded: a crash loop should not cost a fresh instance
    /// per event forever.
    pub suspend_after: u32,
    /// Keys in one of the plugin's key-value buckets.
    pub kv_max_keys: usize,
}

impl Limits {
    /// The values `suspend_after` may take, in the host configuration and
    /// in manifests.
    pub const SUSPEND_AFTER: std::ops::RangeInclusive<u32> = 1..=1000;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory: 32 << 20,
            cpu_time: Duration::from_millis(100),
            request_body: 1 << 20,
            replies: 64,
            reply_bytes: 256 << 10,
            log_bytes: 16 << 10,
            suspend_after: 10,
            kv_max_keys: 10_000,
        }
    }
}

/// A value of a `[limits]` table out of range.
#[derive(Debug, thiserror::Error)]
#[error("`{key}`: {reason}")]
pub struct LimitsError {
    /// The key, dotted as the caller names the table (`limits.memory`).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// Limits a manifest may set; absent ones take the host's defaults.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    memory: Option<ByteSize>,
    #[serde(default, with = "humantime_serde")]
    cpu_time: Option<Duration>,
    request_body: Option<ByteSize>,
    replies: Option<usize>,
    reply_bytes: Option<ByteSize>,
    log_bytes: Option<ByteSize>,
    suspend_after: Option<u32>,
    kv_max_keys: Option<usize>,
}

impl RawLimits {
    /// These limits over `defaults`, checked against the host's maxima.
    pub fn apply(
        &self,
        defaults: &Limits,
        max_memory: usize,
        key: &str,
    ) -> Result<Limits, LimitsError> {
        let invalid = |field: &str, reason: String| LimitsError {
            key: format!("{key}{field}"),
            reason,
        };
        let limits = self.over(defaults);
        if limits.memory < (1 << 20) || limits.memory > max_memory {
            return Err(invalid(
                "memory",
                format!(
                    "{} is outside 1 MiB..={}",
                    ByteSize(limits.memory as u64),
                    ByteSize(max_memory as u64)
                ),
            ));
        }
        if limits.cpu_time < Duration::from_millis(1) || limits.cpu_time > Duration::from_secs(60) {
            return Err(invalid(
                "cpu_time",
                format!("{:?} is outside 1ms..=60s", limits.cpu_time),
            ));
        }
        if limits.replies == 0 {
            return Err(invalid("replies", "must be at least 1".into()));
        }
        if !Limits::SUSPEND_AFTER.contains(&limits.suspend_after) {
            return Err(invalid(
                "suspend_after",
                format!(
                    "{} is outside {}..={}",
                    limits.suspend_after,
                    Limits::SUSPEND_AFTER.start(),
                    Limits::SUSPEND_AFTER.end()
                ),
            ));
        }
        if !(1..=1_000_000).contains(&limits.kv_max_keys) {
            return Err(invalid(
                "kv_max_keys",
                format!("{} is outside 1..=1000000", limits.kv_max_keys),
            ));
        }
        Ok(limits)
    }

    /// These limits over `defaults`, unchecked: for limits that
    /// [`Self::apply`] checked once, over defaults the host checked.
    pub fn over(&self, defaults: &Limits) -> Limits {
        let bytes = |v: Option<ByteSize>, d: usize| {
            v.map_or(d, |b| usize::try_from(b.as_u64()).unwrap_or(usize::MAX))
        };
        Limits {
            memory: bytes(self.memory, defaults.memory),
            cpu_time: self.cpu_time.unwrap_or(defaults.cpu_time),
            request_body: bytes(self.request_body, defaults.request_body),
            replies: self.replies.unwrap_or(defaults.replies),
            reply_bytes: bytes(self.reply_bytes, defaults.reply_bytes),
            log_bytes: bytes(self.log_bytes, defaults.log_bytes),
            suspend_after: self.suspend_after.unwrap_or(defaults.suspend_after),
            kv_max_keys: self.kv_max_keys.unwrap_or(defaults.kv_max_keys),
        }
    }
}
