//! The plugin manifest, `NAME.toml` beside `NAME.wasm`: which events run the
//! plugin, which hosts it may call, its configuration and its limits.
//!
//! Parsed once at load into a [`Manifest`]; unknown keys are errors that
//! name them, and `{ env = "NAME" }` values are read from the environment,
//! from variables named `EDGEHOOK_PLUGIN_…` only: a manifest is not trusted
//! with the host's own secrets (its API token, cloud credentials).

use std::sync::Arc;

use serde::Deserialize;

use crate::auth::{AuthSpec, Authorizer};
use crate::config::{LimitsError, RawLimits};
use crate::hooks::{Filter, HostPattern};
use crate::runtime::{DefaultLimits, PluginLimits};
use crate::throttle::RetrySchedule;
use crate::topic::DeviceId;

/// Why a manifest is unusable; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not valid TOML, or an unknown key, or a value of the wrong type.
    #[error("{0}")]
    Syntax(#[from] toml::de::Error),
    /// A key has a value out of range.
    #[error("`{key}`: {reason}")]
    Invalid {
        /// The key, dotted (`limits.memory`).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A `{ env = "NAME" }` value names a variable outside
    /// [`PLUGIN_ENV_PREFIX`].
    #[error(
        "`{key}`: environment variable {var} may not be read by a plugin \
         (only names starting with {PLUGIN_ENV_PREFIX})"
    )]
    ForbiddenEnv {
        /// The configuration key.
        key: String,
        /// The variable.
        var: String,
    },
    /// A `{ env = "NAME" }` value names a variable that is not set.
    #[error("`{key}`: environment variable {var} is not set")]
    MissingEnv {
        /// The configuration key.
        key: String,
        /// The variable.
        var: String,
    },
}

impl From<LimitsError> for ManifestError {
    fn from(e: LimitsError) -> Self {
        Self::Invalid {
            key: e.key,
            reason: e.reason,
        }
    }
}

/// The prefix of every environment variable a manifest may read: the
/// operator sets these for plugins on purpose, while the rest of the host's
/// environment (`EDGEHOOK_API_TOKEN`, `AWS_SECRET_ACCESS_KEY`, …) stays out
/// of reach of whoever wrote the manifest.
pub const PLUGIN_ENV_PREFIX: &str = "EDGEHOOK_PLUGIN_";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    event: String,
    #[serde(default)]
    devices: Option<Vec<String>>,
    allowed_hosts: Vec<String>,
    #[serde(default)]
    config: toml::Table,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    auth: Option<toml::Table>,
    #[serde(default)]
    retry: Option<RawRetry>,
}

/// `[retry]`: the plugin's own retry schedule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    schedule: Vec<String>,
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The events that run the plugin.
    pub filter: Filter,
    /// Hosts the plugin may send requests to.
    pub allowed_hosts: Vec<HostPattern>,
    /// The configuration handed to the plugin, as JSON.
    pub config: serde_json::Value,
    /// Limits of every call: the manifest's own over the host's defaults.
    pub limits: PluginLimits,
    /// The auth the host does for the plugin's requests (`[auth]`).
    pub auth: Option<Arc<Authorizer>>,
    /// Its own retry schedule (`[retry] schedule`), in place of the host's.
    pub retry: Option<RetrySchedule>,
}

