//! What a host prints: its log lines (level and format) and the line that
//! says it is ready (for people, or as JSON for the tools that start it).
//! README "Configuration reference".

use serde::Deserialize;

use super::Settings;
use super::error::{ConfigError, invalid};

/// The shape of the ready line `serve` prints once it takes events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadyFormat {
    /// `edgehook ready: …`, for people.
    #[default]
    Text,
    /// One JSON object on one line, for tools that start the host.
    Json,
}

impl ReadyFormat {
    /// Its name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// `log_level`, checked: a level or `RUST_LOG`-style directives.
pub(super) fn log_level(s: &Settings) -> Result<String, ConfigError> {
    let level = s
        .log_level
        .clone()
        .unwrap_or_else(|| crate::logging::DEFAULT_LEVEL.to_owned());
    crate::logging::filter(&level).map_err(|e| invalid("log_level", e))?;
    Ok(level)
}

/// The OTLP/HTTP collector traces go to, when one is named: an `http` or
/// `https` URL.
pub(super) fn otlp_endpoint(text: Option<&str>) -> Result<Option<url::Url>, ConfigError> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    match url::Url::parse(text.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(Some(url))
        }
        _ => Err(invalid(
            "otlp_endpoint",
            format!(
                "{:?} is not an http(s) URL; write e.g. http://127.0.0.1:4318",
                crate::secrets::url(text)
            ),
        )),
    }
}
