//! The sizes and counts that bound a host's work: an event, a webhook
//! request and its response, a device message's chunks, plugin instances
//! and their memory, deliveries in progress, and the default limits of
//! every plugin. README "Configuration reference".

use std::time::Duration;

use super::Settings;
use super::error::{ConfigError, bytes, check, invalid};
use super::plugin_limits::Limits;

/// The checked sizes and counts of `s`.
#[derive(Debug)]
pub(super) struct Sizes {
    pub max_event_bytes: usize,
    pub http_timeout: Duration,
    pub max_response_bytes: usize,
    pub chunk_size: usize,
    pub plugin_instances: u32,
    pub max_plugin_memory: usize,
    pub max_in_flight: usize,
    pub iottly_max_webhooks: usize,
    pub limits: Limits,
}

impl Sizes {
    /// The sizes of `s`, each within its range.
    pub(super) fn build(s: &Settings) -> Result<Self, ConfigError> {
        let max_event_bytes = bytes(s.max_event_bytes, 64 << 10);
        check(
            "max_event_bytes",
            max_event_bytes,
            1,
            256 << 20,
            "1 B..=256 MiB",
        )?;
        let http_timeout = s.http_timeout.unwrap_or(Duration::from_secs(20));
        if http_timeout < Duration::from_millis(100) || http_timeout > Duration::from_secs(600) {
            return Err(invalid(
                "http_timeout",
                format!("{http_timeout:?} is outside 100ms..=10min"),
            ));
        }
        let max_response_bytes = bytes(s.max_response_bytes, 100_000);
        check(
            "max_response_bytes",
            max_response_bytes,
            1,
            64 << 20,
            "1 B..=64 MiB",
        )?;
        let chunk_size = s.chunk_size.unwrap_or(512);
        check("chunk_size", chunk_size, 16, 1 << 20, "16..=1048576")?;
        let (plugin_instances, max_plugin_memory, limits) = plugins(s)?;
        let max_in_flight = s.max_in_flight.unwrap_or(1024);
        check("max_in_flight", max_in_flight, 1, 1_000_000, "1..=1000000")?;
        let iottly_max_webhooks = s.iottly_max_webhooks.unwrap_or(5);
        check(
            "iottly_max_webhooks",
            iottly_max_webhooks,
            1,
            1000,
            "1..=1000",
        )?;
        Ok(Self {
            max_event_bytes,
            http_timeout,
            max_response_bytes,
            chunk_size,
            plugin_instances,
            max_plugin_memory,
            max_in_flight,
            iottly_max_webhooks,
            limits,
        })
    }
}

/// Plugin instances, the most memory a plugin may be given, and every
/// plugin's default limits (the file's `[limits]`, with `suspend_after`
/// over it).
fn plugins(s: &Settings) -> Result<(u32, usize, Limits), ConfigError> {
    let plugin_instances = s.plugin_instances.unwrap_or(256);
    check(
        "plugin_instances",
        plugin_instances as usize,
        1,
        10_000,
        "1..=10000",
    )?;
    let max_plugin_memory = bytes(s.max_plugin_memory, 256 << 20);
    check(
        "max_plugin_memory",
        max_plugin_memory,
        1 << 20,
        4 << 30,
        "1 MiB..=4 GiB",
    )?;
    let mut limits =
        s.limits
            .unwrap_or_default()
            .apply(&Limits::default(), max_plugin_memory, "")?;
    // The top-level key (flag, environment, file) wins over the same
    // setting in the file's `[limits]`.
    if let Some(n) = s.suspend_after {
        let range = Limits::SUSPEND_AFTER;
        check(
            "suspend_after",
            n as usize,
            *range.start() as usize,
            *range.end() as usize,
            &format!("{}..={}", range.start(), range.end()),
        )?;
        limits.suspend_after = n;
    }
    Ok((plugin_instances, max_plugin_memory, limits))
}
