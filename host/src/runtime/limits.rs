//! The bounds on what one plugin call may use or produce.
//!
//! Every size a guest controls is bounded here by a named limit; the defaults
//! come from the host configuration and a manifest may lower or raise them
//! within the host's maxima.

use std::time::Duration;

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
        }
    }
}
