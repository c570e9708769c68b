//! How the process logs: the filter of `EDGEHOOK_LOG`, on standard error,
//! as text (coloured only when standard error is a terminal, so log files
//! and journald get plain lines) or as one JSON object a line for log
//! shippers.

use std::io::IsTerminal as _;

use serde::Deserialize;

/// The shape of log lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line: `timestamp`, `level`, `target`, `fields`.
    Json,
}

/// The filter when `EDGEHOOK_LOG` is unset: the broker's own chatter, and
/// the NATS client's (a line per reconnect attempt; the host says once
/// when NATS goes and comes back), are kept to warnings.
const DEFAULT_FILTER: &str = "info,rmqtt=warn,rmqtt_net=warn,async_nats=warn";

/// Installs the process-wide subscriber.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDGEHOOK_LOG")
        .unwrap_or_else(|_| DEFAULT_FILTER.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().init(),
    }
}
