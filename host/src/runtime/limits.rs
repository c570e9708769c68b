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
    /// Wall-clock time of one call, enforced with epoch interruption; a
    /// plugin is a transform and has no reason to take long.
    pub cpu_time: Duration,
    /// Body of the request a plugin returns, in bytes.
    pub request_body: usize,
    /// Number of device messages one `on-response` may return.
    pub replies: usize,
    /// Bytes of all device messages of one `on-response` together.
    pub reply_bytes: usize,
    /// Bytes of log and stdout/stderr kept per call; the rest is dropped.
    pub log_bytes: usize,
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
        }
    }
}
