//! Why a configuration stops start-up, and the checks every stage's
//! settings share: each message names the key as the TOML file spells it.

use std::path::PathBuf;
use std::time::Duration;

use super::plugin_limits::LimitsError;

/// A setting that stops start-up; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid, or has an unknown key.
    #[error("config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error, naming the key and line.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("config key `{key}`: {reason}")]
    Invalid {
        /// The key, as in the TOML file.
        key: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// The default plugin limits are out of range.
    #[error("config key `limits`: {0}")]
    Limits(#[from] LimitsError),
}

/// The error of `key` for `reason`.
pub(super) fn invalid(key: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { key, reason }
}

/// `value` when within `min..=max` (shown as `range`), else an error
/// naming `key`.
pub(super) fn check(
    key: &'static str,
    value: usize,
    min: usize,
    max: usize,
    range: &str,
) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(invalid(key, format!("{value} is outside {range}")))
    }
}

/// `value` (or `default`) when within `range`, else an error naming `key`.
pub(super) fn within(
    key: &'static str,
    value: Option<Duration>,
    default: Duration,
    range: std::ops::RangeInclusive<Duration>,
    shown: &str,
) -> Result<Duration, ConfigError> {
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(invalid(
            key,
            format!("{} is outside {shown}", humantime::format_duration(value)),
        ))
    }
}

/// A size in bytes, `default` when not given.
pub(super) fn bytes(value: Option<bytesize::ByteSize>, default: u64) -> usize {
    usize::try_from(value.map_or(default, |b| b.as_u64())).unwrap_or(usize::MAX)
}

/// The items of a comma list, which must have one.
pub(super) fn list(key: &'static str, text: &str) -> Result<Vec<String>, ConfigError> {
    let items: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if items.is_empty() {
        return Err(invalid(key, "names no URL".into()));
    }
    Ok(items)
}