impl Manifest {
    /// Parses and validates a manifest. `env` looks up environment variables
    /// (a parameter so tests need not touch the process environment).
    pub fn parse(
        text: &str,
        defaults: &DefaultLimits,
        max_memory: usize,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ManifestError> {
        let raw: RawManifest = toml::from_str(text)?;
        if raw.event.is_empty() {
            return Err(ManifestError::Invalid {
                key: "event".into(),
                reason: "must be a non-empty event-name prefix".into(),
            });
        }
        let devices = raw
            .devices
            .map(|ids| {
                ids.iter()
                    .map(|id| {
                        DeviceId::try_from(id.as_str()).map_err(|e| ManifestError::Invalid {
                            key: "devices".into(),
                            reason: e.to_string(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let allowed_hosts = raw
            .allowed_hosts
            .iter()
            .map(|h| HostPattern::parse(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| ManifestError::Invalid {
                key: "allowed_hosts".into(),
                reason,
            })?;
        let config = resolve_env(toml::Value::Table(raw.config), "config", &env)?;
        let auth = raw
            .auth
            .map(|table| auth(table, &allowed_hosts, &env))
            .transpose()?;
        let retry = raw
            .retry
            .map(|r| RetrySchedule::own(r.schedule.iter().map(|d| Some(d.as_str()))))
            .transpose()
            .map_err(|reason| ManifestError::Invalid {
                key: "retry.schedule".into(),
                reason,
            })?;
        raw.limits.apply(&defaults.get(), max_memory, "limits.")?;
        let limits = PluginLimits::new(raw.limits, defaults.clone());
        Ok(Self {
            filter: Filter {
                event: raw.event,
                devices,
                ..Filter::default()
            },
            allowed_hosts,
            config,
            limits,
            auth,
            retry,
        })
    }
}

/// The `[auth]` table (its secrets may be `{ env = "…" }`), whose token
/// endpoint, if it has one, must be among the allowed hosts.
fn auth(
    table: toml::Table,
    allowed_hosts: &[HostPattern],
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Arc<Authorizer>, ManifestError> {
    let invalid = |reason: String| ManifestError::Invalid {
        key: "auth".into(),
        reason,
    };
    let value = resolve_env(toml::Value::Table(table), "auth", env)?;
    let spec = AuthSpec::parse_host(&value).map_err(|e| invalid(e.0))?;
    if let Some(host) = spec.token_endpoint().and_then(url::Url::host_str)
        && !allowed_hosts.iter().any(|p| p.matches(host))
    {
        return Err(invalid(format!(
            "the token endpoint's host {host} is not in allowed_hosts"
        )));
    }
    Ok(Arc::new(Authorizer::new(spec)))
}

/// Converts TOML to JSON, replacing `{ env = "NAME" }` tables with the
/// variable's value; `NAME` must start with [`PLUGIN_ENV_PREFIX`].
fn resolve_env(
    value: toml::Value,
    key: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<serde_json::Value, ManifestError> {
    use serde_json::Value as J;
    Ok(match value {
        toml::Value::Table(table) => {
            if let (1, Some(toml::Value::String(var))) = (table.len(), table.get("env")) {
                if !var.starts_with(PLUGIN_ENV_PREFIX) {
                    return Err(ManifestError::ForbiddenEnv {
                        key: key.to_owned(),
                        var: var.clone(),
                    });
                }
                let value = env(var).ok_or_else(|| ManifestError::MissingEnv {
                    key: key.to_owned(),
                    var: var.clone(),
                })?;
                return Ok(J::String(value));
            }
            let mut map = serde_json::Map::with_capacity(table.len());
            for (k, v) in table {
                let child = resolve_env(v, &format!("{key}.{k}"), env)?;
                map.insert(k, child);
            }
            J::Object(map)
        }
        toml::Value::Array(items) => J::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| resolve_env(v, &format!("{key}[{i}]"), env))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => J::from(f),
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runtime::Limits;

    const MAX: usize = 256 << 20;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, &DefaultLimits::new(Limits::default()), MAX, |var| {
            (var == "EDGEHOOK_PLUGIN_KEY").then(|| "s3cret".to_owned())
        })
    }

    #[test]
    fn parses_the_documented_example() {
        let m = parse(
            r#"
            event = "temp"
            devices = ["dev-1"]
            allowed_hosts = ["api.thingspeak.com", "*.example.com"]
            [config]
            url = "https://api.thingspeak.com/update"
            api_key = { env = "EDGEHOOK_PLUGIN_KEY" }
            fields = { temp = "field1" }
            [limits]
            memory = "16 MiB"
            cpu_time = "50ms"
            suspend_after = 3
            "#,
        )
        .unwrap();
        assert_eq!(m.config["api_key"], "s3cret");
        assert_eq!(m.config["fields"]["temp"], "field1");
        assert_eq!(m.limits.current().memory, 16 << 20);
        assert_eq!(
            m.limits.current().cpu_time,
            std::time::Duration::from_millis(50)
        );
        assert_eq!(m.limits.current().replies, Limits::default().replies);
        assert_eq!(m.limits.current().suspend_after, 3);
        let dev1 = DeviceId::try_from("dev-1").unwrap();
        let dev2 = DeviceId::try_from("dev-2").unwrap();
        assert!(m.filter.matches(&dev1, None, "temperature"));
        assert!(
            !m.filter.matches(&dev1, None, "Temp"),
            "prefixes are case-sensitive"
        );
        assert!(!m.filter.matches(&dev2, None, "temp"), "device filter");
        let allows = |host: &str| m.allowed_hosts.iter().any(|p| p.matches(host));
        assert!(allows("API.thingspeak.com"));
        assert!(allows("a.b.example.com"));
        assert!(!allows("example.com"));
        assert!(!allows("badexample.com"));
        assert!(!allows("thingspeak.com"));
    }

    #[test]
    fn subdomain_patterns_match_non_ascii_hosts_without_panicking() {
        let pattern = HostPattern::parse("*.b.com").unwrap();
        // The suffix's length lands inside `é`: slicing the `str` panicked.
        assert!(!pattern.matches("xé.com"));
        assert!(pattern.matches("é.b.com"));
        assert!(pattern.matches("x.B.com"));
        assert!(!pattern.matches(".b.com"));
        assert!(!pattern.matches("b.com"));
        assert!(!pattern.matches("xb.com"));
    }

    #[test]
    fn only_plugin_variables_are_read() {
        // Every lookup is recorded: a refused name must not even be read.
        let looked_up = std::cell::RefCell::new(Vec::new());
        let parse = |var: &str| {
            let text = format!(
                "event = \"x\"\nallowed_hosts = []\n[config]\nnested = [{{ k = {{ env = \"{var}\" }} }}]"
            );
            Manifest::parse(&text, &DefaultLimits::new(Limits::default()), MAX, |name| {
                looked_up.borrow_mut().push(name.to_owned());
                Some("value".to_owned())
            })
        };
        for var in [
            "EDGEHOOK_API_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "EDGEHOOK_PLUGIN",
            "edgehook_plugin_key",
            "X_EDGEHOOK_PLUGIN_KEY",
            "",
        ] {
            let err = parse(var).unwrap_err();
            assert!(
                matches!(err, ManifestError::ForbiddenEnv { .. }),
                "{var}: {err}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "`config.nested[0].k`: environment variable {var} may not be read by a \
                     plugin (only names starting with EDGEHOOK_PLUGIN_)"
                )
            );
        }
        assert!(looked_up.borrow().is_empty(), "{:?}", looked_up.borrow());
        for var in ["EDGEHOOK_PLUGIN_", "EDGEHOOK_PLUGIN_THINGSPEAK_KEY"] {
            let m = parse(var).unwrap();
            assert_eq!(m.config["nested"][0]["k"], "value", "{var}");
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse("event = \"x\"\nallowed_hosts = []\ncolour = 1").unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let err =
            parse("event = \"x\"\nallowed_hosts = []\n[limits]\nram = \"1 MiB\"").unwrap_err();
        assert!(err.to_string().contains("ram"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            ("event = \"\"\nallowed_hosts = []", "`event`"),
            (
                "event = \"x\"\nallowed_hosts = [\"https://x.com\"]",
                "`allowed_hosts`",
            ),
            (
                "event = \"x\"\ndevices = [\"a/b\"]\nallowed_hosts = []",
                "`devices`",
            ),
            (
                "event = \"x\"\nallowed_hosts = []\n[limits]\nmemory = \"1 GiB\"",
                "`limits.memory`",
            ),
            (
                "event = \"x\"\nallowed_hosts = []\n[limits]\ncpu_time = \"2m\"",
                "`limits.cpu_time`",
            ),
            (
                "event = \"x\"\nallowed_hosts = []\n[limits]\nsuspend_after = 0",
                "`limits.suspend_after`: 0 is outside 1..=1000",
            ),
            (
                "event = \"x\"\nallowed_hosts = []\n[limits]\nsuspend_after = 1001",
                "`limits.suspend_after`",
            ),
            (
                "event = \"x\"\nallowed_hosts = []\n[limits]\nsuspend_after = -1",
                "suspend_after",
            ),
            (
                "event = \"x\"\nallowed_hosts = []\n[config]\nk = { env = \"EDGEHOOK_PLUGIN_NOPE\" }",
                "`config.k`: environment variable EDGEHOOK_PLUGIN_NOPE is not set",
            ),
            ("allowed_hosts = []", "event"),
            (
                "event = \"x\"\nallowed_hosts = []\n[retry]\nschedule = [\"soon\"]",
                "`retry.schedule`: \"soon\" is not a delay",
            ),
        ];
        for (text, needle) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_retry_schedule_replaces_the_hosts() {
        let manifest =
            parse("event = \"t\"\nallowed_hosts = []\n[retry]\nschedule = [\"5s\", \"1m\"]")
                .unwrap();
        let retry = manifest.retry.unwrap();
        assert_eq!(
            retry.delays(),
            [Duration::from_secs(5), Duration::from_secs(60)]
        );
    }

    #[test]
    fn auth_takes_its_secrets_from_the_plugin_environment() {
        let manifest = parse(
            r#"
            event = "t"
            allowed_hosts = ["api.example.com"]
            [auth]
            type = "bearer"
            token = { env = "EDGEHOOK_PLUGIN_KEY" }
            "#,
        )
        .unwrap();
        assert_eq!(manifest.auth.unwrap().kind(), "bearer");
        let err = parse(
            "event = \"t\"\nallowed_hosts = [\"h\"]\n[auth]\ntype = \"bearer\"\ntoken = { env = \"EDGEHOOK_API_TOKEN\" }",
        )
        .unwrap_err();
        assert!(matches!(err, ManifestError::ForbiddenEnv { .. }), "{err}");
    }

    #[test]
    fn a_token_endpoint_must_be_an_allowed_host() {
        let err = parse(
            r#"
            event = "t"
            allowed_hosts = ["api.example.com"]
            [auth]
            type = "oauth2-client-credentials"
            token_url = "https://login.example.net/token"
            client_id = "c"
            client_secret = "s"
            "#,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "`auth`: the token endpoint's host login.example.net is not in allowed_hosts"
        );
    }

    #[test]
    fn an_auth_without_type_is_basic() {
        let manifest = parse(
            "event = \"t\"\nallowed_hosts = [\"h\"]\n[auth]\nusername = \"u\"\npassword = \"p\"",
        )
        .unwrap();
        assert_eq!(manifest.auth.unwrap().kind(), "basic");
    }
}
