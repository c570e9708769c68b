//! `GET /metrics`: the counters of every webhook in force (plugin files and
//! Particle-style webhooks), in the Prometheus text exposition format.
//!
//! Written by hand: the counters already live in [`PluginStats`], and a
//! handful of families is less code than mirroring them into a metrics
//! crate's registry. [`render`] is pure, so its exact output is tested.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::ApiState;
use crate::runtime::{CallError, PluginStats};

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the metrics show of one webhook, read once from its counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The plugin's name, or `webhook/{id}`.
    pub plugin: String,
    /// Calls made.
    pub calls: u64,
    /// Failed calls, by [`CallError::cause`].
    pub errors: std::collections::BTreeMap<&'static str, u64>,
    /// Time the calls ran, in seconds.
    pub call_seconds: f64,
    /// Largest linear memory of any instance, in bytes.
    pub memory_high_water: u64,
    /// Whether it is suspended after a run of failures.
    pub suspended: bool,
}

impl Sample {
    /// Reads the counters of `plugin`.
    pub fn read(plugin: &str, stats: &PluginStats) -> Self {
        Self {
            plugin: plugin.to_owned(),
            calls: stats.calls.load(Ordering::Relaxed),
            errors: stats.errors(),
            call_seconds: stats.call_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            memory_high_water: stats.memory_high_water.load(Ordering::Relaxed),
            suspended: stats.suspended().is_some(),
        }
    }
}

/// `GET /metrics`.
pub async fn get(State(state): State<ApiState>) -> impl IntoResponse {
    let samples: Vec<Sample> = state
        .registry
        .all_stats()
        .iter()
        .map(|(name, stats)| Sample::read(name, stats))
        .collect();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&samples))
}

/// The exposition text of `samples`: one family after the other, each with
/// its `# HELP` and `# TYPE`, every cause of error listed (zero included) so
/// that rates work from the first error on.
pub fn render(samples: &[Sample]) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "edgehook_plugin_calls_total",
        "counter",
        "Plugin calls made (on-event and on-response).",
        samples,
        |s, line| line(&[], s.calls.to_string()),
    );
    family(
        &mut out,
        "edgehook_plugin_errors_total",
        "counter",
        "Plugin calls that failed, by cause.",
        samples,
        |s, line| {
            for cause in CallError::CAUSES {
                let n = s.errors.get(cause).copied().unwrap_or(0);
                line(&[("cause", cause)], n.to_string());
            }
        },
    );
    family(
        &mut out,
        "edgehook_plugin_call_seconds_total",
        "counter",
        "Time plugin calls ran on the host's threads, in seconds.",
        samples,
        |s, line| line(&[], s.call_seconds.to_string()),
    );
    family(
        &mut out,
        "edgehook_plugin_memory_high_water_bytes",
        "gauge",
        "Largest linear memory of any instance of the plugin, in bytes.",
        samples,
        |s, line| line(&[], s.memory_high_water.to_string()),
    );
    family(
        &mut out,
        "edgehook_plugin_suspended",
        "gauge",
        "1 when the plugin is suspended after a run of failed calls.",
        samples,
        |s, line| line(&[], u8::from(s.suspended).to_string()),
    );
    out
}

/// Writes one metric family: its header, then the lines `each` produces
/// for every sample (labelled with the plugin, then the extra labels).
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: &[Sample],
    each: impl Fn(&Sample, &mut dyn FnMut(&[(&str, &str)], String)),
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for sample in samples {
        each(sample, &mut |labels, value| {
            let _ = write!(out, "{name}{{plugin=\"{}\"", escape(&sample.plugin));
            for (key, label) in labels {
                let _ = write!(out, ",{key}=\"{}\"", escape(label));
            }
            let _ = writeln!(out, "}} {value}");
        });
    }
}

/// A label value as the exposition format wants it: `\`, `"` and newlines
/// escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_for_every_plugin() {
        let samples = [
            Sample {
                plugin: "forward".into(),
                calls: 2,
                errors: Default::default(),
                call_seconds: 0.25,
                memory_high_water: 1_179_648,
                suspended: false,
            },
            Sample {
                plugin: "webhook/a\"b\\c\nd".into(),
                calls: 3,
                errors: [("trap", 3)].into_iter().collect(),
                call_seconds: 0.000_5,
                memory_high_water: 0,
                suspended: true,
            },
        ];
        let expected = r#"# HELP edgehook_plugin_calls_total Plugin calls made (on-event and on-response).
# TYPE edgehook_plugin_calls_total counter
edgehook_plugin_calls_total{plugin="forward"} 2
edgehook_plugin_calls_total{plugin="webhook/a\"b\\c\nd"} 3
# HELP edgehook_plugin_errors_total Plugin calls that failed, by cause.
# TYPE edgehook_plugin_errors_total counter
edgehook_plugin_errors_total{plugin="forward",cause="trap"} 0
edgehook_plugin_errors_total{plugin="forward",cause="deadline"} 0
edgehook_plugin_errors_total{plugin="forward",cause="memory"} 0
edgehook_plugin_errors_total{plugin="forward",cause="invalid"} 0
edgehook_plugin_errors_total{plugin="forward",cause="plugin"} 0
edgehook_plugin_errors_total{plugin="forward",cause="instantiate"} 0
edgehook_plugin_errors_total{plugin="webhook/a\"b\\c\nd",cause="trap"} 3
edgehook_plugin_errors_total{plugin="webhook/a\"b\\c\nd",cause="deadline"} 0
edgehook_plugin_errors_total{plugin="webhook/a\"b\\c\nd",cause="memory"} 0
edgehook_plugin_errors_total{plugin="webhook/a\"b\\c\nd",cause="invalid"} 0
edgehook_plugin_errors_total{plugin="webhook/a\"b\\c\nd",cause="plugin"} 0
edgehook_plugin_errors_total{plugin="webhook/a\"b\\c\nd",cause="instantiate"} 0
# HELP edgehook_plugin_call_seconds_total Time plugin calls ran on the host's threads, in seconds.
# TYPE edgehook_plugin_call_seconds_total counter
edgehook_plugin_call_seconds_total{plugin="forward"} 0.25
edgehook_plugin_call_seconds_total{plugin="webhook/a\"b\\c\nd"} 0.0005
# HELP edgehook_plugin_memory_high_water_bytes Largest linear memory of any instance of the plugin, in bytes.
# TYPE edgehook_plugin_memory_high_water_bytes gauge
edgehook_plugin_memory_high_water_bytes{plugin="forward"} 1179648
edgehook_plugin_memory_high_water_bytes{plugin="webhook/a\"b\\c\nd"} 0
# HELP edgehook_plugin_suspended 1 when the plugin is suspended after a run of failed calls.
# TYPE edgehook_plugin_suspended gauge
edgehook_plugin_suspended{plugin="forward"} 0
edgehook_plugin_suspended{plugin="webhook/a\"b\\c\nd"} 1
"#;
        assert_eq!(render(&samples), expected);
    }

    #[test]
    fn an_empty_host_has_the_headers_only() {
        let text = render(&[]);
        assert_eq!(text.lines().count(), 10);
        assert!(text.lines().all(|l| l.starts_with('#')));
    }
}
